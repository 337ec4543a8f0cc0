"""Run a job in-process on a persistent local Dagster instance and print a short summary."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from dagster import (
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    TableMetadataValue,
)

from holley_gnn_assets.config.run_lock import RunLockedError, run_lock
from holley_gnn_assets.config.settings import Settings, get_settings, home_dir
from holley_gnn_assets.failures import PermanentError


def prepare_instance_dir(settings: Settings | None = None) -> Path:
    """The settings' ``dagster_home``: ``$DAGSTER_HOME`` (must exist), else
    ``HOLLEY_GNN_HOME/dagster_home`` (created, with telemetry off)."""
    settings = settings or get_settings()
    path = settings.dagster_home
    if settings.dagster_home_env is None:
        path.mkdir(parents=True, exist_ok=True)
        conf = path / "dagster.yaml"
        if not conf.exists():
            conf.write_text("telemetry:\n  enabled: false\n")
    elif not path.is_dir():
        raise FileNotFoundError(f"DAGSTER_HOME={path} is not an existing directory")
    return path


def local_instance(settings: Settings | None = None) -> DagsterInstance:
    """The Dagster instance in the settings' ``dagster_home`` (see :func:`prepare_instance_dir`;
    ``holley-gnn ui`` opens the same one)."""
    return DagsterInstance.from_config(str(prepare_instance_dir(settings)))


QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def execute_job(job: str = "full_retrain_job", instance: DagsterInstance | None = None,
                defs: Definitions | None = None, partition_key: str | None = None,
                tags: dict[str, str] | None = None) -> ExecuteInProcessResult:
    """Execute one of the code location's jobs in-process for one partition (its as-of date;
    default: :func:`~holley_gnn_assets.defs.partitions.run_date`, resolved here, once);
    checks failing do not raise."""
    from holley_gnn_assets.defs.partitions import partition_key_of, run_date

    if defs is None:  # built from the settings of this call, not those of the first import
        from holley_gnn_assets.definitions import build_defs

        defs = build_defs(get_settings())
    job_def = defs.resolve_job_def(job)
    if partition_key is None:
        partition_key = partition_key_of(run_date(get_settings()), job_def.partitions_def)
    return job_def.execute_in_process(instance=instance or local_instance(), run_config=QUIET,
                                      raise_on_error=False, partition_key=partition_key,
                                      tags=tags)


def execute_publish(source_run_id: str, instance: DagsterInstance,
                    defs: Definitions | None = None,
                    resources: dict[str, Any] | None = None) -> ExecuteInProcessResult:
    """Execute ``publish_job`` in-process for the successful pipeline run ``source_run_id``
    (its tag and partition key: ``defs/publish_runs.py``)."""
    from holley_gnn_assets.defs.publish_runs import publish_partition_key, publish_tags

    if defs is None:
        from holley_gnn_assets.definitions import build_defs

        defs = build_defs(get_settings())
    source = instance.get_run_by_id(source_run_id)
    if source is None:
        raise ValueError(f"run {source_run_id} is not in the Dagster instance: nothing to publish")
    return defs.resolve_job_def("publish_job").execute_in_process(
        instance=instance, run_config=QUIET, tags=publish_tags(source),
        partition_key=publish_partition_key(source), resources=resources,
        raise_on_error=False)


def run_and_publish(job: str, instance: DagsterInstance, defs: Definitions | None = None,
                    partition_key: str | None = None) -> list[ExecuteInProcessResult]:
    """The pipeline run of ``job``, then (when it succeeded) its publish run, in-process; the
    pipeline run is tagged as published by this caller, so ``publish_sensor`` skips it."""
    from holley_gnn_assets.defs.publish_runs import PUBLISHED_BY_TAG

    if defs is None:  # the same definitions for both runs, from the settings of this call
        from holley_gnn_assets.definitions import build_defs

        defs = build_defs(get_settings())
    result = execute_job(job, instance=instance, defs=defs, partition_key=partition_key,
                         tags={PUBLISHED_BY_TAG: "holley-gnn run"})
    if not result.success:
        return [result]
    return [result, execute_publish(result.run_id, instance, defs)]


def mark_stale_runs_failed(instance: DagsterInstance) -> list[str]:
    """Runs this instance still records as started or starting: their process is gone (the
    caller holds the home's run lock, so no run of this home is alive). Mark them failed."""
    from dagster import DagsterRunStatus, RunsFilter

    stale = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED,
                                                   DagsterRunStatus.STARTING]))
    for run in stale:
        instance.report_run_failed(run)
    return [run.run_id for run in stale]


def start_guard(settings: Settings, instance: DagsterInstance) -> list[str]:
    """Before anything else: the output table and the champion reconciled from the publish
    log, finished runs' staging and a killed run's temporary files removed
    (``defs/publish_guard.py``, ``leftovers.py``).
    A warehouse that cannot be opened is left to the first step to name."""
    from holley_gnn_assets.commands.leftovers import remove_leftovers
    from holley_gnn_assets.defs.publish_guard import guard_start
    from holley_gnn_assets.defs.resources import (
        MlflowTracking,
        PipelineSettings,
        WarehouseResource,
    )
    from holley_gnn_assets.warehouse.base import WarehouseError

    done = []
    removed, freed = remove_leftovers(
        settings.home, settings.duckdb_path if settings.warehouse_kind == "duckdb" else None)
    if removed:
        done.append(f"removed what a killed run left ({freed:,} bytes): "
                    + ", ".join(str(p) for p in removed[:5])
                    + (f" (+{len(removed) - 5} more)" if len(removed) > 5 else ""))
    try:
        return done + guard_start(instance, PipelineSettings.from_settings(settings),
                           WarehouseResource.from_settings(settings),
                           MlflowTracking.from_settings(settings))
    except WarehouseError:
        return done


FAILURE_PREFIX = "dagster._core.definitions.events.Failure: "


def step_errors(result: ExecuteInProcessResult) -> dict[str, str]:
    """The first line of the error each failed step raised (the innermost cause, not Dagster's
    wrapper), by step key."""
    out: dict[str, str] = {}
    for event in result.all_events:
        if event.is_step_failure and event.step_key:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None:
                error = error.cause
            text = (error.message or "").strip() if error is not None else ""
            text = text.removeprefix(FAILURE_PREFIX)  # a Failure's own words, no class path
            out[event.step_key] = text.splitlines()[0] if text else "no error recorded"
    return out


def _plain(value: Any) -> Any:
    """A metadata value as plain data (a table as its rows)."""
    if isinstance(value, TableMetadataValue):
        return [record.data for record in value.records]
    return getattr(value, "value", value)


def summarize(result: ExecuteInProcessResult) -> dict[str, Any]:
    """Materialized assets with their key metadata, failed checks and failed steps' errors."""
    assets: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        meta = {k: _plain(v) for k, v in mat.metadata.items()}
        assets["/".join(mat.asset_key.path)] = meta
    failed_checks = [
        f"{'/'.join(ev.asset_key.path)}:{ev.check_name} ({ev.severity.value})"
        for ev in result.get_asset_check_evaluations() if not ev.passed
    ]
    return {"success": result.success, "run_id": result.run_id, "assets": assets,
            "failed_checks": failed_checks, "failed_steps": result.get_failed_step_keys(),
            "step_errors": step_errors(result)}


def summarize_runs(results: list[ExecuteInProcessResult]) -> dict[str, Any]:
    """The pipeline run's summary (the first result) merged with its publish run's: success
    only when both succeeded; ``publish_run_id`` None when the pipeline run failed."""
    summary = summarize(results[0])
    summary["publish_run_id"] = None
    summary["failed_steps"] = sorted(summary["failed_steps"])
    for result in results[1:]:
        more = summarize(result)
        summary["publish_run_id"] = more["run_id"]
        summary["success"] = summary["success"] and more["success"]
        summary["assets"].update(more["assets"])
        summary["failed_checks"] += more["failed_checks"]
        summary["failed_steps"] += sorted(more["failed_steps"])
        summary["step_errors"].update(more["step_errors"])
    return summary


def run_pipeline(job: str = "full_retrain_job", as_of: dt.date | None = None) -> int:
    """``holley-gnn run``: one run at a time per home and warehouse (run_lock); stale runs of
    the instance marked failed; the run's date (partition key) resolved once (``as_of``, else
    :func:`~holley_gnn_assets.defs.partitions.run_date`); execute; print the summary and the
    evaluation; exit code."""
    from holley_gnn_assets.defs.partitions import PartitionDateError, partition_key_of, run_date

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    locks = [settings.home]  # the home itself, not a file that may be deleted (run_lock)
    if settings.warehouse_kind == "duckdb" and settings.duckdb_path.is_file():
        locks.append(settings.duckdb_path)  # a missing file is named by the first step
    try:
        with run_lock(locks, job):
            instance = local_instance(settings)
            for run_id in mark_stale_runs_failed(instance):
                print(f"run {run_id} was still marked started (its process is gone): "
                      "marked failed")
            for message in start_guard(settings, instance):
                print(message)
            key = partition_key_of(run_date(settings, as_of))
            print(f"job {job}: as-of date {key} (the run's partition key)", flush=True)
            results = run_and_publish(job, instance, partition_key=key)
    except RunLockedError as exc:
        print(f"holley-gnn run: {exc}")
        return 75  # EX_TEMPFAIL
    except PartitionDateError as exc:  # a date outside the partitions: the message names both
        print(f"holley-gnn run: {exc}")
        return 2
    except PermanentError as exc:  # a lost model store: nothing runs
        print(f"holley-gnn run: {type(exc).__name__}: {exc}")
        return 1
    summary = summarize_runs(results)
    promote = summary["assets"].get("champion_decision", {}).get("promote")
    print("\n=== holley-gnn run summary ===")
    print(f"job {job}, run {summary['run_id']}, as-of {key}: "
          f"{'SUCCESS' if summary['success'] else 'FAILED'}"
          + (f" (published by publish_job run {summary['publish_run_id']})"
             if summary["publish_run_id"] else ""))
    for key, meta in summary["assets"].items():
        rows = meta.get("dagster/row_count")
        extra = ""
        if key == "gnn_model":
            extra = (f" epochs={meta.get('epochs_run')} best_val_mrr="
                     f"{float(meta.get('best_val_mrr', 0)):.4f} device={meta.get('device')} "
                     f"{meta.get('wall_seconds')}s")
        if key == "eval_report":
            extra = f" decision={meta.get('decision')} promote={promote}"
            if meta.get("test_window_days") is not None:
                extra += (f" test_window={meta['test_window_days']}d "
                          f"({meta.get('test_window_reason')})")
        print(f"  {key:<32} {'' if rows is None else f'{rows:>10,} rows'}{extra}")
    counted = {k.split("/", 1)[1]: v for meta in summary["assets"].values()
               for k, v in meta.items() if k.startswith("input_quality/")}
    if counted:
        print("input counted and handled: " + ", ".join(f"{k}={v:,}" for k, v in counted.items()))
    if summary["failed_checks"]:
        print("failed checks: " + ", ".join(summary["failed_checks"]))
    for step in summary["failed_steps"]:
        print(f"failed step {step}: {summary['step_errors'].get(step, 'no error recorded')}")
    report_md = home_dir() / "eval_report.md"
    if report_md.exists() and "eval_report" in summary["assets"]:
        print("\n" + report_md.read_text())
    (home_dir() / "last_run_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return 0 if summary["success"] else 1
