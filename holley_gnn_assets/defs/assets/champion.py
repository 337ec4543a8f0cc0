"""``champion_decision``: whether the evaluated candidate model becomes the champion, decided in
the publish run (``defs/publish_runs.py``) from the source run's evaluation. The alias itself
moves in ``recommendations_table``, after the output write (``recommend/publish.py``)."""

from typing import Any

from dagster import AssetExecutionContext, MetadataValue, Output, asset

from holley_gnn_assets.defs.partitions import DAILY
from holley_gnn_assets.defs.publish_runs import check_source, source_run_id
from holley_gnn_assets.defs.resources import MlflowTracking, PipelineSettings
from holley_gnn_assets.evaluation.ui_metadata import promotion_text


def cold_hit_rate(eval_report: dict[str, Any]) -> float | None:
    """The GNN's cold-tier Hit Rate@4, or None when the test window had no cold users."""
    cold = eval_report["tiers"].get("cold", {})
    return (cold.get("gnn") or {}).get("hit_rate@4") if cold.get("n_users") else None


@asset(group_name="output", kinds={"mlflow"}, partitions_def=DAILY,
       description="The promotion decision for the source run's candidate model (cold Hit "
                   "Rate@4 against the champion's, eval.promotion_tolerance) and whether the "
                   "output table may be written; a score-only run keeps the champion.")
def champion_decision(
    context: AssetExecutionContext,
    pipeline: PipelineSettings,
    mlflow: MlflowTracking,
    embeddings: dict[str, Any],
    eval_report: dict[str, Any],
) -> Output[dict[str, Any]]:
    partition = context.partition_key if context.has_partition_key else None
    source = check_source(context.instance, source_run_id(context), partition,
                          context.run.run_id)
    registry = mlflow.registry()
    decision = None
    if embeddings.get("candidate"):
        decision = registry.decide(embeddings["model_version"], cold_hit_rate(eval_report),
                                   float(pipeline.cfg["eval"]["promotion_tolerance"]))
        context.log.info(f"promotion: {decision.reason}")
    champion = registry.champion()
    candidate = bool(embeddings.get("candidate"))
    result = {
        "source_run_id": source.run_id,
        "decision": eval_report.get("decision"),
        "candidate_version": embeddings["model_version"] if candidate else None,
        "candidate": embeddings["model_run_id"] if candidate else None,
        "promote": bool(decision.promoted) if decision else None,
        "reason": decision.reason if decision else "score-only run: model already chosen",
        "champion_version": champion["version"] if champion else None,
        "output_allowed": decision is None or decision.promoted,
    }
    return Output(result, metadata={
        "promote": promotion_text(result),
        "promotion_reason": result["reason"],
        "output_allowed": result["output_allowed"],
        "decision": str(result["decision"]),
        "candidate_version": str(result["candidate_version"]),
        "champion_version": str(result["champion_version"]),
        "source_run": MetadataValue.dagster_run(source.run_id),
        "source_job": source.job_name,
    })
