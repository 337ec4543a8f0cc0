"""What every job does first: table and alias reconciled from the publish log, the staging
tables of finished runs dropped (``recommend/publish.py``). Called by the CLI before a run and
by the first steps that read the model registry, so a run launched any way (CLI, schedule,
sensor, the UI) starts from a table and a champion that agree."""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from holley_gnn_assets.defs.publish_runs import SOURCE_RUN_TAG
from holley_gnn_assets.defs.resources import MlflowTracking, PipelineSettings, WarehouseResource
from holley_gnn_assets.recommend import publish
from holley_gnn_assets.recommend.apply_rules import run_suffix

_ALIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
          DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def in_progress(instance: DagsterInstance) -> set[str]:
    """Staging suffixes of the instance's runs that may still read their staging tables: the
    runs alive, and the source runs of the publish runs alive (``defs/publish_runs.py``)."""
    runs = list(instance.get_runs(RunsFilter(statuses=_ALIVE)))
    sources = [instance.get_run_by_id(r.tags[SOURCE_RUN_TAG]) for r in runs
               if r.tags.get(SOURCE_RUN_TAG)]
    return {run_suffix(r.root_run_id or r.run_id) for r in [*runs, *sources] if r is not None}


def guard_start(instance: DagsterInstance, pipeline: PipelineSettings,
                warehouse: WarehouseResource, mlflow: MlflowTracking) -> list[str]:
    """Reconcile the alias with the output table, drop finished runs' staging; return what
    was done (messages). RegistryLostError (not retried) when the model store was lost."""
    wh, cfg = warehouse.get(), pipeline.cfg
    done = []
    message = publish.reconcile(wh, cfg, mlflow.registry, mlflow.location())
    if message:
        done.append(message)
    dropped = publish.drop_finished_staging(wh, cfg, in_progress(instance))
    if dropped:
        done.append(f"dropped the staging tables of finished runs: {', '.join(dropped)}")
    return done
