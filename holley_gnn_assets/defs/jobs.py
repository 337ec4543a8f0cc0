"""Jobs: weekly full retrain, daily re-scoring with the promoted model, and the publish job.

All are partitioned by day (``defs/partitions.py``): a run is for one as-of date, its key.
The pipeline jobs stop at the evaluation: they never plan the publish assets, so a run blocked by
a QA gate leaves ``recommendations_table`` at its last "Materialized" state in the UI. A pipeline
run that succeeded (every blocking check passed) is followed by its own ``publish_job`` run
(``defs/publish_runs.py``): the champion decision, the output table with the alias, the A/B
assignment.
"""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from holley_gnn_assets.defs.freshness import CHECK_KEY

TRAINING_ASSETS = ["heterodata", "gnn_model"]
PUBLISH_GROUP = "output"
PUBLISH_ASSETS = ["champion_decision", "recommendations_table", "ab_assignment"]
"""The ``output`` group's assets: what a publish run writes."""
_NOT_IN_RUNS = AssetSelection.checks(CHECK_KEY)
"""The output's freshness check: its own sensor runs it right after each write
(defs/freshness.py)."""
_PUBLISH = AssetSelection.groups(PUBLISH_GROUP) - _NOT_IN_RUNS
_PIPELINE = AssetSelection.all() - AssetSelection.groups(PUBLISH_GROUP) - _NOT_IN_RUNS
"""Every asset with its checks (external sources are not materializable) up to the evaluation."""

full_retrain_job = define_asset_job(
    "full_retrain_job",
    selection=_PIPELINE,
    description="Exports, graph, training, embeddings, both arms with their QA gates, eval; "
                "publish_job follows a successful run.",
    # the Helm values' run queue lets one run with this tag at a time (k8s/helm/values.yaml)
    tags={"holley-gnn/pipeline": "retrain"},
)

score_job = define_asset_job(
    "score_job",
    selection=_PIPELINE - AssetSelection.assets(*TRAINING_ASSETS),
    description="Fresh exports, embeddings from the promoted model, both arms, eval; "
                "publish_job follows a successful run.",
)

publish_job = define_asset_job(
    "publish_job",
    selection=_PUBLISH,
    description="After a successful pipeline run (tag holley-gnn/source_run): the champion "
                "decision, the output table and the alias in one guarded step, the A/B "
                "assignment.",
)
PIPELINE_JOBS = [full_retrain_job, score_job]
