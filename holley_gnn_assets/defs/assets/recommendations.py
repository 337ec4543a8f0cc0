"""Both arms, QA gates, evaluation with promotion, and the output table."""


import datetime as dt
import json
import time
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    asset_check,
    multi_asset_check,
)

from holley_gnn_assets.defs.k8s_tags import cpu_op_tags
from holley_gnn_assets.defs.resources import (
    ArtifactsResource,
    MlflowTracking,
    PipelineSettings,
    WarehouseResource,
)
from holley_gnn_assets.evaluation import report as evaluation
from holley_gnn_assets.quality import qa_gates as qa
from holley_gnn_assets.recommend.embeddings import Embeddings
from holley_gnn_assets.recommend.gnn_scores import score_gnn
from holley_gnn_assets.recommend.sql_baseline import run_sql_baseline, sql_ranked_for_test_users
from holley_gnn_assets.settings import flatten, get_settings
from holley_gnn_assets.warehouse.base import DUCKDB_DATASETS, SOURCE_CONTRACT

_HEAVY = cpu_op_tags(get_settings(), "16", "32Gi")  # spec §8: score step 16 CPU, 32 GB
SOURCE_KEYS = [AssetKey([DUCKDB_DATASETS[r], t]) for r, ts in SOURCE_CONTRACT.items() for t in ts]


def _preview(recs: pd.DataFrame, n: int = 5) -> MetadataValue:
    """A few output rows without the email column (no PII in metadata)."""
    cols = [c for c in recs.columns if c != "email_lower"][:11]
    return MetadataValue.md(recs[cols].head(n).to_markdown(index=False))


def _rec_metadata(recs: pd.DataFrame, users: pd.DataFrame | None, seconds: float) -> dict:
    meta: dict[str, Any] = {
        "dagster/row_count": len(recs),
        "users_with_4_recs": int(recs["rec_part_4"].notna().sum()),
        "seconds": round(seconds, 2),
        "preview": _preview(recs),
    }
    if users is not None:
        meta["users_with_vehicle"] = int(users["vehicle_id"].notna().sum())
    return meta


@asset(group_name="scoring", kinds={"pytorch"}, op_tags=_HEAVY,
       description="GNN top-4 per user (fitment-filtered brute force + the shared rules).")
def gnn_recommendations(
    context: AssetExecutionContext,
    pipeline: PipelineSettings,
    warehouse: WarehouseResource,
    artifacts: ArtifactsResource,
    embeddings: dict[str, Any],
    product_nodes: pd.DataFrame,
    user_nodes: pd.DataFrame,
    product_vehicle_edges: pd.DataFrame,
    user_purchases: pd.DataFrame,
) -> Output[pd.DataFrame]:
    windows = pipeline.windows(warehouse.get())
    emb = Embeddings.load(artifacts.fetch_dir(embeddings["prefix"]))
    tables = {"product_nodes": product_nodes, "user_nodes": user_nodes,
              "product_vehicle_edges": product_vehicle_edges, "user_purchases": user_purchases}
    start = time.perf_counter()
    recs, _ = score_gnn(emb, tables, pipeline.cfg, scoring_date=windows.as_of)
    return Output(recs, metadata={**_rec_metadata(recs, user_nodes, time.perf_counter() - start),
                                  "model_run_id": embeddings["model_run_id"]})


@asset(group_name="scoring", kinds={"sql", "duckdb"}, deps=SOURCE_KEYS, op_tags=_HEAVY,
       description="Today's SQL pipeline: order-count popularity among fitting parts.")
def sql_baseline_recommendations(
    context: AssetExecutionContext, pipeline: PipelineSettings, warehouse: WarehouseResource
) -> Output[pd.DataFrame]:
    wh = warehouse.get()
    windows = pipeline.windows(wh)
    start = time.perf_counter()
    recs, _ = run_sql_baseline(wh, pipeline.cfg, windows, scoring_date=windows.as_of,
                                       with_ranked=False)
    return Output(recs, metadata=_rec_metadata(recs, None, time.perf_counter() - start))


QA_SPECS = [
    AssetCheckSpec(name, asset="gnn_recommendations", blocking=True, description=desc,
                   additional_deps=["product_nodes", "user_nodes", "user_purchases"])
    for name, desc in qa.DESCRIPTIONS.items()
]


@multi_asset_check(
    specs=QA_SPECS,
    ins={"recs": AssetKey("gnn_recommendations"), "product_nodes": AssetKey("product_nodes"),
         "user_nodes": AssetKey("user_nodes"), "user_purchases": AssetKey("user_purchases")},
    description="Spec §12 QA gates (sql/qa/qa_checks.sql); any failure blocks the output table.",
)
def gnn_recommendations_qa(
    context: AssetCheckExecutionContext,
    pipeline: PipelineSettings,
    warehouse: WarehouseResource,
    recs: pd.DataFrame,
    product_nodes: pd.DataFrame,
    user_nodes: pd.DataFrame,
    user_purchases: pd.DataFrame,
):
    windows = pipeline.windows(warehouse.get())
    for res in qa.run_qa(recs, product_nodes, user_purchases, user_nodes, pipeline.cfg,
                         windows.as_of):
        meta: dict[str, Any] = {"offending": res.count, "what": res.description}
        if res.sample_rows:
            meta["samples"] = MetadataValue.json(res.sample_rows[:5])
        yield AssetCheckResult(asset_key="gnn_recommendations", check_name=res.name,
                               passed=bool(res.passed), metadata=meta)


@asset(group_name="evaluation", kinds={"python"}, op_tags=_HEAVY, deps=["gnn_recommendations",
                                                         "sql_baseline_recommendations"],
       description="GNN vs SQL on held-out clicks, per tier, with clustered intervals; promotion.")
def eval_report(
    context: AssetExecutionContext,
    pipeline: PipelineSettings,
    warehouse: WarehouseResource,
    artifacts: ArtifactsResource,
    mlflow: MlflowTracking,
    embeddings: dict[str, Any],
    product_nodes: pd.DataFrame,
    user_nodes: pd.DataFrame,
    product_vehicle_edges: pd.DataFrame,
    user_purchases: pd.DataFrame,
    user_product_edges: pd.DataFrame,
    test_clicks: pd.DataFrame,
    test_events: pd.DataFrame,
) -> Output[dict[str, Any]]:
    cfg = pipeline.cfg
    wh = warehouse.get()
    windows = pipeline.windows(wh)
    tables = {"product_nodes": product_nodes, "user_nodes": user_nodes,
              "product_vehicle_edges": product_vehicle_edges, "user_purchases": user_purchases,
              "user_product_edges": user_product_edges}
    start = time.perf_counter()
    emb = Embeddings.load(artifacts.fetch_dir(embeddings["prefix"]))
    eval_users = evaluation.test_window_users(test_clicks, test_events)
    _, gnn_ranked = score_gnn(emb, tables, cfg, scoring_date=windows.cutoff,
                              only_users=eval_users)
    sql_ranked = sql_ranked_for_test_users(wh, cfg, windows, windows.cutoff)
    truth = wh.read_truth() if hasattr(wh, "read_truth") else None
    report = evaluation.evaluate(
        {"gnn": gnn_ranked, "sql": sql_ranked}, user_nodes, test_clicks, test_events, cfg,
        truth, tables=tables, as_of=windows.as_of, cutoff=windows.cutoff,
    )
    report["seconds"] = round(time.perf_counter() - start, 2)
    home = pipeline.home_dir()
    markdown = evaluation.report_markdown(report)
    (home / "eval_report.md").write_text(markdown)
    plot = evaluation.plot_tiers(report, home / "eval_tiers.png")

    registry = artifacts.registry()
    cold_hr = (report["tiers"].get("cold", {}).get("gnn", {}) or {}).get("hit_rate@4")
    decision = None
    if embeddings.get("candidate"):
        decision = registry.consider(
            embeddings["model_run_id"], cold_hr, float(cfg["eval"]["promotion_tolerance"]),
            {"graph_key": embeddings["graph_key"], "eval_as_of": str(windows.as_of)},
        )
        context.log.info(f"promotion: {decision.reason}")
    promoted_id = (registry.promoted() or {}).get("run_id")
    report["promotion"] = {
        "candidate": embeddings["model_run_id"] if embeddings.get("candidate") else None,
        "promoted": bool(decision.promoted) if decision else None,
        "reason": decision.reason if decision else "score-only run: model already chosen",
        "promoted_model": promoted_id,
    }
    (home / "eval_report.json").write_text(json.dumps(report, indent=2, default=str))

    run_id = mlflow.start_run(f"eval-{context.run_id[:8]}",
                              tags={"dagster_run_id": context.run_id, "stage": "eval",
                                    "model_run_id": embeddings["model_run_id"]})
    mlflow.log_params(run_id, flatten(cfg))
    mlflow.log_metrics(run_id, report_metrics(report))
    plot_uri = mlflow.log_artifact(run_id, plot, "plots")
    mlflow.log_artifact(run_id, home / "eval_report.json")
    mlflow.log_artifact(run_id, home / "eval_report.md")
    mlflow.end_run(run_id)
    output_ok = decision is None or decision.promoted
    return Output(
        {**report, "output_allowed": output_ok},
        metadata={
            "decision": str(report.get("decision")),
            "promoted": str(report["promotion"]["promoted"]),
            "promotion_reason": report["promotion"]["reason"],
            "n_test_clicks": int(report.get("n_test_clicks", 0)),
            "report": MetadataValue.md(markdown),
            "comparison_plot": MetadataValue.url(plot_uri),
            "plot_png": MetadataValue.path(str(plot)),
            "mlflow_run_id": run_id,
            "seconds": report["seconds"],
        },
    )


@asset(group_name="output", kinds={"duckdb", "bigquery"}, output_required=False,
       description="The recommendations table (same schema as the SQL pipeline's), written "
                   "atomically only after every blocking check passed.")
def recommendations_table(
    context: AssetExecutionContext,
    pipeline: PipelineSettings,
    warehouse: WarehouseResource,
    gnn_recommendations: pd.DataFrame,
    eval_report: dict[str, Any],
):
    out = pipeline.cfg["output"]
    if not eval_report.get("output_allowed", True):
        context.log.warning("the candidate model was not promoted: the output table keeps the "
                            "previous model's recommendations (not overwritten)")
        return
    wh = warehouse.get()
    wh.write_output_table(gnn_recommendations, out["dataset"], out["table"])
    yield MaterializeResult(metadata={
        "dagster/row_count": len(gnn_recommendations),
        "table": f"{out['dataset']}.{out['table']}",
        "written_at": dt.datetime.now(dt.UTC).isoformat(),
        "decision": str(eval_report.get("decision")),
    })


@asset_check(asset="recommendations_table", blocking=False,
             description="The output table was written within qa.max_output_age_days (7).")
def recommendations_table_fresh(
    context: AssetCheckExecutionContext, pipeline: PipelineSettings
) -> AssetCheckResult:
    event = context.instance.get_latest_materialization_event(AssetKey("recommendations_table"))
    max_days = float(pipeline.cfg["qa"]["max_output_age_days"])
    if event is None:
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN,
                                metadata={"age_days": -1, "detail": "never written"})
    age = (time.time() - event.timestamp) / 86400
    return AssetCheckResult(passed=age <= max_days, severity=AssetCheckSeverity.WARN,
                            metadata={"age_days": round(age, 3), "max_age_days": max_days})


def report_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Numeric leaves of the report's tiers as MLflow metrics (``cold.gnn.hit_rate@4`` ...)."""
    out: dict[str, float] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        elif isinstance(node, list) and len(node) == 2 and prefix.endswith("ci95"):
            walk(prefix + ".lo", node[0])
            walk(prefix + ".hi", node[1])
        elif isinstance(node, int | float) and not isinstance(node, bool):
            out[prefix] = float(node)

    walk("", {k: report[k] for k in ("tiers", "n_test_clicks", "n_test_users") if k in report})
    return out


scoring_assets = [gnn_recommendations, sql_baseline_recommendations, eval_report,
                  recommendations_table]
scoring_checks = [gnn_recommendations_qa, recommendations_table_fresh]
