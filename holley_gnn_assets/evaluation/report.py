"""Offline evaluation: GNN vs SQL (and reference arms) on held-out clicks and site events.

Users evaluated: test users (clicked in the test window) that have a vehicle; test users without
one are counted separately. Every arm is a ranked long frame [email_lower, rank, sku, score]
produced through the same rules; a test user missing from an arm's lists scores 0 (a miss).

Decision rule (spec section 12, on cold users, delta = GNN HR@4 - SQL HR@4, CI = the bootstrap
95% interval clustered by vehicle):
- ``clear_win``: delta >= thresholds.clear_win and CI low > 0;
- ``marginal``: thresholds.marginal <= delta < clear_win and CI low > 0;
- ``worse``: delta < thresholds.worse and CI high < 0;
- ``neutral``: worse <= delta < marginal and the whole CI inside +/- eval.neutral_ci_band;
- otherwise ``inconclusive`` with the reason; ``no_test_data`` when there are no cold test users.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.evaluation import statistics as stats
from holley_gnn_assets.evaluation.metrics import METRICS, mean_metrics, per_user_metrics
from holley_gnn_assets.recommend import rules as R

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


def decide(delta: float, ci: tuple[float, float], n_users: int, ev: dict) -> tuple[str, str]:
    """(decision, reason) from the cold-tier delta and its CI; see the module docstring."""
    if n_users == 0:
        return "no_test_data", "no cold test users with a vehicle"
    th = ev.get("decision_thresholds", {})
    clear, marg, worse = float(th["clear_win"]), float(th["marginal"]), float(th["worse"])
    band = float(ev.get("neutral_ci_band", 0.02))
    lo, hi = ci
    if any(map(math.isnan, (delta, lo, hi))):
        return "inconclusive", "interval undefined"
    if delta >= clear:
        return (
            ("clear_win", "CI excludes 0")
            if lo > 0
            else ("inconclusive", f"delta {delta:+.4f} >= {clear} but CI low {lo:+.4f} <= 0")
        )
    if delta >= marg:
        return (
            ("marginal", "CI excludes 0")
            if lo > 0
            else ("inconclusive", f"delta {delta:+.4f} in marginal range but CI low {lo:+.4f} <= 0")
        )
    if delta < worse:
        return (
            ("worse", "CI excludes 0")
            if hi < 0
            else ("inconclusive", f"delta {delta:+.4f} < {worse} but CI high {hi:+.4f} >= 0")
        )
    if -band <= lo and hi <= band:
        return "neutral", f"CI inside +/-{band}"
    return (
        "inconclusive",
        f"delta {delta:+.4f} is neutral but CI [{lo:+.4f}, {hi:+.4f}] is wider than +/-{band}",
    )


def _compare(pu_a: pd.DataFrame, pu_b: pd.DataFrame, ev: dict) -> dict[str, Any]:
    a = pu_a["hit_rate@4"].to_numpy()
    b = pu_b["hit_rate@4"].to_numpy()
    clusters = pu_a["vehicle_id"].to_numpy()
    n = len(a)
    if n == 0:
        return {
            "delta_hit_rate@4": None,
            "mcnemar_p": None,
            "bootstrap_ci95": [None, None],
            "bootstrap_ci95_user_level": [None, None],
            "mde_hit_rate@4": None,
            "design_effect": None,
        }
    n_boot, seed = int(ev["bootstrap_samples"]), int(ev["bootstrap_seed"])
    alpha = float(ev.get("alpha", 0.05))
    ci = stats.bootstrap_delta_ci(a, b, clusters, n_boot, seed, alpha)
    ci_user = stats.bootstrap_delta_ci(a, b, None, n_boot, seed, alpha)
    deff = stats.design_effect(a - b, clusters)
    discord = float(np.mean((a > 0) != (b > 0)))
    return {
        "delta_hit_rate@4": float(a.mean() - b.mean()),
        "mcnemar_p": stats.mcnemar_p(a > 0, b > 0),
        "bootstrap_ci95": [ci[0], ci[1]],
        "bootstrap_ci95_user_level": [ci_user[0], ci_user[1]],
        "n_clusters": int(pd.Series(clusters).nunique()),
        "discordant_share": discord,
        "design_effect": deff,
        "mde_hit_rate@4": stats.min_detectable_effect(n, discord, alpha, 0.8, deff),
    }


def test_window_users(test_clicks: pd.DataFrame, test_events: pd.DataFrame | None) -> pd.Index:
    """email_lower of every user with a test click or test-window site event: the users whose
    ranked lists evaluation reads (the SQL twin is the ``test_window_users`` CTE)."""
    users = pd.Index(test_clicks["email_lower"].dropna().unique())
    if test_events is not None:
        users = users.union(pd.Index(test_events["email_lower"].dropna().unique()))
    return users


def evaluate(
    arms: dict[str, pd.DataFrame],
    users: pd.DataFrame,
    test_clicks: pd.DataFrame,
    test_events: pd.DataFrame | None,
    cfg: dict,
    truth: pd.DataFrame | None = None,
    *,
    tables: dict[str, pd.DataFrame] | None = None,
    as_of: dt.date | None = None,
    cutoff: dt.date | None = None,
) -> dict[str, Any]:
    """Build the eval_report.json dict. ``arms`` needs ``gnn`` and ``sql``; other arms are
    references. With ``tables`` (product_nodes, product_vehicle_edges, user_purchases,
    user_product_edges) the reference arms are computed here at scoring date ``cutoff``.
    """
    for name in MAIN_ARMS:
        if name not in arms:
            raise ValueError(f"evaluate: arms lacks {name!r} (has {sorted(arms)})")
    R._require(users, ["email_lower", "vehicle_id", "tier"], "users")
    R._require(test_clicks, ["email_lower", "sku"], "test_clicks")
    ev = cfg["eval"]
    clicks = test_clicks[["email_lower", "sku"]].dropna()
    test_user_ids = pd.Index(clicks["email_lower"].unique())
    # keep only the rows of test users (clicks or events): the arms may cover every user
    wanted = test_window_users(clicks, test_events)
    arms = {k: v[v["email_lower"].isin(wanted)] for k, v in arms.items()}
    with_vehicle = users[users["vehicle_id"].notna()]
    eval_user_ids = test_user_ids[test_user_ids.isin(with_vehicle["email_lower"])]
    if tables is not None and cutoff is not None and len(eval_user_ids):
        refs = reference_arms(tables, with_vehicle, cfg, cutoff, truth, only_users=eval_user_ids)
        for k, v in refs.items():
            arms.setdefault(k, v)
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
    report["tiers"] = _tier_report(arms, with_vehicle, eval_user_ids, clicks, ev)
    cold = report["tiers"]["cold"]
    ci = tuple(np.nan if x is None else x for x in cold["bootstrap_ci95"])
    delta = cold["delta_hit_rate@4"]
    decision, reason = decide(np.nan if delta is None else delta, ci, cold["n_users"], ev)
    report["decision"] = decision
    report["decision_reason"] = reason
    if test_events is not None:
        ev_df = test_events[["email_lower", "sku"]].dropna()
        ev_users = pd.Index(ev_df["email_lower"].unique())
        ev_eval = ev_users[ev_users.isin(with_vehicle["email_lower"])]
        ev_arms = arms
        if tables is not None and cutoff is not None and len(ev_eval):
            missing = ev_eval[~ev_eval.isin(eval_user_ids)]
            if len(missing):
                extra = reference_arms(tables, with_vehicle, cfg, cutoff, truth, only_users=missing)
                ev_arms = {
                    k: pd.concat([v, extra[k]]) if k in extra else v for k, v in arms.items()
                }
        report["test_events"] = {
            "n_events": int(len(test_events)),
            "n_users": int(len(ev_users)),
            "n_users_evaluated": int(len(ev_eval)),
            "tiers": _tier_report(ev_arms, with_vehicle, ev_eval, ev_df, ev),
        }
    return report


def _tier_report(
    arms: dict[str, pd.DataFrame],
    users: pd.DataFrame,
    eval_ids: pd.Index,
    truth_events: pd.DataFrame,
    ev: dict,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tier in TIERS:
        tu = _tier_users(users, eval_ids, tier)
        pus = _arm_block(arms, truth_events, tu)
        block: dict[str, Any] = {"n_users": int(len(tu))}
        for name, pu in pus.items():
            block[name] = mean_metrics(pu)
        block.update(_compare(pus["gnn"], pus["sql"], ev))
        out[tier] = block
    return out


def reference_arms(
    tables: dict[str, pd.DataFrame],
    users: pd.DataFrame,
    cfg: dict,
    scoring_date: dt.date,
    truth: pd.DataFrame | None = None,
    only_users: pd.Index | None = None,
) -> dict[str, pd.DataFrame]:
    """Reference rankings through the same rules (purchase exclusion at ``scoring_date``).

    - ``global_pop``: order_count over all eligible products, no fitment filter;
    - ``vehicle_pop``: per vehicle, distinct users of that vehicle with a cart or order
      (user_product_edges.max_event_weight >= 3) before the cutoff, shrunk toward global
      popularity: score = c_vs + m * order_count_s / sum(order_count), m = vehicle_pop_shrinkage
      (the per-vehicle denominator is constant within a vehicle and does not change the order);
    - ``oracle``: synth truth vehicle_preference prob among fitting products (when given).
    """
    rules = R.Rules.from_config(cfg)
    products = tables["product_nodes"]
    catalog = R.ProductCatalog(products, rules)
    depth = rules.rank_depth
    u = users[users["vehicle_id"].notna()][["email_lower", "vehicle_id"]]
    if only_users is not None:
        u = u[u["email_lower"].isin(only_users)]
    purchases = R.purchases_in_window(
        tables["user_purchases"], scoring_date, rules.purchase_exclusion_days
    )
    purchases = purchases[purchases["email_lower"].isin(u["email_lower"])]
    fit = R.fitting_candidates(catalog, tables["product_vehicle_edges"])
    fit = fit[fit["vehicle_id"].isin(u["vehicle_id"])]
    pop = products.set_index("sku")["order_count"].astype(float)
    out: dict[str, pd.DataFrame] = {}

    glob = pd.DataFrame({"g": 0, "sku": pop.index, "score": pop.to_numpy()})
    out["global_pop"] = R.rank_groups_then_users(
        glob, u.assign(g=0)[["email_lower", "g"]], catalog, depth, purchases, group_cols=("g",)
    )

    upe = tables.get("user_product_edges")
    m = float(cfg["eval"].get("vehicle_pop_shrinkage", 20.0))
    share = pop / max(pop.sum(), 1.0)
    if upe is not None and len(upe):
        strong = upe[upe["max_event_weight"] >= 3][["email_lower", "sku"]].drop_duplicates()
        strong = strong.merge(users[["email_lower", "vehicle_id"]].dropna(), on="email_lower")
        c = strong.groupby(["vehicle_id", "sku"]).size().rename("c").reset_index()
    else:
        c = pd.DataFrame({"vehicle_id": [], "sku": [], "c": []})
    vp = fit.merge(c, on=["vehicle_id", "sku"], how="left")
    vp["score"] = vp["c"].fillna(0.0).astype(float) + m * vp["sku"].map(share).fillna(0.0)
    out["vehicle_pop"] = R.rank_groups_then_users(
        vp[["vehicle_id", "sku", "score"]], u, catalog, depth, purchases
    )

    if truth is not None and len(truth):
        R._require(truth, ["vehicle_id", "sku", "prob"], "truth")
        oc = fit.merge(truth[["vehicle_id", "sku", "prob"]], on=["vehicle_id", "sku"])
        oc = oc.rename(columns={"prob": "score"})
        out["oracle"] = R.rank_groups_then_users(oc, u, catalog, depth, purchases)
    return out


def report_markdown(report: dict[str, Any]) -> str:
    """Markdown summary: per tier GNN vs SQL (delta, CI, p), the references, the decision."""
    lines = [
        "# GNN vs SQL offline evaluation",
        "",
        f"as_of {report.get('as_of')}, cutoff {report.get('cutoff')}; "
        f"{report['n_test_clicks']} test clicks, {report['n_test_users']} test users "
        f"({report['n_test_users_evaluated']} with a vehicle evaluated, "
        f"{report['n_test_users_without_vehicle']} without).",
        "",
        f"**Decision (cold users): {report['decision']}** ({report.get('decision_reason')})",
        "",
    ]
    for w in report.get("warnings", []):
        lines.append(f"> warning: {w}")
    lines += [
        "",
        "## Hit Rate@4 per tier",
        "",
        "| tier | users | GNN | SQL | delta | 95% CI (vehicle bootstrap) | McNemar p | MDE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for tier, b in report["tiers"].items():
        ci = b["bootstrap_ci95"]
        ci_s = "n/a" if ci[0] is None else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"
        p = "n/a" if b["mcnemar_p"] is None else f"{b['mcnemar_p']:.3g}"
        d = "n/a" if b["delta_hit_rate@4"] is None else f"{b['delta_hit_rate@4']:+.4f}"
        mde = b.get("mde_hit_rate@4")
        mde_s = (
            "n/a" if mde is None or (isinstance(mde, float) and math.isnan(mde)) else f"{mde:.4f}"
        )
        lines.append(
            f"| {tier} | {b['n_users']} | {b['gnn']['hit_rate@4']:.4f} | "
            f"{b['sql']['hit_rate@4']:.4f} | {d} | {ci_s} | {p} | {mde_s} |"
        )
    arms = report["arms"]
    lines += [
        "",
        "## All metrics per arm (all tiers)",
        "",
        "| arm | " + " | ".join(METRICS) + " |",
        "|---" * (len(METRICS) + 1) + "|",
    ]
    allb = report["tiers"]["all"]
    for arm in arms:
        lines.append(f"| {arm} | " + " | ".join(f"{allb[arm][m]:.4f}" for m in METRICS) + " |")
    lines += [
        "",
        "## Hit Rate@4 per tier, every arm",
        "",
        "| tier | " + " | ".join(arms) + " |",
        "|---" * (len(arms) + 1) + "|",
    ]
    for tier, b in report["tiers"].items():
        lines.append(f"| {tier} | " + " | ".join(f"{b[a]['hit_rate@4']:.4f}" for a in arms) + " |")
    te = report.get("test_events")
    if te:
        lines += [
            "",
            f"## Second test set: site events ({te['n_events']} events, "
            f"{te['n_users_evaluated']} users evaluated), Hit Rate@4",
            "",
            "| tier | users | " + " | ".join(arms) + " | delta GNN-SQL |",
            "|---" * (len(arms) + 3) + "|",
        ]
        for tier, b in te["tiers"].items():
            d = b["delta_hit_rate@4"]
            lines.append(
                f"| {tier} | {b['n_users']} | "
                + " | ".join(f"{b[a]['hit_rate@4']:.4f}" for a in arms)
                + f" | {'n/a' if d is None else f'{d:+.4f}'} |"
            )
    return "\n".join(lines) + "\n"


def plot_tiers(report: dict[str, Any], path: str | Path) -> Path:
    """Bar chart of HR@4 per tier per arm, and the GNN-SQL delta with its 95% CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    tiers = list(report["tiers"])
    arms = report["arms"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(len(arms), 1)
    x = np.arange(len(tiers))
    for i, arm in enumerate(arms):
        ax1.bar(
            x + i * width, [report["tiers"][t][arm]["hit_rate@4"] for t in tiers], width, label=arm
        )
    ax1.set_xticks(x + width * (len(arms) - 1) / 2, tiers)
    ax1.set_ylabel("Hit Rate@4")
    ax1.legend(fontsize=8)
    deltas, err_lo, err_hi = [], [], []
    for t in tiers:
        b = report["tiers"][t]
        d = b["delta_hit_rate@4"] if b["delta_hit_rate@4"] is not None else 0.0
        lo, hi = (d if v is None else v for v in b["bootstrap_ci95"])
        deltas.append(d)
        err_lo.append(max(d - lo, 0.0))
        err_hi.append(max(hi - d, 0.0))
    ax2.bar(x, deltas, color="tab:purple", yerr=[err_lo, err_hi], capsize=4)
    ax2.axhline(0, color="black", lw=0.8)
    ax2.set_xticks(x, tiers)
    ax2.set_ylabel("GNN - SQL Hit Rate@4 (95% CI, vehicle bootstrap)")
    fig.suptitle(f"Decision (cold): {report.get('decision')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
