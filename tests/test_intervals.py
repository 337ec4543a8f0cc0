"""Interval methods (evaluation/intervals.py) on known cases, and their simulated coverage
(evaluation/coverage.py) on a fixed seed."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from holley_gnn_assets.evaluation import coverage
from holley_gnn_assets.evaluation import intervals as iv
from holley_gnn_assets.settings_schema import EvalConfig


def _dominant(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """13 vehicles, one holding 90% of the users, independent hits (vehicles alike)."""
    world = coverage.make_world("dominant", dominant=0.9, base=0.27, n_users=n)
    return coverage.draw_test_set(world, np.random.default_rng(seed))


def test_config_names_every_method() -> None:
    field = EvalConfig.model_fields["interval_method"].annotation
    assert set(typing.get_args(field)) == set(iv.METHODS)


def test_effective_clusters() -> None:
    assert iv.effective_clusters(np.repeat(np.arange(13), 10)) == pytest.approx(13.0)
    sizes = [360] + [3] * 12 + [4] * 1  # one of 14 vehicles holds 360 of 400 users
    clusters = np.repeat(np.arange(len(sizes)), sizes)
    assert iv.effective_clusters(clusters) == pytest.approx(400**2 / (360**2 + 12 * 9 + 16))
    assert iv.effective_clusters(None, 50) == 50.0
    assert iv.effective_clusters(np.array([])) == 0.0


@pytest.mark.parametrize("method", iv.METHODS)
def test_every_method_holds_the_estimate_and_is_reproducible(method: str) -> None:
    a, b, codes = _dominant()
    out = iv.delta_interval(a, b, codes, method, 500, 3)
    est = a.mean() - b.mean()
    assert out.lo < est < out.hi and out.se > 0
    assert out == iv.delta_interval(a, b, codes, method, 500, 3)
    same = iv.delta_interval(a, a, codes, method, 200, 0)  # no discordant pair
    assert (same.lo, same.hi) == (0.0, 0.0) or method == "cr2" and same.hi == 0.0
    assert np.isnan(iv.delta_interval(a[:0], b[:0], codes[:0], method).lo)


def test_cr2_closed_form_against_the_regression_formula() -> None:
    """CR2 of an intercept-only regression: (X'X)^-1 sum X_g' A_g e_g e_g' A_g X_g (X'X)^-1 with
    A_g = (I - H_gg)^(-1/2), written out with numpy's matrix square root for 3 small clusters."""
    d = np.array([1, 0, -1, 1, 1, 0, 0, -1, 1, 0], dtype=float)
    codes = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    n = len(d)
    e = d - d.mean()
    meat = 0.0
    for g in range(3):
        m = codes == g
        h = np.full((m.sum(), m.sum()), 1.0 / n)
        w, v = np.linalg.eigh(np.eye(m.sum()) - h)
        a_g = v @ np.diag(w**-0.5) @ v.T
        meat += float(np.ones(m.sum()) @ a_g @ e[m]) ** 2
    out = iv.cr2(d, codes, 0.05)
    assert out.se == pytest.approx(np.sqrt(meat) / n)
    assert out.df == 2.0
    assert out.hi - d.mean() == pytest.approx(4.302653 * out.se, rel=1e-5)  # t(2) 97.5%
    assert np.isnan(iv.cr2(d, np.zeros(n, dtype=int), 0.05).lo)  # one cluster: undefined


def test_dominant_vehicle_blows_up_the_cluster_bootstrap_only() -> None:
    """The issue's case: one vehicle with 90% of the users makes the cluster bootstrap several
    times wider than the user-level interval; the stratified ones stay near it."""
    a, b, codes = _dominant(seed=1)
    width = {m: (lambda x: x.hi - x.lo)(iv.delta_interval(a, b, codes, m, 1000, 0))
             for m in iv.METHODS}
    assert width["cluster_bootstrap"] > 1.7 * width["user"]
    assert width["stratified_bootstrap"] < 1.25 * width["user"]
    assert width["stratified_t"] < 1.4 * width["user"]


def test_stratified_bootstrap_is_the_cluster_bootstrap_on_equal_vehicles() -> None:
    """Equal vehicles fall in one stratum: vehicles are resampled (wider than users when the
    users of a vehicle move together)."""
    codes = np.repeat(np.arange(20), 10)
    d = np.repeat(np.random.default_rng(0).integers(0, 2, 20), 10).astype(float)
    strat = iv.delta_interval(d, np.zeros_like(d), codes, "stratified_bootstrap", 2000, 0)
    user = iv.delta_interval(d, np.zeros_like(d), codes, "user", 2000, 0)
    assert strat.hi - strat.lo > 2.5 * (user.hi - user.lo)


def test_mde_uses_the_intervals_standard_error() -> None:
    out = iv.Interval(-0.02, 0.02, 0.01)
    assert iv.mde(out) == pytest.approx((1.959964 + 0.841621) * 0.01, rel=1e-5)
    t_out = iv.Interval(-0.02, 0.02, 0.01, df=12.0)
    assert iv.mde(t_out) == pytest.approx((2.178813 + 0.872609) * 0.01, rel=1e-5)
    assert np.isnan(iv.mde(iv.NAN))


def test_world_records_its_truth() -> None:
    w = coverage.make_world("x", dominant=0.9, base=0.27, delta=0.05, spread=0.08, seed=1)
    assert w.true_delta == pytest.approx(0.05)
    assert sum(w.shares) == pytest.approx(1.0) and w.shares[0] == 0.9
    assert len(set(np.round(np.subtract(w.gnn_rates, w.sql_rates), 6))) > 1  # vehicles differ
    assert w.effective_clusters == pytest.approx(1 / (0.81 + 12 * (0.1 / 12) ** 2))
    a, b, codes = coverage.draw_test_set(w, np.random.default_rng(0))
    assert len(a) == len(b) == len(codes) == w.n_users


@pytest.mark.slow
def test_coverage_on_a_fixed_seed() -> None:
    """60 test sets per world: the default (stratified_t) covers the truth on a balanced and a
    dominant-vehicle world; the wild cluster bootstrap fails on the dominant one and the
    cluster bootstrap is wide there."""
    worlds = [coverage.make_world("balanced", base=0.27, delta=0.05),
              coverage.make_world("dominant", dominant=0.9, base=0.27)]
    res = {(r.world, r.method): r for w in worlds
           for r in coverage.simulate(w, 60, n_boot=400, seed=5, win_band=0.01)}
    for w in ("balanced", "dominant"):
        assert res[(w, "stratified_t")].coverage >= 0.9
    assert res[("dominant", "wild_cluster")].coverage < 0.75
    assert res[("dominant", "stratified_t")].false_win <= 0.05
    assert (res[("dominant", "cluster_bootstrap")].mean_width
            > 1.7 * res[("dominant", "user")].mean_width)
    assert (res[("dominant", "stratified_t")].mean_width
            <= 1.5 * res[("dominant", "user")].mean_width)
    table = coverage.coverage_table(list(res.values()), worlds)
    assert "| dominant | 400 | 1.2 | +0.000 |" in table


def test_coverage_command_prints_the_table_and_the_verdicts(capsys) -> None:
    from holley_gnn_assets.cli import main

    assert main(["coverage", "--replicates", "3", "--boot", "49", "--users", "120",
                 "--methods", "stratified_t"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 test sets per world, 49 resamples, seed 0")
    assert "| world | n | G_eff | true delta | measurable | stratified_t | user |" in out
    assert "| dominant90 null window shocks | 120 | 1.2 | +0.000 | no |" in out
    assert "| method | min coverage (all) |" in out and "| stratified_t |" in out
