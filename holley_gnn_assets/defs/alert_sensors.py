"""Alerts: failed asset checks (the output table's freshness check included) and failed runs.

Sinks: the Dagster log always (the sensor tick's log in the UI), plus a Slack-compatible webhook
when ``HOLLEY_GNN_ALERT_WEBHOOK`` is set (validated at load; see ``webhook``).

- ``check_alert_sensor`` (run succeeded): a run can succeed with failed WARN or non-blocking
  checks, so it reads the run's ASSET_CHECK_EVALUATION events and reports every failed one.
- ``run_failure_alert_sensor`` (run failed): reports the failure, its failed steps and every
  failed check of the run (a failed blocking ERROR check fails the run).

A stale output table is reported through the first path: Dagster's freshness check on
``recommendations_table`` (``defs/assets/output.py``) is launched by its own sensor, outside
any writing run, and fails (WARN) once the table is older than ``qa.max_output_age_days``;
``check_alert_sensor`` then alerts on that run's failed check. It also catches a pipeline
that stopped running, which is what the former hand-written staleness sensor was for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    SensorDefinition,
    run_failure_sensor,
    run_status_sensor,
)

from holley_gnn_assets.config.settings import Settings, get_settings
from holley_gnn_assets.config.webhook import WebhookSink

OUTPUT_ASSET = "recommendations_table"
PREFIX = "[holley-gnn]"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def scrub(text: str) -> str:
    """Replace anything that looks like an email address (alerts never carry one)."""
    return _EMAIL.sub("<email>", text)


@dataclass(frozen=True)
class FailedCheck:
    """One failed asset check evaluation of a run."""

    asset: str
    check: str
    severity: str
    blocking: bool
    description: str | None
    run_id: str
    numbers: tuple[tuple[str, float], ...] = ()
    """The gate's ``failing``, ``threshold`` and ``population`` (those it recorded)."""

    def text(self) -> str:
        """One alert line naming the asset, the check, its numbers, the severity and the run."""
        kind = "blocking" if self.blocking else "non-blocking"
        line = (
            f"check FAILED: asset `{self.asset}`, check `{self.check}`, severity "
            f"{self.severity} ({kind}), run {self.run_id}"
        )
        if self.numbers:
            line += "; " + ", ".join(f"{k}={_fmt(v)}" for k, v in self.numbers)
        return line + (f": {self.description}" if self.description else "")


NUMBERS = ("failing", "threshold", "population")


def _fmt(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


def _numbers(metadata: Any) -> tuple[tuple[str, float], ...]:
    """The check's recorded numbers, in ``NUMBERS`` order (absent ones left out)."""
    values = {k: getattr(v, "value", v) for k, v in (metadata or {}).items()}
    return tuple((k, values[k]) for k in NUMBERS
                 if isinstance(values.get(k), int | float) and not isinstance(values[k], bool))


def failed_checks(instance: DagsterInstance, run_id: str) -> list[FailedCheck]:
    """Every failed asset check evaluation recorded for ``run_id`` (WARN and ERROR)."""
    out: list[FailedCheck] = []
    cursor = None
    while True:
        conn = instance.get_records_for_run(
            run_id, cursor=cursor, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=500
        )
        for record in conn.records:
            event = record.event_log_entry.dagster_event
            if event is None:
                continue
            evaluation = event.asset_check_evaluation_data
            if evaluation.passed:
                continue
            out.append(
                FailedCheck(
                    asset=evaluation.asset_key.to_user_string(),
                    check=evaluation.check_name,
                    severity=evaluation.severity.value,
                    blocking=bool(evaluation.blocking),
                    description=evaluation.description,
                    run_id=run_id,
                    numbers=_numbers(evaluation.metadata),
                )
            )
        if not conn.has_more:
            return out
        cursor = conn.cursor


class Alerter:
    """Sends alert text to the Dagster log and, when configured, to the webhook."""

    def __init__(self, webhook: WebhookSink | None = None) -> None:
        self.webhook = webhook

    def emit(self, log: Any, lines: Sequence[tuple[str, str]], title: str) -> None:
        """Log each ``(level, line)``; post one webhook message with the title and all lines."""
        if not lines:
            return
        for level, line in lines:
            getattr(log, level)(scrub(f"{PREFIX} {line}"))
        if self.webhook is None:
            return
        text = scrub("\n".join([f"{PREFIX} {title}", *(f"• {line}" for _, line in lines)]))
        result = self.webhook.send(text)
        if result.ok:
            log.info(f"{PREFIX} alert posted to webhook {self.webhook.target} (try {result.tries})")
        else:
            log.error(
                f"{PREFIX} webhook {self.webhook.target} unreachable after {result.tries} "
                f"tries ({result.error}); the alert is in this log only"
            )


def _check_lines(checks: Sequence[FailedCheck]) -> list[tuple[str, str]]:
    return [("error" if c.severity == "ERROR" else "warning", c.text()) for c in checks]


def report_successful_run(
    alerter: Alerter, log: Any, instance: DagsterInstance, run_id: str, job_name: str
) -> list[FailedCheck]:
    """Alert on the failed checks of a successful run; return them."""
    checks = failed_checks(instance, run_id)
    alerter.emit(
        log,
        _check_lines(checks),
        f"run {run_id} of `{job_name}` succeeded with {len(checks)} failed check(s)",
    )
    return checks


def report_failed_run(
    alerter: Alerter,
    log: Any,
    instance: DagsterInstance,
    run_id: str,
    job_name: str,
    message: str | None,
    failed_steps: Sequence[str],
) -> list[FailedCheck]:
    """Alert on a failed run, its failed steps and its failed checks; return the checks."""
    checks = failed_checks(instance, run_id)
    head = f"run FAILED: run {run_id} of `{job_name}`"
    if failed_steps:
        head += f"; failed steps: {', '.join(failed_steps)}"
    if message:
        head += f": {message}"
    alerter.emit(
        log, [("error", head), *_check_lines(checks)], f"run {run_id} of `{job_name}` failed"
    )
    return checks


def build_alert_sensors(webhook: WebhookSink | None = None) -> list[SensorDefinition]:
    """The two alert sensors, sharing one sink (injectable for tests)."""
    alerter = Alerter(webhook)

    @run_status_sensor(
        name="check_alert_sensor",
        run_status=DagsterRunStatus.SUCCESS,
        default_status=DefaultSensorStatus.RUNNING,
        description="Reports every failed asset check (WARN or ERROR) of a successful run.",
    )
    def check_alert_sensor(context: RunStatusSensorContext):
        run = context.dagster_run
        report_successful_run(alerter, context.log, context.instance, run.run_id, run.job_name)

    @run_failure_sensor(
        name="run_failure_alert_sensor",
        default_status=DefaultSensorStatus.RUNNING,
        description="Reports every failed run with its failed steps and failed checks.",
    )
    def run_failure_alert_sensor(context: RunFailureSensorContext):
        run = context.dagster_run
        steps = [e.step_key for e in context.get_step_failure_events() if e.step_key]
        report_failed_run(
            alerter,
            context.log,
            context.instance,
            run.run_id,
            run.job_name,
            context.failure_event.message,
            steps,
        )

    return [check_alert_sensor, run_failure_alert_sensor]


def webhook_from_settings(settings: Settings | None = None) -> WebhookSink | None:
    """The webhook sink for ``HOLLEY_GNN_ALERT_WEBHOOK`` (validated with the settings), or None."""
    settings = settings or get_settings()
    if settings.alert_webhook is None:
        return None
    alerts = settings.config.alerts
    return WebhookSink(
        settings.alert_webhook,
        tries=alerts.webhook_tries,
        timeout_s=alerts.webhook_timeout_s,
        backoff_s=alerts.webhook_backoff_s,
    )


def all_sensors(settings: Settings | None = None) -> list[SensorDefinition]:
    """Alert sensors of the code location, configured from the settings."""
    settings = settings or get_settings()
    return build_alert_sensors(webhook=webhook_from_settings(settings))
