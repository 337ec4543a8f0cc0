"""The estimate of users x candidates rows and the run that stops before training (issue 27)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster import AssetKey, DagsterInstance

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.recommend.row_budget import RowBudgetError, check_row_budget, estimate_rows
from tests.conftest import pipeline_env


def _tables() -> dict[str, pd.DataFrame]:
    users = pd.DataFrame({
        "email_lower": ["c1", "c2", "w1", "h1", "b1", "x1"],
        "vehicle_id": ["V1", "V1", "V1", "V2", "V2", None],
        "tier": ["cold", "cold", "warm", "hot", "cold", "hot"],
        "n_orders": [0, 0, 0, 2, 1, 3]})
    skus = [f"S{i}" for i in range(300)]
    products = pd.DataFrame({"sku": skus, "eligible": [i % 3 != 0 for i in range(300)]})
    fit = pd.DataFrame({"vehicle_id": ["V1"] * 300 + ["V2"] * 30, "sku": skus + skus[:30]})
    return {"user_nodes": users, "product_nodes": products, "product_vehicle_edges": fit}


def test_estimate_is_users_ranked_alone_times_candidates() -> None:
    cfg = load_config(overrides={"rules": {"candidate_depth": 100},
                                 "scale": {"user_candidates": 50}})
    est = estimate_rows(_tables(), cfg)
    # V1: 200 eligible fitting products, V2: 20. Alone: w1 (V1), h1, b1 (V2); own: w1, h1
    assert est["users_ranked_alone"] == 3 and est["own_node_users"] == 2
    assert est["rule_rows"] == 100 + 20 + 20
    assert est["gnn_user_rows"] == 50 + 20
    assert est["vehicle_rows"] == 330 and est["rows"] == 140 + 70 + 330
    assert est["max_candidates"] == 200


def test_an_own_node_users_interactions_add_to_its_rows() -> None:
    """Each own-node user's GNN rows: user_candidates + its distinct interacted products, at
    most its vehicle's candidates (gnn_scores.interacted_products)."""
    cfg = load_config(overrides={"scale": {"user_candidates": 50}})
    tables = _tables()
    own = tables["user_nodes"].loc[tables["user_nodes"]["tier"] != "cold", "email_lower"]
    w1, h1 = own.iloc[0], own.iloc[1]  # V1 (200 candidates), V2 (20)
    tables["user_product_edges"] = pd.DataFrame({"email_lower": [w1, w1, w1, w1, h1],
                                                 "sku": ["S1", "S2", "S3", "S1", "S4"]})
    assert estimate_rows(tables, cfg)["gnn_user_rows"] == (50 + 3) + 20


def test_over_budget_is_a_named_error_with_the_estimate() -> None:
    cfg = load_config(overrides={"scale": {"memory_budget_gb": 1e-5, "bytes_per_row": 100,
                                           "user_candidates": 100}})
    with pytest.raises(RowBudgetError, match=r"estimated 590 score and rule rows .* "
                                             r"scale.memory_budget_gb=1e-05"):
        check_row_budget(_tables(), cfg)
    assert check_row_budget(_tables(), load_config())["gb"] < 1e-3


def test_a_run_over_budget_stops_before_training(tiny_signal_warehouse: Path,
                                                 tmp_path: Path) -> None:
    config = tmp_path / "budget.yaml"
    config.write_text(yaml.safe_dump(load_config(overrides={
        "scale": {"memory_budget_gb": 1e-6}, "training": {"epochs": 1}})))
    mp = pipeline_env(tmp_path, tiny_signal_warehouse, config)
    try:
        from holley_gnn_assets.definitions import build_defs

        job = build_defs().get_implicit_global_asset_job_def()
        with DagsterInstance.ephemeral() as instance:
            result = job.execute_in_process(
                asset_selection=[AssetKey(k) for k in (
                    "run_window", "user_nodes", "product_nodes", "vehicle_nodes",
                    "user_product_edges",
                    "user_vehicle_edges", "product_vehicle_edges", "product_product_edges",
                    "product_order_days",
                    "heterodata", "gnn_model")],
                instance=instance, raise_on_error=False, partition_key="2026-11-01")
    finally:
        mp.undo()
    assert not result.success
    assert "heterodata" in str(result.get_failed_step_keys())
    done = {ev.asset_key.to_user_string() for ev in result.get_asset_materialization_events()}
    assert "gnn_model" not in done and "heterodata" not in done and "user_nodes" in done
    failure = next(ev for ev in result.all_events if ev.is_step_failure)
    text = str(failure.event_specific_data.error)
    assert "RowBudgetError" in text and "scale.memory_budget_gb=1e-06" in text
