"""DataFrames (``warehouse.schemas``) -> PyG ``HeteroData`` (spec section 2).

Node types: ``user`` (only users with >= 1 interaction edge: cold users have no edge but the
one to their vehicle, so they add nothing distinct to message passing; they are served through
their vehicle and tier), ``product`` and ``vehicle``. Each of the four edge tables is stored in
both directions (8 message-passing directions). Edge weights live in ``edge_weight`` ([E]) and
``edge_attr`` ([E, 1], log1p of the weight).

Features:
- user: ``tier`` (0 cold, 1 warm, 2 hot) and ``x`` = standardised log1p(n_views, n_carts, n_orders)
- product: ``part_type`` (index; the model embeds it) and ``x`` = [price (log, standardised, 0 when
  missing), price-missing flag, log_popularity (standardised), fitment breadth (log, standardised)]
- vehicle: ``x`` = [log1p(user_count), log1p(product_count)] standardised. ``user_count`` counts
  every user on the vehicle, so it carries the cold population that is not in the graph.
Extra per-node tensors: ``user.vehicle`` (vehicle index or -1), ``product.order_count`` (the
prior's count in training) and ``product.serve_count`` (the prior's count when scoring).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from holley_gnn_assets.graph.recent_demand import time_aware_prior
from holley_gnn_assets.graph.types import (
    CO_PURCHASED,
    EDGE_TYPES,
    FITS,
    INTERACTS,
    OWNS,
    REV_FITS,
    REV_INTERACTS,
    REV_OWNS,
    TIER_INDEX,
    TIERS,
)
from holley_gnn_assets.warehouse import schemas

log = logging.getLogger(__name__)

TABLES = {name: schemas.TABLE_SCHEMAS[name] for name in schemas.GRAPH_TABLES}


@dataclass
class GraphBundle:
    """The graph plus what is needed to map rows back to ids and to match checkpoints."""

    data: HeteroData
    user_ids: list[str]
    product_ids: list[str]
    vehicle_ids: list[str]
    part_types: list[str]
    feature_stats: dict[str, dict[str, float]]
    stats: dict[str, Any]
    fingerprint: str
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def num_interactions(self) -> int:
        """Number of user->product edges (the supervision pool)."""
        return int(self.data[INTERACTS].edge_index.shape[1])


def _require(tables: dict[str, pd.DataFrame], name: str) -> pd.DataFrame:
    if name not in tables:
        raise ValueError(f"build_graph: table {name!r} is missing (got {sorted(tables)})")
    df = tables[name]
    missing = [c for c in TABLES[name] if c not in df.columns]
    if missing:
        raise ValueError(f"build_graph: table {name!r} lacks column(s) {missing}")
    return df


def _index(ids: pd.Series, universe: pd.Index, what: str, table: str, strict: bool) -> np.ndarray:
    idx = universe.get_indexer(ids.astype(object))
    bad = idx < 0
    if bad.any() and strict:
        example = ids[bad].iloc[0] if what != "email_lower" else "<redacted>"
        raise ValueError(
            f"build_graph: {int(bad.sum())} row(s) of {table!r} reference a {what} that is not a "
            f"node (e.g. {example!r})"
        )
    return idx


def _standardise(values: np.ndarray, name: str, stats: dict) -> np.ndarray:
    values = values.astype(np.float64)
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if len(finite) else 0.0
    std = float(finite.std()) if len(finite) else 1.0
    std = std if std > 1e-9 else 1.0
    stats[name] = {"mean": mean, "std": std}
    out = (values - mean) / std
    return np.where(np.isfinite(out), out, 0.0)


def _codes(values: pd.Series) -> torch.Tensor:
    """Index of each value among the sorted distinct values (0..k-1)."""
    return torch.from_numpy(pd.Index(sorted(values.unique())).get_indexer(values).astype(np.int64))


def _vehicle_attributes(data: HeteroData, vehicles: pd.DataFrame, stats: dict) -> None:
    """The vehicle's year/make/model as model inputs (``model.vehicle_attributes``): codes of
    make, make|model and 5-year bucket, and the standardised year (0 where unparsable)."""
    year = pd.to_numeric(vehicles["year"], errors="coerce").to_numpy(np.float64)
    make = vehicles["make"].fillna("<none>").astype(str)
    data["vehicle"].year = torch.from_numpy(
        _standardise(year, "year", stats).astype(np.float32)).unsqueeze(1)
    data["vehicle"].make = _codes(make)
    data["vehicle"].make_model = _codes(make + "|" + vehicles["model"].fillna("").astype(str))
    data["vehicle"].year_bucket = _codes(pd.Series(np.where(np.isfinite(year), year // 5, -1)))


def _edge(data: HeteroData, et: tuple, src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> None:
    data[et].edge_index = torch.from_numpy(np.stack([src, dst]).astype(np.int64))
    weight = torch.from_numpy(w.astype(np.float32))
    data[et].edge_weight = weight
    data[et].edge_attr = torch.log1p(weight.clamp_min(0)).unsqueeze(1)


def build_graph(tables: dict[str, pd.DataFrame], cfg: dict) -> GraphBundle:
    """Build the heterogeneous graph from the export tables.

    Only users with >= 1 user->product edge become user nodes; edges whose endpoints are not
    nodes (a product or vehicle absent from the node tables) raise a ValueError naming the table.
    """
    t0 = time.perf_counter()
    users = _require(tables, "user_nodes")
    products = _require(tables, "product_nodes")
    vehicles = _require(tables, "vehicle_nodes")
    up = _require(tables, "user_product_edges")
    uv = _require(tables, "user_vehicle_edges")
    pv = _require(tables, "product_vehicle_edges")
    pp = _require(tables, "product_product_edges")
    for name, df, key in (
        ("user_nodes", users, "email_lower"),
        ("product_nodes", products, "sku"),
        ("vehicle_nodes", vehicles, "vehicle_id"),
    ):
        if df[key].isna().any():
            raise ValueError(f"build_graph: {name}.{key} has null values")
        if df[key].duplicated().any():
            raise ValueError(f"build_graph: {name}.{key} has duplicate values")

    product_index = pd.Index(products["sku"].astype(object))
    vehicle_index = pd.Index(vehicles["vehicle_id"].astype(object))
    all_user_index = pd.Index(users["email_lower"].astype(object))

    # user->product edges: endpoints must be nodes
    up_u_all = _index(up["email_lower"], all_user_index, "email_lower", "user_product_edges", True)
    up_p = _index(up["sku"], product_index, "sku", "user_product_edges", True)
    graph_users = np.unique(up_u_all)  # sorted row numbers into users
    users_g = users.iloc[graph_users].reset_index(drop=True)
    user_index = pd.Index(users_g["email_lower"].astype(object))
    up_u = user_index.get_indexer(up["email_lower"].astype(object))

    data = HeteroData()
    feature_stats: dict[str, dict[str, float]] = {}

    # user features
    tier_raw = users_g["tier"].astype(object).str.lower()
    unknown = ~tier_raw.isin(TIERS)
    if unknown.any():
        raise ValueError(
            f"build_graph: user_nodes.tier has values outside {TIERS}: "
            f"{sorted(set(tier_raw[unknown].astype(str)))[:5]}"
        )
    data["user"].tier = torch.tensor(tier_raw.map(TIER_INDEX).to_numpy(np.int64))
    ux = np.stack(
        [
            _standardise(np.log1p(users_g[c].fillna(0).to_numpy(np.float64)), c, feature_stats)
            for c in ("n_views", "n_carts", "n_orders")
        ],
        axis=1,
    )
    data["user"].x = torch.from_numpy(ux.astype(np.float32))
    data["user"].num_nodes = len(users_g)
    veh_of_user = vehicle_index.get_indexer(users_g["vehicle_id"].astype(object))
    data["user"].vehicle = torch.from_numpy(veh_of_user.astype(np.int64))

    # product features
    part_types = sorted(products["part_type"].fillna("<none>").astype(str).unique())
    pt_index = pd.Index(part_types)
    data["product"].part_type = torch.from_numpy(
        pt_index.get_indexer(products["part_type"].fillna("<none>").astype(str)).astype(np.int64)
    )
    price = products["price"].to_numpy(np.float64, na_value=np.nan)
    missing = ~np.isfinite(price) | (price <= 0)
    log_price = np.where(missing, np.nan, np.log(np.where(missing, 1.0, price)))
    px = np.stack(
        [
            _standardise(log_price, "log_price", feature_stats),
            missing.astype(np.float64),
            _standardise(
                products["log_popularity"].to_numpy(np.float64, na_value=0.0),
                "log_popularity",
                feature_stats,
            ),
            _standardise(
                np.log1p(products["fitment_breadth"].to_numpy(np.float64, na_value=0.0)),
                "log_fitment_breadth",
                feature_stats,
            ),
        ],
        axis=1,
    )
    data["product"].x = torch.from_numpy(px.astype(np.float32))
    data["product"].num_nodes = len(products)
    # the prior's count: all-time orders, or decayed (half-life chosen on validation), in
    # training (recent.train_on_decayed_prior) or only when serving (serve_count)
    prior, prior_stats = time_aware_prior(tables, cfg, pd.Index(products["sku"]))
    all_time = products["order_count"].to_numpy(np.float64, na_value=0.0)
    serve = all_time if prior is None else prior
    train = serve if prior is not None and cfg["recent"]["train_on_decayed_prior"] else all_time
    data["product"].order_count = torch.from_numpy(train.astype(np.float32))
    data["product"].serve_count = torch.from_numpy(serve.astype(np.float32))

    # vehicle features
    vx = np.stack(
        [
            _standardise(
                np.log1p(vehicles[c].to_numpy(np.float64, na_value=0.0)), f"log_{c}", feature_stats
            )
            for c in ("user_count", "product_count")
        ],
        axis=1,
    )
    data["vehicle"].x = torch.from_numpy(vx.astype(np.float32))
    _vehicle_attributes(data, vehicles, feature_stats)
    data["vehicle"].num_nodes = len(vehicles)

    # edges
    up_w = up["weight"].to_numpy(np.float64, na_value=0.0)
    _edge(data, INTERACTS, up_u, up_p, up_w)
    _edge(data, REV_INTERACTS, up_p, up_u, up_w)
    data[INTERACTS].max_event_weight = torch.from_numpy(
        up["max_event_weight"].to_numpy(np.float64, na_value=1.0).astype(np.float32)
    )

    uv_u = user_index.get_indexer(uv["email_lower"].astype(object))
    uv_v = _index(uv["vehicle_id"], vehicle_index, "vehicle_id", "user_vehicle_edges", True)
    keep = uv_u >= 0  # cold users are not nodes
    uv_w = uv["weight"].to_numpy(np.float64, na_value=1.0)
    _edge(data, OWNS, uv_u[keep], uv_v[keep], uv_w[keep])
    _edge(data, REV_OWNS, uv_v[keep], uv_u[keep], uv_w[keep])

    pv_p = _index(pv["sku"], product_index, "sku", "product_vehicle_edges", True)
    pv_v = _index(pv["vehicle_id"], vehicle_index, "vehicle_id", "product_vehicle_edges", True)
    pv_w = pv["weight"].to_numpy(np.float64, na_value=1.0)
    _edge(data, FITS, pv_p, pv_v, pv_w)
    _edge(data, REV_FITS, pv_v, pv_p, pv_w)

    pa = _index(pp["sku_a"], product_index, "sku", "product_product_edges", True)
    pb = _index(pp["sku_b"], product_index, "sku", "product_product_edges", True)
    pp_w = pp["weight"].to_numpy(np.float64, na_value=0.0)
    _edge(
        data,
        CO_PURCHASED,
        np.concatenate([pa, pb]),
        np.concatenate([pb, pa]),
        np.concatenate([pp_w, pp_w]),
    )

    n_u, n_p, n_v = len(users_g), len(products), len(vehicles)
    edge_counts = {"__".join(et): int(data[et].edge_index.shape[1]) for et in EDGE_TYPES}
    tier_all = users["tier"].astype(object).str.lower().value_counts().to_dict()
    tier_graph = tier_raw.value_counts().to_dict()
    stats: dict[str, Any] = {
        "nodes": {"user": n_u, "product": n_p, "vehicle": n_v},
        "edges": edge_counts,
        "users_total": len(users),
        "users_with_vehicle": int(users["vehicle_id"].notna().sum()),
        "tier_counts_all_users": {k: int(v) for k, v in tier_all.items()},
        "tier_counts_graph_users": {k: int(v) for k, v in tier_graph.items()},
        "graph_users_without_vehicle": int((veh_of_user < 0).sum()),
        "density_user_product": float(len(up)) / max(1, n_u * n_p),
        "density_product_vehicle": float(len(pv)) / max(1, n_p * n_v),
        "mean_products_per_vehicle": float(len(pv)) / max(1, n_v),
        "part_types": len(part_types),
        "build_seconds": 0.0,
        **prior_stats,
    }
    fingerprint = _fingerprint(
        list(user_index), list(product_index), list(vehicle_index), edge_counts, data
    )
    stats["build_seconds"] = round(time.perf_counter() - t0, 3)
    log.info(
        "build_graph: %d users (of %d), %d products, %d vehicles, %d directed edges in %.1fs",
        n_u,
        len(users),
        n_p,
        n_v,
        sum(edge_counts.values()),
        stats["build_seconds"],
    )
    return GraphBundle(
        data=data,
        user_ids=list(user_index),
        product_ids=list(product_index),
        vehicle_ids=list(vehicle_index),
        part_types=part_types,
        feature_stats=feature_stats,
        stats=stats,
        fingerprint=fingerprint,
    )


def _fingerprint(
    users: list[str], products: list[str], vehicles: list[str], counts: dict, data: HeteroData
) -> str:
    h = hashlib.sha256()
    for ids in (users, products, vehicles):
        h.update(str(len(ids)).encode())
        h.update("\x1f".join(ids).encode())
    h.update(repr(sorted(counts.items())).encode())
    for et in (INTERACTS, FITS, CO_PURCHASED):  # edge content, not only counts
        h.update(data[et].edge_index.numpy().tobytes())
        h.update(data[et].edge_weight.numpy().tobytes())
    return h.hexdigest()[:16]


def save_graph(bundle: GraphBundle, path: str | Path) -> None:
    """torch.save a plain dict (tensors, lists, numbers): loadable with weights_only=True."""
    store: dict[str, Any] = {}
    for nt in bundle.data.node_types:
        store[f"node/{nt}"] = {k: v for k, v in bundle.data[nt].items() if torch.is_tensor(v)}
        store[f"num_nodes/{nt}"] = int(bundle.data[nt].num_nodes)
    for et in bundle.data.edge_types:
        store["edge/" + "__".join(et)] = {
            k: v for k, v in bundle.data[et].items() if torch.is_tensor(v)
        }
    payload = {
        "format": 1,
        "graph": store,
        "user_ids": bundle.user_ids,
        "product_ids": bundle.product_ids,
        "vehicle_ids": bundle.vehicle_ids,
        "part_types": bundle.part_types,
        "feature_stats": bundle.feature_stats,
        "stats": bundle.stats,
        "fingerprint": bundle.fingerprint,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_graph(path: str | Path) -> GraphBundle:
    """Inverse of ``save_graph`` (weights_only loading)."""
    payload = torch.load(Path(path), weights_only=True)
    if payload.get("format") != 1:
        raise ValueError(f"load_graph: {path} is not a graph saved by save_graph")
    data = HeteroData()
    for key, value in payload["graph"].items():
        kind, name = key.split("/", 1)
        if kind == "node":
            for attr, tensor in value.items():
                data[name][attr] = tensor
        elif kind == "num_nodes":
            data[name].num_nodes = value
        else:
            et = tuple(name.split("__"))
            for attr, tensor in value.items():
                data[et][attr] = tensor
    return GraphBundle(
        data=data,
        user_ids=list(payload["user_ids"]),
        product_ids=list(payload["product_ids"]),
        vehicle_ids=list(payload["vehicle_ids"]),
        part_types=list(payload["part_types"]),
        feature_stats=payload["feature_stats"],
        stats=payload["stats"],
        fingerprint=payload["fingerprint"],
    )


def serving_count(data: HeteroData) -> torch.Tensor:
    """The popularity prior's count when scoring: ``product.serve_count`` (a graph saved before
    it existed: ``product.order_count``, the training count)."""
    store = data["product"]
    return store.serve_count if "serve_count" in store else store.order_count
