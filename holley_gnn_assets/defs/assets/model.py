"""Graph, model and embeddings assets (logic in the ML packages)."""


import hashlib
import json
import shutil
import time
from typing import Any

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from holley_gnn_assets.config.settings import flatten
from holley_gnn_assets.defs.executor import training_retry_policy
from holley_gnn_assets.defs.k8s_tags import cpu_op_tags
from holley_gnn_assets.defs.partitions import DAILY
from holley_gnn_assets.defs.publish_guard import guard_start
from holley_gnn_assets.defs.resources import (
    ArtifactsResource,
    MlflowTracking,
    PipelineSettings,
    WarehouseResource,
)
from holley_gnn_assets.failures import EmptyInputError, no_retry
from holley_gnn_assets.graph.builder import build_graph, load_graph, save_graph
from holley_gnn_assets.model import persistence as model_io
from holley_gnn_assets.model.mlflow_model import ARTIFACT_PATH, save_recommender
from holley_gnn_assets.model.user_keys import with_contract_user_ids
from holley_gnn_assets.quality import graph_stats
from holley_gnn_assets.recommend.embeddings import Embeddings, compute_embeddings
from holley_gnn_assets.recommend.publish import NoChampionError
from holley_gnn_assets.recommend.row_budget import check_row_budget
from holley_gnn_assets.storage.artifact_store import (
    checkpoint_key,
    embeddings_prefix,
    heterodata_key,
)
from holley_gnn_assets.training import checkpoints
from holley_gnn_assets.training.curves import plot_training_curves
from holley_gnn_assets.training.loop import train


def _root_run_id(context: AssetExecutionContext) -> str:
    """Run id shared by a run and its re-executions (the registered version's run key, so a
    re-executed scoring step still finds the candidate its run trained)."""
    run = context.run
    return run.root_run_id or run.run_id


@asset(group_name="model", kinds={"pytorch"}, op_tags=cpu_op_tags("4", "16Gi"),
       partitions_def=DAILY,
       description="PyG HeteroData built from the tables.")
def heterodata(
    context: AssetExecutionContext,
    pipeline: PipelineSettings,
    artifacts: ArtifactsResource,
    user_nodes: pd.DataFrame,
    product_nodes: pd.DataFrame,
    vehicle_nodes: pd.DataFrame,
    user_product_edges: pd.DataFrame,
    user_vehicle_edges: pd.DataFrame,
    product_vehicle_edges: pd.DataFrame,
    product_product_edges: pd.DataFrame,
    product_order_days: pd.DataFrame,
) -> Output[dict[str, Any]]:
    tables = {
        "user_nodes": user_nodes, "product_nodes": product_nodes, "vehicle_nodes": vehicle_nodes,
        "user_product_edges": user_product_edges, "user_vehicle_edges": user_vehicle_edges,
        "product_vehicle_edges": product_vehicle_edges,
        "product_product_edges": product_product_edges,
        "product_order_days": product_order_days,  # the prior's recent demand
    }
    with no_retry():
        _require_recommendable(user_nodes, product_vehicle_edges, user_product_edges)
    start = time.perf_counter()
    # users x candidates must fit scale.memory_budget_gb: else a named error, before training
    budget = check_row_budget(tables, pipeline.cfg)
    context.log.info(f"estimated score and rule rows: {budget}")
    bundle = build_graph(tables, pipeline.cfg)
    path = artifacts.work_dir(context.run.run_id) / "heterodata.pt"
    save_graph(bundle, path)
    key = heterodata_key(context.run.run_id)
    uri = artifacts.store().put_file(path, key)
    stats = {k: v for k, v in bundle.stats.items() if isinstance(v, int | float | str)}
    # compared with the last successful run's by the blocking check defs/checks.graph_regression
    regression_stats = graph_stats.as_metadata(graph_stats.graph_stats(bundle.data, tables),
                                               graph_stats.graph_config_hash(pipeline.cfg))
    context.log.info(f"graph built in {time.perf_counter() - start:.1f}s: {stats}")
    return Output(
        {"graph_key": key, "fingerprint": bundle.fingerprint, "stats": bundle.stats},
        metadata={**stats, "estimated_score_rows": budget["rows"],
                  "estimated_score_gb": round(budget["gb"], 3), "snapshot": uri,
                  "fingerprint": bundle.fingerprint,
                  "build_seconds": round(time.perf_counter() - start, 2),
                  "stats_table": MetadataValue.md(_dict_md(bundle.stats)), **regression_stats},
    )


@asset(
    partitions_def=DAILY,
    group_name="model",
    kinds={"pytorch"},
    retry_policy=training_retry_policy(),
    description="HeteroGAT trained on the graph (GPU pod in production; CPU locally).",
)
def gnn_model(
    context: AssetExecutionContext,
    pipeline: PipelineSettings,
    artifacts: ArtifactsResource,
    mlflow: MlflowTracking,
    warehouse: WarehouseResource,
    heterodata: dict[str, Any],
) -> Output[dict[str, Any]]:
    cfg = pipeline.cfg
    with no_retry():  # table and alias agree, the store is there, before any training
        for message in guard_start(context.instance, pipeline, warehouse, mlflow):
            context.log.warning(message)
    graph_file = artifacts.fetch(heterodata["graph_key"])
    bundle = load_graph(graph_file)
    store = artifacts.store()
    run_key = _root_run_id(context)
    # A restarted step (preempted GPU pod), or a new run after a crash (kill -9), resumes from
    # the last checkpoint of the same inputs and config (the graph fingerprint and the config
    # hash name it; one file, written once per epoch). train() refuses a checkpoint whose
    # fingerprint or config does not match.
    ckpt_dir = artifacts.work_dir("checkpoints", run_key)
    same_inputs = hashlib.sha256(
        f"{heterodata['fingerprint']}|{checkpoints.config_hash(cfg)}".encode()).hexdigest()[:16]
    shared_key = checkpoint_key(f"inputs-{same_inputs}", checkpoints.CHECKPOINT_NAME)
    if store.exists(shared_key):
        store.get_file(shared_key, ckpt_dir / checkpoints.CHECKPOINT_NAME)
        context.log.info(f"found checkpoint {shared_key}: resuming if it matches")
    mlflow_run = mlflow.start_run(
        f"train-{context.run.run_id[:8]}",
        tags={"dagster_run_id": context.run.run_id, "stage": "train"}
    )
    mlflow.log_params(mlflow_run, flatten(cfg))
    mlflow.log_params(mlflow_run, {f"graph.{k}": v for k, v in bundle.stats.items()})

    def on_epoch(row: dict) -> None:
        store.put_file(ckpt_dir / checkpoints.CHECKPOINT_NAME, shared_key)
        context.log.info(
            f"epoch {row['epoch']}: train_loss={row['train_loss']:.4f} "
            f"val_loss={row['val_loss']:.4f} val_mrr={row['val_mrr']:.4f} ({row['seconds']:.1f}s)"
        )
        mlflow.log_metrics(
            mlflow_run,
            {k: row[k] for k in ("train_loss", "val_loss", "val_mrr")},
            step=int(row["epoch"]),
        )

    try:
        with no_retry():  # too few interactions to train is the same on every try
            result = train(bundle, cfg, checkpoint_dir=ckpt_dir,
                           device=cfg["training"]["device"], on_epoch=on_epoch, resume=True)
    except Exception:
        mlflow.end_run(mlflow_run, status="FAILED")
        raise
    # the model is stored once: inside its MLflow model (weights + graph snapshot + signature)
    model_path = model_io.save_model(ckpt_dir / "model.pt", result.model, cfg, bundle)
    model_dir = ckpt_dir / ARTIFACT_PATH
    shutil.rmtree(model_dir, ignore_errors=True)  # a restarted step writes it afresh
    save_recommender(model_dir, model_path, graph_file, {
        "graph_key": heterodata["graph_key"], "fingerprint": heterodata["fingerprint"],
        "config_hash": checkpoints.config_hash(cfg), "dagster_run_key": run_key,
        "lookalike_lift_weight": float(result.lift.weight),
        "lookalike_lift_neighbours": int(result.lift.neighbours)})
    mlflow.log_artifacts(mlflow_run, model_dir, ARTIFACT_PATH)
    curves = plot_training_curves(result.history, ckpt_dir / "training_curves.png")
    curve_uri = mlflow.log_artifact(mlflow_run, curves, "plots")
    mlflow.log_metrics(mlflow_run, {"best_val_mrr": result.best_val_mrr,
                                    "epochs_run": result.epochs_run,
                                    "train_wall_s": result.wall_s,
                                    "prior_half_life_days": result.prior_half_life,
                                    "fallback_to_prior": float(result.fallback == "prior"),
                                    **result.lift.metrics()})
    mlflow.end_run(mlflow_run)
    info = {"graph_key": heterodata["graph_key"], "fingerprint": heterodata["fingerprint"],
            "mlflow_run_id": mlflow_run, "best_val_mrr": result.best_val_mrr,
            "config_hash": checkpoints.config_hash(cfg),
            "lookalike_lift_weight": result.lift.weight,
            "lookalike_lift_neighbours": result.lift.neighbours}
    version = mlflow.registry().register(mlflow_run, run_key, info)
    model_uri = mlflow.registry().uri(version)
    context.log.info(f"registered model version {version['version']} ({model_uri}, "
                     f"{version['source']})")
    history = pd.DataFrame(result.history)
    return Output(
        {"run_key": run_key, "model_version": version["version"], **info},
        metadata={
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "best_val_mrr": float(result.best_val_mrr),
            "lookalike_lift_weight": float(result.lift.weight),
            "lookalike_lift_neighbours": result.lift.neighbours,
            "lift_weight_choice": MetadataValue.md(result.lift.markdown()),
            "stopped_early": bool(result.stopped_early),
            "resumed_from_epoch": result.resumed_from_epoch or 0,
            "checkpoint_for_these_inputs": shared_key,
            "wall_seconds": round(result.wall_s, 1),
            "device": str(result.device),
            "fallback": result.fallback or "none",
            "prior_half_life_days": result.prior_half_life,
            "mlflow_run_id": mlflow_run,
            "model": model_uri,
            "model_version": version["version"],
            "training_curves": MetadataValue.url(curve_uri),
            "curves_png": MetadataValue.path(str(curves)),
            "curves_table": MetadataValue.md(
                history[["epoch", "train_loss", "val_loss", "val_mrr"]]
                .round(4).to_markdown(index=False)
            ),
        },
    )


@asset(group_name="model", kinds={"numpy"}, deps=["gnn_model"], partitions_def=DAILY,
       op_tags=cpu_op_tags("4", "16Gi"),
       description="Product and user embeddings from the model scoring should use.")
def embeddings(
    context: AssetExecutionContext,
    artifacts: ArtifactsResource,
    mlflow: MlflowTracking,
    pipeline: PipelineSettings,
    warehouse: WarehouseResource,
    user_nodes: pd.DataFrame,
) -> Output[dict[str, Any]]:
    with no_retry():
        for message in guard_start(context.instance, pipeline, warehouse, mlflow):
            context.log.warning(message)
        chosen, why, candidate = _model_to_score(mlflow, _root_run_id(context))
    registry = mlflow.registry()
    model_uri = registry.uri(chosen)  # models:/NAME@champion, or the candidate's version
    recommender = registry.load(chosen, artifacts.work_dir(context.run.run_id, "model"))
    context.log.info(f"scoring with {model_uri} (pyfunc, graph {recommender.bundle.fingerprint})")
    start = time.perf_counter()
    # the model's graph names users by one-way keys (no email in MLflow): back to the
    # contract's keys of this run's users, so the scores join to the warehouse's users
    bundle = with_contract_user_ids(recommender.bundle, user_nodes["email_lower"])
    emb: Embeddings = compute_embeddings(recommender.model, bundle, user_nodes)
    out_dir = artifacts.work_dir(context.run.run_id, "embeddings")
    emb.save(out_dir)
    prefix = embeddings_prefix(context.run.run_id)
    artifacts.put_dir(out_dir, prefix)
    n_group = int((emb.user_index["source"] == "group").sum())
    # versions registered before the look-alike lift (or its chosen pool) existed: the GNN
    # alone, the config's first pool (model.lookalike_lift_neighbours)
    lift_weight = float(chosen.get("lookalike_lift_weight") or 0.0)
    lift_pool = int(chosen["lookalike_lift_neighbours"] if "lookalike_lift_neighbours" in chosen
                    else pipeline.cfg["model"]["lookalike_lift_neighbours"][0])
    return Output(
        {"prefix": prefix, "model_run_id": chosen["run_id"], "graph_key": chosen["graph_key"],
         "model_version": chosen["version"], "candidate": candidate,
         "lookalike_lift_weight": lift_weight, "lookalike_lift_neighbours": lift_pool},
        metadata={
            "model_run_id": chosen["run_id"], "model_version": chosen["version"],
            "lookalike_lift_weight": lift_weight, "lookalike_lift_neighbours": lift_pool,
            "model_choice": why, "model_uri": model_uri,
            "products": len(emb.product_ids), "group_representations": len(emb.group_keys),
            "users_served_by_group": n_group,
            "users_with_own_embedding": int(len(emb.user_index) - n_group),
            "seconds": round(time.perf_counter() - start, 2),
        },
    )


def _model_to_score(mlflow: MlflowTracking, run_key: str) -> tuple[dict, str, bool]:
    """The version this run scores with (its own candidate, else the champion), why, and
    whether it is a candidate. NoChampionError when neither exists: no output without one."""
    registry = mlflow.registry()
    fresh = registry.latest()
    if fresh is not None and fresh.get("run_id") == run_key:
        return fresh, "trained in this run (candidate; promotion after the output write)", True
    champion = registry.champion()
    if champion is not None:
        return champion, f"models:/{registry.name}@champion", False
    versions = [v["version"] for v in registry.versions()]
    raise NoChampionError(
        f"no champion model in {mlflow.location()} (registered versions: "
        f"{', '.join(versions) or 'none'}): a scoring run writes no output until a "
        "full_retrain_job measures and promotes a model")


def _require_recommendable(user_nodes: pd.DataFrame, product_vehicle_edges: pd.DataFrame,
                           user_product_edges: pd.DataFrame) -> None:
    """EmptyInputError naming what is empty: fitment rows, users with a vehicle."""
    problems = []
    if product_vehicle_edges.empty:
        problems.append("0 fitment rows (product_vehicle_edges is empty: "
                        "vehicle_product_fitment_data has no row that matches a product)")
    if not int(user_nodes["vehicle_id"].notna().sum()):
        problems.append(f"0 users with a vehicle of the fitment table (of {len(user_nodes):,} "
                        "users)")
    if problems:
        raise EmptyInputError("nothing to train on or recommend from: " + "; ".join(problems)
                              + f" ({len(user_product_edges):,} user-product edges)")


def _dict_md(stats: dict[str, Any]) -> str:
    rows = "\n".join(f"| {k} | {json.dumps(v) if isinstance(v, dict) else v} |"
                     for k, v in stats.items())
    return "| statistic | value |\n|---|---|\n" + rows


model_assets = [heterodata, gnn_model, embeddings]
