"""Recent demand (graph/recent_demand.py): the window and half-life chosen on validation, the
``recent_pop`` arm through the business rules, the model's time-aware prior count and the
fallback to the prior."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.graph import recent_demand as rd


def _days() -> pd.DataFrame:
    """'old' sold 20 orders a day 100-400 days ago and stopped; 'new' sells 5 a day over the
    last 60 days; 'flat' 1 a day every day for 400 days."""
    rows = [("old", a, 20) for a in range(100, 400)]
    rows += [("new", a, 5) for a in range(0, 60)]
    rows += [("flat", a, 1) for a in range(0, 400)]
    return pd.DataFrame(rows, columns=["sku", "age_days", "n_orders"])


def test_window_is_chosen_on_the_holdout_and_ranks_recent_demand_first() -> None:
    days, skus = _days(), pd.Index(["old", "new", "flat", "never"])
    recent = {"holdout_days": 30, "pop_days": [0, 365, 30], "prior_half_life_days": [0]}
    score, choice = rd.recent_pop_counts(days, skus, recent)
    # as of 30 days before the cutoff 'new' sold in the last 30 days only: 30 days wins
    assert choice.value == 30.0 and choice.val_mrr[30.0] > choice.val_mrr[0.0]
    assert score["new"] > score["flat"] > score["old"] > score["never"] == 0.0
    # all time (the SQL baseline) ranks the faded product first
    assert rd.window_counts(days, rd.ALL_TIME).idxmax() == "old"
    # a window that holds nothing for two products ranks them by all-time count
    assert rd.tie_broken(pd.Series({"new": 3.0}), rd.window_counts(days, 0), skus)["old"] > 0


def test_half_life_is_chosen_on_validation_and_rescaled_to_the_total() -> None:
    days, skus = _days(), pd.Index(["old", "new", "flat"])
    recent = {"holdout_days": 30, "pop_days": [0], "prior_half_life_days": [0, 14, 365]}
    counts, choice = rd.prior_counts(days, skus, recent)
    assert choice.value == 14.0 and set(choice.val_mrr) == {0.0, 14.0, 365.0}
    assert counts.sum() == pytest.approx(days["n_orders"].sum())
    assert counts["new"] > counts["old"]
    assert rd.choose(days, skus, [7], 30, "window").value == 7.0  # one candidate: no search
    with pytest.raises(ValueError, match="no window candidates"):
        rd.choose(days, skus, [], 30, "window")


@pytest.fixture(scope="module")
def launches_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from holley_gnn_assets.synth.generator import generate_warehouse

    path = tmp_path_factory.mktemp("recent") / "launches_tiny.duckdb"
    generate_warehouse(path, scale="launches_tiny", seed=1, signal=2.0, progress=False)
    return path


def test_recent_pop_arm_goes_through_the_business_rules(launches_world: Path) -> None:
    from holley_gnn_assets.config.time_windows import TimeWindows
    from holley_gnn_assets.evaluation.reference_arms import (
        REFERENCE_ARMS,
        recent_pop,
        recent_pop_summary,
        reference_scores,
    )
    from holley_gnn_assets.recommend import apply_rules
    from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
    from holley_gnn_assets.warehouse.exports import run_exports

    cfg = load_config()
    wh = DuckDBWarehouse(str(launches_world))
    windows = TimeWindows.from_config(cfg, wh.synthetic_as_of())
    tables = run_exports(wh, cfg, windows)
    days = tables["product_order_days"]
    assert days["n_orders"].sum() == tables["product_nodes"]["order_count"].sum()
    assert days["age_days"].min() >= 0
    scores = reference_scores(tables, cfg)["recent_pop"]
    assert REFERENCE_ARMS["recent_pop"] is False  # within fitment
    summary = recent_pop_summary(recent_pop(tables, cfg), cfg)
    assert set(summary["val_mrr"]) == {str(float(d)) for d in cfg["recent"]["pop_days"]}
    assert summary["val_mrr"][str(summary["days"])] == max(summary["val_mrr"].values())
    apply_rules.write_scores(wh, cfg, "recent_pop", scores)
    ranked = apply_rules.ranked_lists(wh, cfg, windows, "recent_pop", windows.cutoff)
    assert len(ranked) > 0
    products = tables["product_nodes"].set_index("sku")
    assert products.loc[ranked["sku"], "eligible"].all()
    per_user = ranked.groupby("email_lower")["sku"].agg(["count", "nunique"])
    assert (per_user["count"] <= cfg["rules"]["rank_depth"]).all()
    assert (per_user["count"] == per_user["nunique"]).all()
    top = ranked[ranked["rank"] <= cfg["rules"]["top_k"]]
    parts = top.assign(pt=products.loc[top["sku"], "part_type"].to_numpy())
    assert parts.groupby(["email_lower", "pt"]).size().max() <= cfg["rules"]["max_per_part_type"]
    # the top eligible product by recent orders is not the top by all-time orders
    top_recent = scores.groupby("sku")["score"].first().sort_values().index[-1]
    assert top_recent in set(days.loc[days["age_days"] < 365, "sku"])


def test_graph_prior_reads_decayed_counts_and_the_fallback_serves_the_prior(
        launches_world: Path, tmp_path: Path) -> None:
    from holley_gnn_assets.config.time_windows import TimeWindows
    from holley_gnn_assets.graph.builder import build_graph
    from holley_gnn_assets.training.loop import train
    from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
    from holley_gnn_assets.warehouse.exports import run_exports

    cfg = load_config(overrides={
        "recent": {"prior_half_life_days": [0, 30, 120], "fallback_to_prior": True},
        "training": {"epochs": 1, "patience": 1}})
    wh = DuckDBWarehouse(str(launches_world))
    tables = run_exports(wh, cfg, TimeWindows.from_config(cfg, wh.synthetic_as_of()))
    bundle = build_graph(tables, cfg)
    h = bundle.stats["prior_half_life_days"]
    assert h in (0.0, 30.0, 120.0) and "prior_val_mrr_h30" in bundle.stats
    want = rd.decayed_counts(tables["product_order_days"], h).reindex(bundle.product_ids)
    got = bundle.data["product"].order_count.double().numpy()
    assert np.allclose(got, want.fillna(0.0).to_numpy(), rtol=1e-5)
    plain = build_graph({k: v for k, v in tables.items() if k != "product_order_days"}, cfg)
    assert plain.stats["prior_half_life_days"] == 0.0
    assert torch.equal(plain.data["product"].order_count, torch.tensor(
        tables["product_nodes"]["order_count"].to_numpy(np.float32)))

    res = train(bundle, cfg, tmp_path / "ck", device="cpu", resume=False)
    assert res.prior_half_life == h
    assert (res.fallback == "prior") == (res.best_val_mrr <= res.baseline["pop_mrr"])
    # serving the prior: product scores for any query rank exactly by the prior count
    model = res.model
    model.serve_prior()
    count = bundle.data["product"].order_count
    pv = model.product_vectors(torch.randn(len(count), model.embedding_dim), count)
    q = torch.cat([torch.randn(model.embedding_dim), torch.ones(1)])
    scores = (pv @ q).detach()
    order = torch.argsort(count, descending=True)
    assert (scores[order][:-1] >= scores[order][1:] - 1e-6).all()


def test_report_says_in_words_when_recent_pop_beats_sql_and_the_gnn_beats_it() -> None:
    from holley_gnn_assets.evaluation.markdown import _recent_lines

    def v(d: float, lo: float, hi: float) -> dict:
        return {"delta_hit_rate@4": d, "bootstrap_ci95": [lo, hi]}

    report = {"recent_pop": {"days": 30.0}, "tiers": {
        "cold": {"recent_pop_vs_sql": v(0.03, 0.01, 0.05), "gnn_vs_recent_pop": v(-0.02, -0.05,
                                                                                   -0.001)},
        "hot": {"recent_pop_vs_sql": v(0.0, -0.02, 0.02), "gnn_vs_recent_pop": v(0.1, 0.05,
                                                                                 0.15)}}}
    text = "\n".join(_recent_lines(report))
    assert "the last 30 days" in text
    assert "| cold | +0.0300 | [+0.0100, +0.0500] | -0.0200 |" in text
    assert "recent_pop beats SQL; GNN is below recent_pop" in text
    assert "recent_pop and SQL are level within noise; GNN beats recent_pop" in text
    assert _recent_lines({"tiers": {"cold": {}}}) == []


def test_training_reads_all_time_counts_and_scoring_the_decayed_ones(
        launches_world: Path, tmp_path: Path) -> None:
    """recent.train_on_decayed_prior false: the prior trains on the all-time counts (what the
    training interactions followed) and scores with the decayed ones (serve_count), in the
    embeddings the output is built from."""
    from holley_gnn_assets.config.time_windows import TimeWindows
    from holley_gnn_assets.graph.builder import build_graph, serving_count
    from holley_gnn_assets.model.hetero_gat import encode_full
    from holley_gnn_assets.recommend.embeddings import compute_embeddings
    from holley_gnn_assets.training.loop import train
    from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
    from holley_gnn_assets.warehouse.exports import run_exports

    cfg = load_config(overrides={
        "recent": {"prior_half_life_days": [30], "train_on_decayed_prior": False},
        "training": {"epochs": 1, "patience": 1}})
    wh = DuckDBWarehouse(str(launches_world))
    tables = run_exports(wh, cfg, TimeWindows.from_config(cfg, wh.synthetic_as_of()))
    bundle = build_graph(tables, cfg)
    store = bundle.data["product"]
    all_time = tables["product_nodes"].set_index("sku")["order_count"].reindex(bundle.product_ids)
    decayed = rd.decayed_counts(tables["product_order_days"], 30).reindex(bundle.product_ids)
    assert np.allclose(store.order_count.double().numpy(), all_time.to_numpy(), rtol=1e-5)
    assert np.allclose(store.serve_count.double().numpy(), decayed.fillna(0.0).to_numpy(),
                       rtol=1e-5)
    assert not torch.equal(store.order_count, store.serve_count)
    assert serving_count(bundle.data) is store.serve_count

    model = train(bundle, cfg, tmp_path / "ck", device="cpu", resume=False).model
    emb = compute_embeddings(model, bundle, tables["user_nodes"])
    with torch.no_grad():
        h = encode_full(model.cpu().eval(), bundle.data)
        pz = model.product_repr(h["product"])
        served = model.product_vectors(pz, store.serve_count).numpy()
        trained = model.product_vectors(pz, store.order_count).numpy()
    np.testing.assert_allclose(emb.product_matrix, served, rtol=1e-5, atol=1e-6)
    assert not np.allclose(emb.product_matrix[:, -1], trained[:, -1])
