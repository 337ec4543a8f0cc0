"""The evaluation report as Markdown (Dagster metadata, MLflow artifact, ``holley-gnn run``)."""

from __future__ import annotations

import math
from typing import Any

from holley_gnn_assets.evaluation.metrics import METRICS


def _num(value: float | None, fmt: str = ".4f") -> str:
    """A metric for a table cell: ``n/a`` where nothing was measured."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, fmt)


def _section(title: str, columns: list[str]) -> list[str]:
    """A Markdown section heading and the header of its table."""
    return ["", f"## {title}", "", "| " + " | ".join(columns) + " |",
            "|---" * len(columns) + "|"]


def _window_lines(window: dict[str, Any] | None) -> list[str]:
    """The test window used and why (none for a report without one)."""
    if not window:
        return []
    return [f"Test window: {window['days']} d, [{window['cutoff']}, {window['as_of']}): "
            f"{window['reason']}.", ""]


def _interval_lines(report: dict[str, Any]) -> list[str]:
    """How the decision was reached: the interval method, the band that decided (absolute or
    relative to SQL's rate), the small-sample and too-few-vehicles flags."""
    if "interval_method" not in report:
        return []
    out = [f"Interval: {report['interval_method']} (eval.interval_method, chosen by simulated "
           f"coverage); effective vehicles {_num(report.get('effective_clusters'), '.1f')}."]
    band = report.get("decision_band")
    if band:
        out.append(f"Deciding band: {band['name']} = {band['value']:+.4f} ({band['source']} "
                   f"band; absolute {band['absolute']:+g}, relative {band['relative_factor']:g}"
                   f" x SQL rate = {_num(band['relative'], '+.4f')}; eval.band_rule).")
    if report.get("small_sample"):
        out.append(f"Small test set: {report['small_sample_reason']}; decided by the interval.")
    goal = report.get("power_goal")
    if goal and goal["cold_mde_at_min_test_clicks"] is not None:
        out.append(f"Cold MDE {_num(goal['cold_mde'])} on {goal['test_clicks']:,} test clicks; "
                   f"{_num(goal['cold_mde_at_min_test_clicks'])} expected at the power goal of "
                   f"{goal['min_test_clicks']:,} (eval.min_test_clicks).")
    if report.get("interval_note"):
        out.append(f"Interval unreliable: {report['interval_note']}.")
    return [*(f"{line}  " for line in out[:-1]), out[-1], ""]


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
        *_window_lines(report.get("test_window")),
        f"**Decision (cold users): {report['decision']}** ({report.get('decision_reason')})",
        "",
        *_interval_lines(report),
    ]
    for w in report.get("warnings", []):
        lines.append(f"> warning: {w}")
    method = report["interval_method"]
    lines += _section("Hit Rate@4 per tier", ["tier", "users", "GNN", "SQL", "delta",
                                               f"95% CI ({method})", "McNemar p", "MDE",
                                               "effective vehicles"])
    for tier, b in report["tiers"].items():
        ci = b["bootstrap_ci95"]
        ci_s = "n/a" if ci[0] is None else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"
        lines.append(
            f"| {tier} | {b['n_users']} | {_num(b['gnn']['hit_rate@4'])} | "
            f"{_num(b['sql']['hit_rate@4'])} | {_num(b['delta_hit_rate@4'], '+.4f')} | {ci_s} | "
            f"{_num(b['mcnemar_p'], '.3g')} | {_num(b.get('mde_hit_rate@4'))} | "
            f"{_num(b.get('effective_clusters'), '.1f')} |"
        )
    arms = report["arms"]
    lines += _section("All metrics per arm (all tiers)", ["arm", *METRICS])
    allb = report["tiers"]["all"]
    for arm in arms:
        lines.append(f"| {arm} | " + " | ".join(_num(allb[arm][m]) for m in METRICS) + " |")
    lines += _section("Hit Rate@4 per tier, every arm", ["tier", *arms])
    for tier, b in report["tiers"].items():
        lines.append(f"| {tier} | " + " | ".join(_num(b[a]["hit_rate@4"]) for a in arms) + " |")
    head = {tier: b["headroom_share"] for tier, b in report["tiers"].items()
            if "headroom_share" in b}
    if head:
        refs = sorted({arm for block in head.values() for arm in block})
        lines += _section("Share of the oracle's headroom over SQL (Hit Rate@4, 95% CI by "
                          "vehicle)", ["tier", "oracle - SQL", *refs])
        for tier, block in head.items():
            b = report["tiers"][tier]
            room = (None if b["oracle"]["hit_rate@4"] is None
                    else b["oracle"]["hit_rate@4"] - b["sql"]["hit_rate@4"])
            cells = []
            for arm in refs:
                s = block.get(arm, {})
                lo, hi = s.get("ci95", [None, None])
                ci = "" if lo is None else f" [{lo:+.0%}, {hi:+.0%}]"
                cells.append("n/a" if s.get("share") is None else f"{s['share']:.0%}{ci}")
            lines.append(f"| {tier} | {_num(room, '+.4f')} | " + " | ".join(cells) + " |")
        if "oracle_observed" in refs:
            lines += ["", "oracle_observed: the oracle with each product's observed order count "
                      "in place of its true demand: what the structure is worth on top of the "
                      "order counts; a model that also learns popularity from views, carts and "
                      "clicks can pass it."]
        if "lookalike_pop" in refs:
            k = report.get("lookalike_pop_neighbours")  # set by eval_report: no pool guessed
            pool = "" if k is None else f"{k} "
            lines += ["", f"lookalike_pop: each vehicle's {pool}most fitment-similar vehicles (the "
                      "scoring model's pool, model.lookalike_lift_neighbours) and their "
                      "owners' interactions, counted "
                      "against what the order counts predict: what the graph gives without a "
                      "model. The GNN arm adds this count's lift to its vehicle scores with a "
                      "weight chosen on validation (0: the GNN alone); its share above the "
                      "count is what the model adds."]
        if "oracle_fitted" in refs:
            lines += ["", "oracle_fitted: the world's vehicle groups and product clusters known "
                      "exactly, each (group, cluster) affinity counted from the training "
                      "interactions: what the training data is worth to a model that already "
                      "knew the structure the GNN has to discover."]
        if "oracle_grouped" in refs:
            lines += ["", "oracle_grouped: the same count with the vehicle groups known and each "
                      "product counted on its own (no clusters): the most pooling over "
                      "look-alikes (lookalike_pop) can give."]
    versus = [(t, ref, b[f"gnn_vs_{ref}"]) for t, b in report["tiers"].items()
              for ref in ("vehicle_pop", "lookalike_pop", "oracle") if f"gnn_vs_{ref}" in b]
    if versus:
        lines += _section("GNN vs the per-vehicle count (vehicle_pop), the count over fitment "
                          "look-alikes (lookalike_pop) and the oracle, Hit Rate@4, 95% CI by "
                          "vehicle", ["tier", "reference", "delta", "CI"])
        for tier, ref, v in versus:
            lo, hi = v["bootstrap_ci95"]
            ci = "n/a" if lo is None else f"[{lo:+.4f}, {hi:+.4f}]"
            lines.append(f"| {tier} | {ref} | {_num(v['delta_hit_rate@4'], '+.4f')} | {ci} |")
    lines += _recent_lines(report)
    buckets = report["tiers"].get("cold", {}).get("by_vehicle_owners")
    if buckets:
        lines += _section("Cold users by their vehicle's engaged (warm/hot) owners, Hit Rate@4",
                          ["engaged owners", "users", "vehicles", *arms, "GNN - SQL"])
        for b in buckets:
            hr = b["hit_rate@4"]
            gap = None if hr.get("gnn") is None else hr["gnn"] - hr["sql"]
            lines.append(f"| {b['owners']} | {b['n_users']} | {b['n_vehicles']} | "
                         + " | ".join(_num(hr.get(a)) for a in arms) + f" | {_num(gap, '+.4f')} |")
    te = report.get("test_events")
    if te:
        lines += _section(f"Second test set: site events ({te['n_events']} events, "
                          f"{te['n_users_evaluated']} users evaluated), Hit Rate@4",
                          ["tier", "users", *arms, "delta GNN-SQL"])
        for tier, b in te["tiers"].items():
            lines.append(
                f"| {tier} | {b['n_users']} | "
                + " | ".join(_num(b[a]["hit_rate@4"]) for a in arms)
                + f" | {_num(b['delta_hit_rate@4'], '+.4f')} |"
            )
    return "\n".join(lines) + "\n"


def _verdict(v: dict[str, Any], a: str, b: str) -> str:
    """``a`` vs ``b`` in words from the delta's 95% CI."""
    lo, hi = v["bootstrap_ci95"]
    if lo is None:
        return "not measured"
    if lo > 0:
        return f"{a} beats {b}"
    if hi < 0:
        return f"{a} is below {b}"
    return f"{a} and {b} are level within noise"


def _recent_lines(report: dict[str, Any]) -> list[str]:
    """recent_pop (popularity over the last N days: one change to the SQL ranking) against
    SQL, and the GNN against recent_pop, per tier, in words."""
    rows = [(t, b) for t, b in report["tiers"].items() if "recent_pop_vs_sql" in b]
    if not rows:
        return []
    rp = report.get("recent_pop") or {}
    days = rp.get("days")
    window = "all time" if days == 0 else f"the last {days:g} days" if days else "n/a"
    lines = _section(f"Recent demand: recent_pop (orders of {window} before the cutoff, chosen "
                     "on validation) vs SQL, and the GNN vs recent_pop, Hit Rate@4 (95% CI by "
                     "vehicle)", ["tier", "recent_pop - SQL", "CI", "GNN - recent_pop", "CI",
                                  "verdict"])
    for tier, b in rows:
        r, g = b["recent_pop_vs_sql"], b["gnn_vs_recent_pop"]
        cells = []
        for v in (r, g):
            lo, hi = v["bootstrap_ci95"]
            cells += [_num(v["delta_hit_rate@4"], "+.4f"),
                      "n/a" if lo is None else f"[{lo:+.4f}, {hi:+.4f}]"]
        lines.append(f"| {tier} | " + " | ".join(cells) + f" | {_verdict(r, 'recent_pop', 'SQL')}"
                     f"; {_verdict(g, 'GNN', 'recent_pop')} |")
    return lines
