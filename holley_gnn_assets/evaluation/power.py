"""Power analysis for the A/B phase (spec section 7): how many users per arm, and how many weeks
of sends, an online test needs to detect the offline cold-tier lift on click-through.

Assumption (stated in every result): the relative lift of the GNN over SQL on cold-tier Hit
Rate@4 (``delta / SQL hit rate``) carries over to the click rate per send, so the GNN arm's
click rate is ``base_click_rate * (1 + lift)``. Sends are independent Bernoulli trials (one
observation = one send to one user); repeated sends to one user are correlated, so the weeks
are a lower bound. The test is the two-sided two-proportion z-test (pooled variance under the
null, unpooled under the alternative; no continuity correction).

A lift is sized only when the offline interval excludes 0 (``tiers.cold.bootstrap_ci95``, the
decision's interval): a one-user difference on a few hundred users is not an "8.3% lift". The
relative lift is always given with its interval (the delta's interval over SQL's rate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from scipy.stats import norm

TIER = "cold"
SPEC_WEEKS = (2, 4)  # spec section 7: "2-4 weeks"


def sample_size_two_proportions(p_control: float, p_treatment: float, alpha: float,
                                power: float, treatment_share: float = 0.5) -> tuple[int, int]:
    """Users (observations) needed in the control and treatment arms, rounded up, for a
    two-sided two-proportion z-test at ``alpha`` with ``power``; arms split by
    ``treatment_share``. E.g. 0.10 vs 0.12, alpha 0.05, power 0.8, 50/50: 3,841 per arm."""
    for name, value in (("p_control", p_control), ("p_treatment", p_treatment),
                        ("alpha", alpha), ("power", power), ("treatment_share", treatment_share)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name}={value!r} must be strictly between 0 and 1")
    if p_treatment == p_control:
        raise ValueError("p_treatment equals p_control: no difference to detect")
    k_t, k_c = treatment_share, 1.0 - treatment_share
    p_bar = k_c * p_control + k_t * p_treatment
    z_a, z_b = norm.ppf(1.0 - alpha / 2.0), norm.ppf(power)
    null_sd = math.sqrt(p_bar * (1.0 - p_bar) * (1.0 / k_t + 1.0 / k_c))
    alt_sd = math.sqrt(p_control * (1.0 - p_control) / k_c
                       + p_treatment * (1.0 - p_treatment) / k_t)
    total = (z_a * null_sd + z_b * alt_sd) ** 2 / (p_treatment - p_control) ** 2
    return math.ceil(total * k_c - 1e-9), math.ceil(total * k_t - 1e-9)


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def power_analysis(report: Mapping[str, Any], ab: Mapping[str, Any],
                   audience_users: int | None) -> dict[str, Any]:
    """Users per arm and weeks of sends to detect the report's offline cold-tier lift.

    ``ab`` is the ``ab_test`` config section; ``audience_users`` the users of the output table.
    ``detectable`` is False, with ``reason``, when the offline delta is not positive, its
    interval includes 0 or the lift is undefined; then no size is given.
    """
    block = (report.get("tiers") or {}).get(TIER) or {}
    delta = _number(block.get("delta_hit_rate@4"))
    ci = [_number(x) for x in (block.get("bootstrap_ci95") or [None, None])]
    sql_hr = _number((block.get("sql") or {}).get("hit_rate@4"))
    gnn_hr = _number((block.get("gnn") or {}).get("hit_rate@4"))
    base = float(ab["base_click_rate"])
    sends = float(ab["weekly_sends_per_user"])
    share = float(ab["treatment_share"])
    out: dict[str, Any] = {
        "tier": TIER, "offline_delta": delta, "sql_hit_rate": sql_hr, "gnn_hit_rate": gnn_hr,
        "relative_lift": None, "relative_lift_ci95": [None, None], "offline_ci95": ci,
        "base_click_rate": base, "expected_click_rate_gnn": None,
        "alpha": float(ab["alpha"]), "power": float(ab["power"]), "treatment_share": share,
        "users_per_arm_sql": None, "users_per_arm_gnn": None, "audience_users": audience_users,
        "weekly_sends_per_user": sends, "weeks": None, "detectable": False, "reason": None,
        "assumptions": [
            "relative lift on click-through = offline cold delta / SQL cold Hit Rate@4",
            "GNN click rate = base_click_rate x (1 + relative lift)",
            "one observation = one send; sends independent (correlated sends need more weeks)",
            "two-sided two-proportion z-test, no continuity correction",
        ],
    }
    if delta is None:
        out["reason"] = f"no detectable lift: the {TIER} delta was not measured"
        return out
    if delta <= 0:
        out["reason"] = f"no detectable lift: the offline {TIER} delta is {delta:+.4f} (<= 0)"
        return out
    if not sql_hr:
        out["reason"] = (f"no detectable lift: the SQL {TIER} Hit Rate@4 is "
                         f"{'not measured' if sql_hr is None else 0}, the relative lift is "
                         "undefined")
        return out
    lift = delta / sql_hr
    out.update(relative_lift=lift, relative_lift_ci95=[None if c is None else c / sql_hr
                                                       for c in ci])
    if ci[0] is None or ci[1] is None:
        out["reason"] = f"no detectable lift: the offline {TIER} delta has no interval"
        return out
    if ci[0] <= 0:
        out["reason"] = (f"no detectable lift: the offline {TIER} delta {delta:+.4f} has a 95% "
                         f"interval [{ci[0]:+.4f}, {ci[1]:+.4f}] that includes 0; the relative "
                         f"lift {lift:+.1%} [{ci[0] / sql_hr:+.1%}, {ci[1] / sql_hr:+.1%}] may "
                         "be noise")
        return out
    p_gnn = base * (1.0 + lift)
    out["expected_click_rate_gnn"] = p_gnn
    if p_gnn >= 1.0:
        out["reason"] = (f"no size: base_click_rate {base} x (1 + lift {lift:.3f}) = {p_gnn:.3f} "
                         "is not a click rate (>= 1)")
        return out
    n_sql, n_gnn = sample_size_two_proportions(base, p_gnn, out["alpha"], out["power"], share)
    out.update(users_per_arm_sql=n_sql, users_per_arm_gnn=n_gnn, detectable=True)
    if audience_users:
        weekly_sql = audience_users * (1.0 - share) * sends
        weekly_gnn = audience_users * share * sends
        out["weeks"] = max(math.ceil(n_sql / weekly_sql), math.ceil(n_gnn / weekly_gnn))
    else:
        out["reason"] = "weeks unknown: no users in the recommendations output"
    return out


def _fmt(value: Any, kind: str = "") -> str:
    if value is None:
        return "n/a"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "pct":
        return f"{100 * float(value):.2f}%"
    if kind == "rate":
        return f"{float(value):.4f}"
    if kind == "signed":
        return f"{float(value):+.4f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _lift(a: Mapping[str, Any]) -> str:
    lo, hi = a["relative_lift_ci95"]
    ci = "" if lo is None or hi is None else f" [{_fmt(lo, 'pct')}, {_fmt(hi, 'pct')}]"
    return _fmt(a["relative_lift"], "pct") + ci


def power_markdown(analysis: Mapping[str, Any]) -> str:
    """The analysis as a Markdown table, its verdict and its assumptions."""
    a = analysis
    rows = [
        (f"offline {a['tier']} delta Hit Rate@4 (GNN - SQL)", _fmt(a["offline_delta"], "signed")),
        (f"SQL {a['tier']} Hit Rate@4", _fmt(a["sql_hit_rate"], "rate")),
        ("relative lift [95% CI]", _lift(a)),
        ("base click rate per send (SQL arm)", _fmt(a["base_click_rate"], "pct")),
        ("expected click rate per send (GNN arm)", _fmt(a["expected_click_rate_gnn"], "pct")),
        ("alpha (two-sided) / power", f"{a['alpha']:g} / {a['power']:g}"),
        ("GNN share of users", _fmt(a["treatment_share"], "pct")),
        ("users (sends) needed, SQL arm", _fmt(a["users_per_arm_sql"], "int")),
        ("users (sends) needed, GNN arm", _fmt(a["users_per_arm_gnn"], "int")),
        ("audience (users in the output)", _fmt(a["audience_users"], "int")),
        ("sends per user and week", _fmt(a["weekly_sends_per_user"])),
        ("weeks of sends needed", _fmt(a["weeks"], "int")),
    ]
    lines = ["| quantity | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    if not a["detectable"]:
        lines.append(f"**{a['reason']}**")
    elif a["weeks"] is not None:
        lo, hi = SPEC_WEEKS
        fits = f"fits the spec's {lo}-{hi} week test" if a["weeks"] <= hi \
            else f"longer than the spec's {lo}-{hi} weeks"
        lines.append(f"**{a['weeks']:,} week(s) of sends needed**: {fits}.")
    else:
        lines.append(f"**{a['reason']}**")
    lines += ["", "Assumptions: " + "; ".join(a["assumptions"]) + "."]
    return "\n".join(lines)


def power_metrics(analysis: Mapping[str, Any]) -> dict[str, float]:
    """The numeric results as MLflow metrics (``ab.*``); unmeasured values left out."""
    keys = ("offline_delta", "relative_lift", "expected_click_rate_gnn", "users_per_arm_sql",
            "users_per_arm_gnn", "audience_users", "weeks")
    out = {f"ab.{k}": float(analysis[k]) for k in keys if analysis.get(k) is not None}
    out["ab.detectable"] = float(bool(analysis["detectable"]))
    return out
