"""The output table: the GNN's staged rows copied over ``output.dataset.table`` in one statement,
only after every blocking check passed and only when the evaluation allows it; a candidate
model becomes the champion only after its rows are in place, so the table and the registry
never disagree (a failed write leaves both as they were)."""


import datetime as dt
import time
from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, asset

from holley_gnn_assets.defs.executor import warehouse_retry_policy
from holley_gnn_assets.defs.resources import MlflowTracking, PipelineSettings, WarehouseResource
from holley_gnn_assets.recommend import apply_rules


@asset(group_name="output", kinds={"duckdb", "bigquery"}, output_required=False,
       retry_policy=warehouse_retry_policy(), deps=["sql_baseline_recommendations"],
       description="The recommendations table (same schema as the SQL pipeline's), replaced in "
                   "the warehouse in one statement only after every blocking check passed.")
def recommendations_table(
    context: AssetExecutionContext,
    pipeline: PipelineSettings,
    warehouse: WarehouseResource,
    mlflow: MlflowTracking,
    gnn_recommendations: dict[str, Any],
    eval_report: dict[str, Any],
):
    promotion = eval_report.get("promotion") or {}
    if not eval_report.get("output_allowed", False):
        context.log.warning(f"not written: {promotion.get('reason')}; the output table keeps "
                            "the previous model's recommendations")
        return
    wh = warehouse.get()
    start = time.perf_counter()
    target = apply_rules.publish(wh, pipeline.cfg, gnn_recommendations)
    champion = None
    if promotion.get("promote") and promotion.get("candidate_version"):
        champion = mlflow.registry().promote(promotion["candidate_version"])["version"]
        context.log.info(f"model version {champion} is the champion now")
    yield MaterializeResult(metadata={
        "champion_version": str(champion or promotion.get("champion_version")),
        "dagster/row_count": gnn_recommendations["rows"],
        "table": target,
        "from_staged": gnn_recommendations["table"],
        "written_at": dt.datetime.now(dt.UTC).isoformat(),
        "seconds": round(time.perf_counter() - start, 2),
        "decision": str(eval_report.get("decision")),
    })


output_assets = [recommendations_table]
