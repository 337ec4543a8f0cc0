"""The whole ``full_retrain_job`` with the PRODUCTION resources against the local emulators.

One run reads the tiny synthetic world from BigQuery (bqemulator), keeps every artifact and every
asset value in GCS (gcp-storage-emulator: ``ArtifactsResource(location="gs://...")`` and the
IO manager, both UPath/gcsfs) and writes the output table back to BigQuery. A second run does the
same on the embedded default (DuckDB file, local artifacts, local Parquet IO manager) with the same
config and as-of date. Training is seeded and deterministic on CPU, so both output tables must
agree row for row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import yaml
from dagster import DagsterInstance, Definitions
from emulator_processes import (
    EmulatorProcess,
    bigquery_client,
    copy_duckdb_warehouse,
    emulator_env,
    storage_client,
)

from holley_gnn_assets.config.settings import DEFAULT_CONFIG_PATH, load_config
from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS

pytestmark = [pytest.mark.bigquery, pytest.mark.slow]

FAST_TRAINING = {"training": {"epochs": 6, "patience": 3}}
SCORE_TOLERANCE = 1e-5


def _as_of(warehouse: Path) -> dt.date:
    """``synth_truth.world.as_of`` of the synthetic warehouse (the run's T on both engines)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        value = con.execute("SELECT CAST(MAX(as_of) AS DATE) FROM synth_truth.world").fetchone()[0]
    assert value is not None, "the tiny world has no synth_truth.world.as_of"
    return value


def _fast_config(folder: Path) -> Path:
    """The packaged config with a short training budget, written to a YAML file."""
    path = folder / "fast_config.yaml"
    path.write_text(yaml.safe_dump(load_config(DEFAULT_CONFIG_PATH, overrides=FAST_TRAINING)))
    return path


def _with_resources(resources: dict[str, Any]) -> Definitions:
    """``build_defs()`` (assets, checks, jobs, executor) with its resources replaced."""
    from holley_gnn_assets.definitions import build_defs

    base = build_defs()
    return Definitions(
        assets=base.assets,
        asset_checks=base.asset_checks,
        jobs=base.jobs,
        resources=resources,
        executor=base.executor,
    )


def _run(defs: Definitions, home: Path, mp: pytest.MonkeyPatch,
         partition_key: str) -> tuple[list[Any], float]:
    """Execute full_retrain_job for ``partition_key`` then its publish_job in-process with
    ``home`` as HOLLEY_GNN_HOME; ([pipeline result, publish result], seconds)."""
    from holley_gnn_assets.commands.runner import run_and_publish

    mp.setenv("HOLLEY_GNN_HOME", str(home))
    start = time.perf_counter()
    results = run_and_publish("full_retrain_job", DagsterInstance.ephemeral(), defs,
                              partition_key=partition_key)
    return results, time.perf_counter() - start


def _user_key(email: str) -> str:
    """A stable pseudonym of an address, so no address reaches a failure report."""
    return hashlib.sha256(email.encode()).hexdigest()[:16]


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Output columns in contract order, sorted by user; floats as float64, text as object.

    ``email_lower`` is replaced by a hash (pytest prints the frames when an assertion fails).
    """
    out = df[OUTPUT_COLUMNS].copy()
    out["email_lower"] = out["email_lower"].map(_user_key)
    for col in OUTPUT_COLUMNS:
        if col.endswith(("_price", "_score")):
            out[col] = pd.to_numeric(out[col]).astype("float64")
        else:
            out[col] = out[col].astype("object").where(out[col].notna(), None)
    return out.sort_values("email_lower").reset_index(drop=True)


def _assert_same_output(bq: pd.DataFrame, duck: pd.DataFrame) -> None:
    """Same users, SKUs, prices and images exactly; scores within SCORE_TOLERANCE."""
    assert len(bq) == len(duck), f"{len(bq)} rows on BigQuery, {len(duck)} on DuckDB"
    assert len(duck) > 100, "too few output rows for the comparison to mean anything"
    same_users = bq["email_lower"].tolist() == duck["email_lower"].tolist()
    assert same_users, "the two tables hold different users"
    exact = [c for c in OUTPUT_COLUMNS if not c.endswith("_score")]
    for col in exact:
        differ = (bq[col] != duck[col]) & ~(bq[col].isna() & duck[col].isna())
        assert not differ.any(), (
            f"column {col}: {int(differ.sum())} of {len(duck)} rows differ "
            f"(first at sorted row {int(differ.to_numpy().argmax())})"
        )
    scores = [c for c in OUTPUT_COLUMNS if c.endswith("_score")]
    pd.testing.assert_frame_equal(
        bq[scores], duck[scores], check_exact=False, atol=SCORE_TOLERANCE, rtol=0
    )


@pytest.fixture(scope="module")
def emulator_run(
    tiny_signal_warehouse: Path,
    bq_emulator: EmulatorProcess,
    gcs_emulator: EmulatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Both runs (emulators first, then DuckDB) with one config and one as-of date, once."""
    from holley_gnn_assets.defs.io_managers import TablesIOManager, gcs_io_manager
    from holley_gnn_assets.defs.resources import (
        ArtifactsResource,
        MlflowTracking,
        PipelineSettings,
        WarehouseResource,
    )

    tmp = tmp_path_factory.mktemp("e2e")
    cfg_path = _fast_config(tmp)
    cfg = load_config(cfg_path)
    as_of = _as_of(tiny_signal_warehouse)
    project, bucket = bq_emulator.extra["project"], gcs_emulator.extra["bucket"]
    tag = uuid.uuid4().hex[:8]
    prefix = f"e2e-{tag}"
    company_ds, data_ds = f"company_{tag}", f"data_{tag}"
    out_ds, out_table = cfg["output"]["dataset"], cfg["output"]["table"]
    timings: dict[str, float] = {}
    client = bigquery_client(bq_emulator)
    # a private copy: the session's warehouse file stays untouched by the output write
    duck_path = tmp / "warehouse.duckdb"
    shutil.copyfile(tiny_signal_warehouse, duck_path)

    mp = pytest.MonkeyPatch()
    try:
        for var in (
            "HOLLEY_GNN_AS_OF",
            "HOLLEY_GNN_ARTIFACTS",
            "MLFLOW_TRACKING_URI",
            "HOLLEY_GNN_WAREHOUSE_KIND",
            "HOLLEY_GNN_IO",
            "HOLLEY_GNN_EXECUTOR",
        ):
            mp.delenv(var, raising=False)
        mp.setenv("HOLLEY_GNN_CONFIG", str(cfg_path))
        mp.setenv("HOLLEY_GNN_WAREHOUSE", str(duck_path))

        start = time.perf_counter()
        loaded = copy_duckdb_warehouse(duck_path, client, {"company": company_ds, "data": data_ds})
        timings["copy_to_bigquery_s"] = time.perf_counter() - start
        assert len(loaded) == 7 and min(loaded.values()) > 0, loaded
        client.delete_table(f"{project}.{out_ds}.{out_table}", not_found_ok=True, timeout=30)

        settings = PipelineSettings(config_path=str(cfg_path))
        production = _with_resources({
            "io_manager": gcs_io_manager(bucket, f"{prefix}/dagster", token="anon"),
            "warehouse": WarehouseResource(
                kind="bigquery", bq_project=project, bq_company_dataset=company_ds,
                bq_data_dataset=data_ds, bq_output_project=project,
                bq_use_storage_api=False, bq_job_timeout_s=120,
            ),
            "pipeline": settings,
            "mlflow": MlflowTracking(),
            "artifacts": ArtifactsResource(location=f"gs://{bucket}/{prefix}", gcs_token="anon"),
        })  # fmt: skip
        with emulator_env(bq_emulator, gcs_emulator):
            bq_runs, timings["bigquery_gcs_run_s"] = _run(production, tmp / "home_bq", mp,
                                                          as_of.isoformat())

        embedded = _with_resources({
            "io_manager": TablesIOManager(base_path=str(tmp / "home_duck" / "tables")),
            "warehouse": WarehouseResource(kind="duckdb", duckdb_path=str(duck_path)),
            "pipeline": settings,
            "mlflow": MlflowTracking(),
            "artifacts": ArtifactsResource(location=str(tmp / "home_duck" / "artifacts")),
        })  # fmt: skip
        duck_runs, timings["duckdb_local_run_s"] = _run(embedded, tmp / "home_duck", mp,
                                                        as_of.isoformat())
    finally:
        mp.undo()

    gcs = storage_client(gcs_emulator)
    blobs = sorted(b.name for b in gcs.list_blobs(bucket, prefix=f"{prefix}/"))
    print("\ntimings: " + ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))
    try:
        yield {
            "bq_result": bq_runs[0], "duck_result": duck_runs[0], "duck_path": duck_path,
            "publish_results": [*bq_runs[1:], *duck_runs[1:]],
            "client": client, "bucket": bucket, "prefix": prefix, "blobs": blobs,
            "table_id": f"{project}.{out_ds}.{out_table}", "output": (out_ds, out_table),
            "timings": timings,
        }  # fmt: skip
    finally:
        for ds in (company_ds, data_ds):
            client.delete_dataset(
                f"{project}.{ds}", delete_contents=True, not_found_ok=True, timeout=30
            )
        client.delete_table(f"{project}.{out_ds}.{out_table}", not_found_ok=True, timeout=30)
        client.close()


def test_production_resources_match_the_embedded_default(emulator_run) -> None:  # noqa: ANN001
    bq_result, duck_result = emulator_run["bq_result"], emulator_run["duck_result"]
    assert bq_result.success, f"emulator run failed steps: {bq_result.get_failed_step_keys()}"
    assert duck_result.success, f"DuckDB run failed steps: {duck_result.get_failed_step_keys()}"
    assert len(emulator_run["publish_results"]) == 2  # each successful run is published
    for result in emulator_run["publish_results"]:
        assert result.success, f"publish run failed steps: {result.get_failed_step_keys()}"
        written = {tuple(ev.asset_key.path) for ev in result.get_asset_materialization_events()}
        assert ("recommendations_table",) in written

    # the output table, read back through the BigQuery client
    job = emulator_run["client"].query(f"SELECT * FROM `{emulator_run['table_id']}`")
    on_bq = job.result(timeout=60).to_dataframe(create_bqstorage_client=False)
    out_ds, out_table = emulator_run["output"]
    with duckdb.connect(str(emulator_run["duck_path"]), read_only=True) as con:
        on_duck = con.execute(f"SELECT * FROM {out_ds}.{out_table}").df()
    assert sorted(on_bq.columns) == sorted(OUTPUT_COLUMNS)
    _assert_same_output(_normalise(on_bq), _normalise(on_duck))


def test_artifacts_land_in_gcs_under_spec_keys(emulator_run) -> None:  # noqa: ANN001
    prefix, blobs = emulator_run["prefix"], emulator_run["blobs"]
    run_id = emulator_run["bq_result"].run_id
    assert emulator_run["bq_result"].success
    expected = [f"{prefix}/gnn/data/{run_id}/heterodata.pt"]
    missing = [key for key in expected if key not in blobs]
    assert not missing, f"missing in gs://{emulator_run['bucket']}: {missing}"
    # the resumable training state, once (named by the inputs and config); the model is an
    # MLflow model in the registry (weights and graph inside), not a file of the store
    states = [b for b in blobs if b.startswith(f"{prefix}/gnn/checkpoints/inputs-")]
    assert len(states) == 1 and states[0].endswith("/checkpoint.pt"), blobs
    assert not [b for b in blobs if b.endswith(("model.pt", ".png"))], blobs
    # every asset value crossed steps through the GCS IO manager
    for asset_name, suffix in (("user_nodes", "parquet"), ("heterodata", "pkl"),
                               ("gnn_model", "pkl"), ("gnn_recommendations", "pkl")):
        key = emulator_run["bq_result"].dagster_run.tags["dagster/partition"]
        assert f"{prefix}/dagster/{asset_name}/{key}.{suffix}" in blobs, (asset_name,
                                                                         sorted(blobs))


def test_output_write_creates_a_missing_dataset(bq_warehouse, bq_client) -> None:  # noqa: ANN001
    dataset = f"fresh_out_{uuid.uuid4().hex[:8]}"
    row = {c: (1.5 if c.endswith(("_price", "_score")) else f"{c}-x") for c in OUTPUT_COLUMNS}
    frame = pd.DataFrame([row, {**row, "email_lower": "second", "rec1_score": 0.5}])
    try:
        bq_warehouse.load_table(frame, dataset, "recommendations")
        meta = bq_client.get_dataset(f"{bq_warehouse.output_project}.{dataset}", timeout=30)
        assert meta.dataset_id == dataset
        stored = bq_warehouse.read_output_table(dataset, "recommendations")
        assert stored is not None
        assert sorted(stored["rec1_score"].tolist()) == [0.5, 1.5]
        bq_warehouse.load_table(frame.head(1), dataset, "recommendations")  # exists now
        assert len(bq_warehouse.read_output_table(dataset, "recommendations")) == 1
    finally:
        bq_client.delete_dataset(
            f"{bq_warehouse.output_project}.{dataset}", delete_contents=True, not_found_ok=True
        )
