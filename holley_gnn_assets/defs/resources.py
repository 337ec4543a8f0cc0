"""Dagster resources: settings and warehouse, artifact storage, MLflow tracking."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from mlflow import MlflowClient

from holley_gnn_assets.settings import (
    TimeWindows,
    as_of_override,
    home_dir,
    load_config,
    parse_date,
    warehouse_path,
)
from holley_gnn_assets.storage.artifact_store import ArtifactStore, artifact_store
from holley_gnn_assets.storage.model_registry import ModelRegistry
from holley_gnn_assets.warehouse.base import Warehouse


class WarehouseResource(ConfigurableResource):
    """The warehouse, by kind: the embedded DuckDB file or BigQuery (via dagster-gcp)."""

    kind: str = "duckdb"
    duckdb_path: str = ""
    bq_project: str = "auxia-gcp"
    bq_company_dataset: str = "company_1950"
    bq_data_dataset: str = "data_company_1950"
    bq_output_project: str = "auxia-reporting"
    bq_location: str = "US"
    bq_job_timeout_s: int = 600
    bq_use_storage_api: bool = False

    def get(self) -> Warehouse:
        """Open the configured warehouse."""
        if self.kind == "duckdb":
            from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse

            return DuckDBWarehouse(self.duckdb_path or str(warehouse_path()))
        if self.kind == "bigquery":
            from holley_gnn_assets.warehouse.bigquery import BigQueryWarehouse

            return BigQueryWarehouse(
                project=self.bq_project,
                company_dataset=self.bq_company_dataset,
                data_dataset=self.bq_data_dataset,
                output_project=self.bq_output_project,
                location=self.bq_location,
                job_timeout_s=self.bq_job_timeout_s,
                use_storage_api=self.bq_use_storage_api,
            )
        raise ValueError(f"warehouse kind {self.kind!r}: expected 'duckdb' or 'bigquery'")


class PipelineSettings(ConfigurableResource):
    """Config file, as-of date and artifact home, resolved the same way in every step."""

    config_path: str = ""
    as_of: str = ""
    home: str = ""

    @cached_property
    def cfg(self) -> dict:
        """The loaded config."""
        return load_config(self.config_path or None)

    def home_dir(self) -> Path:
        """Artifact home."""
        path = Path(self.home).resolve() if self.home else home_dir()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolve_as_of(self, warehouse: Warehouse) -> dt.date:
        """Resource value, HOLLEY_GNN_AS_OF, config, the synthetic warehouse's date, today."""
        if self.as_of:
            return parse_date(self.as_of, "as_of")
        env = as_of_override()
        if env:
            return env
        if self.cfg["time"].get("as_of"):
            return parse_date(self.cfg["time"]["as_of"], "time.as_of")
        own = getattr(warehouse, "synthetic_as_of", None)
        if callable(own):
            value = own()
            if value:
                return value
        return dt.date.today()

    def windows(self, warehouse: Warehouse) -> TimeWindows:
        """The time windows for this run."""
        return TimeWindows.from_config(self.cfg, self.resolve_as_of(warehouse))


def default_warehouse_resource() -> WarehouseResource:
    """Warehouse resource from the environment (HOLLEY_GNN_WAREHOUSE_KIND and friends)."""
    kind = os.environ.get("HOLLEY_GNN_WAREHOUSE_KIND", "duckdb").strip().lower()
    if kind == "bigquery":
        return WarehouseResource(
            kind="bigquery",
            bq_project=os.environ.get("HOLLEY_GNN_BQ_PROJECT", "auxia-gcp"),
            bq_output_project=os.environ.get("HOLLEY_GNN_BQ_OUTPUT_PROJECT", "auxia-reporting"),
            bq_use_storage_api=os.environ.get("HOLLEY_GNN_BQ_STORAGE_API", "false").lower()
            in {"1", "true", "yes"},
        )
    return WarehouseResource(kind="duckdb", duckdb_path=str(warehouse_path()))


class ArtifactsResource(ConfigurableResource):
    """Where artifacts live, plus a local working cache for files fetched from there."""

    location: str = ""

    def store(self) -> ArtifactStore:
        """The configured store."""
        loc = self.location or os.environ.get("HOLLEY_GNN_ARTIFACTS") or str(
            home_dir() / "artifacts")
        return artifact_store(loc)

    def registry(self) -> ModelRegistry:
        """The model registry kept in the store."""
        return ModelRegistry(self.store())

    def work_dir(self, *parts: str) -> Path:
        """A local working folder under the home (pod-local in production)."""
        path = home_dir().joinpath("work", *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fetch(self, key: str) -> Path:
        """Copy an artifact to the local cache and return its path."""
        local = home_dir() / "cache" / key
        local.parent.mkdir(parents=True, exist_ok=True)
        return Path(self.store().get_file(key, local))

    def put_dir(self, local_dir: Path, prefix: str) -> list[str]:
        """Upload every file of a folder under ``prefix``."""
        store = self.store()
        return [store.put_file(p, f"{prefix}/{p.name}") for p in sorted(local_dir.iterdir())
                if p.is_file()]

    def fetch_dir(self, prefix: str) -> Path:
        """Download every artifact under ``prefix`` into one local folder."""
        store = self.store()
        local = home_dir() / "cache" / prefix
        local.mkdir(parents=True, exist_ok=True)
        for key in store.list(prefix + "/"):
            store.get_file(key, local / key.rsplit("/", 1)[-1])
        return local


logging.getLogger("alembic").setLevel(logging.WARNING)
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` or the local SQLite store under the home."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home_dir() / 'mlflow.db'}"


class MlflowTracking(ConfigurableResource):
    """Log params, metrics and artifacts of one pipeline stage to an MLflow run."""

    tracking_uri: str = ""
    experiment: str = "holley-gnn"

    def client(self) -> MlflowClient:
        """An MLflow client for the configured store."""
        return MlflowClient(tracking_uri=self.tracking_uri or default_tracking_uri())

    def _experiment_id(self, client: MlflowClient) -> str:
        exp = client.get_experiment_by_name(self.experiment)
        if exp is not None:
            return exp.experiment_id
        artifacts = None
        if not (self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")):
            artifacts = (home_dir() / "mlartifacts").as_uri()
        return client.create_experiment(self.experiment, artifact_location=artifacts)

    def start_run(self, run_name: str, tags: Mapping[str, str] | None = None) -> str:
        """Create a run and return its id."""
        client = self.client()
        run = client.create_run(
            self._experiment_id(client), run_name=run_name, tags=dict(tags or {})
        )
        return run.info.run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log params (values stringified, MLflow's 6000-char limit respected)."""
        client = self.client()
        from mlflow.entities import Param

        batch = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(batch), 100):
            client.log_batch(run_id, params=batch[i : i + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log numeric metrics (non-finite and None values skipped); names sanitised."""
        import math
        import time

        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        batch = [
            Metric(_metric_name(k), float(v), ts, step)
            for k, v in metrics.items()
            if v is not None and math.isfinite(float(v))
        ]
        client = self.client()
        for i in range(0, len(batch), 500):
            client.log_batch(run_id, metrics=batch[i : i + 500])

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> str:
        """Upload a file; return its artifact URI."""
        client = self.client()
        client.log_artifact(run_id, str(path), artifact_path)
        run = client.get_run(run_id)
        name = Path(path).name
        return f"{run.info.artifact_uri}/{artifact_path + '/' if artifact_path else ''}{name}"

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """Close the run."""
        self.client().set_terminated(run_id, status=status)


def _metric_name(name: str) -> str:
    """MLflow metric names allow alphanumerics, _ - . space / ; map '@' to '_at_'."""
    return name.replace("@", "_at_")
