"""``holley-gnn variant``: one model variant on one world, through the Dagster job, as one row.

The variant runs ``full_retrain_job``'s assets up to ``eval_report`` (exports at the run's
adaptive windows -> graph -> training -> embeddings -> both arms -> the evaluation report, with
their checks) on a copy of the world (never changed), with settings built from the variant's
config overrides (``settings_for_local_run``: private home, MLflow store and IO manager), so a
variant table measures what production runs. The row (cold/warm/hot Hit Rate@4 of every arm,
each arm's share of the oracle's headroom with its interval, the decision, epochs and training
time) is appended to a JSON-lines file; ``variant_table`` renders such a file as the Markdown
variant table.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import AssetKey, AssetSelection, DagsterInstance, ExecuteInProcessResult

from holley_gnn_assets.config.settings import Settings, settings_for_local_run
from holley_gnn_assets.graph.lookalikes import NEIGHBOURS

TIERS = ("cold", "warm", "hot", "history")  # history: warm and hot together
JOB = "full_retrain_job"
REPORT = AssetKey("eval_report")
EVAL_TABLES = ("product_nodes", "user_nodes", "product_vehicle_edges", "user_product_edges",
               "product_order_days", "test_clicks", "test_events")
"""The exported tables the evaluation reads (``eval_report``'s inputs)."""


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["model.vehicle_attributes=true", "training.patience=8"]`` -> nested overrides; each
    value is read as JSON (numbers, booleans, lists), else kept as a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected section.key=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


@dataclass(frozen=True)
class JobRun:
    """One in-process run of the job's assets up to ``eval_report``, and the settings it ran
    under."""

    settings: Settings
    result: ExecuteInProcessResult

    def output(self, asset: str) -> Any:
        """The value an asset returned in this run (by its key, e.g. ``user_nodes``)."""
        for node, out in _OUTPUT_NODES.items():
            if asset in out:
                return self.result.output_for_node(node, asset)
        return self.result.output_for_node(asset)

    def metadata(self, asset: str) -> dict[str, Any]:
        """The materialization metadata of ``asset`` in this run, as plain values."""
        for event in self.result.get_asset_materialization_events():
            mat = event.step_materialization_data.materialization
            if mat.asset_key == AssetKey(asset):
                return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        raise KeyError(f"variant run {self.result.run_id}: {asset} was not materialized")


_OUTPUT_NODES = {
    "node_tables": ("user_nodes", "product_nodes", "vehicle_nodes", "product_order_days"),
    "edge_tables": ("user_product_edges", "user_vehicle_edges", "product_vehicle_edges",
                    "product_product_edges", "user_purchases"),
    "test_tables": ("test_clicks", "test_events"),
}


def run_job_to_report(world: Path, home: Path, overrides: Mapping[str, Any] | None = None,
                      env: Mapping[str, str] | None = None) -> JobRun:
    """Run ``full_retrain_job``'s assets up to ``eval_report`` on the DuckDB file ``world``
    (written: staging tables) with a private ``home``; RuntimeError naming the failed steps
    and their errors when the run fails."""
    from holley_gnn_assets.commands.runner import step_errors
    from holley_gnn_assets.definitions import build_defs
    from holley_gnn_assets.defs.partitions import partition_key_of, run_date

    settings = settings_for_local_run(home, world, overrides, env)
    defs = build_defs(settings)
    selection = AssetSelection.assets(REPORT).upstream().materializable()
    keys = list(selection.resolve(defs.resolve_asset_graph()))
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(JOB).execute_in_process(
            run_config=quiet, instance=instance, asset_selection=keys, raise_on_error=False,
            partition_key=partition_key_of(run_date(settings)))
    if not result.success:
        errors = step_errors(result)
        raise RuntimeError(f"variant run on {world} failed: " + "; ".join(
            f"{step}: {errors.get(step, 'no error recorded')}"
            for step in result.get_failed_step_keys()))
    return JobRun(settings, result)


def evaluate_run(run: JobRun, cfg: Mapping[str, Any], tiers: str = "report") -> dict[str, Any]:
    """The evaluation of ``run``'s ranked lists again under ``cfg`` (same arms, same staged
    scores as its ``eval_report``): ``tiers="report"`` the report's tiers, ``"history"`` warm
    and hot users together (their tier ``hot`` of the result)."""
    from holley_gnn_assets.defs.resources import WarehouseResource
    from holley_gnn_assets.evaluation import report as evaluation
    from holley_gnn_assets.evaluation.ranked_arms import ranked_arms
    from holley_gnn_assets.evaluation.reference_arms import recent_pop, recent_pop_summary
    from holley_gnn_assets.recommend.apply_rules import run_suffix

    cfg = dict(cfg)
    tables = {name: run.output(name) for name in EVAL_TABLES}
    wh = WarehouseResource.from_settings(run.settings).get()
    windows = run.output("run_window")
    pool = int(run.output("embeddings")["lookalike_lift_neighbours"])
    staged = {"gnn": run.output("gnn_recommendations")["run"],
              "sql": run.output("sql_baseline_recommendations")["run"]}
    recent = recent_pop(tables, cfg)
    arms = ranked_arms(wh, cfg, windows, tables, pool, staged, run_suffix(run.result.run_id),
                       recent)
    users, events = tables["user_nodes"], tables["test_events"]
    if tiers == "history":
        users, events = users.assign(tier=users["tier"].replace("warm", "hot")), None
    report = evaluation.evaluate(arms, users, tables["test_clicks"], events, cfg,
                                 windows=windows)
    report["recent_pop"] = recent_pop_summary(recent, cfg)
    return report


def run_variant(world: Path, name: str, overrides: Mapping[str, Any], *,
                world_label: str = "", device: str = "cpu") -> dict[str, Any]:
    """Train and evaluate one variant on a copy of ``world`` through the Dagster job (training
    on ``device``); returns the result row."""
    if not world.exists():
        raise FileNotFoundError(f"variant: world {world} does not exist")
    overrides = {**overrides, "training": {**overrides.get("training", {}), "device": device}}
    tmp = Path(tempfile.mkdtemp(prefix="variant-"))
    try:
        shutil.copy(world, tmp / "world.duckdb")
        run = run_job_to_report(tmp / "world.duckdb", tmp / "home", overrides)
        rep = run.output("eval_report")
        rep["tiers"]["history"] = evaluate_run(run, run.settings.cfg, "history")["tiers"]["hot"]
        model = run.metadata("gnn_model")
        lift = _lift_metrics(run, model["mlflow_run_id"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    overrides["training"].pop("device")
    if not overrides["training"]:
        overrides.pop("training")
    row: dict[str, Any] = {
        "world": world_label or world.stem, "variant": name, "overrides": dict(overrides),
        "decision": rep["decision"], "epochs": model["epochs_run"],
        "best_epoch": model["best_epoch"], "best_val_mrr": model["best_val_mrr"],
        "train_s": round(model["wall_seconds"], 1),
        "lift_weight": model["lookalike_lift_weight"],
        "lift_neighbours": model["lookalike_lift_neighbours"], **lift, "tiers": {},
    }
    for tier in TIERS:
        b = rep["tiers"][tier]
        row["tiers"][tier] = {
            "n": b["n_users"],
            "hit_rate@4": {arm: (b.get(arm) or {}).get("hit_rate@4") for arm in rep["arms"]},
            "headroom_share": b.get("headroom_share"),
            "gnn_minus_sql_ci95": b.get("bootstrap_ci95"),
            "gnn_vs_vehicle_pop": b.get("gnn_vs_vehicle_pop"),
            "gnn_vs_lookalike_pop": b.get("gnn_vs_lookalike_pop"),
            "gnn_vs_recent_pop": b.get("gnn_vs_recent_pop"),
            "recent_pop_vs_sql": b.get("recent_pop_vs_sql"),
        }
    row["recent_pop_days"] = (rep.get("recent_pop") or {}).get("days")
    row["prior_half_life"] = model["prior_half_life_days"]
    row["fallback"] = None if model["fallback"] == "none" else model["fallback"]
    return row


def _lift_metrics(run: JobRun, mlflow_run_id: str) -> dict[str, dict[str, float]]:
    """The look-alike lift's validation MRR per weight and per pool size, as the training step
    logged them to MLflow (``LiftChoice.metrics``)."""
    from holley_gnn_assets.defs.resources import MlflowTracking

    metrics = MlflowTracking.from_settings(run.settings).client().get_run(
        mlflow_run_id).data.metrics
    out: dict[str, dict[str, float]] = {"lift_val_mrr": {}, "lift_count_val_mrr": {}}
    for key, value in metrics.items():
        for prefix, field, cast in (("lift_val_mrr_w", "lift_val_mrr", float),
                                    ("lift_count_val_mrr_k", "lift_count_val_mrr", int)):
            if key.startswith(prefix):
                out[field][str(cast(key.removeprefix(prefix)))] = value
    return out


def _share(h: Mapping[str, Any] | None, arm: str) -> str:
    s = (h or {}).get(arm) or {}
    if s.get("share") is None:
        return "n/a"
    lo, hi = s.get("ci95") or (None, None)
    ci = "" if lo is None else f" [{100 * lo:.0f}, {100 * hi:.0f}]"
    return f"{100 * s['share']:.0f}%{ci}"


def _ratio(hr: Mapping[str, float | None], arm: str) -> str:
    a, sql = hr.get(arm), hr.get("sql")
    return "n/a" if a is None or not sql else f"{a / sql:.2f}x"


def variant_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per (world, variant), the latest row winning; cold Hit Rate@4 of
    every arm, headroom shares (GNN, vehicle_pop, lookalike_pop, the three oracle counts),
    warm/hot GNN/SQL (oracle's ratio), decision, epochs, the look-alike lift's weight, time."""
    latest = {(r["world"], r["variant"]): r for r in rows}
    lines = ["| world | variant | cold n | SQL | GNN | veh. pop | oracle | oracle_observed "
             "| GNN share [95% CI] | veh. pop share | look-alike share | oracle_observed share "
             "| oracle_fitted share | oracle_grouped share | warm GNN/SQL (oracle) "
             "| hot GNN/SQL (oracle) | decision "
             "| epochs (best) | lift w (k) | train s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---|---|---|---|---|---|"
             "---:|---:|"]
    for (world, variant), r in sorted(latest.items()):
        c = r["tiers"]["cold"]
        hr, h = c["hit_rate@4"], c["headroom_share"]
        cells = [f"{hr[a]:.4f}" if hr.get(a) is not None else "n/a"
                 for a in ("sql", "gnn", "vehicle_pop", "oracle", "oracle_observed")]
        wh = [f"{_ratio(r['tiers'][t]['hit_rate@4'], 'gnn')} "
              f"({_ratio(r['tiers'][t]['hit_rate@4'], 'oracle')})" for t in ("warm", "hot")]
        lines.append(f"| {world} | {variant} | {c['n']} | " + " | ".join(cells) + " | "
                     f"{_share(h, 'gnn')} | {_share(h, 'vehicle_pop')} | "
                     f"{_share(h, 'lookalike_pop')} | "
                     f"{_share(h, 'oracle_observed')} | {_share(h, 'oracle_fitted')} | "
                     f"{_share(h, 'oracle_grouped')} | "
                     f"{wh[0]} | {wh[1]} | {r['decision']} | "
                     f"{r['epochs']} ({r['best_epoch']}) | {r.get('lift_weight', 0.0):g} "
                     f"({r.get('lift_neighbours', NEIGHBOURS)}) | "  # rows before the pool existed
                     f"{r['train_s']} |")
    return "\n".join(lines) + "\n"


def _hr(t: Mapping[str, Any] | None, arm: str) -> str:
    v = ((t or {}).get("hit_rate@4") or {}).get(arm)
    return "n/a" if v is None else f"{v:.4f}"


def _delta(v: Mapping[str, Any] | None) -> str:
    if not v or v.get("delta_hit_rate@4") is None:
        return "n/a"
    lo, hi = v["bootstrap_ci95"]
    return f"{v['delta_hit_rate@4']:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def recent_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: recent demand per (world, variant), the latest row winning: cold and
    with-history (warm + hot) Hit Rate@4 of SQL, recent_pop, GNN, oracle, GNN - recent_pop
    with its 95% CI, the headroom shares of GNN, recent_pop and the best truth-reading count,
    recent_pop's window, the prior's half-life and whether the arm fell back to the prior."""
    latest = {(r["world"], r["variant"]): r for r in rows}
    lines = ["| world | variant | tier | n | SQL | recent_pop | GNN | oracle "
             "| GNN - recent_pop [95% CI] | recent_pop - SQL [95% CI] | GNN share "
             "| recent_pop share | oracle_fitted share | N days | half-life | fallback |",
             "|---|---|---|---:|---:|---:|---:|---:|---|---|---|---|---|---:|---:|---|"]
    for (world, variant), r in sorted(latest.items()):
        for tier in ("cold", "history"):
            t = r["tiers"].get(tier)
            if t is None:
                continue
            h = t.get("headroom_share")
            lines.append(
                f"| {world} | {variant} | {tier} | {t['n']} | {_hr(t, 'sql')} | "
                f"{_hr(t, 'recent_pop')} | {_hr(t, 'gnn')} | {_hr(t, 'oracle')} | "
                f"{_delta(t.get('gnn_vs_recent_pop'))} | {_delta(t.get('recent_pop_vs_sql'))} | "
                f"{_share(h, 'gnn')} | {_share(h, 'recent_pop')} | {_share(h, 'oracle_fitted')} | "
                f"{r.get('recent_pop_days')} | {r.get('prior_half_life')} | "
                f"{r.get('fallback')} |")
    return "\n".join(lines) + "\n"
