"""The code location as 1.13 writes it: ``build_defs(settings)`` honours its settings, values
from the environment reach the resources as ``EnvVar``, the warehouse tables are observable
source assets with data versions, and a code load prints no warning."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, EnvVar, asset, materialize

from holley_gnn_assets.config.settings import load_settings
from holley_gnn_assets.definitions import build_defs
from holley_gnn_assets.defs.resources import MlflowTracking, pipeline_resources
from tests.micro_warehouse import build_micro_warehouse, qualified

ORDERS = AssetKey(["data_company_1950", "import_orders"])


def test_build_defs_takes_every_value_from_its_settings(tmp_path) -> None:
    settings = load_settings(env={"HOLLEY_GNN_HOME": str(tmp_path)},
                             overrides={"training": {"epochs": 3}, "eval": {"alpha": 0.01}})
    resources = build_defs(settings).resources
    cfg = resources["pipeline"].cfg
    assert cfg["training"]["epochs"] == 3 and cfg["eval"]["alpha"] == 0.01
    assert resources["mlflow"].tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_environment_values_reach_the_resources_as_env_vars(tmp_path, monkeypatch) -> None:
    uri = f"sqlite:///{tmp_path / 'env-store' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("HOLLEY_GNN_BQ_PROJECT", "holley-prod")
    monkeypatch.setenv("HOLLEY_GNN_HOME", str(tmp_path))
    resources = pipeline_resources(load_settings())
    assert resources["mlflow"].tracking_uri == EnvVar("MLFLOW_TRACKING_URI")
    assert resources["warehouse"].bq_project == EnvVar("HOLLEY_GNN_BQ_PROJECT")
    # settings built from a given environment name no variable: they hold the values
    given = pipeline_resources(load_settings(env={"MLFLOW_TRACKING_URI": uri}))
    assert not isinstance(given["mlflow"].tracking_uri, EnvVar)
    assert given["mlflow"].tracking_uri == uri

    @asset
    def store(mlflow: MlflowTracking) -> str:
        return mlflow.tracking_uri

    result = materialize([store], resources={"mlflow": resources["mlflow"]})
    assert result.output_for_node("store") == uri  # Dagster read the variable in the run


def test_source_tables_are_observed_with_data_versions(tmp_path) -> None:
    wh = build_micro_warehouse(tmp_path / "wh.duckdb", {
        "import_orders": [{"order_id": "o1", "email": "a@x.com", "sku": "S1", "quantity": 1,
                           "order_date": "2026-01-02", "unit_price": 1.0}],
    })
    settings = load_settings(env={"HOLLEY_GNN_HOME": str(tmp_path / "home"),
                                  "HOLLEY_GNN_WAREHOUSE": str(wh)})
    defs = build_defs(settings)
    job = defs.resolve_job_def("observe_sources_job")
    with DagsterInstance.ephemeral() as instance:
        assert job.execute_in_process(instance=instance).success
        assert _data_version(instance) == "rows=1;latest=2026-01-02 00:00:00"
        with duckdb.connect(str(wh)) as con:
            orders = qualified("import_orders")
            con.execute(f"INSERT INTO {orders} SELECT * REPLACE "
                        f"('2026-01-05'::TIMESTAMP AS order_date) FROM {orders}")
        assert job.execute_in_process(instance=instance).success
        assert _data_version(instance) == "rows=2;latest=2026-01-05 00:00:00"
    # the pipeline's jobs still select every table asset, never the sources
    retrain = {k for k in defs.resolve_job_def("full_retrain_job").asset_layer.selected_asset_keys}
    assert ORDERS not in retrain and AssetKey("eval_report") in retrain


def _data_version(instance: DagsterInstance) -> str | None:
    record = instance.fetch_observations(ORDERS, limit=1).records[0]
    return record.asset_observation.data_version


@pytest.mark.slow
def test_loading_the_code_location_prints_no_dagster_warning() -> None:
    code = ("import warnings\nwarnings.simplefilter('always')\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            "    import holley_gnn_assets.definitions as d\n"
            "    d.defs.resolve_all_job_defs(); d.defs.resolve_asset_graph()\n"
            "for w in seen:\n"
            "    if 'dagster' in w.filename or 'holley_gnn' in w.filename:\n"
            "        print(w.category.__name__, w.filename, w.message)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True)
    assert out.stdout.strip() == "", out.stdout
