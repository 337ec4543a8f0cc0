"""Alert sensors against real runs in a temporary instance and a real local HTTP webhook."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetMaterialization,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    asset,
    asset_check,
    build_run_status_sensor_context,
    build_sensor_context,
    define_asset_job,
)
from dagster._core.events import StepMaterializationData
from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

from holley_gnn_assets.config.settings import load_settings
from holley_gnn_assets.config.webhook import (
    WEBHOOK_ENV,
    WebhookSink,
    redact_url,
    validate_webhook_url,
)
from holley_gnn_assets.defs import alert_sensors as alerts

# -- a tiny pipeline: a blocking ERROR check upstream, a WARN check on the output --------------


@asset
def clean_orders() -> int:
    return 3


@asset_check(asset=clean_orders, blocking=True, description="orders must have rows")
def orders_not_empty(clean_orders: int) -> AssetCheckResult:
    return AssetCheckResult(passed=False, description="0 rows (needs > 0)")


@asset(deps=[clean_orders])
def recommendations_table() -> int:
    return 1


@asset_check(asset=recommendations_table, description="output at most 7 days old")
def recommendations_table_fresh(recommendations_table: int) -> AssetCheckResult:
    return AssetCheckResult(
        passed=False, severity=AssetCheckSeverity.WARN, description="9.0 days old (limit 7)"
    )


warn_job = define_asset_job("warn_job", selection=["recommendations_table"])
blocked_job = define_asset_job("blocked_job", selection=["clean_orders", "recommendations_table"])
DEFS = Definitions(
    assets=[clean_orders, recommendations_table],
    asset_checks=[orders_not_empty, recommendations_table_fresh],
    jobs=[warn_job, blocked_job],
)


# -- a local webhook that records what is posted -----------------------------------------------


class Hook:
    """HTTP server on 127.0.0.1:<free port>; answers each POST with the next queued status."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.posts: list[dict] = []
        self.statuses = list(statuses or [])
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append(json.loads(body))
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/SECRET-TOKEN"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelname, record.getMessage()))


def _sensor(sensors, name):
    return next(s for s in sensors if s.name == name)


def _run(instance, job_name):
    return DEFS.resolve_job_def(job_name).execute_in_process(
        instance=instance, raise_on_error=False
    )


def _status_context(instance, result, sensor_name, event):
    ctx = build_run_status_sensor_context(
        sensor_name=sensor_name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    )
    records = Records()
    ctx.log.addHandler(records)
    return ctx, records


def _fast_sink(url, tries=3):
    return WebhookSink(url, tries=tries, timeout_s=2.0, backoff_s=0.01)


# -- tests ------------------------------------------------------------------------------------


def test_successful_run_reports_failed_warn_check(instance, hook):
    result = _run(instance, "warn_job")
    assert result.success
    sensors = alerts.build_alert_sensors(webhook=_fast_sink(hook.url))
    sensor = _sensor(sensors, "check_alert_sensor")
    ctx, records = _status_context(instance, result, sensor.name, result.get_run_success_event())
    sensor(ctx)

    run_id = result.run_id
    assert len(hook.posts) == 1
    text = hook.posts[0]["text"]
    for part in (
        "recommendations_table",
        "recommendations_table_fresh",
        "WARN",
        run_id,
        "non-blocking",
        "9.0 days old",
    ):
        assert part in text
    warnings = [m for lvl, m in records.lines if lvl == "WARNING"]
    assert any("recommendations_table_fresh" in m and run_id in m for m in warnings)


def test_failed_run_reports_blocking_error_check_and_failure(instance, hook):
    result = _run(instance, "blocked_job")
    assert not result.success  # the blocking ERROR check failed the run
    checks = alerts.failed_checks(instance, result.run_id)
    assert {(c.asset, c.check, c.severity, c.blocking) for c in checks} == {
        ("clean_orders", "orders_not_empty", "ERROR", True)
    }
    sensors = alerts.build_alert_sensors(webhook=_fast_sink(hook.url))
    sensor = _sensor(sensors, "run_failure_alert_sensor")
    ctx, records = _status_context(instance, result, sensor.name, result.get_run_failure_event())
    sensor(ctx.for_run_failure())

    assert len(hook.posts) == 1
    text = hook.posts[0]["text"]
    for part in (
        "run FAILED",
        result.run_id,
        "blocked_job",
        "clean_orders",
        "orders_not_empty",
        "ERROR",
        "(blocking)",
        "0 rows",
    ):
        assert part in text
    errors = [m for lvl, m in records.lines if lvl == "ERROR"]
    assert any("orders_not_empty" in m for m in errors)
    assert any("run FAILED" in m and result.run_id in m for m in errors)


def test_no_webhook_logs_only(instance):
    result = _run(instance, "warn_job")
    sensor = _sensor(alerts.build_alert_sensors(webhook=None), "check_alert_sensor")
    ctx, records = _status_context(instance, result, sensor.name, result.get_run_success_event())
    sensor(ctx)
    assert any("recommendations_table_fresh" in m for _, m in records.lines)


def test_webhook_down_is_logged_retried_and_sensor_completes(instance):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = _fast_sink(f"https://127.0.0.1:{port}/hooks/SECRET-TOKEN", tries=3)
    result = _run(instance, "warn_job")
    sensor = _sensor(alerts.build_alert_sensors(webhook=sink), "check_alert_sensor")
    ctx, records = _status_context(instance, result, sensor.name, result.get_run_success_event())
    sensor(ctx)  # must not raise

    assert [d.tries for d in sink.history] == [3] and not sink.history[0].ok
    errors = [m for lvl, m in records.lines if lvl == "ERROR"]
    assert any("unreachable after 3 tries" in m for m in errors)
    assert any("recommendations_table_fresh" in m for _, m in records.lines)  # alert still logged
    assert all("SECRET-TOKEN" not in m for _, m in records.lines)


def test_webhook_server_errors_are_retried_a_bounded_number_of_times():
    h = Hook(statuses=[503, 500, 200])
    try:
        sink = _fast_sink(h.url, tries=3)
        assert sink.send("hello").ok and sink.history[-1].tries == 3
        assert len(h.posts) == 3
        h.statuses = [503] * 10
        failed = sink.send("again")
        assert not failed.ok and failed.tries == 3 and failed.status == 503
        assert len(h.posts) == 6
        h.statuses = [400]
        assert sink.send("bad request").tries == 1  # client errors are not retried
    finally:
        h.close()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x/SECRET-TOKEN",
        "hooks.example.com/SECRET-TOKEN",
        "https:///SECRET-TOKEN",
        "https://hooks.example.com:99999/SECRET-TOKEN",
    ],
)
def test_malformed_webhook_refused_at_load_without_secret(monkeypatch, url):
    monkeypatch.setenv(WEBHOOK_ENV, url)
    with pytest.raises(ValueError, match=WEBHOOK_ENV) as err:
        alerts.all_sensors()
    assert "SECRET-TOKEN" not in str(err.value)


def test_valid_webhook_env_and_redaction(monkeypatch):
    monkeypatch.setenv(WEBHOOK_ENV, "https://hooks.slack.com/services/T0/B0/SECRET-TOKEN")
    sink = alerts.webhook_from_settings()
    assert sink is not None and sink.target == "https://hooks.slack.com"
    assert redact_url("http://user:pw@host:8080/p?q=1") == "http://host:8080"
    assert validate_webhook_url(" http://127.0.0.1:9/x ") == "http://127.0.0.1:9/x"
    monkeypatch.delenv(WEBHOOK_ENV)
    assert alerts.webhook_from_settings() is None
    assert [s.name for s in alerts.all_sensors()] == [
        "check_alert_sensor",
        "run_failure_alert_sensor",
    ]


def test_webhook_retries_come_from_the_settings():
    settings = load_settings(
        env={WEBHOOK_ENV: "https://hooks.example.com/T/SECRET-TOKEN"},
        overrides={"alerts": {"webhook_tries": 5, "webhook_timeout_s": 0.5,
                              "webhook_backoff_s": 0.0}},
    )
    assert "SECRET-TOKEN" not in repr(settings)
    sink = alerts.webhook_from_settings(settings)
    assert (sink.tries, sink.timeout_s, sink.backoff_s) == (5, 0.5, 0.0)


def _store_materialization(instance, asset_key: str, timestamp: float) -> None:
    """Record a runless materialization with a chosen timestamp in the instance's event log."""
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name=RUNLESS_JOB_NAME,
        event_specific_data=StepMaterializationData(AssetMaterialization(asset_key)),
    )
    instance.report_dagster_event(event, run_id=RUNLESS_RUN_ID, timestamp=timestamp)


def _run_freshness_check(defs, instance, check_keys):
    """Run the freshness check alone (as the sensor's run request asks)."""
    job = defs.get_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection=set(check_keys))
    return job.execute_in_process(instance=instance, raise_on_error=False)


def _evaluate_freshness(defs, instance):
    """One tick of the freshness sensor, then the run it requests (as the daemon would)."""
    sensor = defs.get_sensor_def("recommendations_freshness_sensor")
    tick = sensor.evaluate_tick(build_sensor_context(instance=instance, definitions=defs))
    (request,) = tick.run_requests
    return request, _run_freshness_check(defs, instance, request.asset_check_keys)


def test_freshness_check_fails_on_an_old_output_and_alerts(instance, hook):
    """The output's freshness check, launched by its sensor outside any writing run once the
    table is overdue, fails on an output older than qa.max_output_age_days (7) and
    check_alert_sensor alerts on it."""
    from holley_gnn_assets.definitions import build_defs

    defs = build_defs()
    assert load_settings().config.qa.max_output_age_days == 7
    _store_materialization(instance, "recommendations_table", time.time() - 8 * 86400)
    request, result = _evaluate_freshness(defs, instance)
    assert [k.to_user_string() for k in request.asset_check_keys] == [
        "recommendations_table:freshness_check"]
    assert result.success and not result.get_asset_materialization_events()
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
    assert "8.0 days ago" in (evaluation.description or "")
    assert evaluation.metadata["max_age_days"].value == 7.0

    sensor = _sensor(alerts.build_alert_sensors(webhook=_fast_sink(hook.url)),
                     "check_alert_sensor")
    ctx, records = _status_context(instance, result, sensor.name, result.get_run_success_event())
    sensor(ctx)
    (post,) = hook.posts
    for part in ("check FAILED", "`recommendations_table`", "`freshness_check`", "WARN",
                 "non-blocking", result.run_id, "8.0 days ago"):
        assert part in post["text"], part
    assert any("freshness_check" in m for lvl, m in records.lines if lvl == "WARNING")


def test_freshness_sensor_runs_the_check_after_each_write_and_once_overdue(instance):
    from holley_gnn_assets.definitions import build_defs
    from holley_gnn_assets.defs.freshness import CHECK_KEY

    defs = build_defs()
    sensor = defs.get_sensor_def("recommendations_freshness_sensor")

    def tick(cursor):
        return sensor.evaluate_tick(build_sensor_context(instance=instance, definitions=defs,
                                                         cursor=cursor))

    never = tick(None)
    assert not never.run_requests and "never written" in never.skip_message
    _store_materialization(instance, "recommendations_table", time.time() - 6 * 86400)
    after_write = tick(None)
    (request,) = after_write.run_requests
    assert request.run_key.startswith("written-") and request.asset_check_keys == [CHECK_KEY]
    again = tick(after_write.cursor)
    assert not again.run_requests and "6.0 days ago" in again.skip_message
    result = _run_freshness_check(defs, instance, request.asset_check_keys)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert alerts.failed_checks(instance, result.run_id) == []


def test_freshness_check_is_not_part_of_the_writing_runs_and_the_asset_has_a_policy():
    """A blocked run would show the check as 'execution failed'; the asset carries a
    FreshnessPolicy (1.13's API) of qa.max_output_age_days for the UI's freshness status."""
    from holley_gnn_assets.definitions import build_defs
    from holley_gnn_assets.defs.freshness import OUTPUT

    defs = build_defs()
    assert "recommendations_table" in defs.resolve_job_def("publish_job").graph.node_dict
    for name in ("full_retrain_job", "score_job", "publish_job"):
        nodes = defs.resolve_job_def(name).graph.node_dict
        assert not [n for n in nodes if "freshness_check" in n], name
    spec = defs.resolve_assets_def(OUTPUT).specs_by_key[OUTPUT]
    assert spec.freshness_policy.fail_window.to_timedelta().days == 7
