"""``holley-gnn variant``: one model variant on one world, without Dagster, as one result row.

The steps of ``full_retrain_job`` that decide quality, in process: a copy of the warehouse
(the world is never changed) -> exports at the cutoff -> graph -> training with the variant's
config overrides -> the GNN's and every reference arm's scores through the one rules file ->
the evaluation report. The row (cold/warm/hot Hit Rate@4 of every arm, each arm's share of the
oracle's headroom with its interval, the decision, epochs and training time) is appended to a
JSON-lines file; ``variant_table`` renders such a file as the Markdown variant table.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from holley_gnn_assets.graph.lookalikes import NEIGHBOURS

TIERS = ("cold", "warm", "hot", "history")  # history: warm and hot together


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
class ScoredWorld:
    """One world after training and scoring: every arm's ranked lists and what evaluation
    reads beside them, with the training result and its seconds."""

    arms: dict[str, Any]
    tables: dict[str, Any]
    windows: Any
    result: Any
    train_s: float
    recent: Any  # recent_pop's scores and window (reference_arms.recent_pop), chosen once


def score_world(world: Path, cfg: Mapping[str, Any], workdir: Path,
                device: str = "cpu") -> ScoredWorld:
    """Exports -> graph -> training -> every arm's ranked lists, on the warehouse ``world``
    itself (its staging tables are written)."""
    from holley_gnn_assets.evaluation.ranked_arms import ranked_arms
    from holley_gnn_assets.evaluation.reference_arms import recent_pop
    from holley_gnn_assets.graph.builder import build_graph
    from holley_gnn_assets.recommend import apply_rules
    from holley_gnn_assets.recommend.embeddings import compute_embeddings
    from holley_gnn_assets.recommend.gnn_scores import gnn_arm_scores
    from holley_gnn_assets.recommend.sql_baseline import build_sql_scores
    from holley_gnn_assets.time_windows import TimeWindows
    from holley_gnn_assets.training.loop import train
    from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
    from holley_gnn_assets.warehouse.exports import run_exports

    wh = DuckDBWarehouse(str(world))
    windows = TimeWindows.from_config(cfg, wh.synthetic_as_of())
    tables = run_exports(wh, cfg, windows)
    bundle = build_graph(tables, cfg)
    t0 = time.perf_counter()
    result = train(bundle, cfg, workdir / "checkpoints", device=device, resume=False)
    train_s = time.perf_counter() - t0
    emb = compute_embeddings(result.model, bundle, tables["user_nodes"])
    lift = result.lift
    apply_rules.write_scores(wh, cfg, "gnn",
                             gnn_arm_scores(emb, tables, lift.weight, lift.neighbours,
                                            int(cfg["scale"]["user_candidates"])))
    build_sql_scores(wh, cfg, windows)
    recent = recent_pop(tables, cfg)
    arms = ranked_arms(wh, cfg, windows, tables, lift.neighbours, recent=recent)
    return ScoredWorld(arms, tables, windows, result, train_s, recent)


def evaluate_scored(scored: ScoredWorld, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluation report of a ``score_world`` result under ``cfg``'s eval settings."""
    from holley_gnn_assets.evaluation import report as evaluation
    from holley_gnn_assets.evaluation.reference_arms import recent_pop_summary

    tables, windows = scored.tables, scored.windows
    report = evaluation.evaluate(scored.arms, tables["user_nodes"], tables["test_clicks"],
                                 tables["test_events"], cfg, as_of=windows.as_of,
                                 cutoff=windows.cutoff)
    report["recent_pop"] = recent_pop_summary(scored.recent, cfg)
    # users with history (warm and hot together): the hot tier of the same evaluation with
    # every warm user counted as hot
    merged = tables["user_nodes"].assign(tier=tables["user_nodes"]["tier"].replace("warm", "hot"))
    both = evaluation.evaluate(scored.arms, merged, tables["test_clicks"], None, cfg,
                               as_of=windows.as_of, cutoff=windows.cutoff)
    report["tiers"]["history"] = both["tiers"]["hot"]
    return report


def evaluate_world(world: Path, cfg: Mapping[str, Any], workdir: Path,
                   device: str = "cpu") -> tuple[dict[str, Any], Any, float]:
    """``score_world`` then ``evaluate_scored``; returns (report, training result, training
    seconds)."""
    scored = score_world(world, cfg, workdir, device)
    return evaluate_scored(scored, cfg), scored.result, scored.train_s


def run_variant(world: Path, name: str, overrides: Mapping[str, Any], *,
                world_label: str = "", device: str = "cpu") -> dict[str, Any]:
    """Train and evaluate one variant on a copy of ``world``; returns the result row."""
    from holley_gnn_assets.settings import load_config

    if not world.exists():
        raise FileNotFoundError(f"variant: world {world} does not exist")
    cfg = load_config(overrides=dict(overrides))
    tmp = Path(tempfile.mkdtemp(prefix="variant-"))
    try:
        shutil.copy(world, tmp / "world.duckdb")
        rep, res, train_s = evaluate_world(tmp / "world.duckdb", cfg, tmp, device)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    row: dict[str, Any] = {
        "world": world_label or world.stem, "variant": name, "overrides": dict(overrides),
        "decision": rep["decision"], "epochs": res.epochs_run, "best_epoch": res.best_epoch,
        "best_val_mrr": res.best_val_mrr, "train_s": round(train_s, 1),
        "lift_weight": res.lift.weight, "lift_neighbours": res.lift.neighbours,
        "lift_val_mrr": {str(w): m for w, m in res.lift.val_mrr.items()},
        "lift_count_val_mrr": {str(k): m for k, m in res.lift.count_val_mrr.items()},
        "tiers": {},
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
    row["prior_half_life"] = res.prior_half_life
    row["fallback"] = res.fallback
    return row


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
