"""The publish run that follows a successful pipeline run (defs/publish_runs.py): which jobs
hold the output, when the sensor requests a publish run, and which source run it may publish.
A real (temporary) Dagster instance; the asset values are small stand-ins."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    Failure,
    RunRequest,
    SkipReason,
    asset,
    build_run_status_sensor_context,
    materialize,
)

from holley_gnn_assets.defs.jobs import PUBLISH_ASSETS
from holley_gnn_assets.defs.publish_guard import in_progress
from holley_gnn_assets.defs.publish_runs import (
    PUBLISHED_BY_TAG,
    SOURCE_RUN_TAG,
    build_publish_sensor,
    check_source,
)
from holley_gnn_assets.recommend.apply_rules import run_suffix


@pytest.fixture
def instance(tmp_path: Path):
    (tmp_path / "dh").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dh")) as inst:
        yield inst


def test_the_pipeline_jobs_never_plan_the_publish_assets() -> None:
    from holley_gnn_assets.definitions import build_defs

    defs = build_defs()
    publish = {k.to_user_string() for k in
               defs.resolve_job_def("publish_job").asset_layer.executable_asset_keys}
    assert publish == set(PUBLISH_ASSETS)
    for name in ("full_retrain_job", "score_job"):
        keys = {k.to_user_string() for k in
                defs.resolve_job_def(name).asset_layer.executable_asset_keys}
        assert "eval_report" in keys and not keys & publish, name


def _sensor_result(instance: DagsterInstance, run: DagsterRun):
    instance.add_run(run)
    event = DagsterEvent(DagsterEventType.PIPELINE_SUCCESS.value, run.job_name)
    sensor = build_publish_sensor()
    context = build_run_status_sensor_context(sensor.name, event, instance, run)
    return sensor(context)


def test_the_sensor_requests_one_publish_run_per_successful_source_run(instance) -> None:
    source = DagsterRun(job_name="score_job", run_id="a" * 36, status=DagsterRunStatus.SUCCESS,
                        tags={"dagster/partition": "2026-12-01"})
    request = _sensor_result(instance, source)
    assert isinstance(request, RunRequest), request
    assert request.tags[SOURCE_RUN_TAG] == source.run_id
    assert request.run_key == f"publish-{source.run_id}"
    assert request.partition_key == "2026-12-01"  # the source run's date, when it has one
    # a publish run of that source exists: nothing more
    instance.add_run(DagsterRun(job_name="publish_job", run_id="b" * 36,
                                status=DagsterRunStatus.SUCCESS,
                                tags={SOURCE_RUN_TAG: source.run_id}))
    again = build_run_status_sensor_context(
        "publish_sensor", DagsterEvent(DagsterEventType.PIPELINE_SUCCESS.value, "score_job"),
        instance, source)
    assert isinstance(build_publish_sensor()(again), SkipReason)


def test_the_sensor_skips_runs_that_holley_gnn_run_publishes_itself(instance) -> None:
    source = DagsterRun(job_name="full_retrain_job", run_id="c" * 36,
                        status=DagsterRunStatus.SUCCESS,
                        tags={PUBLISHED_BY_TAG: "holley-gnn run"})
    result = _sensor_result(instance, source)
    assert isinstance(result, SkipReason) and "holley-gnn run" in result.skip_message


def _run_of(name: str, value: int, instance: DagsterInstance, fail: bool = False) -> str:
    @asset(name=name)
    def stand_in() -> int:
        if fail:
            raise ValueError("blocked")
        return value

    return materialize([stand_in], instance=instance, raise_on_error=False).run_id


def _pipeline_run(instance: DagsterInstance) -> str:
    @asset
    def embeddings() -> int:
        return 1

    @asset
    def gnn_recommendations(embeddings: int) -> int:
        return embeddings

    @asset
    def eval_report(gnn_recommendations: int) -> int:
        return gnn_recommendations

    return materialize([embeddings, gnn_recommendations, eval_report],
                       instance=instance).run_id


def test_only_a_successful_source_whose_values_are_stored_is_published(instance) -> None:
    source = _pipeline_run(instance)
    assert check_source(instance, source, None).run_id == source
    failed = _run_of("sql_baseline_recommendations", 1, instance, fail=True)
    with pytest.raises(Failure, match=r"is FAILURE, not SUCCESS"):
        check_source(instance, failed, None)
    # the whole graph in one run (the UI's "Materialize all"): its own blocking checks gate the
    # step, so its status is not asked; the stored values still must be its own
    with pytest.raises(Failure, match=rf"stored embeddings is from run {source}, not from "):
        check_source(instance, failed, None, current_run_id=failed)
    # a later run stored its own scores: publishing the source now would mix two runs
    later = _run_of("gnn_recommendations", 2, instance)
    with pytest.raises(Failure, match=rf"stored gnn_recommendations is from run {later}, not "
                                      rf"from source run {source}"):
        check_source(instance, source, None)
    with pytest.raises(Failure, match="not in this Dagster instance"):
        check_source(instance, "f" * 36, None)


def test_an_older_date_is_never_published_over_a_newer_one(instance) -> None:
    """A backfilled past date (score_job for 2026-10-30 after 2026-11-01 was published) is
    skipped by the sensor and refused by the publish step; the same date or a later one is not."""
    from dagster import DailyPartitionsDefinition

    days = DailyPartitionsDefinition(start_date="2026-10-01")

    @asset(name="recommendations_table", partitions_def=days)
    def output() -> int:
        return 1

    materialize([output], instance=instance, partition_key="2026-11-01")
    old = DagsterRun(job_name="score_job", run_id="d" * 36, status=DagsterRunStatus.SUCCESS,
                     tags={"dagster/partition": "2026-10-30"})
    skipped = _sensor_result(instance, old)
    assert isinstance(skipped, SkipReason) and "2026-11-01" in skipped.skip_message
    with pytest.raises(Failure, match=r"is for 2026-10-30, but the output table already holds "
                                      r"the lists of 2026-11-01"):
        check_source(instance, old.run_id, "2026-10-30")
    for day, run_id in (("2026-11-01", "e" * 36), ("2026-11-02", "9" * 36)):
        run = DagsterRun(job_name="score_job", run_id=run_id, status=DagsterRunStatus.SUCCESS,
                         tags={"dagster/partition": day})
        assert isinstance(_sensor_result(instance, run), RunRequest), day


def test_a_waiting_publish_run_keeps_its_source_runs_staging(instance) -> None:
    source = DagsterRun(job_name="score_job", run_id="d" * 36, status=DagsterRunStatus.SUCCESS)
    instance.add_run(source)
    assert run_suffix(source.run_id) not in in_progress(instance)
    instance.add_run(DagsterRun(job_name="publish_job", run_id="e" * 36,
                                status=DagsterRunStatus.STARTING,
                                tags={SOURCE_RUN_TAG: source.run_id}))
    assert run_suffix(source.run_id) in in_progress(instance)


def test_the_run_summary_merges_the_pipeline_and_its_publish_run() -> None:
    from dagster import job, op

    from holley_gnn_assets.commands.runner import summarize_runs

    @op
    def fine() -> None:
        pass

    @op
    def refused() -> None:
        raise Failure("source run x is FAILURE, not SUCCESS", allow_retries=False)

    @job
    def pipeline():
        fine()

    @job
    def publishing():
        refused()

    first = pipeline.execute_in_process()
    alone = summarize_runs([first])
    assert alone["success"] and alone["publish_run_id"] is None and alone["failed_steps"] == []
    second = publishing.execute_in_process(raise_on_error=False)
    both = summarize_runs([first, second])
    assert not both["success"] and both["run_id"] == first.run_id
    assert both["publish_run_id"] == second.run_id and both["failed_steps"] == ["refused"]
    assert both["step_errors"]["refused"] == "source run x is FAILURE, not SUCCESS"
