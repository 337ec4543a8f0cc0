"""``generate_warehouse``: a synthetic Holley-like DuckDB warehouse with planted ground truth.

The world (vehicles in engine-family x era groups, a catalogue with affinity clusters, fitment)
defines each vehicle's true preference over its fitting products,
``P(j | v) ~ p_j * exp(signal * A[group(v), cluster(j)])``. Every behaviour (views, carts,
orders, email clicks in and before the test window, outside customers' orders and bundles) is
drawn from it; ``synth_truth.vehicle_preference`` records it. ``signal = 0`` is the null world
where global popularity within fitment is (up to fitment breadth) the best ranking.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.settings import load_config
from holley_gnn_assets.synth import behaviour as bh
from holley_gnn_assets.synth import names
from holley_gnn_assets.synth.scales import resolve_params
from holley_gnn_assets.synth.world import SCOPES, World, build_world
from holley_gnn_assets.synth.writer import (
    CONTRACT_TABLES,
    TRUTH_TABLES,
    atomic_duckdb,
    write_table,
)

DEFAULT_AS_OF = dt.date(2026, 11, 1)
GENERATOR_VERSION = "1"
_STREAMS = (
    "vehicles",
    "catalogue",
    "affinity",
    "users",
    "attributes",
    "activity",
    "treatments",
    "site",
    "orders",
    "items",
    "fitment",
)


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled, self.t0 = enabled, time.perf_counter()

    def __call__(self, stage: str, detail: str) -> None:
        if self.enabled:
            print(
                f"synth: {stage} {detail} ... {time.perf_counter() - self.t0:.1f}s",
                file=sys.stderr,
                flush=True,
            )


def _as_date(value: dt.date | str | None) -> dt.date:
    if value is None:
        return DEFAULT_AS_OF
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ValueError(f"as_of={value!r} is not a date in YYYY-MM-DD form") from exc


def _ts(seconds: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s"))


def generate_warehouse(
    path: str | Path,
    scale: str = "demo",
    seed: int = 0,
    signal: float = 1.0,
    as_of: dt.date | None = None,
    progress: bool = True,
    **overrides: Any,
) -> dict:
    """Write a synthetic warehouse (source contract + ``synth_truth``) to the DuckDB file ``path``.

    Deterministic per (scale, seed, signal, as_of, overrides). An existing file is replaced only
    once the new one is complete. Returns {"rows": {table: n}, "seconds", "as_of", ...}.
    """
    t0 = time.perf_counter()
    params = resolve_params(scale, overrides)
    try:
        signal = float(signal)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"signal={signal!r} must be a finite number >= 0") from exc
    if not math.isfinite(signal) or signal < 0:
        raise ValueError(f"signal={signal!r} must be a finite number >= 0")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    as_of_d = _as_date(as_of)
    cfg = load_config()
    days = int(cfg["time"]["test_window_days"])
    start = dt.date.fromisoformat(str(cfg["time"]["interaction_start"]))
    cutoff = as_of_d - dt.timedelta(days=days)
    if (cutoff - start).days < 60:
        raise ValueError(
            f"as_of={as_of_d} leaves under 60 days between interaction_start "
            f"{start} and the cutoff {cutoff}; pick a later as_of"
        )
    clock = bh.Clock.from_dates(start, cutoff, as_of_d)
    say = _Progress(progress)
    seq = np.random.SeedSequence([int(seed), 1950])
    rngs = {
        name: np.random.default_rng(s)
        for name, s in zip(_STREAMS, seq.spawn(len(_STREAMS)), strict=True)
    }

    world = build_world(params, cfg["rules"], float(signal), rngs)
    say(
        "world",
        f"{world.veh.n:,} vehicles / {world.cat.n:,} products / {len(world.fit_v):,} fitment pairs",
    )
    users = bh.build_users(params, world, rngs["users"])
    say("users", f"{users.n:,}")
    tables: dict[str, pd.DataFrame] = {}
    attrs = _attributes(params, world, users, clock, rngs["attributes"])
    tables["company_1950.ingestion_unified_attributes_schema_incremental"] = attrs
    say("attributes", f"{len(attrs):,}")
    activity = _simulate(params, world, users, clock, rngs)
    tables.update(activity["tables"])
    say(
        "events",
        f"{len(tables['company_1950.ingestion_unified_schema_incremental']):,} site / "
        f"{len(tables['company_1950.treatment_interaction']):,} treatment / "
        f"{len(tables['data_company_1950.import_orders']):,} order lines",
    )
    tables.update(_catalogue_tables(world, params, rngs["items"], rngs["fitment"]))
    truth = _truth_tables(
        world,
        users,
        params,
        scale,
        int(seed),
        float(signal),
        as_of_d,
        cutoff,
        start,
        activity["n_test_clicks"],
    )

    rows: dict[str, int] = {}
    with atomic_duckdb(path) as con:
        for name, cols in CONTRACT_TABLES.items():
            rows[name] = write_table(con, name, cols, tables[name])
        for name, cols in TRUTH_TABLES.items():
            rows[name] = write_table(con, name, cols, truth[name])
    seconds = time.perf_counter() - t0
    say("written", f"{sum(rows.values()):,} rows to {Path(path).name}")
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "as_of": as_of_d,
        "cutoff": cutoff,
        "scale": scale,
        "seed": int(seed),
        "signal": float(signal),
        "path": str(path),
        "n_test_clicks": activity["n_test_clicks"],
        "tiers": {t: int((users.tier == i).sum()) for i, t in enumerate(bh.TIERS)},
    }


def _attributes(
    params: dict, world: World, users: bh.Users, clock: bh.Clock, rng: np.random.Generator
) -> pd.DataFrame:
    df = bh.attributes_table(params, world, users, clock, rng)
    df["updated_at"] = _ts(df["updated_at"].to_numpy())
    return df


def _simulate(
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
    # warm: product views and/or email clicks before the cutoff
    w_views = np.where(r.random(len(warm)) < 0.25, 0, 1 + r.poisson(2.0, len(warm)))
    w_clicks = np.where(w_views == 0, 1 + r.poisson(0.5, len(warm)), r.poisson(0.6, len(warm)))
    # hot: carts and/or orders (plus views and clicks)
    h_views = r.poisson(4.0, len(hot))
    h_carts = np.where(r.random(len(hot)) < 0.6, 1 + r.poisson(1.0, len(hot)), 0)
    h_orders = np.where(
        (r.random(len(hot)) < 0.6) | (h_carts == 0), 1 + r.poisson(0.5, len(hot)), 0
    )
    h_clicks = r.poisson(1.0, len(hot))
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
        email = bh.messy_order_emails(users.email[owners], ro)
        f = bh.orders_frame(params, world, users.vehicle[owners], ts, email, ro, tag=owners)
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
    email = bh.messy_order_emails(out_email[buyer], ro)
    email[ro.random(len(email)) < 0.005] = None
    frames.append(bh.orders_frame(params, world, out_vehicle, ts, email, ro, first=first))

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
    orders["order_date"] = _ts(orders["order_date"].to_numpy()).to_numpy()

    site = log.frame(log.site)
    site = site.iloc[np.argsort(site["event_timestamp"].to_numpy(), kind="stable")]
    site["event_timestamp"] = _ts(site["event_timestamp"].to_numpy()).to_numpy()
    treat = log.frame(log.treat)
    treat = treat.iloc[np.argsort(treat["interaction_timestamp"].to_numpy(), kind="stable")]
    treat["interaction_timestamp"] = _ts(treat["interaction_timestamp"].to_numpy()).to_numpy()
    return {
        "tables": {
            "company_1950.ingestion_unified_schema_incremental": site.reset_index(drop=True),
            "company_1950.treatment_interaction": treat.reset_index(drop=True),
            "data_company_1950.import_orders": orders.reset_index(drop=True),
        },
        "n_test_clicks": n_test_clicks,
    }


def _catalogue_tables(
    world: World, params: dict, r_items: np.random.Generator, r_fit: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """import_items (with a few duplicate skus), tags, and fitment (lightly messy)."""
    cat, veh = world.cat, world.veh
    items = pd.DataFrame(
        {
            "sku": cat.sku,
            "PartType": cat.part_type_names[cat.part_type],
            "price": cat.price,
            "image_url": cat.image_url,
            "title": cat.title,
        }
    )
    n_dup = max(2, round(float(params["duplicate_item_share"]) * cat.n))
    dup = np.sort(r_items.choice(cat.n, n_dup, replace=False))
    extra = items.iloc[dup].copy()
    changed = r_items.random(n_dup) < 0.5  # half exact copies, half re-imported at a new price
    extra.loc[changed, "price"] = np.round(extra.loc[changed, "price"] * 1.07, 2)
    items = (
        pd.concat([items, extra])
        .iloc[np.argsort(np.concatenate([np.arange(cat.n), dup]), kind="stable")]
        .reset_index(drop=True)
    )

    n = cat.n
    tag_parts = []
    for share, vocab in (
        (0.03, names.REFURBISHED_SPELLINGS),
        (0.05, ["Clearance"]),
        (0.08, ["New"]),
        (0.05, names.UNKNOWN_TAGS),
    ):
        idx = np.flatnonzero(r_items.random(n) < share)
        tag_parts.append(
            pd.DataFrame(
                {
                    "sku": cat.sku[idx],
                    "tag": np.asarray(vocab, dtype=object)[
                        r_items.integers(0, len(vocab), len(idx))
                    ],
                }
            )
        )
    tags = pd.concat(tag_parts, ignore_index=True)
    tags = pd.concat([tags, tags.sample(frac=0.01, random_state=r_items)], ignore_index=True)
    tags = tags.iloc[np.argsort(tags["sku"].to_numpy(), kind="stable")].reset_index(drop=True)

    order = np.lexsort((world.fit_v, world.fit_p))
    fv, fp = world.fit_v[order], world.fit_p[order]
    make = pd.Series(veh.make[fv], dtype=object)
    model = pd.Series(veh.model[fv], dtype=object)
    u = r_fit.random(len(fv))
    make[u < 0.02] = make[u < 0.02].str.upper()
    model[(u >= 0.02) & (u < 0.03)] = model[(u >= 0.02) & (u < 0.03)] + " "
    fit = pd.DataFrame(
        {
            "sku": cat.sku[fp],
            "year": veh.year[fv].astype(str).astype(object),
            "make": make.to_numpy(),
            "model": model.to_numpy(),
        }
    )
    dups = fit.iloc[np.flatnonzero(r_fit.random(len(fit)) < 0.002)]
    fit = pd.concat([fit, dups], ignore_index=True)
    return {
        "data_company_1950.import_items": items,
        "data_company_1950.import_items_tags": tags,
        "data_company_1950.vehicle_product_fitment_data": fit,
    }


def _truth_tables(
    world: World,
    users: bh.Users,
    params: dict,
    scale: str,
    seed: int,
    signal: float,
    as_of: dt.date,
    cutoff: dt.date,
    start: dt.date,
    n_test_clicks: int,
) -> dict[str, pd.DataFrame]:
    veh, cat = world.veh, world.cat
    k = world.affinity.shape[1]
    vid = np.where(users.status == 0, veh.vehicle_id[np.maximum(users.vehicle, 0)], None)
    return {
        "synth_truth.world": pd.DataFrame(
            [
                {
                    "as_of": as_of,
                    "cutoff": cutoff,
                    "interaction_start": start,
                    "seed": seed,
                    "signal": signal,
                    "scale": scale,
                    "n_users": users.n,
                    "n_products": cat.n,
                    "n_vehicles": veh.n,
                    "n_groups": veh.n_groups,
                    "n_clusters": k,
                    "n_warm": int((users.tier == 1).sum()),
                    "n_hot": int((users.tier == 2).sum()),
                    "n_test_clicks": n_test_clicks,
                    "generator_version": GENERATOR_VERSION,
                    "params": json.dumps(params, sort_keys=True),
                }
            ]
        ),
        "synth_truth.vehicle_preference": pd.DataFrame(
            {
                "vehicle_id": veh.vehicle_id[world.fit_v],
                "sku": cat.sku[world.fit_p],
                "prob": world.fit_prob,
            }
        ),
        "synth_truth.vehicles": pd.DataFrame(
            {
                "vehicle_id": veh.vehicle_id,
                "group_id": veh.group,
                "engine_family": np.asarray(veh.family_names, dtype=object)[veh.family],
                "era": veh.era,
                "user_weight": veh.weight,
            }
        ),
        "synth_truth.products": pd.DataFrame(
            {
                "sku": cat.sku,
                "cluster": cat.cluster,
                "attractiveness": cat.attract,
                "scope": np.asarray(SCOPES, dtype=object)[cat.scope],
                "demand": world.demand,
            }
        ),
        "synth_truth.affinity": pd.DataFrame(
            {
                "group_id": np.repeat(np.arange(veh.n_groups), k),
                "cluster": np.tile(np.arange(k), veh.n_groups),
                "affinity": world.affinity.ravel(),
            }
        ),
        "synth_truth.users": pd.DataFrame(
            {
                "user_id": users.user_id,
                "email_lower": np.where(users.null_email, None, users.email),
                "vehicle_id": vid,
                "tier": bh.TIERS[users.tier],
            }
        ),
    }
