"""The offline evaluation: every arm's ranked lists at the cutoff (same SQL rules), metrics per
tier with vehicle-clustered intervals and the decision. Whether the candidate model is promoted
is its own step in the publish run (``champion_decision``, ``defs/assets/champion.py``)."""


import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from holley_gnn_assets.config.settings import flatten
from holley_gnn_assets.config.time_windows import TimeWindows
from holley_gnn_assets.defs.k8s_tags import cpu_op_tags
from holley_gnn_assets.defs.partitions import DAILY, window_metadata, windows_of
from holley_gnn_assets.defs.resources import MlflowTracking, PipelineSettings, WarehouseResource
from holley_gnn_assets.evaluation import report as evaluation
from holley_gnn_assets.evaluation import run_history
from holley_gnn_assets.evaluation.markdown import report_markdown
from holley_gnn_assets.evaluation.plots import plot_tiers
from holley_gnn_assets.evaluation.power import power_analysis, power_markdown
from holley_gnn_assets.evaluation.ranked_arms import ranked_arms
from holley_gnn_assets.evaluation.reference_arms import recent_pop, recent_pop_summary
from holley_gnn_assets.evaluation.ui_metadata import (
    chart_markdown,
    decision_table,
    trend_values,
)
from holley_gnn_assets.recommend.apply_rules import run_suffix


@asset(group_name="evaluation", kinds={"python", "sql"},
       op_tags=cpu_op_tags("4", "16Gi"), partitions_def=DAILY,
       description="GNN vs SQL on held-out clicks, per tier, with clustered intervals; the "
                   "decision (promotion: champion_decision).")
def eval_report(
    context: AssetExecutionContext,
    pipeline: PipelineSettings,
    warehouse: WarehouseResource,
    mlflow: MlflowTracking,
    run_window: TimeWindows,
    embeddings: dict[str, Any],
    gnn_recommendations: dict[str, Any],
    sql_baseline_recommendations: dict[str, Any],
    product_nodes: pd.DataFrame,
    user_nodes: pd.DataFrame,
    product_vehicle_edges: pd.DataFrame,
    user_product_edges: pd.DataFrame,
    test_clicks: pd.DataFrame,
    test_events: pd.DataFrame,
    product_order_days: pd.DataFrame,
) -> Output[dict[str, Any]]:
    cfg = pipeline.cfg
    wh = warehouse.get()
    windows = windows_of(context, run_window)
    start = time.perf_counter()
    tables = {"product_nodes": product_nodes, "user_nodes": user_nodes,
              "product_vehicle_edges": product_vehicle_edges,
              "user_product_edges": user_product_edges,
              "product_order_days": product_order_days}
    # the two arms' score tables are in the staging dataset (written by the arms' assets)
    # lookalike_pop pools as many look-alikes as the scoring model's lift does
    pool = int(embeddings["lookalike_lift_neighbours"])
    # each arm's scores are in the staging tables of the run that staged them; the reference
    # arms' are written under this run's name
    recent = recent_pop(tables, cfg)  # its window is chosen once: the arm and the report
    arms = ranked_arms(wh, cfg, windows, tables, pool,
                       {"gnn": gnn_recommendations["run"],
                        "sql": sql_baseline_recommendations["run"]},
                       run_suffix(context.run.root_run_id or context.run.run_id), recent,
                       evaluation.test_window_users(test_clicks, test_events))
    rank_s = time.perf_counter() - start
    report = evaluation.evaluate(arms, user_nodes, test_clicks, test_events, cfg,
                                 as_of=windows.as_of, cutoff=windows.cutoff, windows=windows)
    report["seconds"] = round(time.perf_counter() - start, 2)
    report["ranking_seconds"] = round(rank_s, 2)
    report["lookalike_pop_neighbours"] = pool
    report["recent_pop"] = recent_pop_summary(recent, cfg)
    home = pipeline.home_dir()
    # phase 2: the online test this offline delta would need (users with a vehicle = audience)
    report["power_analysis"] = power_analysis(
        report, cfg["ab_test"], int(user_nodes["vehicle_id"].notna().sum()))
    markdown = (report_markdown(report) + "\n\n## A/B test size (phase 2, cold tier)\n\n"
                + power_markdown(report["power_analysis"]))
    (home / "eval_report.md").write_text(markdown)
    plot = plot_tiers(report, home / "eval_tiers.png")

    (home / "eval_report.json").write_text(json.dumps(report, indent=2, default=str))

    history, comparison = _compare_with_previous_runs(mlflow, cfg)
    context.log.info(f"config {comparison['config_hash'][:10]}: {comparison['change']}")
    run_id = mlflow.start_run(f"eval-{context.run.run_id[:8]}",
                              tags={"dagster_run_id": context.run.run_id, "stage": "eval",
                                    "model_run_id": embeddings["model_run_id"],
                                    run_history.TAG_HASH: comparison["config_hash"],
                                    run_history.TAG_CHANGE: comparison["change"][:5000],
                                    run_history.TAG_DECISION: str(report.get("decision"))})
    mlflow.log_params(run_id, {**flatten(cfg), **evaluation.window_params(report)})
    mlflow.log_metrics(run_id, report_metrics(report))
    runs_md = _log_comparison(mlflow, run_id, cfg, report, comparison, history, home)
    plot_uri = mlflow.log_artifact(run_id, plot, "plots")
    mlflow.log_artifact(run_id, home / "eval_report.json")
    mlflow.log_artifact(run_id, home / "eval_report.md")
    mlflow.end_run(run_id)
    return Output(
        report,
        metadata={
            # first what the run decided (a table shown inline), then the chart (a data URI:
            # the UI opens no local file), then the numbers the Plots tab charts over runs
            "decision": str(report.get("decision")),
            "decision_reason": str(report.get("decision_reason")),
            "per_tier": decision_table(report),
            "chart": MetadataValue.md(chart_markdown(plot)),
            **{key: MetadataValue.float(value) for key, value in trend_values(report).items()},
            "n_test_clicks": int(report.get("n_test_clicks", 0)),
            "test_window_days": int(windows.test_window_days),
            "test_window_reason": windows.test_window_reason,
            **window_metadata(windows),
            "report": MetadataValue.md(markdown),
            "config_hash": comparison["config_hash"],
            "config_change": comparison["change"],
            "runs_compared": MetadataValue.md(runs_md),
            "chart_in_mlflow": plot_uri,
            "mlflow_run_id": run_id,
            "seconds": report["seconds"],
            "ranking_seconds": report["ranking_seconds"],
            "lookalike_pop_neighbours": pool,
        },
    )


EVAL_RUNS = "tags.stage = 'eval' and attributes.status = 'FINISHED'"


def _compare_with_previous_runs(mlflow: MlflowTracking, cfg: dict) -> tuple[list, dict]:
    """The previous eval runs (newest first, as many as the table shows) and this config's
    hash and diff against the newest one's config record."""
    history = [run_history.RunRecord.from_run(r) for r in mlflow.search_runs(
        EVAL_RUNS, max(int(cfg["comparison"]["history_runs"]) - 1, 1))]
    previous = history[0] if history else None
    return history, run_history.compare_with_previous(cfg, previous, previous and (
        mlflow.read_json_artifact(previous.run_id, run_history.CONFIG_ARTIFACT)))


def _log_comparison(mlflow: MlflowTracking, run_id: str, cfg: dict, report: dict[str, Any],
                    comparison: dict[str, Any], history: list, home: Path) -> str:
    """Log the config, its diff against the previous run (with both runs' per-tier deltas)
    and the table of the last runs to MLflow; return the table (Markdown)."""
    current = run_history.RunRecord.from_run(mlflow.client().get_run(run_id))
    table = run_history.history_markdown(run_history.history_frame(
        current, history, int(cfg["comparison"]["history_runs"])))
    out = home / "comparison"
    out.mkdir(exist_ok=True)
    files = {"config.json": cfg, "config_diff.json": {
        **comparison, "tier_deltas": run_history.tier_deltas(report),
        "previous_tier_deltas": history[0].tiers if history else None}}
    for name, payload in files.items():
        (out / name).write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    (out / "run_history.md").write_text(table)
    for name in (*files, "run_history.md"):
        mlflow.log_artifact(run_id, out / name, "comparison")
    return table


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

    walk("", {k: report[k] for k in ("tiers", "n_test_clicks", "n_test_users", "test_window",
                                     "recent_pop") if report.get(k) is not None})
    return out
