"""Orders: basket sizes, order lines drawn from the world's preferences (and its time model),
and the import_orders rows with their messy email spellings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.synth.behaviour import messy_case, split_counts
from holley_gnn_assets.synth.world import World


def basket_sizes(params: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
    """Lines of ``n`` orders: the bundle model (bundle_share of orders with 2-4 lines, else 1),
    or with basket_median > 0 a lognormal (median basket_median, log-sd basket_tail) rounded
    and clipped to [1, basket_max]."""
    median = float(params["basket_median"])
    if median > 0:
        raw = rng.lognormal(np.log(median), float(params["basket_tail"]), n)
        return np.clip(np.rint(raw), 1, int(params["basket_max"])).astype(np.int64)
    bundle = rng.random(n) < float(params["bundle_share"])
    return np.where(bundle, rng.choice([2, 3, 4], n, p=[0.6, 0.3, 0.1]), 1)


def order_lines(
    params: dict[str, Any],
    world: World,
    vehicle: np.ndarray,
    rng: np.random.Generator,
    first: np.ndarray | None = None,
    ts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lines of orders placed by buyers on ``vehicle`` (one per order): (order_pos, product).
    The first item is drawn from the vehicle's preference unless given; the others (a share of
    2-4 line bundles, or every order's ``basket_sizes``) from the first item's affinity
    cluster (bundle_same_cluster), else from the vehicle's preference (big baskets: from the
    whole catalogue's demand, as a workshop's order spans parts for several vehicles). With a
    time model, drawn items are re-drawn at the order times ``ts`` (given firsts are not)."""
    n = len(vehicle)
    k = world.cluster_sampler.ptr.shape[0] - 1
    n_clusters = k // world.veh.n
    size = basket_sizes(params, n, rng)
    if first is None:
        first = world.sampler.draw(vehicle, rng)
        first = first if ts is None else world.timed(first, ts, vehicle, world.sampler)
    pos = split_counts(size)
    idx_in = np.arange(len(pos)) - np.repeat(np.cumsum(size) - size, size)
    prod = np.repeat(first, size)
    extra = np.flatnonzero(idx_in > 0)
    v_extra = vehicle[pos[extra]]
    same = rng.random(len(extra)) < float(params["bundle_same_cluster"])
    unit = v_extra * n_clusters + world.cat.cluster[prod[extra]]
    prod[extra[same]] = world.cluster_sampler.draw(unit[same], rng)
    other = extra[~same]
    big = float(params["basket_median"]) > 0
    if big:  # big baskets reach across the catalogue
        prod[other] = rng.choice(world.cat.n, len(other), p=world.demand)
    else:
        prod[other] = world.sampler.draw(v_extra[~same], rng)
    if ts is not None and world.time is not None:
        redraw = [(same, unit, world.cluster_sampler)]
        if not big:
            redraw.append((~same, v_extra, world.sampler))
        for sel, units, sampler in redraw:
            at = extra[sel]
            prod[at] = world.timed(prod[at], ts[pos[at]], units[sel], sampler)
    key = np.unique(pos.astype(np.int64) * world.cat.n + prod)  # one line per (order, sku)
    return key // world.cat.n, key % world.cat.n


def orders_frame(
    params: dict[str, Any],
    world: World,
    vehicle: np.ndarray,
    ts: np.ndarray,
    email: np.ndarray,
    rng: np.random.Generator,
    tag: np.ndarray | None = None,
    first: np.ndarray | None = None,
) -> pd.DataFrame:
    """import_orders rows (order_id filled later) for one order per entry of ``vehicle``."""
    pos, prod = order_lines(params, world, vehicle, rng, first, ts)
    commodity = world.cat.part_type_kind[world.cat.part_type[prod]] == 2
    qty = np.where(
        commodity,
        rng.integers(1, 11, len(prod)),
        rng.choice([1, 2, 3, 4], len(prod), p=[0.86, 0.1, 0.03, 0.01]),
    )
    price = world.cat.price[prod]
    fallback = np.round(rng.lognormal(np.log(60), 0.5, len(prod)), 2)
    unit = np.where(np.isnan(price) | (price <= 0), fallback, price)
    disc = rng.random(len(prod)) < 0.2
    unit = np.where(disc, np.round(unit * rng.uniform(0.8, 0.95, len(prod)), 2), unit)
    return pd.DataFrame(
        {
            "order_pos": pos,
            "email": email[pos],
            "sku": world.cat.sku[prod],
            "quantity": qty.astype(np.int64),
            "order_date": ts[pos],
            "unit_price": unit,
            "user_pos": pos if tag is None else tag[pos],
        }
    )


def messy_order_emails(canonical: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Order-table spelling of emails: mostly lower case, some capitalised / upper / spaced."""
    return messy_case(pd.Series(canonical, dtype=object), rng, 0.05, 0.15, 0.03).to_numpy()
