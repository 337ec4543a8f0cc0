"""Offline evaluation: GNN vs SQL (and reference arms) on held-out clicks and site events.

Users evaluated: test users (clicked in the test window) that have a vehicle; test users without
one are counted separately. Every arm is a ranked long frame [email_lower, rank, sku, score]
produced by the same rules (``sql/rules/recommend.sql`` at the cutoff C); a test user missing
from an arm's lists scores 0 (a miss). The decision rule lives in ``evaluation.decision``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.config.schema import EvalConfig, PipelineConfig
from holley_gnn_assets.config.time_windows import TimeWindows
from holley_gnn_assets.config.validation import typed
from holley_gnn_assets.evaluation import intervals
from holley_gnn_assets.evaluation import statistics as stats
from holley_gnn_assets.evaluation.decision import decide, decision_bands
from holley_gnn_assets.evaluation.metrics import mean_metrics, per_user_metrics
from holley_gnn_assets.evaluation.owner_buckets import by_vehicle_owners, engaged_owners

log = logging.getLogger(__name__)

TIERS = ["cold", "warm", "hot", "all"]
MAIN_ARMS = ("gnn", "sql")


def _tier_users(users: pd.DataFrame, test_users: pd.Index, tier: str) -> pd.DataFrame:
    u = users[users["email_lower"].isin(test_users)]
    return u if tier == "all" else u[u["tier"] == tier]


def _arm_block(
    arms: dict[str, pd.DataFrame], truth_events: pd.DataFrame, tu: pd.DataFrame
) -> dict[str, Any]:
    """Per-arm per-user metrics for the users ``tu`` (email_lower, vehicle_id)."""
    t = truth_events[truth_events["email_lower"].isin(tu["email_lower"])]
    out = {}
    for name, ranked in arms.items():
        r = ranked[ranked["email_lower"].isin(tu["email_lower"])]
        pu = per_user_metrics(r, t).merge(tu[["email_lower", "vehicle_id"]], on="email_lower")
        out[name] = pu.sort_values("email_lower").reset_index(drop=True)
    return out


def _interval(a: np.ndarray, b: np.ndarray, clusters: np.ndarray, ev: dict,
              method: str | None = None) -> intervals.Interval:
    """The 95% interval of mean(a) - mean(b) by ``eval.interval_method`` (or ``method``)."""
    return intervals.delta_interval(a, b, clusters, method or ev["interval_method"],
                                    int(ev["bootstrap_samples"]), int(ev["bootstrap_seed"]),
                                    float(ev["alpha"]))


def _compare(pu_a: pd.DataFrame, pu_b: pd.DataFrame, ev: dict) -> dict[str, Any]:
    a = pu_a["hit_rate@4"].to_numpy()
    b = pu_b["hit_rate@4"].to_numpy()
    clusters = pu_a["vehicle_id"].to_numpy()
    n = len(a)
    method = ev["interval_method"]
    if n == 0:
        return {
            "delta_hit_rate@4": None,
            "mcnemar_p": None,
            "bootstrap_ci95": [None, None],
            "bootstrap_ci95_user_level": [None, None],
            "ci95_method": method,
            "mde_hit_rate@4": None,
            "design_effect": None,
            "n_clusters": 0,
            "effective_clusters": None,
            "interval_reliable": False,
            "interval_note": None,
        }
    alpha = float(ev["alpha"])
    iv = _interval(a, b, clusters, ev)
    iv_user = _interval(a, b, clusters, ev, "user")
    g_eff = intervals.effective_clusters(clusters)
    need = float(ev["min_effective_clusters"])
    return {
        "delta_hit_rate@4": float(a.mean() - b.mean()),
        "mcnemar_p": stats.mcnemar_p(a > 0, b > 0),
        # the decision's interval (key kept for the run history; ci95_method names the method)
        "bootstrap_ci95": [_finite(iv.lo), _finite(iv.hi)],
        "bootstrap_ci95_user_level": [_finite(iv_user.lo), _finite(iv_user.hi)],
        "ci95_method": method,
        "n_clusters": int(pd.Series(clusters).nunique()),
        "effective_clusters": g_eff,
        "interval_reliable": bool(g_eff >= need),
        "interval_note": None if g_eff >= need else (
            f"{g_eff:.1f} effective vehicles < eval.min_effective_clusters={need:g}: no interval "
            "can tell whether the biggest vehicles' users moved together in this test window; "
            "it holds only if they did not (the coverage simulation's dominant-vehicle worlds)"),
        "discordant_share": float(np.mean((a > 0) != (b > 0))),
        "design_effect": stats.design_effect(a - b, clusters),
        # the minimum detectable effect from the same standard error as the interval
        "mde_hit_rate@4": _finite(intervals.mde(iv, alpha, 0.8)),
    }


def _versus(pu_a: pd.DataFrame, pu_b: pd.DataFrame, ev: dict) -> dict[str, Any]:
    """Hit Rate@4 delta of arm a over arm b with its interval (``eval.interval_method``)."""
    a, b = pu_a["hit_rate@4"].to_numpy(), pu_b["hit_rate@4"].to_numpy()
    if len(a) == 0:
        return {"delta_hit_rate@4": None, "bootstrap_ci95": [None, None]}
    iv = _interval(a, b, pu_a["vehicle_id"].to_numpy(), ev)
    return {"delta_hit_rate@4": float(a.mean() - b.mean()),
            "bootstrap_ci95": [_finite(iv.lo), _finite(iv.hi)]}


def test_window_users(test_clicks: pd.DataFrame, test_events: pd.DataFrame | None) -> pd.Index:
    """email_lower of every user with a test click or test-window site event: the users whose
    ranked lists evaluation reads (the SQL twin is the ``test_window_users`` CTE)."""
    users = pd.Index(test_clicks["email_lower"].dropna().unique())
    if test_events is not None:
        users = users.union(pd.Index(test_events["email_lower"].dropna().unique()))
    return users


def _require(df: pd.DataFrame, cols: list[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; has {list(df.columns)}")


def evaluate(
    arms: dict[str, pd.DataFrame],
    users: pd.DataFrame,
    test_clicks: pd.DataFrame,
    test_events: pd.DataFrame | None,
    cfg: PipelineConfig | Mapping[str, Any],
    *,
    as_of: dt.date | None = None,
    cutoff: dt.date | None = None,
    windows: TimeWindows | None = None,
) -> dict[str, Any]:
    """Build the eval_report.json dict. ``arms`` (ranked lists at the cutoff) needs ``gnn`` and
    ``sql``; the other arms (``global_pop``, ``vehicle_pop``, ``lookalike_pop``, ``oracle``...) are
    references.

    ``windows`` (the run's, test window chosen by clicks) adds ``test_window`` to the report;
    when even the widest window held too few clicks the decision carries the small-sample flag
    and is decided by its interval. ``cfg``: the validated config (or a mapping: its ``eval``
    section is validated, a missing key is a SettingsError naming it).
    """
    if windows is not None:
        as_of, cutoff = as_of or windows.as_of, cutoff or windows.cutoff
    for name in MAIN_ARMS:
        if name not in arms:
            raise ValueError(f"evaluate: arms lacks {name!r} (has {sorted(arms)})")
    _require(users, ["email_lower", "vehicle_id", "tier"], "users")
    _require(test_clicks, ["email_lower", "sku"], "test_clicks")
    ev = eval_section(cfg).model_dump()
    clicks = test_clicks[["email_lower", "sku"]].dropna()
    test_user_ids = pd.Index(clicks["email_lower"].unique())
    wanted = test_window_users(clicks, test_events)
    arms = {k: v[v["email_lower"].isin(wanted)] for k, v in arms.items()}
    with_vehicle = users[users["vehicle_id"].notna()]
    eval_user_ids = test_user_ids[test_user_ids.isin(with_vehicle["email_lower"])]
    report: dict[str, Any] = {
        "as_of": as_of.isoformat() if as_of else None,
        "cutoff": cutoff.isoformat() if cutoff else None,
        "n_test_clicks": int(len(test_clicks)),
        "n_test_users": int(len(test_user_ids)),
        "n_test_users_evaluated": int(len(eval_user_ids)),
        "n_test_users_without_vehicle": int(len(test_user_ids) - len(eval_user_ids)),
        "arms": sorted(arms),
        "references": sorted(k for k in arms if k not in MAIN_ARMS),
        "warnings": [],
        "tiers": {},
    }
    if len(test_clicks) == 0:
        report["warnings"].append("empty test set: no clicks in the test window")
    elif len(test_clicks) < int(ev["min_test_clicks"]):
        report["warnings"].append(
            f"only {len(test_clicks)} test clicks (< eval.min_test_clicks={ev['min_test_clicks']}):"
            " differences below the MDE are noise"
        )
    too_few = None
    if windows is not None:
        report["test_window"] = windows.window_summary()
        too_few = _window_too_small(windows, len(test_clicks), report["warnings"])
    report["tiers"] = _tier_report(arms, with_vehicle, eval_user_ids, clicks, ev)
    report.update(_decision(report["tiers"]["cold"], ev, too_few))
    report["power_goal"] = _power_goal(report["tiers"]["cold"], len(test_clicks), ev)
    if report["interval_note"]:
        report["warnings"].append(f"cold tier: {report['interval_note']}")
    if test_events is not None:
        ev_df = test_events[["email_lower", "sku"]].dropna()
        ev_users = pd.Index(ev_df["email_lower"].unique())
        ev_eval = ev_users[ev_users.isin(with_vehicle["email_lower"])]
        report["test_events"] = {
            "n_events": int(len(test_events)),
            "n_users": int(len(ev_users)),
            "n_users_evaluated": int(len(ev_eval)),
            "tiers": _tier_report(arms, with_vehicle, ev_eval, ev_df, ev),
        }
    return report


def eval_section(cfg: PipelineConfig | Mapping[str, Any]) -> EvalConfig:
    """The typed ``eval`` section of ``cfg`` (validated when ``cfg`` is a mapping)."""
    return cfg.eval if isinstance(cfg, PipelineConfig) else typed(cfg["eval"], EvalConfig, "eval")


def _decision(cold: dict[str, Any], ev: dict, too_few: str | None) -> dict[str, Any]:
    """The decision and what it rested on: the interval method, its bands (absolute or relative
    to SQL's cold rate), the small-sample flag and the effective number of vehicles."""
    ci = tuple(np.nan if x is None else x for x in cold["bootstrap_ci95"])
    delta = cold["delta_hit_rate@4"]
    sql_rate = cold["sql"]["hit_rate@4"] if "sql" in cold else None
    decision, reason, band = decide(np.nan if delta is None else delta, ci, cold["n_users"], ev,
                                    too_few_clicks=too_few, sql_rate=sql_rate)
    bands = decision_bands(ev, sql_rate)
    return {"decision": decision, "decision_reason": reason,
            "decision_band": None if band is None else {"name": band, **bands[band]},
            "decision_bands": bands, "interval_method": ev["interval_method"],
            "small_sample": too_few is not None, "small_sample_reason": too_few,
            "effective_clusters": cold.get("effective_clusters"),
            "interval_reliable": cold.get("interval_reliable", False),
            "interval_note": cold.get("interval_note")}


def _power_goal(cold: dict[str, Any], n_clicks: int, ev: dict) -> dict[str, Any]:
    """The cold MDE now and at the power goal (``eval.min_test_clicks``), scaled by the square
    root of the clicks (same users per click and design effect assumed)."""
    goal = int(ev["min_test_clicks"])
    mde = cold["mde_hit_rate@4"]
    at_goal = (mde * (n_clicks / goal) ** 0.5 if mde is not None and n_clicks and goal
               else None)
    return {"min_test_clicks": goal, "test_clicks": n_clicks, "cold_mde": mde,
            "cold_mde_at_min_test_clicks": at_goal}


def _window_too_small(windows: TimeWindows, n_clicks: int, warnings: list[str]) -> str | None:
    """Why the test set is too small for a decision (None: large enough, or not counted)."""
    if windows.window_clicks is None or windows.min_test_clicks is None:
        return None
    if n_clicks != windows.window_clicks:
        warnings.append(f"the test window was chosen on {windows.window_clicks} clicks but the "
                        f"test set holds {n_clicks} (the warehouse changed during the run?)")
    if windows.enough_test_clicks and n_clicks >= windows.min_test_clicks:
        return None
    if not windows.enough_test_clicks:
        return windows.test_window_reason
    return (f"the test set holds {n_clicks} clicks < eval.min_test_clicks="
            f"{windows.min_test_clicks} ({windows.test_window_reason})")


def window_params(report: dict[str, Any]) -> dict[str, str]:
    """The test window actually used, as MLflow params (``test_window.*``); {} without one."""
    w = report.get("test_window")
    if not w:
        return {}
    return {"test_window.days": str(w["days"]), "test_window.cutoff": str(w["cutoff"]),
            "test_window.test_clicks": str(w["test_clicks"]),
            "test_window.reason": str(w["reason"])}


def _tier_report(
    arms: dict[str, pd.DataFrame],
    users: pd.DataFrame,
    eval_ids: pd.Index,
    truth_events: pd.DataFrame,
    ev: dict,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # a user's metrics read only that user's rows: measured once, then each tier's rows taken
    every = _arm_block(arms, truth_events, _tier_users(users, eval_ids, "all"))
    for tier in TIERS:
        tu = _tier_users(users, eval_ids, tier)
        pus = {name: pu[pu["email_lower"].isin(tu["email_lower"])].reset_index(drop=True)
               for name, pu in every.items()}
        block: dict[str, Any] = {"n_users": int(len(tu))}
        for name, pu in pus.items():
            block[name] = mean_metrics(pu)
        block.update(_compare(pus["gnn"], pus["sql"], ev))
        for ref in ("vehicle_pop", "lookalike_pop", "recent_pop"):
            if ref in pus:
                block[f"gnn_vs_{ref}"] = _versus(pus["gnn"], pus[ref], ev)
        if "recent_pop" in pus:  # one change to the SQL ranking: does counting recent orders pay?
            block["recent_pop_vs_sql"] = _versus(pus["recent_pop"], pus["sql"], ev)
        if "oracle" in pus:
            block["headroom_share"] = _headroom(pus, ev)
            # the truth: a GNN above it by more than noise is luck or a leak, never skill
            block["gnn_vs_oracle"] = _versus(pus["gnn"], pus["oracle"], ev)
        if tier == "cold":
            block["by_vehicle_owners"] = by_vehicle_owners(pus, engaged_owners(users))
        out[tier] = block
    return out


def _headroom(pus: dict[str, pd.DataFrame], ev: dict) -> dict[str, Any]:
    """Each arm's share of the oracle's Hit Rate@4 headroom over SQL, with its interval
    (bootstrap clustered by vehicle); null where nothing was measured or there is no room."""
    base, oracle = pus["sql"]["hit_rate@4"].to_numpy(), pus["oracle"]["hit_rate@4"].to_numpy()
    clusters = pus["sql"]["vehicle_id"].to_numpy()
    out: dict[str, Any] = {}
    for arm, pu in pus.items():
        if arm in ("sql", "oracle"):
            continue
        share, (lo, hi) = stats.headroom_share(
            pu["hit_rate@4"].to_numpy(), base, oracle, clusters, int(ev["bootstrap_samples"]),
            int(ev["bootstrap_seed"]), float(ev["alpha"]))
        out[arm] = {"share": _finite(share), "ci95": [_finite(lo), _finite(hi)]}
    return out


def _finite(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)
