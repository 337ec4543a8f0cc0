"""The Dagster code location: ``defs``.

Deployment mode comes from the environment (README lists every variable):
- ``HOLLEY_GNN_EXECUTOR``: ``in_process`` (default), ``multiprocess`` or ``k8s``
  (dagster-k8s ``k8s_job_executor``; ``gnn_model`` carries the GPU pod tags)
- ``HOLLEY_GNN_IO``: ``local`` (default; Parquet/pickle under HOLLEY_GNN_HOME) or ``gcs``
  (steps in separate pods share values through GCS)
- ``HOLLEY_GNN_WAREHOUSE_KIND``: ``duckdb`` (default) or ``bigquery``
"""

from __future__ import annotations

import os

from dagster import Definitions, in_process_executor, multiprocess_executor

from holley_gnn_assets.defs import alert_sensors as alerts
from holley_gnn_assets.defs import checks as data_checks
from holley_gnn_assets.defs import schedules
from holley_gnn_assets.defs.assets import evaluation, exports, model, output, recommendations
from holley_gnn_assets.defs.io_managers import LocalTablesIOManager
from holley_gnn_assets.defs.jobs import full_retrain_job, score_job
from holley_gnn_assets.defs.resources import (
    ArtifactsResource,
    MlflowTracking,
    PipelineSettings,
    default_warehouse_resource,
)
from holley_gnn_assets.settings import home_dir


def _executor():
    kind = os.environ.get("HOLLEY_GNN_EXECUTOR", "in_process").strip().lower()
    if kind == "in_process":
        return in_process_executor
    if kind == "multiprocess":
        return multiprocess_executor
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ValueError(f"HOLLEY_GNN_EXECUTOR={kind!r}: expected in_process, multiprocess or k8s")


def _io_manager():
    kind = os.environ.get("HOLLEY_GNN_IO", "local").strip().lower()
    if kind == "local":
        return LocalTablesIOManager(base_dir=str(home_dir() / "tables"))
    if kind == "gcs":
        from holley_gnn_assets.defs.io_managers import gcs_io_manager

        return gcs_io_manager(os.environ["HOLLEY_GNN_GCS_BUCKET"],
                              os.environ.get("HOLLEY_GNN_GCS_PREFIX", "holley-gnn"))
    raise ValueError(f"HOLLEY_GNN_IO={kind!r}: expected local or gcs")


def build_defs() -> Definitions:
    """Assemble the code location from the environment."""
    return Definitions(
        assets=[*exports.SOURCE_SPECS, *exports.export_assets, *model.model_assets,
                *recommendations.recommendation_assets, evaluation.eval_report,
                *output.output_assets],
        asset_checks=[*data_checks.data_checks, *recommendations.qa_checks,
                      *output.output_checks],
        jobs=[full_retrain_job, score_job],
        schedules=schedules.all_schedules(),
        sensors=[*schedules.all_sensors(), *alerts.all_sensors()],
        resources={
            "io_manager": _io_manager(),
            "warehouse": default_warehouse_resource(),
            "pipeline": PipelineSettings(),
            "mlflow": MlflowTracking(),
            "artifacts": ArtifactsResource(),
        },
        executor=_executor(),
    )


defs = build_defs()
__all__ = ["defs", "build_defs"]
