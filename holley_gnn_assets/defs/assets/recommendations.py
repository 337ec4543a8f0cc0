"""Both arms' recommendations, built in the warehouse under one rules file, and their QA gates.

Each arm yields a score table; ``sql/rules/recommend.sql`` turns it into the output rows in the
staging dataset. The spec §12 QA gates run on both arms' staged rows (blocking: a failure stops
the run before ``recommendations_table``).
"""


import time
import warnings
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    Failure,
    MetadataValue,
    Output,
    PreviewWarning,
    asset,
    multi_asset_check,
)

from holley_gnn_assets.config.time_windows import TimeWindows
from holley_gnn_assets.defs.assets.exports import SOURCE_KEYS
from holley_gnn_assets.defs.executor import warehouse_retry_policy
from holley_gnn_assets.defs.io_managers import COLUMNS, LAZY, LazyValue
from holley_gnn_assets.defs.k8s_tags import cpu_op_tags
from holley_gnn_assets.defs.partitions import DAILY, window_metadata, windows_of
from holley_gnn_assets.defs.resources import ArtifactsResource, PipelineSettings, WarehouseResource
from holley_gnn_assets.failures import no_retry
from holley_gnn_assets.quality import qa_gates as qa
from holley_gnn_assets.recommend import apply_rules
from holley_gnn_assets.recommend.apply_rules import run_suffix
from holley_gnn_assets.recommend.embeddings import Embeddings
from holley_gnn_assets.recommend.gnn_scores import gnn_arm_scores
from holley_gnn_assets.recommend.sql_baseline import build_sql_scores

_HEAVY = cpu_op_tags("4", "16Gi")  # scoring is a matmul + a warehouse job now
# read lazily (user_nodes only when the lift's weight > 0), only the columns scoring reads
SCORING_INPUTS = {"product_nodes": ["sku", "eligible", "order_count"],
               "user_nodes": ["email_lower", "vehicle_id"],
               "user_product_edges": ["email_lower", "sku"]}


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


@asset(group_name="scoring", kinds={"pytorch", "sql"}, op_tags=_HEAVY, partitions_def=DAILY,
       ins={**{name: AssetIn(metadata={LAZY: True, COLUMNS: cols})
               for name, cols in SCORING_INPUTS.items()},
            "product_vehicle_edges": AssetIn(metadata={COLUMNS: ["vehicle_id", "sku"]})},
       retry_policy=warehouse_retry_policy(),
       description="GNN scores (vehicle and own-node users; vehicle rows plus the model's "
                   "validation-chosen weight x the look-alike count's lift) loaded into the "
                   "warehouse, then the output rows built there by sql/rules/recommend.sql.")
def gnn_recommendations(
    context: AssetExecutionContext,
    pipeline: PipelineSettings,
    warehouse: WarehouseResource,
    artifacts: ArtifactsResource,
    run_window: TimeWindows,
    embeddings: dict[str, Any],
    product_vehicle_edges: pd.DataFrame,
    product_nodes: LazyValue,
    user_nodes: LazyValue,
    user_product_edges: LazyValue,
) -> Output[dict[str, Any]]:
    windows = windows_of(context, run_window)
    with no_retry():  # a bad score table or empty input fails once, at once
        return _gnn_recommendations(context, pipeline, warehouse, artifacts, windows, embeddings,
                                    product_vehicle_edges, product_nodes, user_nodes,
                                    user_product_edges)


def _gnn_recommendations(context: AssetExecutionContext, pipeline: PipelineSettings,
                         warehouse: WarehouseResource, artifacts: ArtifactsResource,
                         windows: TimeWindows,
                         embeddings: dict[str, Any], product_vehicle_edges: pd.DataFrame,
                         product_nodes: LazyValue, user_nodes: LazyValue,
                         user_product_edges: LazyValue) -> Output[dict[str, Any]]:
    cfg = pipeline.cfg
    wh = warehouse.get()
    run = run_suffix(context.run.root_run_id or context.run.run_id)
    emb = Embeddings.load(artifacts.fetch_dir(embeddings["prefix"]))
    start = time.perf_counter()
    weight = float(embeddings["lookalike_lift_weight"])  # chosen in training
    tables = {"product_vehicle_edges": product_vehicle_edges, "product_nodes": product_nodes(),
              "user_product_edges": user_product_edges()}  # own-node users' allowance
    if weight:  # the look-alike count's users are read only when the lift is added
        tables["user_nodes"] = user_nodes()
    pool = int(embeddings["lookalike_lift_neighbours"])
    user_candidates = int(cfg["scale"]["user_candidates"])
    depth = int(cfg["rules"]["candidate_depth"])  # the rules read no vehicle row below it
    scores = gnn_arm_scores(emb, tables, weight, pool, user_candidates, depth)
    score_s = time.perf_counter() - start
    apply_rules.write_scores(wh, cfg, "gnn", scores, run=run)
    load_s = time.perf_counter() - start - score_s
    staged = apply_rules.build_recommendations(wh, cfg, windows, "gnn", windows.as_of, run=run,
                                               group_cut=depth)
    staged["windows"] = windows
    context.log.info(f"gnn: {len(scores):,} score rows ({score_s:.1f}s), loaded ({load_s:.1f}s), "
                     f"{staged['rows']:,} users with recommendations ({staged['seconds']}s)")
    return Output(staged, metadata=_metadata(staged, apply_rules.preview(wh, staged), {
        "score_rows": len(scores), "score_seconds": round(score_s, 2),
        "user_score_rows": int(scores["email_lower"].notna().sum()),
        "user_candidates": user_candidates, "vehicle_candidates": depth,
        "lookalike_lift_weight": weight, "lookalike_lift_neighbours": pool,
        "load_seconds": round(load_s, 2), "model_run_id": embeddings["model_run_id"],
        **window_metadata(windows),
        "seconds": round(time.perf_counter() - start, 2)}))


@asset(group_name="scoring", kinds={"sql"}, deps=SOURCE_KEYS, op_tags=_HEAVY,
       partitions_def=DAILY,
       retry_policy=warehouse_retry_policy(),
       description="Today's SQL pipeline: order-count popularity among fitting parts, under "
                   "the same rules file as the GNN.")
def sql_baseline_recommendations(
    context: AssetExecutionContext, pipeline: PipelineSettings, warehouse: WarehouseResource,
    run_window: TimeWindows,
) -> Output[dict[str, Any]]:
    cfg = pipeline.cfg
    wh = warehouse.get()
    windows = windows_of(context, run_window)
    start = time.perf_counter()
    run = run_suffix(context.run.root_run_id or context.run.run_id)
    with no_retry():  # a missing column or empty input fails once, at once
        scores = build_sql_scores(wh, cfg, windows, run=run)
        staged = apply_rules.build_recommendations(wh, cfg, windows, "sql", windows.as_of,
                                                   run=run)
        staged["windows"] = windows
    context.log.info(f"sql: {scores['rows']:,} score rows ({scores['seconds']}s), "
                     f"{staged['rows']:,} users with recommendations ({staged['seconds']}s)")
    return Output(staged, metadata=_metadata(staged, apply_rules.preview(wh, staged), {
        "score_rows": scores["rows"], "score_seconds": scores["seconds"],
        "user_score_rows": 0,  # vehicle rows only
        **window_metadata(windows),
        "seconds": round(time.perf_counter() - start, 2)}))


def qa_metadata(res: qa.QAResult, arm_asset: str) -> dict[str, Any]:
    """A gate's numbers as separate metadata (failing, threshold, population), then words."""
    meta: dict[str, Any] = {
        "failing": MetadataValue.int(res.count), "threshold": MetadataValue.int(res.threshold),
        "population": MetadataValue.int(res.population),
        "failing_share": MetadataValue.float(round(res.count / res.population, 6)
                                             if res.population else 0.0),
        "failing_counts": res.failing_unit, "threshold_means": "the most failing allowed",
        "population_counts": res.population_unit, "what": res.description, "arm": arm_asset,
    }
    if res.sample_rows:
        meta["samples"] = MetadataValue.json(res.sample_rows[:5])
    return meta


BLOCKED_TAG = "holley-gnn/blocked_by"
"""Run tag naming the first QA gate that stopped the output, with its numbers."""


def blocked_by(arm_asset: str, failed: list[qa.QAResult]) -> Failure:
    """The step's error when gates failed: the gates and their numbers, the table untouched."""
    gates = "; ".join(r.summary().removeprefix("FAILED ") for r in failed)
    first = failed[0]
    return Failure(
        description=f"QA gate stopped the output: {arm_asset} {gates}. recommendations_table "
                    "was not written (it keeps its previous rows).",
        metadata={"gate": f"{arm_asset}:{first.name}", "failing": MetadataValue.int(first.count),
                  "threshold": MetadataValue.int(first.threshold),
                  "population": MetadataValue.int(first.population),
                  "gates_failed": ", ".join(r.name for r in failed)},
        allow_retries=False,
    )


def _qa_check(arm_asset: str):
    with warnings.catch_warnings():  # a partitioned check is a "preview" in 1.13: the run's
        warnings.simplefilter("ignore", PreviewWarning)  # partition reaches its input by it
        specs = [
            AssetCheckSpec(name, asset=arm_asset, blocking=True, description=desc,
                           partitions_def=DAILY)
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
        windows = windows_of(context, staged["windows"])  # the run's, staged with the rows
        failed = []
        for res in qa.run_qa(wh, pipeline.cfg, windows, staged["table"], windows.as_of):
            yield AssetCheckResult(asset_key=arm_asset, check_name=res.name,
                                   passed=bool(res.passed), metadata=qa_metadata(res, arm_asset),
                                   description=res.summary())
            if not res.passed:
                failed.append(res)
        if failed:  # the run's error and a tag (Runs list) say which gate stopped it, in words
            first = failed[0]
            context.instance.add_run_tags(context.run.run_id, {BLOCKED_TAG: (
                f"{arm_asset}:{first.name} failing={first.count} threshold={first.threshold} "
                f"population={first.population}")})
            raise blocked_by(arm_asset, failed)

    return _check


qa_checks = [_qa_check("gnn_recommendations"), _qa_check("sql_baseline_recommendations")]
recommendation_assets = [gnn_recommendations, sql_baseline_recommendations]
