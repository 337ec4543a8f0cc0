"""The GNN arm's score table against brute-force dot products on a tiny Embeddings-like object."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from holley_gnn_assets.graph.lookalike_lift import interactions_with_vehicles, lookalike_lift
from holley_gnn_assets.recommend.gnn_scores import (
    add_lookalike_lift,
    gnn_arm_scores,
    gnn_score_frame,
    top_k_scores,
)
from holley_gnn_assets.warehouse.schemas import SCORES


@dataclass
class FakeEmbeddings:
    product_ids: list[str]
    product_matrix: np.ndarray
    group_keys: pd.DataFrame
    group_matrix: np.ndarray
    user_ids: list[str]
    user_matrix: np.ndarray
    user_index: pd.DataFrame


def _world(seed: int) -> tuple[FakeEmbeddings, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_p, dim = 30, 4
    skus = [f"S{i:02d}" for i in range(n_p)]
    vehicles = ["V1", "V2", "V3"]
    fit = pd.DataFrame(
        [(s, v) for v in vehicles for s in rng.choice(skus, 15, replace=False)],
        columns=["sku", "vehicle_id"],
    )
    fit = pd.concat([fit, pd.DataFrame({"sku": ["NOT_EMBEDDED"], "vehicle_id": ["V1"]})])
    pm = rng.normal(size=(n_p, dim)).astype(np.float32)
    # the cold-user representation depends on the vehicle only: equal rows across tiers
    veh_vec = rng.normal(size=(len(vehicles), dim)).astype(np.float32)
    keys = pd.DataFrame([(v, t) for v in vehicles for t in ("cold", "warm")],
                        columns=["vehicle_id", "tier"])
    gm = np.repeat(veh_vec, 2, axis=0)
    users = pd.DataFrame({"email_lower": [f"u{i}" for i in range(12)],
                          "vehicle_id": rng.choice(vehicles, 12)})
    own = users.iloc[:4]
    um = rng.normal(size=(len(own), dim)).astype(np.float32)
    index = pd.concat([
        users.iloc[4:].assign(tier="cold", source="group", row=0),
        own.assign(tier="hot", source="user", row=np.arange(len(own))),
    ])
    emb = FakeEmbeddings(skus, pm, keys, gm, own["email_lower"].tolist(), um, index)
    return emb, fit


@pytest.mark.parametrize("seed", [0, 1])
def test_score_frame_is_the_brute_force_dot_products(seed: int) -> None:
    emb, fit = _world(seed)
    scores = gnn_score_frame(emb, fit)
    assert list(scores.columns) == list(SCORES)
    prow = {s: i for i, s in enumerate(emb.product_ids)}
    embedded_fit = fit[fit["sku"].isin(prow)]
    # one row per (vehicle, fitting embedded product): the tiers share one representation
    veh = scores[scores["email_lower"].isna()]
    assert len(veh) == len(embedded_fit)
    vrow = {v: i * 2 for i, v in enumerate(["V1", "V2", "V3"])}
    want = [float(emb.group_matrix[vrow[v]] @ emb.product_matrix[prow[s]])
            for v, s in zip(veh["vehicle_id"], veh["sku"], strict=True)]
    np.testing.assert_allclose(veh["score"].to_numpy(), want, rtol=1e-5, atol=1e-6)
    # own-node users: every product that fits their vehicle, scored with their own vector
    own = scores[scores["email_lower"].notna()]
    idx = emb.user_index.set_index("email_lower")
    for email, rows in own.groupby("email_lower"):
        vehicle = idx.loc[email, "vehicle_id"]
        assert set(rows["sku"]) == set(embedded_fit.loc[embedded_fit["vehicle_id"] == vehicle,
                                                        "sku"])
        u = emb.user_matrix[int(idx.loc[email, "row"])]
        want = [float(u @ emb.product_matrix[prow[s]]) for s in rows["sku"]]
        np.testing.assert_allclose(rows["score"].to_numpy(), want, rtol=1e-5, atol=1e-6)
    assert set(own["email_lower"]) == set(emb.user_ids)
    assert "NOT_EMBEDDED" not in set(scores["sku"])


def test_bad_embeddings_are_named() -> None:
    emb, fit = _world(0)
    emb.group_matrix = emb.group_matrix[:-1]
    with pytest.raises(ValueError, match="group_keys but group_matrix"):
        gnn_score_frame(emb, fit)
    emb, fit = _world(0)
    with pytest.raises(ValueError, match="product_vehicle_edges lacks column 'vehicle_id'"):
        gnn_score_frame(emb, fit.drop(columns="vehicle_id"))


def test_the_gnn_arm_adds_the_weighted_lookalike_lift_to_vehicle_rows_only() -> None:
    """gnn_arm_scores = gnn_score_frame + weight x lookalike_lift on the vehicle rows; the
    own-node users' rows keep their dot products; weight 0 is the GNN alone."""
    emb, fit = _world(0)
    rng = np.random.default_rng(5)
    users = emb.user_index[["email_lower", "vehicle_id"]]
    upe = pd.DataFrame({"email_lower": rng.choice(users["email_lower"], 25),
                        "sku": rng.choice(emb.product_ids, 25)})
    products = pd.DataFrame({"sku": emb.product_ids,
                             "order_count": rng.integers(0, 50, len(emb.product_ids))})
    tables = {"product_vehicle_edges": fit, "product_nodes": products, "user_nodes": users,
              "user_product_edges": upe}
    base = gnn_score_frame(emb, fit)
    pd.testing.assert_frame_equal(gnn_arm_scores(emb, tables, 0.0), base)
    got = gnn_arm_scores(emb, tables, 0.5)
    pop = products.set_index("sku")["order_count"].astype(float)
    lift = lookalike_lift(fit, pop, interactions_with_vehicles(upe, users))
    assert lift["lift"].abs().max() > 0.1  # the owners' interactions move some pairs
    veh = base["email_lower"].isna()
    want = base[veh].merge(lift, on=["vehicle_id", "sku"], how="left")
    np.testing.assert_allclose(got.loc[veh, "score"].to_numpy(),
                               want["score"].to_numpy() + 0.5 * want["lift"].to_numpy())
    np.testing.assert_array_equal(got.loc[~veh, "score"].to_numpy(),
                                  base.loc[~veh, "score"].to_numpy())
    with pytest.raises(ValueError, match="lookalike lift weight must be >= 0"):
        add_lookalike_lift(base, lift, -1.0)


@pytest.mark.parametrize("k", [1, 5, 100])
def test_own_node_users_keep_their_k_best_eligible_products(k: int) -> None:
    """scale.user_candidates: each own-node user keeps its k best eligible fitting products
    (ties by sku), the brute force's order; vehicle rows are untouched."""
    emb, fit = _world(0)
    emb.product_matrix[3] = emb.product_matrix[4]  # a tie: S03 before S04
    eligible = pd.Series(True, index=emb.product_ids + ["NOT_EMBEDDED"])
    eligible[["S00", "S07", "S11"]] = False
    full = gnn_score_frame(emb, fit)
    got = gnn_score_frame(emb, fit, user_candidates=k, eligible=eligible)
    veh = full["email_lower"].isna()
    key = ["vehicle_id", "sku"]
    pd.testing.assert_frame_equal(
        got[got["email_lower"].isna()].sort_values(key).reset_index(drop=True),
        full[veh].sort_values(key).reset_index(drop=True))
    want = full[~veh & full["sku"].map(eligible).astype(bool)]
    want = want.sort_values(["email_lower", "score", "sku"], ascending=[True, False, True])
    want = want.groupby("email_lower").head(k)
    mine = got[got["email_lower"].notna()]
    assert mine.groupby("email_lower").size().max() == min(k, 14)
    assert set(map(tuple, mine[["email_lower", "sku"]].values)) == set(
        map(tuple, want[["email_lower", "sku"]].values))


def test_top_k_in_chunks_is_the_same_as_in_one_block() -> None:
    rng = np.random.default_rng(3)
    pm = rng.normal(size=(50, 8)).astype(np.float32)
    ents = rng.normal(size=(40, 8)).astype(np.float32)
    ent_v = rng.integers(0, 3, 40)
    fit_v = np.repeat(np.arange(3), 30)
    fit_p = np.concatenate([rng.choice(50, 30, replace=False) for _ in range(3)])
    one = top_k_scores(ent_v, ents, fit_v, fit_p, pm, 7)
    many = top_k_scores(ent_v, ents, fit_v, fit_p, pm, 7, chunk_cells=31)
    order = np.lexsort((one[1], one[0]))
    order_m = np.lexsort((many[1], many[0]))
    for a, b in zip(one[:2], many[:2], strict=True):
        np.testing.assert_array_equal(a[order], b[order_m])
    np.testing.assert_allclose(one[2][order], many[2][order_m], rtol=1e-5)
    assert len(one[0]) == 40 * 7
