"""The graph regression check through Dagster: runs on one tiny world and one real instance.

One scenario, run once for the module on a private copy of the tiny world: (1) a first
``full_retrain_job``, (2) the job again with the fitment table cut to a tenth; then runs of the
graph and its inputs only: (3) the full table again, (4) a sixth of the fitment rows gone,
(5) another graph config, (6) a heterodata materialization without statistics, then (7) a run
after it. The tests read the check evaluations and the output table of each run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance, Output, asset, materialize

from holley_gnn_assets.defs.partitions import DAILY
from tests.conftest import pipeline_env

pytestmark = pytest.mark.slow
FITMENT = "data_company_1950.vehicle_product_fitment_data"
KEY = "2026-11-01"  # the tiny world's as-of date (every run here is for that partition)
GRAPH_INPUTS = ["run_window", "user_nodes", "product_nodes", "vehicle_nodes",
                "user_product_edges", "user_vehicle_edges", "product_vehicle_edges",
                "product_product_edges", "heterodata"]


def _config(home: Path, name: str, **overrides) -> Path:
    from holley_gnn_assets.config.settings import load_config

    path = home / name
    base = {"training": {"epochs": 2, "patience": 1}}
    path.write_text(yaml.safe_dump(load_config(overrides={**base, **overrides})))
    return path


def _set_fitment(warehouse: Path, rows: pd.DataFrame) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.register("rows_df", rows)
        con.execute(f"DELETE FROM {FITMENT}")
        con.execute(f"INSERT INTO {FITMENT} SELECT * FROM rows_df")


def _output(warehouse: Path) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("SELECT * FROM temp_holley_gnn.recommendations "
                           "ORDER BY email_lower").df()


def _regression(result):
    (evaluation,) = [ev for ev in result.get_asset_check_evaluations()
                     if ev.check_name == "graph_regression"]
    return evaluation


def _meta(evaluation) -> dict:
    return {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}


def _materialized(result) -> set[str]:
    return {ev.asset_key.to_user_string() for ev in result.get_asset_materialization_events()}


@pytest.fixture(scope="module")
def scenario(tiny_signal_warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    """Run the seven steps on a private world copy, home and Dagster instance."""
    home = tmp_path_factory.mktemp("regress_home")
    warehouse = home / "world.duckdb"
    shutil.copy(tiny_signal_warehouse, warehouse)
    mp = pipeline_env(home, warehouse, _config(home, "fast.yaml"))
    from holley_gnn_assets.commands.runner import run_and_publish
    from holley_gnn_assets.config.settings import get_settings
    from holley_gnn_assets.definitions import build_defs

    with duckdb.connect(str(warehouse), read_only=True) as con:
        full = con.execute(f"SELECT * FROM {FITMENT}").df()
    defs = build_defs()
    out: dict = {"fitment_rows": len(full)}
    with DagsterInstance.ephemeral() as instance:
        def run(name: str) -> None:
            out[name], *published = run_and_publish("full_retrain_job", instance, defs)
            out[f"{name}_publish"] = published[0] if published else None
            out[f"{name}_output"] = _output(warehouse)

        def graph_only(name: str, with_defs=defs) -> None:  # the graph, its inputs, its check
            out[name] = with_defs.get_implicit_global_asset_job_def().execute_in_process(
                asset_selection=[AssetKey(k) for k in GRAPH_INPUTS], instance=instance,
                raise_on_error=False, partition_key=KEY)

        run("first")
        _set_fitment(warehouse, full.iloc[::10])
        run("tenth")
        _set_fitment(warehouse, full)
        graph_only("again")
        _set_fitment(warehouse, full[full.index % 6 != 0])
        graph_only("shift")
        graph_only("other_config", build_defs(get_settings(
            _config(home, "other.yaml", co_purchase={"min_users": 3}))))

        @asset(name="heterodata", partitions_def=DAILY)
        def stats_less_heterodata():
            return Output({}, metadata={"users_total": 1})  # as written before the check

        assert materialize([stats_less_heterodata], instance=instance,
                           partition_key=KEY).success
        graph_only("after_stats_less")
        yield out
    mp.undo()


def test_first_run_passes_with_nothing_to_compare(scenario):
    result = scenario["first"]
    assert result.success, result.get_failed_step_keys()
    check = _regression(result)
    assert check.passed
    meta = _meta(check)
    assert meta["verdict"] == "nothing_to_compare" and meta["compared_with_run"] == "none"
    assert meta["reason"].startswith("first run")
    assert scenario["first_publish"].success
    assert "recommendations_table" in _materialized(scenario["first_publish"])
    assert len(scenario["first_output"]) > 100
    graph = next(ev for ev in result.get_asset_materialization_events()
                 if ev.asset_key == AssetKey("heterodata")).materialization.metadata
    assert graph["graph_stats/edges/product__fits__vehicle"].value > 0
    assert graph["graph_stats/fitting_products_per_vehicle/median"].value > 0
    assert len(graph["graph_stats_config_hash"].value) == 16


def test_fitment_cut_to_a_tenth_blocks_the_output(scenario):
    result = scenario["tenth"]
    assert not result.success
    check = _regression(result)
    assert not check.passed and check.severity == AssetCheckSeverity.ERROR
    meta = _meta(check)
    assert meta["verdict"] == "fail"
    assert meta["compared_with_run"] == scenario["first"].run_id
    fits = scenario["fitment_rows"]
    assert f"edges/product__fits__vehicle: {fits:,} -> {len(range(0, fits, 10)):,}" \
        in check.description
    assert "dropped by more than 50%" in check.description
    written = _materialized(result)
    assert "heterodata" in written
    assert not written & {"gnn_model", "gnn_recommendations", "recommendations_table"}
    assert scenario["tenth_publish"] is None  # a blocked run is never published
    pd.testing.assert_frame_equal(scenario["tenth_output"], scenario["first_output"])


def test_same_world_again_passes_against_the_last_successful_run(scenario):
    result = scenario["again"]
    assert result.success, result.get_failed_step_keys()
    check = _regression(result)
    meta = _meta(check)
    assert check.passed and meta["verdict"] == "pass"
    # the failed run in between is not a baseline
    assert meta["compared_with_run"] == scenario["first"].run_id
    assert meta["drops"] == 0 and meta["shifts"] == 0
    assert "| edges/product__fits__vehicle |" in meta["comparison"]


def test_small_shift_warns_without_blocking(scenario):
    result = scenario["shift"]
    assert result.success, result.get_failed_step_keys()  # a failed ERROR check fails the run
    check = _regression(result)
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    meta = _meta(check)
    assert meta["verdict"] == "warn" and meta["drops"] == 0 and meta["shifts"] > 0
    assert meta["compared_with_run"] == scenario["again"].run_id
    assert "edges/product__fits__vehicle" in check.description
    assert "moved by more than 10%" in check.description


def test_another_config_compares_nothing_and_says_why(scenario):
    result = scenario["other_config"]
    assert result.success, result.get_failed_step_keys()
    check = _regression(result)
    meta = _meta(check)
    assert check.passed and meta["verdict"] == "nothing_to_compare"
    assert meta["compared_with_run"] == scenario["shift"].run_id
    assert "another graph config" in meta["reason"]


def test_previous_without_stats_compares_nothing_and_says_why(scenario):
    result = scenario["after_stats_less"]
    assert result.success, result.get_failed_step_keys()
    check = _regression(result)
    meta = _meta(check)
    assert check.passed and meta["verdict"] == "nothing_to_compare"
    assert "no graph statistics" in meta["reason"]
