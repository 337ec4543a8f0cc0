"""Both arms' recommendations, built in the warehouse under one rules file, and their QA gates.

Each arm yields a score table; ``sql/rules/recommend.sql`` turns it into the output rows in the
staging dataset. The spec §12 QA gates run on both arms' staged rows (blocking: a failure stops
the run before ``recommendations_table``).
"""


import time
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    MetadataValue,
    Output,
    asset,
    multi_asset_check,
)

from holley_gnn_assets.defs.assets.exports import SOURCE_KEYS
from holley_gnn_assets.defs.executor import warehouse_retry_policy
from holley_gnn_assets.defs.io_managers import LAZY, LazyValue
from holley_gnn_assets.defs.k8s_tags import cpu_op_tags
from holley_gnn_assets.defs.resources import ArtifactsResource, PipelineSettings, WarehouseResource
from holley_gnn_assets.graph.lookalikes import NEIGHBOURS
from holley_gnn_assets.quality import qa_gates as qa
from holley_gnn_assets.recommend import apply_rules
from holley_gnn_assets.recommend.embeddings import Embeddings
from holley_gnn_assets.recommend.gnn_scores import gnn_arm_scores
from holley_gnn_assets.recommend.sql_baseline import build_sql_scores
from holley_gnn_assets.settings import get_settings

_HEAVY = cpu_op_tags(get_settings(), "4", "16Gi")  # scoring is a matmul + a warehouse job now
LIFT_INPUTS = ("product_nodes", "user_nodes", "user_product_edges")  # the last two: weight > 0


def _metadata(staged: dict[str, Any], preview: pd.DataFrame, extra: dict[str, Any]) -> dict:
    return {
        "dagster/row_count": staged["rows"],
        "staged_table": staged["table"],
        "users_with_4_recs": staged["users_with_4_recs"],
        "users_short_of_4": staged["users_short"],  # of the users with a vehicle
        "users_short_capped": staged["users_short_capped"],  # ... whose candidates were cut
        "users_capped": staged["users_capped"],
        "rules_seconds": staged["seconds"],
        "preview": MetadataValue.md(preview.to_markdown(index=False)),
        **extra,
    }


@asset(group_name="scoring", kinds={"pytorch", "sql"}, op_tags=_HEAVY,
       ins={name: AssetIn(metadata={LAZY: True}) for name in LIFT_INPUTS},
       retry_policy=warehouse_retry_policy(),
       description="GNN scores (vehicle and own-node users; vehicle rows plus the model's "
                   "validation-chosen weight x the look-alike count's lift) loaded into the "
                   "warehouse, then the output rows built there by sql/rules/recommend.sql.")
def gnn_recommendations(
    context: AssetExecutionContext,
    pipeline: PipelineSettings,
    warehouse: WarehouseResource,
    artifacts: ArtifactsResource,
    embeddings: dict[str, Any],
    product_vehicle_edges: pd.DataFrame,
    product_nodes: LazyValue,
    user_nodes: LazyValue,
    user_product_edges: LazyValue,
) -> Output[dict[str, Any]]:
    cfg = pipeline.cfg
    wh = warehouse.get()
    windows = pipeline.windows(wh)
    emb = Embeddings.load(artifacts.fetch_dir(embeddings["prefix"]))
    start = time.perf_counter()
    weight = float(embeddings.get("lookalike_lift_weight") or 0.0)  # chosen in training
    tables = {"product_vehicle_edges": product_vehicle_edges, "product_nodes": product_nodes()}
    if weight:  # the look-alike count's tables are read only when the lift is added
        tables |= {"user_nodes": user_nodes(), "user_product_edges": user_product_edges()}
    pool = int(embeddings.get("lookalike_lift_neighbours") or NEIGHBOURS)
    user_candidates = int(cfg["scale"]["user_candidates"])
    scores = gnn_arm_scores(emb, tables, weight, pool, user_candidates)
    score_s = time.perf_counter() - start
    apply_rules.write_scores(wh, cfg, "gnn", scores)
    load_s = time.perf_counter() - start - score_s
    staged = apply_rules.build_recommendations(wh, cfg, windows, "gnn", windows.as_of)
    context.log.info(f"gnn: {len(scores):,} score rows ({score_s:.1f}s), loaded ({load_s:.1f}s), "
                     f"{staged['rows']:,} users with recommendations ({staged['seconds']}s)")
    return Output(staged, metadata=_metadata(staged, apply_rules.preview(wh, staged), {
        "score_rows": len(scores), "score_seconds": round(score_s, 2),
        "user_score_rows": int(scores["email_lower"].notna().sum()),
        "user_candidates": user_candidates,
        "lookalike_lift_weight": weight, "lookalike_lift_neighbours": pool,
        "load_seconds": round(load_s, 2), "model_run_id": embeddings["model_run_id"],
        "seconds": round(time.perf_counter() - start, 2)}))


@asset(group_name="scoring", kinds={"sql"}, deps=SOURCE_KEYS, op_tags=_HEAVY,
       retry_policy=warehouse_retry_policy(),
       description="Today's SQL pipeline: order-count popularity among fitting parts, under "
                   "the same rules file as the GNN.")
def sql_baseline_recommendations(
    context: AssetExecutionContext, pipeline: PipelineSettings, warehouse: WarehouseResource
) -> Output[dict[str, Any]]:
    cfg = pipeline.cfg
    wh = warehouse.get()
    windows = pipeline.windows(wh)
    start = time.perf_counter()
    scores = build_sql_scores(wh, cfg, windows)
    staged = apply_rules.build_recommendations(wh, cfg, windows, "sql", windows.as_of)
    context.log.info(f"sql: {scores['rows']:,} score rows ({scores['seconds']}s), "
                     f"{staged['rows']:,} users with recommendations ({staged['seconds']}s)")
    return Output(staged, metadata=_metadata(staged, apply_rules.preview(wh, staged), {
        "score_rows": scores["rows"], "score_seconds": scores["seconds"],
        "user_score_rows": 0,  # vehicle rows only
        "seconds": round(time.perf_counter() - start, 2)}))


def _qa_check(arm_asset: str):
    specs = [
        AssetCheckSpec(name, asset=arm_asset, blocking=True, description=desc)
        for name, desc in qa.DESCRIPTIONS.items()
    ]

    @multi_asset_check(
        specs=specs,
        name=f"{arm_asset}_qa",
        ins={"staged": AssetKey(arm_asset)},
        description=f"Spec §12 QA gates on {arm_asset}'s staged rows (sql/qa/qa_checks.sql, run "
                    "in the warehouse); any failure blocks the output table.",
    )
    def _check(
        context: AssetCheckExecutionContext,
        pipeline: PipelineSettings,
        warehouse: WarehouseResource,
        staged: dict[str, Any],
    ):
        wh = warehouse.get()
        windows = pipeline.windows(wh)
        for res in qa.run_qa(wh, pipeline.cfg, windows, staged["table"], windows.as_of):
            meta: dict[str, Any] = {"offending": res.count, "what": res.description,
                                    "arm": arm_asset}
            if res.sample_rows:
                meta["samples"] = MetadataValue.json(res.sample_rows[:5])
            yield AssetCheckResult(asset_key=arm_asset, check_name=res.name,
                                   passed=bool(res.passed), metadata=meta)

    return _check


qa_checks = [_qa_check("gnn_recommendations"), _qa_check("sql_baseline_recommendations")]
recommendation_assets = [gnn_recommendations, sql_baseline_recommendations]
