"""The output table: the GNN's staged rows copied over ``output.dataset.table`` in the publish
run of a pipeline run whose blocking checks all passed (``defs/publish_runs.py``), only when
``champion_decision`` allows it, as one guarded step with
the champion alias (``recommend/publish.py``): the table replace and its publish-log row in one
transaction, then the alias; a crash between any two steps is reconciled at the next start,
so the table and the registry never disagree for longer than until the next run starts."""


import datetime as dt
import time
from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from holley_gnn_assets.defs.executor import warehouse_retry_policy
from holley_gnn_assets.defs.partitions import DAILY
from holley_gnn_assets.defs.publish_guard import guard_start
from holley_gnn_assets.defs.resources import MlflowTracking, PipelineSettings, WarehouseResource
from holley_gnn_assets.failures import no_retry
from holley_gnn_assets.recommend import publish


@asset(group_name="output", kinds={"duckdb", "bigquery"}, output_required=False,
       partitions_def=DAILY,
       retry_policy=warehouse_retry_policy(), deps=["sql_baseline_recommendations"],
       description="The recommendations table (same schema as the SQL pipeline's), replaced in "
                   "the warehouse in one statement by the publish run of a pipeline run whose "
                   "blocking checks all passed.")
def recommendations_table(
    context: AssetExecutionContext,
    pipeline: PipelineSettings,
    warehouse: WarehouseResource,
    mlflow: MlflowTracking,
    gnn_recommendations: dict[str, Any],
    champion_decision: dict[str, Any],
):
    promotion = champion_decision
    if not promotion["output_allowed"]:
        context.log.warning(f"not written: {promotion.get('reason')}; the output table keeps "
                            "the previous model's recommendations")
        return
    cfg = pipeline.cfg
    wh = warehouse.get()
    start = time.perf_counter()
    with no_retry():
        for message in guard_start(context.instance, pipeline, warehouse, mlflow):
            context.log.warning(message)
        version, promote = _version_to_publish(mlflow, promotion)
        champion = publish.publish(wh, cfg, mlflow.registry(), gnn_recommendations, version,
                                   promote, promotion["source_run_id"])
    if champion:
        context.log.info(f"model version {champion} is the champion now")
    target = wh.table_id(cfg["output"]["dataset"], cfg["output"]["table"])
    yield MaterializeResult(metadata={
        "champion_version": str(champion or promotion.get("champion_version")),
        "model_version": version,
        "publish_log": ".".join(publish.log_table(cfg)),
        "dagster/row_count": gnn_recommendations["rows"],
        "table": target,
        "from_staged": gnn_recommendations["table"],
        "written_at": dt.datetime.now(dt.UTC).isoformat(),
        "seconds": round(time.perf_counter() - start, 2),
        "decision": str(promotion["decision"]),
        "source_run": MetadataValue.dagster_run(promotion["source_run_id"]),
    })


def _version_to_publish(mlflow: MlflowTracking, promotion: dict[str, Any]) -> tuple[str, bool]:
    """The version whose rows are written (the promoted candidate, else the champion) and
    whether the alias moves to it; NoChampionError when there is neither (no champion, no
    output, whatever launched the run)."""
    if promotion.get("promote") and promotion.get("candidate_version"):
        return str(promotion["candidate_version"]), True
    champion = mlflow.registry().champion()
    if champion is None:
        raise publish.NoChampionError(
            f"no champion model in {mlflow.location()}: the output table is not written")
    return str(champion["version"]), False


output_assets = [recommendations_table]
