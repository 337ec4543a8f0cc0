"""Dagster resources: settings and warehouse, artifact storage, MLflow tracking.

Every value comes from the one settings object (``holley_gnn_assets.config.settings``):
:func:`pipeline_resources` builds the resources from it. A field left empty (a resource
built by hand, e.g. in a test) falls back to the current settings when it is used.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, EnvVar
from mlflow import MlflowClient

from holley_gnn_assets.config.schema import PipelineConfig
from holley_gnn_assets.config.settings import (
    ENV_ARTIFACTS,
    ENV_BQ_OUTPUT_PROJECT,
    ENV_BQ_PROJECT,
    ENV_MLFLOW_TRACKING_URI,
    Settings,
    get_settings,
)
from holley_gnn_assets.storage.artifact_store import ArtifactStore, artifact_store
from holley_gnn_assets.storage.model_registry import ModelRegistry
from holley_gnn_assets.warehouse.base import Warehouse


def _home(home: str) -> Path:
    """``home`` (a resource field) or the settings' home; created on first use."""
    path = Path(home).resolve() if home else get_settings().home
    path.mkdir(parents=True, exist_ok=True)
    return path


class WarehouseResource(ConfigurableResource):
    """The warehouse, by kind: the embedded DuckDB file or BigQuery (via dagster-gcp).

    Empty fields (``""``, ``0``, ``None``) take the settings' value (``warehouse`` section).
    """

    kind: str = ""
    duckdb_path: str = ""
    bq_project: str = ""
    bq_company_dataset: str = ""
    bq_data_dataset: str = ""
    bq_output_project: str = ""
    bq_location: str = ""
    bq_job_timeout_s: int = 0
    bq_use_storage_api: bool | None = None

    @classmethod
    def from_settings(cls, settings: Settings, env_vars: bool = False) -> WarehouseResource:
        """Every field from ``settings``; with ``env_vars``, the BigQuery projects that came
        from the environment as ``EnvVar`` (see :func:`env_or`)."""
        bq = settings.config.warehouse.bigquery
        return cls(
            kind=settings.warehouse_kind,
            duckdb_path=str(settings.duckdb_path),
            bq_project=env_or(settings, ENV_BQ_PROJECT, bq.project, env_vars),
            bq_company_dataset=bq.company_dataset,
            bq_data_dataset=bq.data_dataset,
            bq_output_project=env_or(settings, ENV_BQ_OUTPUT_PROJECT, bq.output_project,
                                     env_vars),
            bq_location=bq.location,
            bq_job_timeout_s=bq.job_timeout_s,
            bq_use_storage_api=bq.use_storage_api,
        )

    def get(self) -> Warehouse:
        """Open the configured warehouse."""
        settings = get_settings()
        kind = self.kind or settings.warehouse_kind
        if kind == "duckdb":
            from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse

            return DuckDBWarehouse(self.duckdb_path or str(settings.duckdb_path),
                                   memory_limit_gb=settings.config.warehouse.duckdb_memory_gb)
        if kind == "bigquery":
            from holley_gnn_assets.warehouse.bigquery import BigQueryWarehouse

            bq = settings.config.warehouse.bigquery
            return BigQueryWarehouse(
                project=self.bq_project or bq.project,
                company_dataset=self.bq_company_dataset or bq.company_dataset,
                data_dataset=self.bq_data_dataset or bq.data_dataset,
                output_project=self.bq_output_project or bq.output_project,
                location=self.bq_location or bq.location,
                job_timeout_s=self.bq_job_timeout_s or bq.job_timeout_s,
                use_storage_api=bq.use_storage_api if self.bq_use_storage_api is None
                else self.bq_use_storage_api,
            )
        raise ValueError(f"warehouse kind {kind!r}: expected 'duckdb' or 'bigquery'")


class PipelineSettings(ConfigurableResource):
    """Config file and artifact home, resolved the same way in every step.

    ``config_json`` is the validated config of the settings the code location was built from
    (``from_settings``: overrides included); empty, the config file's (``config_path``, else
    HOLLEY_GNN_CONFIG) with the environment's values. Other empty fields take the settings'
    values (HOLLEY_GNN_HOME). The run's as-of date is its partition key and its windows the
    ``run_window`` asset (``defs/partitions.py``), not a resource.
    """

    config_path: str = ""
    config_json: str = ""
    home: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineSettings:
        """Validated config, config file and home of ``settings``."""
        return cls(config_path=str(settings.config_path),
                   config_json=settings.config.model_dump_json(),
                   home=str(settings.home))

    @cached_property
    def cfg(self) -> dict:
        """The validated config as a plain dict."""
        if self.config_json:
            return PipelineConfig.model_validate_json(self.config_json).model_dump(mode="json")
        return get_settings(self.config_path or None).cfg

    def home_dir(self) -> Path:
        """Artifact home."""
        return _home(self.home)


class ArtifactsResource(ConfigurableResource):
    """Where artifacts live, plus a local working cache for files fetched from there.

    Empty fields take the settings' values (HOLLEY_GNN_ARTIFACTS, HOLLEY_GNN_HOME).
    """

    location: str = ""
    home: str = ""
    gcs_token: str = ""  # gcsfs's token for a gs:// location: empty = default credentials

    @classmethod
    def from_settings(cls, settings: Settings, env_vars: bool = False) -> ArtifactsResource:
        """Artifact location and home of ``settings`` (with ``env_vars``, a location from
        HOLLEY_GNN_ARTIFACTS as ``EnvVar``)."""
        return cls(location=env_or(settings, ENV_ARTIFACTS, settings.artifacts, env_vars),
                   home=str(settings.home))

    def store(self) -> ArtifactStore:
        """The configured store (UPath/fsspec: a local folder or ``gs://``)."""
        options = {"token": self.gcs_token} if self.gcs_token else {}
        return artifact_store(self.location or get_settings().artifacts, **options)

    def work_dir(self, *parts: str) -> Path:
        """A local working folder under the home (pod-local in production)."""
        path = _home(self.home).joinpath("work", *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fetch(self, key: str) -> Path:
        """Copy an artifact to the local cache and return its path."""
        local = _home(self.home) / "cache" / key
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
        local = _home(self.home) / "cache" / prefix
        local.mkdir(parents=True, exist_ok=True)
        for key in store.list(prefix + "/"):
            store.get_file(key, local / key.rsplit("/", 1)[-1])
        return local


logging.getLogger("alembic").setLevel(logging.WARNING)
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


class MlflowTracking(ConfigurableResource):
    """Log params, metrics and artifacts of one pipeline stage to an MLflow run.

    Empty fields take the settings' values (MLFLOW_TRACKING_URI, else the SQLite store and
    ``mlartifacts`` folder under the home).
    """

    tracking_uri: str = ""
    artifact_location: str = ""
    experiment: str = "holley-gnn"

    @classmethod
    def from_settings(cls, settings: Settings, env_vars: bool = False) -> MlflowTracking:
        """Tracking store and artifact root of ``settings`` (with ``env_vars``, a store from
        MLFLOW_TRACKING_URI as ``EnvVar``)."""
        return cls(tracking_uri=env_or(settings, ENV_MLFLOW_TRACKING_URI, settings.tracking_uri,
                                       env_vars),
                   artifact_location=settings.mlflow_artifact_location or "")

    def client(self) -> MlflowClient:
        """An MLflow client for the configured store."""
        uri = self.tracking_uri or get_settings().tracking_uri
        if uri.startswith("sqlite:///"):  # the local store's folder (the home) may not exist yet
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def location(self) -> str:
        """Where the store is, for messages: the SQLite file, or the server's scheme://host."""
        from holley_gnn_assets.config.webhook import redact_url

        uri = self.tracking_uri or get_settings().tracking_uri
        return uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else redact_url(uri)

    def registry(self) -> ModelRegistry:
        """The MLflow Model Registry on the same store (versions, the ``champion`` alias)."""
        return ModelRegistry(self.client())

    def _experiment_id(self, client: MlflowClient) -> str:
        exp = client.get_experiment_by_name(self.experiment)
        if exp is not None:
            return exp.experiment_id
        artifacts = self.artifact_location or None
        if artifacts is None and not self.tracking_uri:
            artifacts = get_settings().mlflow_artifact_location
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

    def log_artifacts(self, run_id: str, local_dir: str | Path, artifact_path: str) -> str:
        """Upload a folder (e.g. an MLflow model) under ``artifact_path``; return its URI."""
        client = self.client()
        client.log_artifacts(run_id, str(local_dir), artifact_path)
        return f"{client.get_run(run_id).info.artifact_uri}/{artifact_path}"

    def search_runs(self, filter_string: str, max_results: int) -> list[Any]:
        """The experiment's runs matching ``filter_string``, newest first (MLflow ``Run``s)."""
        client = self.client()
        exp = client.get_experiment_by_name(self.experiment)
        if exp is None or max_results <= 0:
            return []
        return list(client.search_runs([exp.experiment_id], filter_string,
                                       max_results=max_results,
                                       order_by=["attributes.start_time DESC"]))

    def read_json_artifact(self, run_id: str, path: str) -> Any | None:
        """A run's JSON artifact, or None when it has none (or none that parses) at ``path``."""
        import json
        import tempfile

        from mlflow.exceptions import MlflowException

        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = self.client().download_artifacts(run_id, path, tmp)
                return json.loads(Path(local).read_text())
            except (MlflowException, OSError, ValueError) as exc:
                logging.getLogger(__name__).warning(f"run {run_id}: no readable {path}: {exc}")
                return None

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """Close the run."""
        self.client().set_terminated(run_id, status=status)


def env_or(settings: Settings, name: str, value: str, env_vars: bool = True) -> str:
    """``EnvVar(name)`` where ``settings`` hold the process environment's ``name`` as it is
    (and ``env_vars``), else ``value``: Dagster reads the variable when the resource is built
    in the run and the UI shows the variable's name, not its value. A resource built outside
    Dagster (``from_settings`` in Python) takes the plain value."""
    return EnvVar(name) if env_vars and name in settings.from_env else value


def pipeline_resources(settings: Settings) -> dict[str, Any]:
    """The code location's resources (IO manager included), every value from ``settings``;
    values the environment gave (MLflow store, BigQuery projects, artifact location) as
    ``EnvVar``."""
    from holley_gnn_assets.defs.io_managers import io_manager_from_settings

    return {
        "io_manager": io_manager_from_settings(settings),
        "warehouse": WarehouseResource.from_settings(settings, env_vars=True),
        "pipeline": PipelineSettings.from_settings(settings),
        "mlflow": MlflowTracking.from_settings(settings, env_vars=True),
        "artifacts": ArtifactsResource.from_settings(settings, env_vars=True),
    }


def _metric_name(name: str) -> str:
    """MLflow metric names allow alphanumerics, _ - . space / ; map '@' to '_at_'."""
    return name.replace("@", "_at_")
