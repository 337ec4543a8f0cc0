"""The decision rule (spec section 12) on the cold tier's Hit Rate@4 delta and its interval.

delta = GNN HR@4 - SQL HR@4, CI = the 95% interval of ``eval.interval_method``; bands B below:
- ``clear_win``: delta >= B(clear_win) and CI low > 0;
- ``marginal``: B(marginal) <= delta < B(clear_win) and CI low > 0;
- ``worse``: delta < B(worse) and CI high < 0;
- ``neutral``: B(worse) <= delta < B(marginal) and the whole CI inside +/- B(neutral_ci_band);
- otherwise ``inconclusive`` with the reason; ``no_test_data`` when there are no cold test users.

Bands at any base rate: each band has an absolute value (``eval.decision_thresholds``,
``eval.neutral_ci_band``) and a relative one (``eval.relative_thresholds`` x SQL's cold Hit
Rate@4). ``eval.band_rule: min`` takes the smaller in magnitude: with the relative values at 10x
the absolute ones the spec's absolute bands decide wherever SQL's rate is >= 0.10 (Holley's
cold rates), and a log with SQL at 0.004 is judged on 0.3 x 0.004 rather than a 0.03 that is 7x
the whole metric. ``min`` never makes a win easier to claim on noise: a win still needs the
interval above 0; and ``neutral`` then needs the interval inside the tighter band.

A test set below ``eval.min_test_clicks`` (even at the widest window) carries a small-sample flag
but is decided by its interval (the interval method's coverage is checked on small test sets in
``evaluation.coverage``); it is ``inconclusive`` only where the interval does not settle it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from holley_gnn_assets.config.schema import EvalConfig
from holley_gnn_assets.config.validation import typed

BANDS = ("clear_win", "marginal", "worse", "neutral_ci_band")


def decision_bands(ev: EvalConfig | Mapping[str, Any],
                   sql_rate: float | None) -> dict[str, dict[str, Any]]:
    """Each band's value and the rule that set it (``absolute`` or ``relative``), from the
    absolute bands, the relative ones times ``sql_rate`` and ``eval.band_rule`` (``ev``: the
    ``eval`` section; a mapping is validated first)."""
    ev = typed(ev, EvalConfig, "eval")
    absolute = {**ev.decision_thresholds.model_dump(), "neutral_ci_band": ev.neutral_ci_band}
    rel = ev.relative_thresholds.model_dump()
    rule = ev.band_rule
    out: dict[str, dict[str, Any]] = {}
    for name in BANDS:
        a = float(absolute[name])
        usable = sql_rate is not None and math.isfinite(sql_rate) and sql_rate > 0
        r = float(rel[name]) * sql_rate if usable else None  # type: ignore[operator]
        if rule == "absolute" or r is None:
            value, source = a, "absolute"
        elif rule == "relative" or abs(r) < abs(a):
            value, source = r, "relative"
        else:
            value, source = a, "absolute"
        out[name] = {"value": value, "source": source, "absolute": a, "relative": r,
                     "relative_factor": float(rel[name])}
    return out


def _band_text(name: str, band: dict[str, Any]) -> str:
    if band["source"] == "relative":
        return (f"{name} band {band['value']:+.4f} (relative: {band['relative_factor']:g} x SQL "
                f"rate; absolute {band['absolute']:+g})")
    rel = "" if band["relative"] is None else f"; relative {band['relative']:+.4f}"
    return f"{name} band {band['value']:+.4f} (absolute{rel})"


def decide(delta: float, ci: tuple[float, float], n_users: int, ev: EvalConfig | Mapping[str, Any],
           too_few_clicks: str | None = None, sql_rate: float | None = None,
           ) -> tuple[str, str, str | None]:
    """(decision, reason, deciding band) from the cold-tier delta and its CI; see the module
    docstring. ``too_few_clicks`` (why the test set is small, None: large enough) adds the
    small-sample flag to the reason; the interval still decides."""
    if n_users == 0:
        return "no_test_data", "no cold test users with a vehicle", None
    decision, reason, band = _rule(delta, ci, decision_bands(ev, sql_rate))
    if too_few_clicks:
        reason = f"{reason}; small test set ({too_few_clicks}): decided by the interval"
    return decision, reason, band


def _rule(delta: float, ci: tuple[float, float], bands: dict[str, dict[str, Any]],
          ) -> tuple[str, str, str | None]:
    clear, marg = bands["clear_win"]["value"], bands["marginal"]["value"]
    worse, band = bands["worse"]["value"], bands["neutral_ci_band"]["value"]
    lo, hi = ci
    if any(map(math.isnan, (delta, lo, hi))):
        return "inconclusive", "interval undefined", None
    if delta >= clear:
        txt = _band_text("clear_win", bands["clear_win"])
        if lo > 0:
            return "clear_win", f"CI excludes 0; delta {delta:+.4f} >= {txt}", "clear_win"
        return "inconclusive", f"delta {delta:+.4f} >= {txt} but CI low {lo:+.4f} <= 0", \
            "clear_win"
    if delta >= marg:
        txt = _band_text("marginal", bands["marginal"])
        if lo > 0:
            return "marginal", f"CI excludes 0; delta {delta:+.4f} >= {txt}", "marginal"
        return ("inconclusive", f"delta {delta:+.4f} in marginal range ({txt}) but CI low "
                f"{lo:+.4f} <= 0", "marginal")
    if delta < worse:
        txt = _band_text("worse", bands["worse"])
        if hi < 0:
            return "worse", f"CI excludes 0; delta {delta:+.4f} < {txt}", "worse"
        return "inconclusive", f"delta {delta:+.4f} < {txt} but CI high {hi:+.4f} >= 0", "worse"
    txt = _band_text("neutral_ci_band", bands["neutral_ci_band"])
    if -band <= lo and hi <= band:
        return "neutral", f"CI inside +/-{band:.4f}: {txt}", "neutral_ci_band"
    return ("inconclusive", f"delta {delta:+.4f} is neutral but CI [{lo:+.4f}, {hi:+.4f}] is "
            f"wider than +/-{band:.4f} ({txt})", "neutral_ci_band")
