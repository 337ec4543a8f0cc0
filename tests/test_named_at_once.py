"""Failures a retry cannot fix are named at once and not retried; no champion, no output.

Real Dagster runs (ephemeral instance), real DuckDB and MLflow: an empty fitment table fails
``sql_baseline_recommendations`` once with the counts (not ``cannot convert float NaN to
integer`` after two retries); a missing column is not retried; a scoring run with registered
versions but no champion writes nothing and says why.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterEventType, DagsterInstance, materialize
from mlflow import MlflowClient

from holley_gnn_assets.defs.assets.model import _model_to_score, _require_recommendable
from holley_gnn_assets.defs.assets.recommendations import sql_baseline_recommendations
from holley_gnn_assets.defs.assets.run_window import run_window
from holley_gnn_assets.defs.resources import MlflowTracking, PipelineSettings, WarehouseResource
from holley_gnn_assets.failures import EmptyInputError
from holley_gnn_assets.recommend.publish import NoChampionError
from holley_gnn_assets.storage.model_registry import ModelRegistry
from tests.micro_warehouse import build_micro_warehouse
from tests.test_engine_agreement import AS_OF, _world


def _run_sql_arm(tmp_path: Path, wh: Path):
    resources = {
        "pipeline": PipelineSettings(home=str(tmp_path / "home")),
        "warehouse": WarehouseResource(kind="duckdb", duckdb_path=str(wh)),
    }
    with DagsterInstance.ephemeral() as instance:
        result = materialize([run_window, sql_baseline_recommendations], resources=resources,
                             instance=instance, raise_on_error=False,
                             partition_key=AS_OF.isoformat())
        retries = [e for e in result.all_events
                   if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    return result, retries, error


def test_empty_fitment_is_named_at_once_and_not_retried(tmp_path: Path) -> None:
    world = _world()
    world["vehicle_product_fitment_data"] = []
    wh = build_micro_warehouse(tmp_path / "w.duckdb", world)
    result, retries, error = _run_sql_arm(tmp_path, wh)
    assert not result.success and retries == []
    assert "0 fitment rows in data_company_1950.vehicle_product_fitment_data" in error.message
    assert "NaN" not in error.message


def test_a_missing_column_is_not_retried(tmp_path: Path) -> None:
    wh = build_micro_warehouse(tmp_path / "w.duckdb", _world(),
                               drop_columns={"import_items": ["price"]})
    result, retries, error = _run_sql_arm(tmp_path, wh)
    assert not result.success and retries == []
    assert "has no column 'price'" in error.message


def test_no_users_with_a_vehicle_is_named_before_training() -> None:
    users = pd.DataFrame({"email_lower": ["a", "b"], "vehicle_id": [None, None]})
    with pytest.raises(EmptyInputError, match="0 fitment rows.*0 users with a vehicle"):
        _require_recommendable(users, pd.DataFrame({"sku": []}), pd.DataFrame({"sku": []}))


def test_no_champion_no_output(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = MlflowTracking(tracking_uri=uri, artifact_location=(tmp_path / "a").as_uri())
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.create_run(client.create_experiment("t")).info.run_id
    ModelRegistry(client).register(run, "retrain-run", {})  # registered, never promoted
    with pytest.raises(NoChampionError, match="registered versions: 1.*writes no output"):
        _model_to_score(tracking, "score-run")
    chosen, _, candidate = _model_to_score(tracking, "retrain-run")  # its own candidate
    assert candidate and chosen["version"] == "1"
