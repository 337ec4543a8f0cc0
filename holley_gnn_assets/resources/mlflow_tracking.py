"""A small ConfigurableResource over MlflowClient (dagster-mlflow's resource is legacy).

Local default: a SQLite store under ``HOLLEY_GNN_HOME`` (the file store is in maintenance mode
in MLflow 3). Production: ``MLFLOW_TRACKING_URI`` (an MLflow server). Nothing personal is
logged: params are config values, metrics are aggregates, tags are run ids.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from mlflow import MlflowClient

from holley_gnn_assets.settings import home_dir

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
