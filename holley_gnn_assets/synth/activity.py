"""The audience's and outside customers' activity: site product events, email treatments and
orders before the cutoff and in the test window, assembled into the three event tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.synth import behaviour as bh
from holley_gnn_assets.synth import orders as order_rows
from holley_gnn_assets.synth.world import World


def epoch_timestamps(seconds: np.ndarray) -> pd.Series:
    """Epoch seconds as naive UTC timestamps."""
    return pd.Series(pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s"))


def simulate_activity(
    params: dict,
    world: World,
    users: bh.Users,
    clock: bh.Clock,
    rngs: dict[str, np.random.Generator],
) -> dict[str, Any]:
    """Site events, treatments and orders of the audience and of outside customers."""
    r, log = rngs["activity"], bh.EventLog()
    s_lo, c_hi = clock.start, clock.cutoff - bh.HOUR
    t_lo, t_hi = clock.cutoff + bh.HOUR, clock.as_of - bh.HOUR
    warm, hot = np.flatnonzero(users.tier == 1), np.flatnonzero(users.tier == 2)
    w_views, w_clicks, h_views, h_carts, h_orders, h_clicks = engaged_counts(
        params, len(warm), len(hot), r
    )
    views = np.concatenate([np.repeat(warm, w_views), np.repeat(hot, h_views)])
    bh.site_product_events(log, world, users, views, "product_viewed", s_lo, c_hi, r)
    bh.site_product_events(
        log, world, users, np.repeat(hot, h_carts), "added_to_cart", s_lo, c_hi, r
    )
    clickers = np.concatenate([np.repeat(warm, w_clicks), np.repeat(hot, h_clicks)])
    bh.email_clicks(log, world, users, clickers, s_lo, clock.cutoff - 2 * bh.DAY, clock, r)

    # test window: email clicks (mostly cold users) and site events (a second test set)
    ok = np.flatnonzero(users.reachable)
    w = np.where(users.tier[ok] > 0, float(params["engaged_click_boost"]), 1.0)
    per = float(params["test_clicks_per_clicker"])
    n_clickers = min(round(int(params["n_test_clicks"]) / per), len(ok))
    test_users = r.choice(ok, n_clickers, replace=False, p=w / w.sum())
    test_who = np.repeat(test_users, 1 + r.poisson(per - 1.0, n_clickers))
    n_test_clicks = bh.email_clicks(
        log, world, users, test_who, t_lo, clock.as_of - 2 * bh.DAY, clock, r
    )
    n_ev = min(int(params["n_test_event_users"]), len(ok))
    ev_users = r.choice(ok, n_ev, replace=False, p=w / w.sum())
    bh.site_product_events(
        log,
        world,
        users,
        np.repeat(ev_users, 1 + r.poisson(1.0, n_ev)),
        "product_viewed",
        t_lo,
        t_hi,
        r,
    )
    bh.site_product_events(
        log, world, users, ev_users[r.random(n_ev) < 0.3], "added_to_cart", t_lo, t_hi, r
    )
    test_buyers = ev_users[r.random(n_ev) < 0.1]

    bh.background_treatments(log, params, users, clock, rngs["treatments"])
    bh.ignored_site_events(log, params, world, users, clock, rngs["site"])

    # orders: hot users before the cutoff (with order_placed events), hot users' older
    # purchases (orders table only), test-window buyers, and the outside customers
    ro = rngs["orders"]
    frames = []
    for owners, lo, hi, evented in (
        (np.repeat(hot, h_orders), s_lo, c_hi, True),
        (np.repeat(hot, ro.poisson(1.0, len(hot))), clock.cutoff - 700 * bh.DAY, s_lo, False),
        (test_buyers, t_lo, t_hi, True),
    ):
        ts = ro.integers(lo, hi, len(owners))
        email = order_rows.messy_order_emails(users.email[owners], ro)
        f = order_rows.orders_frame(params, world, users.vehicle[owners], ts, email, ro, tag=owners)
        if evented:
            log.add_site(
                users.user_id[f["user_pos"].to_numpy()],
                "order_placed",
                f["sku"].to_numpy(),
                f["order_date"].to_numpy(),
            )
        frames.append(f)
    # outside customers: the first item from global demand, the latent vehicle among those it
    # fits (see world.build_world); bundles then follow that vehicle's preference
    n_out = int(params["n_outside_customers"])
    out_email = bh.emails(users.n + np.arange(n_out), ro)
    act = ro.lognormal(0.0, 1.2, n_out)
    buyer = ro.choice(n_out, int(params["n_outside_orders"]), p=act / act.sum())
    first = ro.choice(world.cat.n, len(buyer), p=world.demand)
    out_vehicle = world.buyer_sampler.draw(first, ro)
    span = int(float(params["orders_years"]) * 365 * bh.DAY)
    ts = clock.as_of - bh.HOUR - (span * ro.random(len(buyer)) ** 1.3).astype(np.int64)
    if world.time is not None:
        first, out_vehicle = _timed_outside(world, first, out_vehicle, ts)
    email = order_rows.messy_order_emails(out_email[buyer], ro)
    email[ro.random(len(email)) < 0.005] = None
    frames.append(order_rows.orders_frame(params, world, out_vehicle, ts, email, ro, first=first))

    # order ids: one per (frame, order_pos), numbered by date
    for i, f in enumerate(frames):
        f["okey"] = i * (1 << 40) + f["order_pos"].to_numpy()
    orders = pd.concat(frames, ignore_index=True)
    okey, first = np.unique(orders["okey"].to_numpy(), return_index=True)
    o_ts = orders["order_date"].to_numpy()[first]
    number = np.empty(len(okey), dtype=np.int64)
    number[np.lexsort((okey, o_ts))] = np.arange(len(okey))
    orders["order_id"] = "HO" + (10_000_000 + number[np.searchsorted(okey, orders["okey"])]).astype(
        str
    ).astype(object)
    orders = orders.sort_values(["order_date", "order_id", "sku"], kind="stable")
    orders["order_date"] = epoch_timestamps(orders["order_date"].to_numpy()).to_numpy()

    site = log.frame(log.site)
    treat = log.frame(log.treat)
    if params["orders_only"]:
        site, treat = _orders_only(site, treat, clock)
    site = site.iloc[np.argsort(site["event_timestamp"].to_numpy(), kind="stable")]
    site["event_timestamp"] = epoch_timestamps(site["event_timestamp"].to_numpy()).to_numpy()
    treat = treat.iloc[np.argsort(treat["interaction_timestamp"].to_numpy(), kind="stable")]
    treat["interaction_timestamp"] = epoch_timestamps(
        treat["interaction_timestamp"].to_numpy()
    ).to_numpy()
    return {
        "tables": {
            "company_1950.ingestion_unified_schema_incremental": site.reset_index(drop=True),
            "company_1950.treatment_interaction": treat.reset_index(drop=True),
            "data_company_1950.import_orders": orders.reset_index(drop=True),
        },
        "n_test_clicks": n_test_clicks,
    }


def engaged_counts(
    params: dict, n_warm: int, n_hot: int, r: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """Pre-cutoff activity per warm and hot user: (warm views, warm clicks, hot views, hot carts,
    hot orders, hot clicks). Sparse scales: a handful each. Dense scales: about
    ``engaged_interactions`` product interactions each (an order's lines each add an
    order_placed event, ~1.5 lines per order)."""
    if not params.get("dense"):
        # warm: product views and/or email clicks before the cutoff
        w_views = np.where(r.random(n_warm) < 0.25, 0, 1 + r.poisson(2.0, n_warm))
        w_clicks = np.where(w_views == 0, 1 + r.poisson(0.5, n_warm), r.poisson(0.6, n_warm))
        # hot: carts and/or orders (plus views and clicks)
        h_views = r.poisson(4.0, n_hot)
        h_carts = np.where(r.random(n_hot) < 0.6, 1 + r.poisson(1.0, n_hot), 0)
        h_orders = np.where((r.random(n_hot) < 0.6) | (h_carts == 0), 1 + r.poisson(0.5, n_hot), 0)
        h_clicks = r.poisson(1.0, n_hot)
        return w_views, w_clicks, h_views, h_carts, h_orders, h_clicks
    m = float(params["engaged_interactions"])
    # warm: 80% views, 20% email clicks; hot: 55% views, 20% carts, 10% order lines, 15% clicks
    w_views = r.poisson(0.8 * m, n_warm)
    w_clicks = 1 + r.poisson(max(0.2 * m - 1.0, 0.0), n_warm)
    h_views = r.poisson(0.55 * m, n_hot)
    h_carts = 1 + r.poisson(max(0.2 * m - 1.0, 0.0), n_hot)
    h_orders = 1 + r.poisson(max(0.1 * m / 1.5 - 1.0, 0.0), n_hot)
    h_clicks = r.poisson(0.15 * m, n_hot)
    return w_views, w_clicks, h_views, h_carts, h_orders, h_clicks


def _timed_outside(world: World, first: np.ndarray, vehicle: np.ndarray,
                   ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outside customers' first items re-drawn from global demand at their order times (time
    model), and a new latent vehicle for each changed one."""
    assert world.time is not None
    n = world.cat.n
    new = world.time.resample(first, ts, lambda idx, rng: rng.choice(n, len(idx),
                                                                      p=world.demand))
    changed = np.flatnonzero(new != first)
    vehicle = vehicle.copy()
    vehicle[changed] = world.buyer_sampler.draw(new[changed], world.time.rng)
    return new, vehicle


def _orders_only(site: pd.DataFrame, treat: pd.DataFrame,
                 clock: bh.Clock) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An orders-only log: no product views, carts or email clicks before the cutoff (orders
    and the test window stay). The other draws are unchanged, so the world is the same one."""
    before = site["event_timestamp"].to_numpy() < clock.cutoff
    drop = before & site["event_name"].isin(["product_viewed", "added_to_cart"]).to_numpy()
    clicked = (treat["interaction_timestamp"].to_numpy() < clock.cutoff) & (
        treat["interaction_type"].to_numpy() == "CLICKED")
    return site[~drop].reset_index(drop=True), treat[~clicked].reset_index(drop=True)
