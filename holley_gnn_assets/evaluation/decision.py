"""The decision rule (spec section 12) on the cold tier's Hit Rate@4 delta and its interval.

delta = GNN HR@4 - SQL HR@4, CI = the bootstrap 95% interval clustered by vehicle:
- ``clear_win``: delta >= thresholds.clear_win and CI low > 0;
- ``marginal``: thresholds.marginal <= delta < clear_win and CI low > 0;
- ``worse``: delta < thresholds.worse and CI high < 0;
- ``neutral``: worse <= delta < marginal and the whole CI inside +/- eval.neutral_ci_band;
- otherwise ``inconclusive`` with the reason; ``no_test_data`` when there are no cold test users.

Before the rule (after ``no_test_data``): a test set too small for significance (even the
widest test window holds fewer than ``eval.min_test_clicks``, see ``time_windows.py``) is
``inconclusive`` with that reason, never a win or a loss.
"""

from __future__ import annotations

import math


def decide(delta: float, ci: tuple[float, float], n_users: int, ev: dict,
           too_few_clicks: str | None = None) -> tuple[str, str]:
    """(decision, reason) from the cold-tier delta and its CI; see the module docstring.

    ``too_few_clicks``: why the test set is too small (None: it is large enough or was not
    counted); when given the decision is ``inconclusive`` with that reason.
    """
    if n_users == 0:
        return "no_test_data", "no cold test users with a vehicle"
    if too_few_clicks:
        return "inconclusive", f"too few test clicks: {too_few_clicks}"
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
