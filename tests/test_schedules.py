"""Weekly retrain schedule and daily scoring sensor, evaluated against a real DagsterInstance."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest
from dagster import (
    DagsterInstance,
    Definitions,
    asset,
    build_schedule_context,
    build_sensor_context,
)
from dagster._utils.schedules import cron_string_iterator

from holley_gnn_assets.config.settings import SettingsError, load_settings
from holley_gnn_assets.defs import schedules
from holley_gnn_assets.defs.jobs import full_retrain_job, score_job
from holley_gnn_assets.defs.partitions import DAILY
from holley_gnn_assets.defs.resources import ArtifactsResource, MlflowTracking
from tests.micro_warehouse import build_micro_warehouse, qualified


@asset(partitions_def=DAILY)
def heterodata() -> int:
    return 1


@asset(partitions_def=DAILY)
def gnn_model(heterodata: int) -> int:
    return heterodata + 1


@asset(partitions_def=DAILY)
def recommendations_table(gnn_model: int) -> int:
    return gnn_model + 1


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Artifact home and a real (tiny) DuckDB warehouse file under tmp_path."""
    home = tmp_path / "home"
    wh = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("HOLLEY_GNN_HOME", str(home))
    monkeypatch.setenv("HOLLEY_GNN_WAREHOUSE", str(wh))
    monkeypatch.delenv("HOLLEY_GNN_WAREHOUSE_KIND", raising=False)
    monkeypatch.delenv(schedules.CRON_ENV, raising=False)
    monkeypatch.delenv("HOLLEY_GNN_ARTIFACTS", raising=False)
    build_micro_warehouse(wh, {"import_items": [{"sku": f"S{i}"} for i in range(10)]})
    return home, wh


def _defs(*extra, artifacts: ArtifactsResource | None = None) -> Definitions:
    from holley_gnn_assets.defs.freshness import build_freshness_check

    return Definitions(
        assets=[heterodata, gnn_model, recommendations_table],
        asset_checks=[build_freshness_check(7.0)],
        jobs=[full_retrain_job, score_job],
        schedules=[e for e in extra if hasattr(e, "cron_schedule")],
        sensors=[e for e in extra if not hasattr(e, "cron_schedule")],
        resources={"artifacts": artifacts or ArtifactsResource(), "mlflow": MlflowTracking()},
    )


# -- schedule ---------------------------------------------------------------------------------


def test_schedule_requests_full_retrain_monday_0300_utc(instance, env):
    sched = schedules.build_retrain_schedule()
    defs = _defs(sched)
    resolved = defs.get_schedule_def("weekly_retrain_schedule")
    assert resolved.job_name == "full_retrain_job"
    assert resolved.cron_schedule == "0 3 * * 1"
    assert resolved.execution_timezone == "UTC"

    start = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC).timestamp()  # a Wednesday
    nxt = next(cron_string_iterator(start, resolved.cron_schedule, "UTC"))
    assert (nxt.weekday(), nxt.hour, nxt.minute) == (0, 3, 0)
    assert nxt.date() == dt.date(2026, 3, 9)

    ctx = build_schedule_context(instance=instance, scheduled_execution_time=nxt,
                                 repository_def=defs.get_repository_def())
    data = resolved.evaluate_tick(ctx)
    assert len(data.run_requests) == 1
    # the job of the run: the request's own or the schedule's target
    assert (data.run_requests[0].job_name or resolved.job_name) == "full_retrain_job"
    assert data.run_requests[0].partition_key == "2026-03-09"  # the run's as-of date
    # the selection of the job the schedule fires contains the training assets
    job = defs.resolve_job_def("full_retrain_job")
    assert {"gnn_model", "heterodata"} <= {
        k.to_user_string() for k in job.asset_layer.executable_asset_keys
    }


def test_cron_env_override_is_used(env, monkeypatch):
    monkeypatch.setenv(schedules.CRON_ENV, "30 4 * * 2")
    assert schedules.build_retrain_schedule().cron_schedule == "30 4 * * 2"


@pytest.mark.parametrize("bad", ["0 3 * *", "61 3 * * 1", "every monday", "0 3 30 2 *"])
def test_malformed_cron_env_refused_at_load(env, monkeypatch, bad):
    monkeypatch.setenv(schedules.CRON_ENV, bad)
    with pytest.raises(ValueError, match=schedules.CRON_ENV) as err:
        schedules.all_schedules()
    assert repr(bad) in str(err.value)


def test_malformed_config_cron_and_timezone_refused(env):
    with pytest.raises(SettingsError, match=r"schedule\.retrain_cron='nope'"):
        load_settings(overrides={"schedule": {"retrain_cron": "nope"}})
    with pytest.raises(SettingsError, match=r"schedule\.timezone='Mars/Olympus'"):
        load_settings(overrides={"schedule": {"timezone": "Mars/Olympus"}})
    # the same settings object drives the schedule
    custom = load_settings(overrides={"schedule": {"retrain_cron": "15 2 * * 0",
                                                   "timezone": "America/Chicago"}})
    sched = schedules.build_retrain_schedule(custom)
    assert (sched.cron_schedule, sched.execution_timezone) == ("15 2 * * 0", "America/Chicago")


# -- daily scoring sensor ---------------------------------------------------------------------


class Clock:
    def __init__(self, day: dt.date) -> None:
        self.day = day

    def __call__(self) -> dt.date:
        return self.day


def _tick(sensor_def, defs, instance, cursor):
    ctx = build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=defs,
        resources={"mlflow": defs.resources["mlflow"]},
    )
    return sensor_def.evaluate_tick(ctx)


def _promote() -> None:
    """Register and promote a model in the default MLflow store (under HOLLEY_GNN_HOME)."""
    from tests.test_model_registry import register_version

    tracking = MlflowTracking()
    reg = tracking.registry()
    version = register_version(tracking, "run-a")
    assert reg.decide(version["version"], 0.2, 0.01).promoted
    reg.promote(version["version"])


def _touch_warehouse(wh, n: int) -> None:
    with duckdb.connect(str(wh)) as con:
        con.execute(f"INSERT INTO {qualified('import_items')} (sku) SELECT 'N' || range "
                    f"FROM range({n})")
        con.execute("CHECKPOINT")


def _fingerprint() -> str:
    return schedules.source_fingerprint(load_settings())


def test_the_pipelines_own_writes_do_not_count_as_new_source_data(env):
    """The fingerprint is the source tables' data versions: a staging table written into the
    same DuckDB file (every run writes some) changes the file, not the fingerprint."""
    _, wh = env
    before = _fingerprint()
    assert "import_items:rows=10;latest=none" in before
    with duckdb.connect(str(wh)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS staging")
        con.execute("CREATE TABLE staging.scores AS SELECT range AS x FROM range(1000)")
        con.execute("CHECKPOINT")
    assert _fingerprint() == before


def test_sensor_skips_without_promoted_model(instance, env):
    clock = Clock(dt.date(2026, 3, 9))
    sensor_def = schedules.build_daily_score_sensor(today=clock, minimum_interval_seconds=3600)
    data = _tick(sensor_def, _defs(sensor_def), instance, None)
    assert not data.run_requests
    assert "no promoted model yet" in data.skip_message


def test_sensor_requests_once_per_day_and_only_on_changed_data(instance, env):
    _, wh = env
    _promote()
    clock = Clock(dt.date(2026, 3, 9))
    sensor_def = schedules.build_daily_score_sensor(today=clock, minimum_interval_seconds=3600)
    defs = _defs(sensor_def)
    assert sensor_def.job_name == "score_job"
    assert sensor_def.minimum_interval_seconds == 3600

    first = _tick(sensor_def, defs, instance, None)
    assert [r.run_key for r in first.run_requests] == ["score-2026-03-09"]
    assert first.cursor and json.loads(first.cursor)["fingerprint"] == _fingerprint()

    # same data, later the same day and the next day: skipped with the date of the last run
    again = _tick(sensor_def, defs, instance, first.cursor)
    assert not again.run_requests
    assert again.skip_message == "source data unchanged since 2026-03-09"
    clock.day = dt.date(2026, 3, 10)
    unchanged = _tick(sensor_def, defs, instance, first.cursor)
    assert not unchanged.run_requests and "unchanged since 2026-03-09" in unchanged.skip_message

    # the warehouse changes: a new run keyed by the new date
    before = _fingerprint()
    _touch_warehouse(wh, 5)
    assert _fingerprint() != before
    second = _tick(sensor_def, defs, instance, first.cursor)
    assert [r.run_key for r in second.run_requests] == ["score-2026-03-10"]
    assert [r.partition_key for r in second.run_requests] == ["2026-03-10"]
    assert second.cursor != first.cursor

    # changed again the same day: no second run that day, but scored the day after
    _touch_warehouse(wh, 7)
    same_day = _tick(sensor_def, defs, instance, second.cursor)
    assert not same_day.run_requests and "already requested today" in same_day.skip_message
    clock.day = dt.date(2026, 3, 11)
    next_day = _tick(sensor_def, defs, instance, same_day.cursor or second.cursor)
    assert [r.run_key for r in next_day.run_requests] == ["score-2026-03-11"]
    assert [r.partition_key for r in next_day.run_requests] == ["2026-03-11"]


def test_sensor_counts_a_run_that_scored_today_as_todays_run(instance, env):
    """A successful run of the same day that materialized gnn_recommendations (a retrain or
    `holley-gnn run`) already scored this data: no request, and the cursor keeps the data's
    fingerprint, so the next day requests nothing either while the data stays the same."""
    from dagster import asset, materialize

    @asset(name="gnn_recommendations")
    def scores() -> int:
        return 1

    _, wh = env
    _promote()
    result = materialize([scores], instance=instance)
    assert result.success
    today = dt.datetime.now(dt.UTC).date()
    assert schedules.scored_on(instance, today) == result.run_id
    assert schedules.scored_on(instance, today - dt.timedelta(days=1)) is None
    clock = Clock(today)
    sensor_def = schedules.build_daily_score_sensor(today=clock, minimum_interval_seconds=3600)
    defs = _defs(sensor_def)
    first = _tick(sensor_def, defs, instance, None)
    assert not first.run_requests
    assert first.skip_message.startswith(f"run {result.run_id} already scored today")
    assert json.loads(first.cursor)["fingerprint"] == _fingerprint()
    clock.day = today + dt.timedelta(days=1)
    later = _tick(sensor_def, defs, instance, first.cursor)
    assert not later.run_requests and "unchanged since" in later.skip_message


def test_pipeline_automation_starts_stopped_unless_configured(env, monkeypatch):
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    sched = schedules.build_retrain_schedule(load_settings())
    sensor_def = schedules.build_daily_score_sensor(settings=load_settings())
    assert sched.default_status == DefaultScheduleStatus.STOPPED
    assert sensor_def.default_status == DefaultSensorStatus.STOPPED
    monkeypatch.setenv("HOLLEY_GNN_START_AUTOMATION", "true")
    on = load_settings()
    assert schedules.build_retrain_schedule(on).default_status == DefaultScheduleStatus.RUNNING
    assert (schedules.build_daily_score_sensor(settings=on).default_status
            == DefaultSensorStatus.RUNNING)
    monkeypatch.setenv("HOLLEY_GNN_START_AUTOMATION", "maybe")
    with pytest.raises(SettingsError, match="HOLLEY_GNN_START_AUTOMATION='maybe'"):
        load_settings()


def test_sensor_skips_when_warehouse_missing(instance, env, monkeypatch, tmp_path):
    _promote()
    monkeypatch.setenv("HOLLEY_GNN_WAREHOUSE", str(tmp_path / "absent.duckdb"))
    sensor_def = schedules.build_daily_score_sensor(minimum_interval_seconds=3600)
    data = _tick(sensor_def, _defs(sensor_def), instance, None)
    assert not data.run_requests
    assert "absent.duckdb does not exist" in data.skip_message


# -- BigQuery fingerprint against the local emulator -------------------------------------------


@pytest.mark.bigquery
def test_bigquery_source_data_versions_change_when_a_source_table_changes(bq_client, bq_datasets,
                                                                         bq_warehouse):
    from holley_gnn_assets.defs.sources import LATEST_COLUMN, source_fingerprints
    from holley_gnn_assets.warehouse.base import SOURCE_CONTRACT

    datasets = {"company": bq_datasets.company, "data": bq_datasets.data}
    for role, tables in SOURCE_CONTRACT.items():
        for table in tables:
            table_id = f"{bq_datasets.project}.{datasets[role]}.{table}"
            column = LATEST_COLUMN.get(table, "x")
            bq_client.query(f"CREATE TABLE `{table_id}` AS SELECT TIMESTAMP '2026-01-02' AS "
                            f"{column}").result(timeout=60)
    first = source_fingerprints(bq_warehouse)
    assert len(first) == 7 and first["import_orders"][0] == 1
    assert first["import_orders"][1].startswith("2026-01-02")
    assert first == source_fingerprints(bq_warehouse)
    orders = f"{bq_datasets.project}.{bq_datasets.data}.import_orders"
    bq_client.query(f"INSERT INTO `{orders}` (order_date) VALUES (TIMESTAMP '2026-01-05')"
                    ).result(timeout=60)
    second = source_fingerprints(bq_warehouse)
    assert second["import_orders"][0] == 2 and second["import_orders"][1].startswith("2026-01-05")
    assert {k: v for k, v in second.items() if k != "import_orders"} == {
        k: v for k, v in first.items() if k != "import_orders"}
