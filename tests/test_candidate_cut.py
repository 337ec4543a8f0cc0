"""An arm's vehicle rows cut to the rules' candidate depth before the load
(``recommend/candidate_cut.py``): the rows the rules would read, nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from holley_gnn_assets.graph.lookalike_lift import interactions_with_vehicles, lookalike_lift
from holley_gnn_assets.recommend.apply_rules import ScoreTableError
from holley_gnn_assets.recommend.candidate_cut import top_candidates
from holley_gnn_assets.recommend.gnn_scores import (
    add_lookalike_lift,
    gnn_arm_scores,
    gnn_score_frame,
    interacted_products,
    top_k_scores,
)
from tests.test_scoring import _world


def _brute(scores: pd.DataFrame, eligible: pd.Series, k: int) -> pd.DataFrame:
    """pandas' sort and head per vehicle (eligible vehicle rows), user rows kept, in order."""
    veh = scores[scores["email_lower"].isna() & scores["sku"].map(eligible).eq(True)]
    veh = veh.assign(g=veh["vehicle_id"].fillna("<global>"))
    top = veh.sort_values(["g", "score", "sku"], ascending=[True, False, True])
    keep = set(top.groupby("g").head(k).index) | set(scores.index[scores["email_lower"].notna()])
    return scores.loc[sorted(keep)].reset_index(drop=True)


def _scores(seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    skus = [f"S{i:03d}" for i in range(60)]
    rows = [(v, None, s) for v in ("V1", "V2", "V3") for s in rng.choice(skus, 40, replace=False)]
    rows += [(None, None, s) for s in skus]  # a global group (no vehicle)
    rows += [("V1", "u1", s) for s in skus[:30]]  # a user's own rows: never cut here
    df = pd.DataFrame(rows, columns=["vehicle_id", "email_lower", "sku"])
    df["score"] = rng.integers(0, 8, len(df)).astype(float)  # many ties: broken by sku
    eligible = pd.Series(rng.random(len(skus)) > 0.25, index=skus)
    return df, eligible


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 7, 100])
def test_each_vehicle_keeps_its_k_best_eligible_rows(seed: int, k: int) -> None:
    scores, eligible = _scores(seed)
    got = top_candidates(scores, eligible, k)
    pd.testing.assert_frame_equal(got, _brute(scores, eligible, k))
    veh = got[got["email_lower"].isna()]
    assert veh.groupby(veh["vehicle_id"].fillna("*")).size().max() <= k
    assert (got["email_lower"] == "u1").sum() == 30


def test_a_score_no_rule_could_rank_is_refused_not_cut_away() -> None:
    scores, eligible = _scores(0)
    scores.loc[len(scores) - 40, "score"] = np.nan  # a vehicle row far down its list
    with pytest.raises(ScoreTableError, match="arm 'lookalike_pop'"):
        top_candidates(scores, eligible, 1, "lookalike_pop")
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_candidates(scores.dropna(), eligible, 0)


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_the_gnn_arms_cut_is_the_cut_of_its_whole_table(weight: float) -> None:
    """weight 0 cuts while scoring, a look-alike lift after it: both are top_candidates of
    the uncut table (the same rows, the same scores)."""
    emb, fit = _world(0)
    rng = np.random.default_rng(3)
    users = emb.user_index[["email_lower", "vehicle_id"]]
    products = pd.DataFrame({"sku": emb.product_ids,
                             "order_count": rng.integers(0, 50, len(emb.product_ids)),
                             "eligible": rng.random(len(emb.product_ids)) > 0.2})
    upe = pd.DataFrame({"email_lower": rng.choice(users["email_lower"], 25),
                        "sku": rng.choice(emb.product_ids, 25)})
    tables = {"product_vehicle_edges": fit, "product_nodes": products, "user_nodes": users,
              "user_product_edges": upe}
    eligible = products.set_index("sku")["eligible"]
    whole = gnn_arm_scores(emb, tables, weight, user_candidates=6)
    # the lift added by joining lookalike_lift's frame: the same numbers, to the last bit
    pop = products.set_index("sku")["order_count"].astype(float)
    joined = add_lookalike_lift(
        gnn_score_frame(emb, fit, 6, eligible, user_allowance=interacted_products(upe)),
        lookalike_lift(fit, pop, interactions_with_vehicles(upe, users)), weight)
    pd.testing.assert_frame_equal(whole, joined)
    for k in (1, 5):
        got = gnn_arm_scores(emb, tables, weight, user_candidates=6, group_candidates=k)
        key = ["vehicle_id", "email_lower", "sku"]
        want = top_candidates(whole, eligible, k)
        pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                      want.sort_values(key).reset_index(drop=True))
        assert got["email_lower"].isna().sum() == 3 * k


def test_an_own_node_user_gets_one_more_row_per_product_it_interacted_with() -> None:
    """scale.user_candidates + the user's distinct interacted products (what the purchase
    exclusion can remove), each the user's best eligible fitting products, ties by sku."""
    emb, fit = _world(1)
    rng = np.random.default_rng(4)
    own = emb.user_index[emb.user_index["source"] == "user"]
    upe = pd.DataFrame({"email_lower": np.repeat(own["email_lower"].to_numpy()[:2], [3, 5]),
                        "sku": rng.choice(emb.product_ids, 8, replace=False)})
    upe = pd.concat([upe, upe.head(2)])  # a repeated interaction counts once
    allowance = interacted_products(upe)
    assert allowance.to_dict() == dict(zip(own["email_lower"].head(2), [3, 5], strict=True))
    eligible = pd.Series(True, index=emb.product_ids)
    full = gnn_score_frame(emb, fit)
    got = gnn_score_frame(emb, fit, 2, eligible, user_allowance=allowance)
    for email, rows in got[got["email_lower"].notna()].groupby("email_lower"):
        mine = full[full["email_lower"] == email].sort_values(["score", "sku"],
                                                              ascending=[False, True])
        k = min(2 + int(allowance.get(email, 0)), len(mine))
        assert set(rows["sku"]) == set(mine["sku"].head(k)), email


@pytest.mark.parametrize("seed", [0, 1])
def test_top_k_per_entity_is_the_brute_force_order(seed: int) -> None:
    """A k per entity keeps each entity's first k by score DESC, fit row ASC (ties included),
    in chunks of any size."""
    rng = np.random.default_rng(seed)
    n_e, n_f, n_p = 9, 40, 25
    ent_v = rng.integers(0, 3, n_e)
    fit_v = np.sort(rng.integers(0, 3, n_f))
    fit_p = rng.integers(0, n_p, n_f)
    pm = rng.integers(-2, 3, (n_p, 2)).astype(np.float32)  # integer scores: many ties
    ents = rng.integers(-2, 3, (n_e, 2)).astype(np.float32)
    k = rng.integers(1, 9, n_e)
    for chunk in (31, 4_000_000):
        e, f, sc = top_k_scores(ent_v, ents, fit_v, fit_p, pm, k, chunk_cells=chunk)
        for i in range(n_e):
            fits = np.flatnonzero(fit_v == ent_v[i])
            s = pm[fit_p[fits]] @ ents[i]
            want = fits[np.lexsort((fits, -s))][: k[i]]
            assert sorted(f[e == i]) == sorted(want), (i, chunk)
