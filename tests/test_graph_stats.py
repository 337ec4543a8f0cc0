"""Graph statistics and their comparison with the previous run's (quality/graph_stats.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.config.validation import SettingsError
from holley_gnn_assets.graph.builder import build_graph
from holley_gnn_assets.quality import graph_stats as gs
from tests.ml_fixtures import make_tables


@pytest.fixture(scope="module")
def built():
    cfg = load_config()
    tables, _ = make_tables(n_users=300, n_products=80, n_vehicles=8, fit_per_vehicle=20,
                            seed=1)
    return cfg, tables, build_graph(tables, cfg)


def test_stats_count_the_graph_and_the_tables(built):
    cfg, tables, bundle = built
    stats = gs.graph_stats(bundle.data, tables)
    assert stats["nodes/product"] == 80 and stats["nodes/vehicle"] == 8
    fits = len(tables["product_vehicle_edges"])
    assert stats["edges/product__fits__vehicle"] == fits == 8 * 20
    assert stats["density/product__fits__vehicle"] == pytest.approx(fits / (80 * 8))
    assert not any(k.startswith("edges/vehicle__rev") for k in stats)  # reverse edges mirror
    users = tables["user_nodes"]
    assert stats["users_total"] == len(users)
    assert sum(stats[f"tier_share/{t}"] for t in ("cold", "warm", "hot")) == pytest.approx(1.0)
    assert stats["users_with_vehicle_share"] == pytest.approx(users["vehicle_id"].notna().mean())
    assert stats["fitting_products_per_vehicle/mean"] == 20.0
    assert stats["fitting_products_per_vehicle/median"] == 20.0


def test_products_per_vehicle_mean_and_median_on_uneven_fitment(built):
    cfg, tables, bundle = built
    fits = pd.DataFrame({"sku": ["a", "b", "c", "a", "a"], "vehicle_id": ["v1"] * 3 + ["v2", "v3"]})
    vehicles = pd.DataFrame({"vehicle_id": ["v1", "v2", "v3", "v4"]})  # v4 fits nothing
    stats = gs.graph_stats(bundle.data, {**tables, "product_vehicle_edges": fits,
                                         "vehicle_nodes": vehicles})
    assert stats["fitting_products_per_vehicle/mean"] == pytest.approx(5 / 4)
    assert stats["fitting_products_per_vehicle/median"] == 1.0


def test_missing_column_is_named(built):
    cfg, tables, bundle = built
    bad = {**tables, "user_nodes": tables["user_nodes"].drop(columns=["tier"])}
    with pytest.raises(ValueError, match=r"'user_nodes' lacks column\(s\) \['tier'\]"):
        gs.graph_stats(bundle.data, bad)


def test_metadata_round_trip_and_config_hash(built):
    cfg, tables, bundle = built
    stats = gs.graph_stats(bundle.data, tables)
    meta = gs.as_metadata(stats, gs.graph_config_hash(cfg))
    back, config_hash = gs.from_metadata({**meta, "snapshot": "file:///x"})
    assert back == pytest.approx(stats) and config_hash == gs.graph_config_hash(cfg)
    moved = {**cfg, "time": {**cfg["time"], "as_of": "2026-01-05"},
             "regression": {"max_drop_share": 0.9, "warn_shift_share": 0.2},
             "training": {**cfg["training"], "epochs": 1}}
    assert gs.graph_config_hash(moved) == gs.graph_config_hash(cfg)  # not graph-shaping
    other = {**cfg, "co_purchase": {"min_users": 3}}
    assert gs.graph_config_hash(other) != gs.graph_config_hash(cfg)


PREV = {"edges/fits": 1000.0, "nodes/user": 500.0, "tier_share/hot": 0.0}


def test_levels_drop_warn_ok():
    same = gs.compare_stats(PREV, PREV, 0.5, 0.1)
    assert same.status == "pass" and not same.of_level("warn")
    small = gs.compare_stats({**PREV, "nodes/user": 440.0}, PREV, 0.5, 0.1)  # -12%
    assert small.status == "warn"
    assert "nodes/user: 500 -> 440 (-12.0%)" in small.reason
    up = gs.compare_stats({**PREV, "edges/fits": 1900.0}, PREV, 0.5, 0.1)  # growth never blocks
    assert up.status == "warn"
    drop = gs.compare_stats({**PREV, "edges/fits": 100.0, "nodes/user": 450.0}, PREV, 0.5, 0.1)
    assert drop.status == "fail"
    assert [s.name for s in drop.of_level("drop")] == ["edges/fits"]
    assert "edges/fits: 1,000 -> 100 (-90.0%)" in drop.reason
    assert "| edges/fits | 1,000 | 100 | -90.0% | drop |" in drop.table_md()
    from_zero = gs.compare_stats({**PREV, "tier_share/hot": 0.01}, PREV, 0.5, 0.1)
    assert from_zero.status == "warn" and "from 0" in from_zero.reason


def _meta(stats, config_hash="h1"):
    return gs.as_metadata(stats, config_hash)


def test_judge_says_why_nothing_was_compared():
    first = gs.judge(_meta(PREV), None, "none", 0.5, 0.1)
    assert first.status == "nothing_to_compare" and first.reason.startswith("first run")
    no_stats = gs.judge(_meta(PREV), {"users_total": 5}, "run abc", 0.5, 0.1)
    assert no_stats.status == "nothing_to_compare"
    assert "run abc" in no_stats.reason and "no graph statistics" in no_stats.reason
    other = gs.judge(_meta(PREV), _meta({"edges/fits": 1.0}, "h2"), "run abc", 0.5, 0.1)
    assert other.status == "nothing_to_compare" and "another graph config" in other.reason
    assert "h2" in other.reason and "h1" in other.reason
    no_hash = gs.judge(_meta(PREV), {"graph_stats/edges/fits": 1.0}, "run abc", 0.5, 0.1)
    assert no_hash.status == "nothing_to_compare" and "no config hash" in no_hash.reason
    compared = gs.judge(_meta({**PREV, "edges/fits": 10.0}), _meta(PREV), "run abc", 0.5, 0.1)
    assert compared.status == "fail"
    with pytest.raises(ValueError, match="graph_stats/"):
        gs.judge({"users_total": 5}, None, "none", 0.5, 0.1)


def test_regression_bounds_are_validated():
    from holley_gnn_assets.config.settings import load_settings

    with pytest.raises(SettingsError, match="warn_shift_share .* must be below max_drop_share"):
        load_settings(env={}, overrides={"regression": {"max_drop_share": 0.2,
                                                        "warn_shift_share": 0.3}})
    with pytest.raises(SettingsError, match="regression.max_drop_share"):
        load_settings(env={}, overrides={"regression": {"max_drop_share": 0.0}})
    with pytest.raises(SettingsError, match="regression.typo: unknown key"):
        load_settings(env={}, overrides={"regression": {"typo": 1}})
