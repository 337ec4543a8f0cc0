"""One publish run per successful pipeline run: how it is requested and what it publishes.

A pipeline run (``full_retrain_job``, ``score_job``) ends at the evaluation. When it succeeded
(every blocking QA gate passed) a ``publish_job`` run follows, tagged with the source run's id
(:data:`SOURCE_RUN_TAG`) and, when the source run has one, its partition key:

- ``holley-gnn run`` launches it in-process right after the pipeline run (same instance) and
  tags the pipeline run :data:`PUBLISHED_BY_TAG`, so the sensor leaves it alone;
- under the daemon, ``publish_sensor`` (a ``run_status_sensor`` on SUCCESS of the pipeline jobs)
  requests it (run key ``publish-<source run id>``).

A blocked pipeline run never plans the publish assets, so ``recommendations_table`` keeps its
last "Materialized" state in the UI. The publish job reads the source run's stored values
(the IO manager keeps the latest value of each asset): :func:`check_source` refuses to publish
when the source run did not succeed, when a later run has replaced those values, or when the
output already holds a later date's lists (a backfill of past dates scores and evaluates them,
it does not move the output back in time).
"""

from __future__ import annotations

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    Failure,
    RunRequest,
    RunsFilter,
    RunStatusSensorContext,
    SensorDefinition,
    SkipReason,
    run_status_sensor,
)

from holley_gnn_assets.defs.jobs import PIPELINE_JOBS, publish_job

SOURCE_RUN_TAG = "holley-gnn/source_run"
"""On a publish run: the id of the pipeline run whose staged rows and evaluation it publishes."""
PUBLISHED_BY_TAG = "holley-gnn/published_by"
"""On a pipeline run whose publish run its launcher starts itself (``cli``): the sensor skips it."""
PARTITION_TAG = "dagster/partition"
OUTPUT = AssetKey("recommendations_table")
READ_FROM_SOURCE = [AssetKey(k) for k in ("embeddings", "gnn_recommendations", "eval_report")]
"""The stored values the publish assets read; each must be the source run's."""


def publish_tags(source: DagsterRun) -> dict[str, str]:
    """Tags of the publish run of ``source``."""
    return {SOURCE_RUN_TAG: source.run_id}


def publish_partition_key(source: DagsterRun) -> str | None:
    """The source run's partition key (the publish run takes the same one), or None."""
    return source.tags.get(PARTITION_TAG)


def _root(instance: DagsterInstance, run_id: str) -> str:
    run = instance.get_run_by_id(run_id)
    return (run.root_run_id or run.run_id) if run is not None else run_id


def _latest_run_id(instance: DagsterInstance, key: AssetKey, partition: str | None) -> str | None:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None),
        limit=1).records
    return records[0].run_id if records else None


def source_run_id(context: AssetExecutionContext) -> str:
    """The run this publish run publishes: its :data:`SOURCE_RUN_TAG`, else (a publish asset
    materialized by hand in the UI) the run that stored the latest ``eval_report``."""
    tagged = context.run.tags.get(SOURCE_RUN_TAG)
    if tagged:
        return tagged
    partition = context.partition_key if context.has_partition_key else None
    latest = _latest_run_id(context.instance, AssetKey("eval_report"), partition)
    if latest is None:
        raise Failure("nothing to publish: eval_report was never materialized (run "
                      "full_retrain_job or score_job first)", allow_retries=False)
    return latest


def newer_published(instance: DagsterInstance, partition: str | None) -> str | None:
    """The as-of date of the published output when it is later than ``partition`` (a
    backfilled past date is scored and evaluated, but its lists never replace newer ones)."""
    records = instance.fetch_materializations(OUTPUT, limit=1).records
    latest = records[0].partition_key if records else None
    return latest if partition and latest and latest > partition else None


def check_source(instance: DagsterInstance, run_id: str, partition: str | None,
                 current_run_id: str | None = None) -> DagsterRun:
    """The source run, when it succeeded (or is ``current_run_id``: the whole graph in one run,
    where the same run's blocking checks gate this step) and the stored values the publish
    assets read are its own (or its re-executions'); a Failure naming what is wrong otherwise."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise Failure(f"source run {run_id} is not in this Dagster instance: nothing published",
                      allow_retries=False)
    if run.status != DagsterRunStatus.SUCCESS and run_id != current_run_id:
        raise Failure(f"source run {run_id} ({run.job_name}) is {run.status.value}, not SUCCESS: "
                      "only a run whose blocking checks all passed is published",
                      allow_retries=False)
    newer = newer_published(instance, partition)
    if newer:
        raise Failure(f"source run {run_id} is for {partition}, but the output table already "
                      f"holds the lists of {newer}: an older date is not published",
                      allow_retries=False)
    root = run.root_run_id or run.run_id
    for key in READ_FROM_SOURCE:
        latest = _latest_run_id(instance, key, partition)
        if latest is None or _root(instance, latest) != root:
            raise Failure(
                f"the stored {key.to_user_string()} is from run {latest}, not from source run "
                f"{run_id}: a later run replaced it, so this publish would mix two runs; "
                "nothing published (the later run publishes its own when it succeeds)",
                allow_retries=False)
    return run


def build_publish_sensor(
        default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING) -> SensorDefinition:
    """``publish_sensor``: a ``publish_job`` run for each successful pipeline run."""

    @run_status_sensor(
        name="publish_sensor",
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=PIPELINE_JOBS,
        request_job=publish_job,
        default_status=default_status,
        description="After each successful full_retrain_job or score_job run: its publish_job "
                    "run (champion decision, output table and alias, A/B assignment). Runs "
                    "published by `holley-gnn run` itself are skipped.",
    )
    def publish_sensor(context: RunStatusSensorContext):
        source = context.dagster_run
        if source.tags.get(PUBLISHED_BY_TAG):
            return SkipReason(f"run {source.run_id} is published by "
                              f"{source.tags[PUBLISHED_BY_TAG]}")
        if context.instance.get_run_ids(RunsFilter(tags={SOURCE_RUN_TAG: source.run_id}),
                                        limit=1):
            return SkipReason(f"run {source.run_id} already has a publish run")
        partition = publish_partition_key(source)
        newer = newer_published(context.instance, partition)
        if newer:
            return SkipReason(f"run {source.run_id} is for {partition}; the output holds "
                              f"{newer}'s lists (a backfilled date is not published)")
        return RunRequest(run_key=f"publish-{source.run_id}", tags=publish_tags(source),
                          partition_key=partition)

    return publish_sensor
