"""A/B readiness (spec section 7, phase 2): the deterministic 50/50 assignment table, written into
the output dataset when the offline decision is ``clear_win`` (or ``ab_test.write_assignment``
says ``always``), and the power analysis of an online test, in the metadata and in MLflow."""


import datetime as dt
import json
from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from holley_gnn_assets.defs.executor import warehouse_retry_policy
from holley_gnn_assets.defs.partitions import DAILY
from holley_gnn_assets.defs.resources import MlflowTracking, PipelineSettings, WarehouseResource
from holley_gnn_assets.evaluation.power import power_analysis, power_markdown, power_metrics
from holley_gnn_assets.recommend import ab_assignment as assignment


@asset(group_name="output", kinds={"duckdb", "bigquery"}, retry_policy=warehouse_retry_policy(),
       partitions_def=DAILY,
       deps=["recommendations_table"],
       description="The A/B assignment (users of the output table, arm 'gnn' or 'sql' by a salted "
                   "hash of email_lower), written on a clear win or on request; the power "
                   "analysis (users per arm, weeks of sends) in the metadata.")
def ab_assignment(
    context: AssetExecutionContext,
    pipeline: PipelineSettings,
    warehouse: WarehouseResource,
    mlflow: MlflowTracking,
    eval_report: dict[str, Any],
) -> MaterializeResult:
    cfg = pipeline.cfg
    ab = cfg["ab_test"]
    wh = warehouse.get()
    decision = eval_report.get("decision")
    write, reason = assignment.should_write(decision, ab["write_assignment"])
    written = assignment.write_assignment(wh, cfg) if write else None
    if written:
        context.log.info(f"A/B assignment written to {written['table']}: {written['users_gnn']} "
                         f"GNN, {written['users_sql']} SQL users ({reason})")
    else:
        context.log.info(f"A/B assignment not written: {reason}")
    audience = written["rows"] if written else assignment.audience_size(wh, cfg)
    analysis = power_analysis(eval_report, ab, audience)
    markdown = power_markdown(analysis)

    home = pipeline.home_dir()
    (home / "ab_power_analysis.md").write_text(markdown)
    (home / "ab_power_analysis.json").write_text(json.dumps(analysis, indent=2))
    run_id = mlflow.start_run(f"ab-{context.run.run_id[:8]}",
                              tags={"dagster_run_id": context.run.run_id, "stage": "ab_test"})
    params = {f"ab_test.{k}": v for k, v in ab.items() if k != "salt"}
    mlflow.log_params(run_id, {**params, "ab_test.salt_id": assignment.salt_id(ab["salt"]),
                               "ab_test.decision": str(decision), "ab_test.written": bool(written),
                               "ab_test.reason": reason})
    mlflow.log_metrics(run_id, power_metrics(analysis))
    mlflow.log_artifact(run_id, home / "ab_power_analysis.md")
    mlflow.log_artifact(run_id, home / "ab_power_analysis.json")
    mlflow.end_run(run_id)

    metadata: dict[str, Any] = {
        "action": "written" if written else "skipped",
        "reason": reason,
        "decision": str(decision),
        "salt_id": assignment.salt_id(ab["salt"]),
        "power_analysis": MetadataValue.md(markdown),
        "detectable": bool(analysis["detectable"]),
        "users_needed_per_arm": analysis["users_per_arm_gnn"],
        "weeks_of_sends": analysis["weeks"],
        "mlflow_run_id": run_id,
    }
    if written:
        metadata.update({
            "table": written["table"],
            "dagster/row_count": written["rows"],
            "users_gnn": written["users_gnn"],
            "users_sql": written["users_sql"],
            "share_gnn": written["share_gnn"],
            "written_at": dt.datetime.now(dt.UTC).isoformat(),
        })
    return MaterializeResult(metadata=metadata)


ab_test_assets = [ab_assignment]
