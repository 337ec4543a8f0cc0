"""Power analysis of the A/B phase (evaluation/power.py) against hand-checked figures."""

from __future__ import annotations

import math

import pytest

from holley_gnn_assets.evaluation.power import (
    power_analysis,
    power_markdown,
    power_metrics,
    sample_size_two_proportions,
)

AB = {"base_click_rate": 0.10, "weekly_sends_per_user": 1.0, "treatment_share": 0.5,
      "alpha": 0.05, "power": 0.8}


def report(delta: float | None, sql_hr: float | None,
           ci: tuple[float | None, float | None] | None = None) -> dict:
    """A report whose cold interval is delta +/- 0.005 unless ``ci`` is given."""
    gnn = None if delta is None or sql_hr is None else sql_hr + delta
    if ci is None:
        ci = (None, None) if delta is None else (delta - 0.005, delta + 0.005)
    return {"decision": "clear_win", "tiers": {"cold": {
        "n_users": 500, "delta_hit_rate@4": delta, "bootstrap_ci95": list(ci),
        "sql": {"hit_rate@4": sql_hr}, "gnn": {"hit_rate@4": gnn}}}}


def test_textbook_figure() -> None:
    """p1 0.10 vs p2 0.12, alpha 0.05 two-sided, power 0.8, by hand (z 1.95996, 0.84162):
    (1.95996 * sqrt(2 * 0.11 * 0.89) + 0.84162 * sqrt(0.09 + 0.1056))**2 / 0.02**2 = 3840.9,
    so 3,841 per arm (the all-unpooled shortcut gives 3,839)."""
    assert sample_size_two_proportions(0.10, 0.12, 0.05, 0.8) == (3841, 3841)
    assert sample_size_two_proportions(0.12, 0.10, 0.05, 0.8) == (3841, 3841)  # symmetric
    # more power or a smaller alpha needs more users; a bigger difference fewer
    assert sample_size_two_proportions(0.10, 0.12, 0.05, 0.9)[0] > 3841
    assert sample_size_two_proportions(0.10, 0.12, 0.01, 0.8)[0] > 3841
    assert sample_size_two_proportions(0.10, 0.14, 0.05, 0.8)[0] < 3841 / 3


def test_unequal_split_needs_more_users_in_all() -> None:
    n_c, n_t = sample_size_two_proportions(0.10, 0.12, 0.05, 0.8, treatment_share=0.3)
    assert n_t / (n_c + n_t) == pytest.approx(0.3, abs=1e-3)
    assert n_c + n_t > 2 * 3841


def test_bad_rates_are_named() -> None:
    with pytest.raises(ValueError, match="p_treatment"):
        sample_size_two_proportions(0.1, 1.2, 0.05, 0.8)
    with pytest.raises(ValueError, match="no difference"):
        sample_size_two_proportions(0.1, 0.1, 0.05, 0.8)


def test_offline_lift_to_users_and_weeks() -> None:
    """Cold delta 0.02 on an SQL hit rate of 0.10 = +20%: base click rate 10% -> 12%."""
    out = power_analysis(report(0.02, 0.10), AB, audience_users=2000)
    assert out["detectable"] and out["reason"] is None
    assert out["relative_lift"] == pytest.approx(0.2)
    assert out["expected_click_rate_gnn"] == pytest.approx(0.12)
    assert out["users_per_arm_sql"] == out["users_per_arm_gnn"] == 3841
    assert out["weeks"] == math.ceil(3841 / 1000)  # 1,000 users per arm, one send a week
    twice = power_analysis(report(0.02, 0.10), {**AB, "weekly_sends_per_user": 2.0}, 2000)
    assert twice["weeks"] == 2
    md = power_markdown(out)
    assert "| users (sends) needed, GNN arm | 3,841 |" in md
    assert "| relative lift [95% CI] | 20.00% [15.00%, 25.00%] |" in md
    assert "4 week(s) of sends needed" in md and "Assumptions:" in md
    metrics = power_metrics(out)
    assert metrics["ab.users_per_arm_gnn"] == 3841 and metrics["ab.weeks"] == 4
    assert metrics["ab.detectable"] == 1.0


@pytest.mark.parametrize(("delta", "sql_hr", "words"), [
    (-0.01, 0.10, "-0.0100 (<= 0)"), (0.0, 0.10, "(<= 0)"), (None, None, "not measured"),
    (0.02, 0.0, "relative lift is undefined"), (float("nan"), 0.1, "not measured"),
])
def test_no_positive_delta_means_no_size(delta, sql_hr, words) -> None:
    out = power_analysis(report(delta, sql_hr), AB, audience_users=2000)
    assert not out["detectable"]
    assert out["users_per_arm_gnn"] is None and out["weeks"] is None
    assert out["reason"].startswith("no detectable lift") and words in out["reason"]
    md = power_markdown(out)
    assert "no detectable lift" in md and "| weeks of sends needed | n/a |" in md
    assert power_metrics(out)["ab.detectable"] == 0.0


def test_lift_beyond_a_rate_and_no_audience() -> None:
    out = power_analysis(report(0.5, 0.1), AB, audience_users=2000)  # 10% x 6 = 60%: fine
    assert out["detectable"]
    huge = power_analysis(report(0.9, 0.05), AB, audience_users=2000)  # 10% x 19 >= 1
    assert not huge["detectable"] and "not a click rate" in huge["reason"]
    empty = power_analysis(report(0.02, 0.10), AB, audience_users=None)
    assert empty["users_per_arm_gnn"] == 3841 and empty["weeks"] is None
    assert "weeks unknown" in empty["reason"]


def test_a_one_user_difference_is_not_a_lift() -> None:
    """The issue's case: SQL's cold rate 0.0041 on 247 users, the GNN one hit more (+0.0040):
    "+98% lift" from one user. Its interval includes 0, so nothing is sized and the lift is
    shown with its interval."""
    out = power_analysis(report(0.0040, 0.0041, ci=(-0.0040, 0.0121)), AB, audience_users=2000)
    assert not out["detectable"] and out["users_per_arm_gnn"] is None
    assert "includes 0" in out["reason"] and "may be noise" in out["reason"]
    assert out["relative_lift_ci95"][0] < 0 < out["relative_lift_ci95"][1]
    md = power_markdown(out)
    assert "| relative lift [95% CI] | 97.56% [-97.56%, 295.12%] |" in md
    assert "includes 0" in md
    missing = power_analysis(report(0.02, 0.10, ci=(None, None)), AB, audience_users=2000)
    assert not missing["detectable"] and "no interval" in missing["reason"]
