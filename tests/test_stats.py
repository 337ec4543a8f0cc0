"""Statistics on small known cases."""

from __future__ import annotations

import numpy as np
import pytest

from holley_gnn_assets.evaluation import statistics as stats


def test_mcnemar_exact() -> None:
    a = np.array([1] * 10 + [0] * 5 + [1] * 3, dtype=bool)
    b = np.array([0] * 10 + [0] * 5 + [1] * 3, dtype=bool)
    assert stats.mcnemar_p(a, b) == pytest.approx(2 * 0.5**10)
    assert stats.mcnemar_p(a, a) == 1.0
    # b=3, c=1: two-sided binomial = 2 * P(X <= 1 | n=4) = 2 * 5/16
    a2 = np.array([1, 1, 1, 0, 0], dtype=bool)
    b2 = np.array([0, 0, 0, 1, 0], dtype=bool)
    assert stats.mcnemar_p(a2, b2) == pytest.approx(0.625)
    with pytest.raises(ValueError, match="shape"):
        stats.mcnemar_p(a2, b)


def test_bootstrap_identical_and_clustered_wider() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, 200).astype(float)
    assert stats.bootstrap_delta_ci(x, x, None, 500, 0) == (0.0, 0.0)
    # 20 clusters of 10 users; outcome perfectly correlated within a cluster
    clusters = np.repeat(np.arange(20), 10)
    cl_a = rng.integers(0, 2, 20)
    a = cl_a[clusters].astype(float)
    b = np.zeros_like(a)
    lo_u, hi_u = stats.bootstrap_delta_ci(a, b, None, 2000, 0)
    lo_c, hi_c = stats.bootstrap_delta_ci(a, b, clusters, 2000, 0)
    assert lo_c <= a.mean() <= hi_c
    assert (hi_c - lo_c) > 2 * (hi_u - lo_u)
    assert stats.bootstrap_delta_ci(a, b, clusters, 200, 7) == stats.bootstrap_delta_ci(
        a, b, clusters, 200, 7
    )
    assert stats.design_effect(a - b, clusters) > 5
    assert np.isnan(stats.bootstrap_delta_ci(a[:0], b[:0])[0])


def test_mde() -> None:
    # (1.96 + 0.8416) * sqrt(0.1 / 2000) = 0.01981
    assert stats.min_detectable_effect(2000, 0.1) == pytest.approx(0.01981, abs=1e-4)
    assert stats.min_detectable_effect(2000, 0.1, deff=4) == pytest.approx(2 * 0.01981, abs=2e-4)
    assert np.isnan(stats.min_detectable_effect(0, 0.1))
