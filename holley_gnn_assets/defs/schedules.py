"""When the pipeline runs: a weekly full retrain (schedule) and a daily re-score (sensor).

- ``weekly_retrain_schedule`` runs ``full_retrain_job`` on ``schedule.retrain_cron`` in
  ``schedule.timezone`` (``HOLLEY_GNN_RETRAIN_CRON`` overrides the cron), for the partition of
  its scheduled date (UTC): the run's as-of date is fixed when the tick creates it. A malformed
  cron or an unknown time zone is refused when the settings are built (the code location does
  not load).
- ``daily_score_sensor`` requests one ``score_job`` run per day (run key ``score-<date>``,
  partition ``<date>``, the UTC date of the tick) when a
  champion model exists (the MLflow Model Registry's ``champion`` alias) and the source data changed
  since the last requested scoring run. The change test is the source tables' data versions
  (row count and latest timestamp per table, as the observable source assets of
  ``defs/sources.py`` record them: :func:`source_fingerprint`), kept in the cursor; the
  pipeline's own writes to the warehouse (staging, output) do not change it. A run of the
  same day that already scored (a successful run of this instance that materialized
  ``gnn_recommendations``: a retrain, ``holley-gnn run`` or a score run) counts as that day's
  run: the cursor takes the current fingerprint and nothing is requested.

Both launch pipeline runs, so both start STOPPED unless ``schedule.start_running`` (env
``HOLLEY_GNN_START_AUTOMATION``) is true: a first ``dagster dev`` starts nothing expensive.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable

from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    schedule,
    sensor,
)

from holley_gnn_assets.config.settings import ENV_RETRAIN_CRON, Settings, get_settings
from holley_gnn_assets.config.validation import validate_cron, validate_timezone
from holley_gnn_assets.defs.jobs import full_retrain_job, score_job
from holley_gnn_assets.defs.partitions import utc_today
from holley_gnn_assets.defs.resources import MlflowTracking, WarehouseResource
from holley_gnn_assets.defs.sources import data_version, source_fingerprints
from holley_gnn_assets.warehouse.base import WarehouseError

CRON_ENV = ENV_RETRAIN_CRON
FINGERPRINT_TAG = "holley_gnn/source_fingerprint"
__all__ = ["validate_cron", "validate_timezone"]  # re-exported: checked where settings are built


def retrain_cron_and_timezone(settings: Settings | None = None) -> tuple[str, str]:
    """The (cron, timezone) of the weekly retrain, validated when the settings were built."""
    schedule = (settings or get_settings()).config.schedule
    return schedule.retrain_cron, schedule.timezone


def start_running(settings: Settings | None = None) -> bool:
    """Whether the schedule and the scoring sensor start RUNNING (``schedule.start_running``)."""
    return (settings or get_settings()).config.schedule.start_running


def scheduled_partition(context: ScheduleEvaluationContext) -> str:
    """The partition key of a tick: its scheduled time's UTC date (the run's as-of date)."""
    when = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    return when.astimezone(dt.UTC).date().isoformat()


def build_retrain_schedule(settings: Settings | None = None) -> ScheduleDefinition:
    """Weekly ``full_retrain_job`` schedule (validated at load), one partition per tick."""
    cron, tz = retrain_cron_and_timezone(settings)

    @schedule(
        name="weekly_retrain_schedule",
        job=full_retrain_job,
        cron_schedule=cron,
        execution_timezone=tz,
        default_status=(DefaultScheduleStatus.RUNNING if start_running(settings)
                        else DefaultScheduleStatus.STOPPED),
        description=f"Full retrain (every asset) on cron '{cron}' ({tz}), for the partition "
                    "of the scheduled date (UTC).",
    )
    def weekly_retrain_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        key = scheduled_partition(context)
        return RunRequest(run_key=f"retrain-{key}", partition_key=key)

    return weekly_retrain_schedule


# -- source fingerprint -----------------------------------------------------------------------


def source_fingerprint(settings: Settings | None = None) -> str:
    """The data versions of every source table (``defs/sources.py``) as one string; it changes
    whenever a source table gains or loses rows or reaches a later timestamp."""
    settings = settings or get_settings()
    found = source_fingerprints(WarehouseResource.from_settings(settings).get())
    return ";".join(f"{table}:{data_version(*found[table])}" for table in sorted(found))


def promoted_model(mlflow: MlflowTracking) -> dict | None:
    """The champion model version's record in the MLflow Model Registry, or None."""
    return mlflow.registry().champion()


# -- daily scoring sensor ---------------------------------------------------------------------


SCORES = AssetKey("gnn_recommendations")


def scored_on(instance: DagsterInstance, day: dt.date) -> str | None:
    """The id of a successful run of ``instance`` that materialized the GNN scores on ``day``
    (UTC), newest first; None when there is none."""
    cursor = None
    while True:
        page = instance.fetch_materializations(SCORES, limit=25, cursor=cursor)
        for record in page.records:
            written = dt.datetime.fromtimestamp(record.timestamp, dt.UTC).date()
            if written < day:
                return None
            run = instance.get_run_by_id(record.run_id)
            if written == day and run is not None and run.status == DagsterRunStatus.SUCCESS:
                return record.run_id
        if not page.has_more or not page.records:
            return None
        cursor = page.cursor


def _read_cursor(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def build_daily_score_sensor(
    fingerprint: Callable[[], str] | None = None,
    promoted: Callable[[MlflowTracking], dict | None] = promoted_model,
    today: Callable[[], dt.date] = utc_today,
    minimum_interval_seconds: int | None = None,
    settings: Settings | None = None,
) -> SensorDefinition:
    """The ``daily_score_sensor`` (collaborators injectable for tests: fingerprint, clock).

    ``fingerprint`` defaults to :func:`source_fingerprint` of ``settings`` (default: the current
    settings); the interval to ``schedule.score_min_interval_s``. The champion model is read
    from the ``mlflow`` resource's model registry.
    """
    settings = settings or get_settings()
    if fingerprint is None:
        def fingerprint() -> str:
            return source_fingerprint(settings)
    if minimum_interval_seconds is None:
        minimum_interval_seconds = settings.config.schedule.score_min_interval_s

    @sensor(
        name="daily_score_sensor",
        job=score_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=(DefaultSensorStatus.RUNNING if start_running(settings)
                        else DefaultSensorStatus.STOPPED),
        description="One score_job run per day when a promoted model exists and the source "
        "data changed since the last scoring run; a run of the same day that already scored "
        "(retrain, holley-gnn run, score run) counts as that day's run.",
    )
    def daily_score_sensor(context: SensorEvaluationContext, mlflow: MlflowTracking):
        if promoted(mlflow) is None:
            return SkipReason("no promoted model yet: the weekly retrain has not promoted one")
        try:
            fp = fingerprint()
        except (WarehouseError, OSError) as exc:
            return SkipReason(f"cannot fingerprint the source data: {exc}")
        state = _read_cursor(context.cursor)
        date = today().isoformat()
        if state.get("fingerprint") == fp:
            return SkipReason(f"source data unchanged since {state.get('date', 'the last run')}")
        if state.get("date") == date:
            return SkipReason(
                f"a scoring run was already requested today ({date}); "
                "the newer source data will be scored tomorrow"
            )
        context.update_cursor(json.dumps({"fingerprint": fp, "date": date}))
        already = scored_on(context.instance, today())
        if already is not None:
            return SkipReason(f"run {already} already scored today ({date}): this data counts "
                              "as scored")
        return RunRequest(
            run_key=f"score-{date}",
            partition_key=date,
            tags={FINGERPRINT_TAG: hashlib.sha256(fp.encode()).hexdigest()[:16]},
        )

    return daily_score_sensor


def all_schedules(settings: Settings | None = None) -> list[ScheduleDefinition]:
    """Schedules of the code location."""
    return [build_retrain_schedule(settings)]


def all_sensors(settings: Settings | None = None) -> list[SensorDefinition]:
    """Scheduling sensors of the code location (alerts live in ``alert_sensors``)."""
    return [build_daily_score_sensor(settings=settings)]
