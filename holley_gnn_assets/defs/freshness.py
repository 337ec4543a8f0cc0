"""The output table's freshness: Dagster's FreshnessPolicy for the UI, and a check for alerts.

- ``FreshnessPolicy.time_window(fail_window=qa.max_output_age_days)`` on
  ``recommendations_table`` (1.13's freshness API, which supersedes the freshness-check
  builders): the daemon (``dagster dev``) evaluates it every 30 s, so the asset's freshness
  status in the UI turns fresh right after each write and overdue once the table is older.
- ``freshness_check`` (WARN, non-blocking) on the same asset, launched alone by
  ``recommendations_freshness_sensor`` right after each write (its next tick, within a minute)
  and once more when that write becomes overdue; ``check_alert_sensor`` alerts on its failed
  evaluation (a pipeline that stopped running). It is not part of the writing jobs: a run
  blocked by a QA gate would show it as "execution failed", which reads as a stale table.
"""

import datetime as dt
import time

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    DagsterInstance,
    DefaultSensorStatus,
    FreshnessPolicy,
    MetadataValue,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    asset_check,
    sensor,
)

OUTPUT = AssetKey("recommendations_table")
CHECK_NAME = "freshness_check"
CHECK_KEY = AssetCheckKey(OUTPUT, CHECK_NAME)


def with_freshness_policy(asset: AssetsDefinition, max_age_days: float) -> AssetsDefinition:
    """``asset`` with a time-window FreshnessPolicy of ``max_age_days`` (fails when older)."""
    policy = FreshnessPolicy.time_window(fail_window=dt.timedelta(days=max_age_days))
    return asset.map_asset_specs(lambda spec: spec.replace_attributes(freshness_policy=policy))


def last_written(instance: DagsterInstance) -> tuple[float | None, int | None]:
    """The output's last materialization: (timestamp, storage id), or (None, None)."""
    records = instance.fetch_materializations(OUTPUT, limit=1).records
    if not records:
        return None, None
    return records[0].timestamp, records[0].storage_id


def _age_days(timestamp: float, now: float) -> float:
    return (now - timestamp) / 86400.0


def build_freshness_check(max_age_days: float):
    """The ``freshness_check`` on ``recommendations_table`` (WARN once older than the bound)."""

    @asset_check(
        asset=OUTPUT, name=CHECK_NAME, blocking=False,
        description=f"The recommendations table was written in the last {max_age_days:g} days "
                    "(qa.max_output_age_days). recommendations_freshness_sensor runs it right "
                    "after each write and again once that write is overdue; it fails (WARN) "
                    "when the pipeline stopped writing the table.",
    )
    def freshness_check(context: AssetCheckExecutionContext) -> AssetCheckResult:
        written, _ = last_written(context.instance)
        meta: dict = {"max_age_days": MetadataValue.float(float(max_age_days))}
        if written is None:
            return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN,
                                    description="recommendations_table was never written",
                                    metadata=meta)
        age = _age_days(written, time.time())
        meta |= {"age_days": MetadataValue.float(round(age, 4)),
                 "last_written": MetadataValue.timestamp(written)}
        fresh = age <= max_age_days
        return AssetCheckResult(
            passed=fresh, severity=AssetCheckSeverity.WARN, metadata=meta,
            description=f"recommendations_table written {age:.1f} days ago "
                        f"({'within' if fresh else 'over'} the {max_age_days:g} days allowed)")

    return freshness_check


def build_freshness_sensor(max_age_days: float, default_status: DefaultSensorStatus,
                           minimum_interval_seconds: int = 60) -> SensorDefinition:
    """Launches ``freshness_check`` alone after each new write, and once more when that write
    becomes overdue (the cursor holds the last request: ``written-<id>`` / ``overdue-<id>``)."""

    @sensor(
        name="recommendations_freshness_sensor",
        minimum_interval_seconds=minimum_interval_seconds,
        asset_selection=AssetSelection.checks(CHECK_KEY), default_status=default_status,
        description="Runs recommendations_table's freshness_check right after each write (within "
                    f"a minute) and once more when the write is older than {max_age_days:g} "
                    "days; check_alert_sensor alerts on the failure.",
    )
    def recommendations_freshness_sensor(context: SensorEvaluationContext):
        written, storage_id = last_written(context.instance)
        if written is None:
            return SkipReason("recommendations_table was never written: nothing to watch yet")
        age = _age_days(written, time.time())
        kind = "overdue" if age > max_age_days else "written"
        key = f"{kind}-{storage_id}"
        if context.cursor == key:
            return SkipReason(f"recommendations_table written {age:.1f} days ago (at most "
                              f"{max_age_days:g} allowed); its freshness_check already ran")
        context.update_cursor(key)
        return RunRequest(run_key=key, asset_check_keys=[CHECK_KEY])

    return recommendations_freshness_sensor
