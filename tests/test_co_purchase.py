"""Co-purchase edges (sql/gnn/export_edges.sql): the spec's rule, basket weighting and the
per-product neighbour cap (issue 27), on micro warehouses built by test_sql_exports' helpers."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from test_sql_exports import ITEMS, ORDERS, by, co_orders, item, order, run


def test_co_purchase_threshold(tmp_path: Path) -> None:
    out = run(tmp_path, {ORDERS: co_orders()})
    pp = out["product_product_edges"]
    # A-B: one distinct user (a@x.com, twice); A-C: b only (e's order is at the cutoff);
    # B-C: c and d -> kept
    assert pp[["sku_a", "sku_b", "n_users"]].values.tolist() == [["B", "C", 2]]
    assert math.isclose(pp["weight"].iloc[0], math.log(2))  # the spec's ln(n_users)
    # two users, each in a 2-line order: strength 2 x 1/(2 - 1), weight ln(1 + 2)
    basket = run(tmp_path / "basket", {ORDERS: co_orders()},
                 overrides={"co_purchase": {"weight_by_basket": True}})["product_product_edges"]
    assert math.isclose(basket["weight"].iloc[0], math.log(3))


def test_co_purchase_min_users_from_config(tmp_path: Path) -> None:
    out = run(tmp_path, {ORDERS: co_orders()}, overrides={"co_purchase": {"min_users": 1}})
    pp = by(out["product_product_edges"], "sku_a", "sku_b")
    assert {k: v["n_users"] for k, v in pp.items()} == {("A", "B"): 1, ("A", "C"): 1, ("B", "C"): 2}
    assert pp[("A", "B")]["weight"] == 0.0  # ln(1 user)


def _basket_orders() -> list[dict]:
    """u1 and u2 each order A-E in one 5-line order; u3 and u4 order A and B as a pair."""
    rows = [order(f"big{i}", f"u{i}@x.com", s, "2025-06-01") for i in (1, 2) for s in "ABCDE"]
    rows += [order(f"pair{i}", f"u{i}@x.com", s, "2025-06-02") for i in (3, 4) for s in "AB"]
    return rows


def _basket_run(tmp_path: Path, **co: object) -> dict:
    co = {"weight_by_basket": True, **co}
    items = {ITEMS: [item(s) for s in "ABCDE"], ORDERS: _basket_orders()}
    out = run(tmp_path, items, overrides={"co_purchase": co})
    return by(out["product_product_edges"], "sku_a", "sku_b")


def test_co_purchase_big_baskets_weigh_one_over_lines(tmp_path: Path) -> None:
    pp = _basket_run(tmp_path, max_neighbours=0, min_strength=0.0)
    assert len(pp) == 10  # every pair of A-E: two users each
    # a 5-line order gives each pair 1/4 per user; A-B also 1 per pair-order user
    assert math.isclose(pp[("C", "D")]["weight"], math.log(1 + 2 * 0.25))
    assert math.isclose(pp[("A", "B")]["weight"], math.log(1 + 2 * 0.25 + 2))
    assert pp[("A", "B")]["n_users"] == 4
    # strength 2 x 1/4 < min_strength 0.6: two users' 5-line orders are chance
    assert sorted(_basket_run(tmp_path / "s", max_neighbours=0, min_strength=0.6)) == [("A", "B")]


def test_co_purchase_keeps_at_most_k_neighbours_per_product(tmp_path: Path) -> None:
    both = {"neighbour_rule": "both"}
    # k=1: A and B rank each other first; C-E rank A first (ties by sku), but A keeps B only
    assert sorted(_basket_run(tmp_path / "k1", max_neighbours=1, **both)) == [("A", "B")]
    # k=2: A keeps B, C; B keeps A, C; C keeps A, B; D and E rank A, B first, who are full
    pp = _basket_run(tmp_path / "k2", max_neighbours=2, **both)
    assert sorted(pp) == [("A", "B"), ("A", "C"), ("B", "C")]
    degree = pd.Series([s for pair in pp for s in pair]).value_counts()
    assert degree.max() <= 2


def test_co_purchase_keeps_each_products_k_strongest(tmp_path: Path) -> None:
    """neighbour_rule either (the default): a pair stays when either product keeps it, so
    every product keeps its own k strongest and the pairs are at most k x products."""
    pp = _basket_run(tmp_path / "k1", max_neighbours=1)
    # A and B keep each other; C, D and E each keep A (their strongest, ties by sku)
    assert sorted(pp) == [("A", "B"), ("A", "C"), ("A", "D"), ("A", "E")]
    assert len(_basket_run(tmp_path / "k2", max_neighbours=2)) <= 2 * 5


def test_co_purchase_rank_by_chooses_which_pairs_a_product_keeps(tmp_path: Path) -> None:
    """X-Y: three users in 10-line orders (n_users 3, strength 3/9; their other lines differ per
    user); X-Z: two users ordering the pair alone (n_users 2, strength 2). k=1: rank_by users
    keeps X-Y, strength keeps X-Z."""
    fillers = {i: [f"F{i}{j}" for j in range(8)] for i in (1, 2, 3)}
    skus = ["X", "Y", "Z", *(f for fs in fillers.values() for f in fs)]
    rows = [order(f"big{i}", f"u{i}@x.com", s, "2025-06-01")
            for i in (1, 2, 3) for s in ["X", "Y", *fillers[i]]]
    rows += [order(f"pair{i}", f"v{i}@x.com", s, "2025-06-02") for i in (1, 2) for s in "XZ"]
    data = {ITEMS: [item(s) for s in skus], ORDERS: rows}

    def kept(name: str, rank_by: str) -> set:
        co = {"max_neighbours": 1, "min_strength": 0.0, "neighbour_rule": "both",
              "rank_by": rank_by}
        out = run(tmp_path / name, data, overrides={"co_purchase": co})
        return set(by(out["product_product_edges"], "sku_a", "sku_b"))

    assert kept("users", "users") == {("X", "Y")}
    assert kept("strength", "strength") == {("X", "Z")}
