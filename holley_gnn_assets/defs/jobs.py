"""Jobs: weekly full retrain, daily re-scoring with the promoted model.

Both are partitioned by day (``defs/partitions.py``): a run is for one as-of date, its key.
"""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from holley_gnn_assets.defs.freshness import CHECK_KEY

TRAINING_ASSETS = ["heterodata", "gnn_model"]
_PIPELINE = AssetSelection.all() - AssetSelection.checks(CHECK_KEY)
"""Every asset with its checks (external sources are not materializable), but the output's
freshness check: its own sensor runs it right after each write (defs/freshness.py)."""

full_retrain_job = define_asset_job(
    "full_retrain_job",
    selection=_PIPELINE,
    description="Every asset: exports, graph, training, embeddings, both arms, eval, output.",
    # the Helm values' run queue lets one run with this tag at a time (k8s/helm/values.yaml)
    tags={"holley-gnn/pipeline": "retrain"},
)

score_job = define_asset_job(
    "score_job",
    selection=_PIPELINE - AssetSelection.assets(*TRAINING_ASSETS),
    description="Fresh exports, embeddings from the promoted model, both arms, eval, output.",
)
