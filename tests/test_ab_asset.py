"""The ``ab_assignment`` asset through Dagster (real instance, DuckDB, MLflow store): it writes
the table on ``clear_win`` or ``always``, materializes with the reason otherwise, and is
skipped when the output table was not written in the run. Upstream (``eval_report``,
``recommendations_table``) are small stand-ins over the tiny world's users."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from dagster import AssetKey, DagsterInstance, MaterializeResult, asset, materialize
from mlflow import MlflowClient

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.defs.assets.ab_test import ab_assignment
from holley_gnn_assets.defs.partitions import DAILY
from holley_gnn_assets.defs.resources import MlflowTracking, PipelineSettings, WarehouseResource
from holley_gnn_assets.recommend.ab_assignment import arm_of
from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS, OUTPUT_TYPES

pytestmark = pytest.mark.slow

COLD = {"n_users": 400, "delta_hit_rate@4": 0.02, "bootstrap_ci95": [0.01, 0.03],
        "sql": {"hit_rate@4": 0.10}, "gnn": {"hit_rate@4": 0.12}}


@pytest.fixture(scope="module")
def world(tiny_signal_warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    """A warehouse whose output table holds the tiny world's users (one row each)."""
    home = tmp_path_factory.mktemp("ab_home")
    with duckdb.connect(str(tiny_signal_warehouse), read_only=True) as con:
        users = con.execute(
            "SELECT DISTINCT LOWER(TRIM(email)) AS email_lower FROM "
            "company_1950.ingestion_unified_attributes_schema_incremental "
            "WHERE email IS NOT NULL ORDER BY 1").df()
    rows = pd.DataFrame({c: None for c in OUTPUT_COLUMNS}, index=users.index)
    rows["email_lower"] = users["email_lower"]
    rows["year"], rows["make"], rows["model"] = "1970", "FORD", "MUSTANG"
    path = home / "wh.duckdb"
    duckdb.connect(str(path)).close()
    DuckDBWarehouse(path).load_table(rows, "temp_holley_gnn", "recommendations", OUTPUT_TYPES)
    mp = pytest.MonkeyPatch()
    mp.setenv("HOLLEY_GNN_HOME", str(home))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    with DagsterInstance.ephemeral() as instance:
        yield {"home": home, "warehouse": path, "users": users["email_lower"].tolist(),
               "instance": instance}
    mp.undo()


def run(world, decision: str, mode: str, output_written: bool = True):
    """Materialize the stand-ins and ``ab_assignment`` with ``write_assignment: mode``."""
    home = world["home"]
    config = home / f"{mode}.yaml"
    config.write_text(yaml.safe_dump(load_config(overrides={
        "ab_test": {"write_assignment": mode, "salt": "asset-test-salt"}})))

    @asset(name="eval_report", group_name="evaluation", partitions_def=DAILY)
    def eval_report() -> dict:
        return {"decision": decision, "tiers": {"cold": COLD}, "output_allowed": True}

    @asset(name="recommendations_table", group_name="output", output_required=False,
           partitions_def=DAILY)
    def recommendations_table():
        if output_written:
            yield MaterializeResult(metadata={"stand_in": True})

    resources = {
        "pipeline": PipelineSettings(config_path=str(config), home=str(home)),
        "warehouse": WarehouseResource(kind="duckdb", duckdb_path=str(world["warehouse"])),
        "mlflow": MlflowTracking(tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
                                 artifact_location=str(home / "mlartifacts")),
    }
    with duckdb.connect(str(world["warehouse"])) as con:  # start each run without the table
        con.execute("DROP TABLE IF EXISTS temp_holley_gnn.ab_assignment")
    result = materialize([eval_report, recommendations_table, ab_assignment],
                         resources=resources, instance=world["instance"], raise_on_error=False,
                         partition_key="2026-11-01")
    assert result.success
    events = {ev.asset_key.to_user_string(): ev.materialization.metadata
              for ev in result.get_asset_materialization_events()}
    return events.get("ab_assignment")


def assignment(world) -> pd.DataFrame | None:
    return DuckDBWarehouse(world["warehouse"]).read_output_table("temp_holley_gnn",
                                                                 "ab_assignment")


def test_clear_win_writes_the_table_and_the_power_analysis(world) -> None:
    meta = run(world, "clear_win", "on_clear_win")
    table = assignment(world)
    assert meta["action"].value == "written" and meta["reason"].value == "decision is clear_win"
    assert table is not None and len(table) == len(world["users"]) > 1000
    assert meta["dagster/row_count"].value == len(table)
    assert meta["users_gnn"].value + meta["users_sql"].value == len(table)
    assert abs(meta["share_gnn"].value - 0.5) < 4 * 0.5 / len(table) ** 0.5
    assert table["arm"].tolist() == [arm_of(e, "asset-test-salt") for e in table["email_lower"]]
    # cold delta 0.02 on 0.10 = +20%; base click rate 2% -> 2.4%
    md = meta["power_analysis"].value
    assert "| relative lift [95% CI] | 20.00% [10.00%, 30.00%] |" in md
    assert "| expected click rate per send (GNN arm) | 2.40% |" in md
    assert meta["users_needed_per_arm"].value > 10_000 and meta["weeks_of_sends"].value >= 1
    first = table.sort_values("email_lower").reset_index(drop=True)
    run(world, "clear_win", "on_clear_win")  # a second run: the same rows
    again = assignment(world).sort_values("email_lower").reset_index(drop=True)
    pd.testing.assert_frame_equal(again, first)
    # MLflow: the analysis as metrics and artifacts, no email anywhere, the salt only as its id
    client = MlflowClient(tracking_uri=f"sqlite:///{world['home'] / 'mlflow.db'}")
    run_ = client.get_run(meta["mlflow_run_id"].value)
    assert run_.data.tags["stage"] == "ab_test"
    assert run_.data.metrics["ab.users_per_arm_gnn"] == meta["users_needed_per_arm"].value
    blob = json.dumps([run_.data.params, run_.data.tags, run_.data.metrics,
                       {k: str(v.value) for k, v in meta.items()}])
    assert not re.search(r"[\w.+-]+@[\w-]+\.\w+", blob) and "asset-test-salt" not in blob
    names = {a.path for a in client.list_artifacts(run_.info.run_id)}
    assert {"ab_power_analysis.md", "ab_power_analysis.json"} <= names


def test_always_writes_whatever_the_decision(world) -> None:
    meta = run(world, "worse", "always")
    assert meta["action"].value == "written" and "'always'" in meta["reason"].value
    assert assignment(world) is not None


@pytest.mark.parametrize(("decision", "mode", "why"), [
    ("marginal", "on_clear_win", "decision is 'marginal', not clear_win"),
    ("inconclusive", "on_clear_win", "not clear_win"),
    ("clear_win", "never", "'never'"),
])
def test_otherwise_materializes_with_the_reason_and_writes_nothing(world, decision, mode,
                                                                   why) -> None:
    meta = run(world, decision, mode)
    assert meta["action"].value == "skipped" and why in meta["reason"].value
    assert "table" not in meta and assignment(world) is None
    assert "power_analysis" in meta  # the analysis is given either way


def test_skipped_when_the_output_was_not_written(world) -> None:
    """No output this run (a blocked check, no promotion): no assignment step at all."""
    assert run(world, "clear_win", "on_clear_win", output_written=False) is None
    assert assignment(world) is None


def test_the_publish_job_runs_it_after_the_output_write() -> None:
    from holley_gnn_assets.definitions import build_defs

    defs = build_defs()
    key = AssetKey("ab_assignment")
    assert key in defs.resolve_job_def("publish_job").asset_layer.executable_asset_keys
    for name in ("full_retrain_job", "score_job"):  # a blocked pipeline run never plans it
        assert key not in defs.resolve_job_def(name).asset_layer.executable_asset_keys, name
    parents = defs.resolve_asset_graph().get(key).parent_keys
    assert parents == {AssetKey("eval_report"), AssetKey("recommendations_table")}
