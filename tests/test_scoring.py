"""GNN scoring against a brute-force per-user reference on a tiny Embeddings-like object."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from holley_gnn_assets.recommend import rules as R
from holley_gnn_assets.recommend.gnn_scores import score_gnn
from holley_gnn_assets.settings import load_config
from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS

SCORING = dt.date(2026, 3, 1)


@dataclass
class FakeEmbeddings:
    product_ids: np.ndarray
    product_matrix: np.ndarray
    group_keys: pd.DataFrame
    group_matrix: np.ndarray
    user_ids: np.ndarray
    user_matrix: np.ndarray
    user_index: pd.DataFrame


def _world(seed: int = 0) -> tuple[FakeEmbeddings, dict[str, pd.DataFrame]]:
    rng = np.random.default_rng(seed)
    n_p, dim = 30, 4
    skus = [f"S{i:02d}" for i in range(n_p - 4)] + ["77B", "77R", "88G", "88"]
    products = pd.DataFrame(
        {
            "sku": skus,
            "part_type": rng.choice(["A", "B", "C", "D"], n_p),
            "price": np.where(rng.random(n_p) < 0.1, 20.0, 80.0),
            "image_url": [f"https://i/{s}" for s in skus],
            "is_refurbished": rng.random(n_p) < 0.1,
            "order_count": rng.integers(0, 5, n_p),
        }
    )
    vehicles = ["V1", "V2", "V3"]
    fit = pd.DataFrame(
        [(s, v) for v in vehicles for s in rng.choice(skus, 15, replace=False)],
        columns=["sku", "vehicle_id"],
    )
    # integer-valued vectors: float32 dot products are exact, so ties are real ties
    pm = rng.integers(-2, 3, (n_p, dim)).astype(np.float32)
    keys = pd.DataFrame(
        [(v, t) for v in vehicles for t in ("cold", "warm")], columns=["vehicle_id", "tier"]
    )
    gm = rng.integers(-2, 3, (len(keys), dim)).astype(np.float32)
    n_u = 40
    users = pd.DataFrame(
        {
            "email_lower": [f"u{i}" for i in range(n_u)],
            "vehicle_id": rng.choice(vehicles, n_u),
            "tier": rng.choice(["cold", "warm"], n_u),
        }
    )
    users.loc[n_u - 2 :, "vehicle_id"] = None  # no vehicle
    users["year"], users["make"], users["model"] = "1969", "CHEVROLET", "CAMARO"
    own = users["email_lower"].isin(["u0", "u1", "u2"])
    with_v = users[users["vehicle_id"].notna()].reset_index(drop=True)
    idx = with_v[["email_lower", "vehicle_id", "tier"]].copy()
    idx["source"] = np.where(
        idx["email_lower"].isin(users.loc[own, "email_lower"]), "user", "group"
    )
    grow = keys.reset_index().rename(columns={"index": "grow"})
    idx = idx.merge(grow, on=["vehicle_id", "tier"])
    is_own = (idx["source"] == "user").to_numpy()
    uid = idx.loc[is_own, "email_lower"].to_numpy()
    idx["row"] = idx["grow"]
    idx.loc[is_own, "row"] = np.arange(len(uid))
    idx = idx.drop(columns="grow")
    um = rng.integers(-2, 3, (len(uid), dim)).astype(np.float32)
    purchases = pd.DataFrame(
        {
            "email_lower": rng.choice(users["email_lower"], 50),
            "sku": rng.choice(skus, 50),
            "last_order_ts": pd.Timestamp("2026-02-01")
            - pd.to_timedelta(rng.integers(0, 500, 50), unit="D"),
        }
    )
    emb = FakeEmbeddings(np.array(skus, dtype=object), pm, keys, gm, uid, um, idx)
    tables = {
        "product_nodes": products,
        "user_nodes": users,
        "product_vehicle_edges": fit,
        "user_purchases": purchases,
    }
    return emb, tables


def _brute_force(emb: FakeEmbeddings, tables: dict, cfg: dict) -> pd.DataFrame:
    rules = R.Rules.from_config(cfg)
    cat = R.ProductCatalog(tables["product_nodes"], rules)
    prow = {s: i for i, s in enumerate(emb.product_ids)}
    rows = []
    for _, u in emb.user_index.iterrows():
        vec = emb.user_matrix[u["row"]] if u["source"] == "user" else emb.group_matrix[u["row"]]
        for s in tables["product_vehicle_edges"].query("vehicle_id == @u.vehicle_id")["sku"]:
            rows.append((u["email_lower"], s, float(vec @ emb.product_matrix[prow[s]])))
    cand = pd.DataFrame(rows, columns=["email_lower", "sku", "score"])
    excl = R.purchases_in_window(tables["user_purchases"], SCORING, 365)
    out = R.rank_with_rules(cand, cat, rules.rank_depth, key="email_lower", exclude=excl)
    return out.sort_values(["email_lower", "rank"]).reset_index(drop=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_score_gnn_matches_brute_force(seed: int) -> None:
    cfg = load_config()
    emb, tables = _world(seed)
    recs, ranked = score_gnn(emb, tables, cfg, SCORING)
    ref = _brute_force(emb, tables, cfg)
    pd.testing.assert_frame_equal(ranked, ref[R.RANKED_COLUMNS], check_dtype=False)
    assert list(recs.columns) == OUTPUT_COLUMNS
    assert set(recs["email_lower"]) == set(ranked["email_lower"])
    assert "u39" not in set(recs["email_lower"])  # no vehicle
    # own-embedding users differ from their group's list somewhere
    assert ranked["email_lower"].isin(["u0", "u1", "u2"]).any()


def test_score_gnn_only_users_is_the_full_list_restricted() -> None:
    cfg = load_config()
    emb, tables = _world(1)
    _, full = score_gnn(emb, tables, cfg, SCORING)
    wanted = ["u0", "u5", "u7", "u39", "nobody"]  # own-embedding, group users, no vehicle, unknown
    _, only = score_gnn(emb, tables, cfg, SCORING, only_users=wanted)
    expected = full[full["email_lower"].isin(wanted)].reset_index(drop=True)
    assert only["email_lower"].nunique() >= 2
    pd.testing.assert_frame_equal(only, expected)


def test_score_gnn_depth_and_bad_input() -> None:
    cfg = load_config()
    emb, tables = _world(0)
    _, ranked = score_gnn(emb, tables, cfg, SCORING, depth=3)
    assert ranked["rank"].max() == 3
    with pytest.raises(ValueError, match="user_purchases"):
        score_gnn(emb, {k: v for k, v in tables.items() if k != "user_purchases"}, cfg, SCORING)
    emb.group_matrix = emb.group_matrix[:-1]
    with pytest.raises(ValueError, match="group_matrix"):
        score_gnn(emb, tables, cfg, SCORING)
