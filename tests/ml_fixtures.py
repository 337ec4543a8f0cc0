"""Random tables in the schemas of ``core.schemas`` with a planted per-vehicle-group preference.

Vehicles fall into ``n_groups`` groups; each group prefers a few part types. A warm/hot user's
interactions are drawn among the products that fit their vehicle with probability proportional
to ``popularity * exp(signal * preferred)``. ``order_count`` follows the base popularity only, so
a global popularity ranking does not know the group preference; the planted truth per vehicle is
the top of ``popularity * exp(signal * preferred)`` among its fitting products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

EVENT_WEIGHTS = np.array([1.0, 3.0, 5.0])  # view, cart, order


@dataclass
class Planted:
    """The planted truth: per vehicle, its fitting skus ranked by the planted preference."""

    truth: dict[str, list[str]]  # vehicle_id -> skus, best first
    group_of_vehicle: dict[str, int]
    preferred_part_types: dict[int, list[str]]


def make_tables(
    n_users: int = 800,
    n_products: int = 240,
    n_vehicles: int = 16,
    n_part_types: int = 12,
    n_groups: int = 4,
    fit_per_vehicle: int = 60,
    warm_share: float = 0.3,
    events_per_warm: tuple[int, int] = (3, 10),
    signal: float = 3.0,
    no_vehicle_share: float = 0.05,
    seed: int = 0,
) -> tuple[dict[str, pd.DataFrame], Planted]:
    """Build the seven graph input tables (plus nothing else) and the planted truth."""
    rng = np.random.default_rng(seed)
    skus = np.array([f"SKU{i:06d}" for i in range(n_products)], dtype=object)
    part_types = np.array([f"PT{i:02d}" for i in range(n_part_types)], dtype=object)
    pt_of = rng.integers(0, n_part_types, n_products)
    base_pop = rng.pareto(1.2, n_products) + 0.05
    vehicles = np.array(
        [f"{1960 + i % 50}|MAKE{i % 7}|MODEL{i}" for i in range(n_vehicles)], dtype=object
    )
    group_of = np.arange(n_vehicles) % n_groups
    pref = {
        g: list(rng.choice(n_part_types, size=max(1, n_part_types // 6), replace=False))
        for g in range(n_groups)
    }

    # fitment: each vehicle fits fit_per_vehicle random products
    fit_v = np.repeat(np.arange(n_vehicles), fit_per_vehicle)
    fit_p = np.concatenate(
        [rng.choice(n_products, size=fit_per_vehicle, replace=False) for _ in range(n_vehicles)]
    )
    breadth = np.bincount(fit_p, minlength=n_products)

    # users
    veh_of_user = rng.integers(0, n_vehicles, n_users)
    has_vehicle = rng.random(n_users) >= no_vehicle_share
    warm = rng.random(n_users) < warm_share
    emails = np.array([f"user{i}@example.com" for i in range(n_users)], dtype=object)

    # per-vehicle candidate distribution
    pref_mask = np.zeros((n_groups, n_products), dtype=bool)
    for g, pts in pref.items():
        pref_mask[g] = np.isin(pt_of, pts)
    fits_by_v = [fit_p[fit_v == v] for v in range(n_vehicles)]
    rows_u, rows_p, rows_w = [], [], []
    for u in np.flatnonzero(warm):
        v = veh_of_user[u]
        cand = fits_by_v[v] if has_vehicle[u] else rng.choice(n_products, 40, replace=False)
        w = base_pop[cand] * np.exp(signal * pref_mask[group_of[v], cand])
        k = int(rng.integers(events_per_warm[0], events_per_warm[1] + 1))
        picks = rng.choice(cand, size=k, replace=True, p=w / w.sum())
        ev = rng.choice(3, size=k, p=[0.75, 0.15, 0.10])
        rows_u.append(np.full(k, u))
        rows_p.append(picks)
        rows_w.append(ev)
    eu = np.concatenate(rows_u) if rows_u else np.zeros(0, int)
    ep = np.concatenate(rows_p) if rows_p else np.zeros(0, int)
    ee = np.concatenate(rows_w) if rows_w else np.zeros(0, int)
    ev_df = pd.DataFrame({"u": eu, "p": ep, "e": ee, "w": EVENT_WEIGHTS[ee]})
    up = (
        ev_df.groupby(["u", "p"], as_index=False)
        .agg(weight=("w", "sum"), n_events=("w", "size"), max_event_weight=("w", "max"))
        .sort_values(["u", "p"])
    )
    base_ts = pd.Timestamp("2026-01-01")
    user_product_edges = pd.DataFrame(
        {
            "email_lower": emails[up["u"].to_numpy()],
            "sku": skus[up["p"].to_numpy()],
            "weight": up["weight"].to_numpy(dtype="float64"),
            "n_events": up["n_events"].to_numpy(dtype="int64"),
            "max_event_weight": up["max_event_weight"].to_numpy(dtype="float64"),
            "last_ts": base_ts - pd.to_timedelta(rng.integers(0, 90, len(up)), unit="D"),
        }
    )
    counts = np.zeros((n_users, 3), dtype=np.int64)
    np.add.at(counts, (eu, ee), 1)
    tier = np.where(
        counts[:, 1:].sum(1) > 0, "hot", np.where(counts[:, 0] > 0, "warm", "cold")
    ).astype(object)

    vid_user = np.where(has_vehicle, vehicles[veh_of_user], None)
    parts = [v.split("|") if v else [None, None, None] for v in vid_user]
    user_nodes = pd.DataFrame(
        {
            "email_lower": emails,
            "vehicle_id": pd.array(vid_user, dtype="string"),
            "year": pd.array([p[0] for p in parts], dtype="string"),
            "make": pd.array([p[1] for p in parts], dtype="string"),
            "model": pd.array([p[2] for p in parts], dtype="string"),
            "tier": tier,
            "n_views": counts[:, 0],
            "n_carts": counts[:, 1],
            "n_orders": counts[:, 2],
        }
    )

    order_count = rng.poisson(base_pop * 20).astype(np.int64)
    price = np.round(rng.lognormal(4.5, 1.0, n_products), 2)
    price[rng.random(n_products) < 0.05] = np.nan
    product_nodes = pd.DataFrame(
        {
            "sku": skus,
            "base_sku": skus,
            "part_type": part_types[pt_of],
            "title": [f"Part {s}" for s in skus],
            "price": price,
            "image_url": [f"https://img.example.com/{s}.jpg" for s in skus],
            "is_refurbished": False,
            "is_service": False,
            "is_commodity": False,
            "eligible": ~np.isnan(price) & (np.nan_to_num(price) >= 50),
            "order_count": order_count,
            "log_popularity": np.log1p(order_count.astype(float)),
            "fitment_breadth": breadth.astype(np.int64),
        }
    )

    vparts = [v.split("|") for v in vehicles]
    users_per_v = np.bincount(veh_of_user[has_vehicle], minlength=n_vehicles)
    vehicle_nodes = pd.DataFrame(
        {
            "vehicle_id": vehicles,
            "year": [p[0] for p in vparts],
            "make": [p[1] for p in vparts],
            "model": [p[2] for p in vparts],
            "user_count": users_per_v.astype(np.int64),
            "product_count": np.bincount(fit_v, minlength=n_vehicles).astype(np.int64),
        }
    )
    user_vehicle_edges = pd.DataFrame(
        {
            "email_lower": emails[has_vehicle],
            "vehicle_id": vehicles[veh_of_user[has_vehicle]],
            "weight": 1.0,
        }
    )
    product_vehicle_edges = pd.DataFrame(
        {"sku": skus[fit_p], "vehicle_id": vehicles[fit_v], "weight": 1.0}
    )

    # co-purchase among products ordered/carted by the same hot user (>= 2 users)
    strong = up[up["max_event_weight"] >= 3.0][["u", "p"]]
    pairs = strong.merge(strong, on="u")
    pairs = pairs[pairs["p_x"] < pairs["p_y"]]
    pp = pairs.groupby(["p_x", "p_y"]).size().reset_index(name="n_users")
    pp = pp[pp["n_users"] >= 2]
    product_product_edges = pd.DataFrame(
        {
            "sku_a": skus[pp["p_x"].to_numpy()],
            "sku_b": skus[pp["p_y"].to_numpy()],
            "n_users": pp["n_users"].to_numpy(dtype=np.int64),
            "weight": np.log(pp["n_users"].to_numpy(dtype=float)),
        }
    )

    truth: dict[str, list[str]] = {}
    for v in range(n_vehicles):
        cand = fits_by_v[v]
        score = base_pop[cand] * np.exp(signal * pref_mask[group_of[v], cand])
        truth[vehicles[v]] = list(skus[cand[np.argsort(-score, kind="stable")]])
    planted = Planted(
        truth=truth,
        group_of_vehicle={vehicles[v]: int(group_of[v]) for v in range(n_vehicles)},
        preferred_part_types={g: list(part_types[p]) for g, p in pref.items()},
    )
    tables = {
        "user_nodes": user_nodes,
        "product_nodes": product_nodes,
        "vehicle_nodes": vehicle_nodes,
        "user_product_edges": user_product_edges,
        "user_vehicle_edges": user_vehicle_edges,
        "product_vehicle_edges": product_vehicle_edges,
        "product_product_edges": product_product_edges,
    }
    return tables, planted


def full_scale_tables(seed: int = 0) -> tuple[dict[str, pd.DataFrame], Planted]:
    """Spec-scale world: 475K users (2% warm/hot), 25K products, 2K vehicles, 600K fitment."""
    return make_tables(
        n_users=475_000,
        n_products=25_000,
        n_vehicles=2_000,
        n_part_types=60,
        n_groups=20,
        fit_per_vehicle=300,
        warm_share=0.02,
        events_per_warm=(2, 8),
        signal=1.0,
        seed=seed,
    )


def single_thread():
    """Context for tests: torch on one thread (the shared 2-core machine stalls with two)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def _ctx():
        old = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(old)

    return _ctx()


def untrained_world(n_users: int, seed: int):
    """(config, tables, graph bundle, untrained HeteroGAT seeded 0) of a ``make_tables`` world,
    built on one thread."""
    import torch

    from holley_gnn_assets.config.settings import load_config
    from holley_gnn_assets.graph.builder import build_graph
    from holley_gnn_assets.model.hetero_gat import GraphMeta, HeteroGAT

    with single_thread():
        cfg = load_config()
        tables, _ = make_tables(n_users=n_users, seed=seed)
        bundle = build_graph(tables, cfg)
        torch.manual_seed(0)
        model = HeteroGAT(GraphMeta.from_data(bundle.data), cfg["model"])
    return cfg, tables, bundle, model
