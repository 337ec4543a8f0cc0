"""Honest statistics for paired hit/miss outcomes.

Users on one vehicle receive the same lists, so their outcomes are correlated: the bootstrap
resamples whole clusters (vehicles), and the minimum detectable effect is inflated by the
design effect measured the same way.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import stats as sps


def mcnemar_p(a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sided McNemar p-value: binomial test on the discordant pairs (1.0 if none)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes differ in shape: {a.shape} vs {b.shape}")
    n01 = int(np.sum(a & ~b))
    n10 = int(np.sum(~a & b))
    if n01 + n10 == 0:
        return 1.0
    return float(sps.binomtest(n01, n01 + n10, 0.5, alternative="two-sided").pvalue)


def bootstrap_delta_ci(
    a: np.ndarray,
    b: np.ndarray,
    clusters: np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile CI of mean(a) - mean(b), resampling whole clusters with replacement.

    ``clusters=None`` resamples users. Vectorised: multinomial cluster counts [n_boot, C] times
    the per-cluster sums of the paired difference and of the user counts (ratio estimator).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes differ in shape: {a.shape} vs {b.shape}")
    if len(a) == 0:
        return (float("nan"), float("nan"))
    d = a - b
    sums, counts = _cluster_sums(d, clusters)
    w = cluster_weights(len(sums), n_boot, seed)
    deltas = (w @ sums) / np.maximum(w @ counts, 1.0)
    lo, hi = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def headroom_share(
    arm: np.ndarray,
    base: np.ndarray,
    oracle: np.ndarray,
    clusters: np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, tuple[float, float]]:
    """Share of the oracle's headroom over ``base`` that ``arm`` takes:
    (mean(arm) - mean(base)) / (mean(oracle) - mean(base)), with a percentile CI resampling
    whole clusters (the same users in numerator and denominator). NaN where the headroom is 0."""
    arm, base, oracle = (np.asarray(x, dtype=np.float64) for x in (arm, base, oracle))
    if not arm.shape == base.shape == oracle.shape:
        raise ValueError("arm, base and oracle outcomes must be paired (same shape)")
    nan = float("nan")
    if len(arm) == 0:
        return nan, (nan, nan)
    head = float(oracle.mean() - base.mean())
    share = float((arm.mean() - base.mean()) / head) if head != 0 else nan
    gain, _ = _cluster_sums(arm - base, clusters)
    room, _ = _cluster_sums(oracle - base, clusters)
    w = cluster_weights(len(gain), n_boot, seed)
    num, den = w @ gain, w @ room
    ratios = np.divide(num, den, out=np.full(n_boot, np.nan), where=den != 0)
    ratios = ratios[np.isfinite(ratios)]
    if len(ratios) < n_boot / 2:  # the headroom is 0 in most resamples: no interval
        return share, (nan, nan)
    lo, hi = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    return share, (float(lo), float(hi))


# bootstrap weights kept for reuse up to this many entries (64 MB); larger draws are redrawn
CACHED_WEIGHTS = 8_000_000


def cluster_weights(c: int, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, c] bootstrap weights: how often each of ``c`` clusters is drawn per resample.

    The same draw for the same (c, n_boot, seed): a report draws it for every arm of a tier
    (1,300 clusters x 2,000 resamples took 0.15 s, 64 draws most of ``evaluate``), so draws
    up to CACHED_WEIGHTS entries are kept (read-only)."""
    if c * n_boot > CACHED_WEIGHTS:
        return _draw_weights(c, n_boot, seed)
    return _kept_weights(c, n_boot, seed)


def _draw_weights(c: int, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.multinomial(c, np.full(c, 1.0 / c), size=n_boot).astype(np.float64)


@functools.lru_cache(maxsize=4)
def _kept_weights(c: int, n_boot: int, seed: int) -> np.ndarray:
    w = _draw_weights(c, n_boot, seed)
    w.setflags(write=False)
    return w


def _cluster_sums(d: np.ndarray, clusters: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if clusters is None:
        return d, np.ones_like(d)
    codes = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)[1]
    return np.bincount(codes, weights=d), np.bincount(codes).astype(np.float64)


def design_effect(d: np.ndarray, clusters: np.ndarray | None) -> float:
    """Variance of the clustered (ratio) mean of d over its user-level variance (>= 1 typical).

    Returns 1.0 when undefined (fewer than 2 users/clusters or zero variance).
    """
    d = np.asarray(d, dtype=np.float64)
    n = len(d)
    if n < 2 or clusters is None:
        return 1.0
    var_user = d.var(ddof=1) / n
    sums, counts = _cluster_sums(d, clusters)
    c = len(sums)
    if c < 2 or var_user == 0:
        return 1.0
    resid = sums - d.mean() * counts
    var_cluster = c / (c - 1) * np.sum(resid**2) / n**2
    return float(max(var_cluster / var_user, 0.0))


def min_detectable_effect(
    n: int, discordance: float, alpha: float = 0.05, power: float = 0.8, deff: float = 1.0
) -> float:
    """Smallest |delta| of paired proportions detectable at ``alpha`` (two-sided) and ``power``.

    Formula (McNemar, normal approximation, Connor 1987 without the delta**2 term):
    MDE = (z_{1-alpha/2} + z_{power}) * sqrt(p_d * deff / n), where p_d is the share of
    discordant pairs and deff the cluster design effect. NaN when n == 0.
    """
    if n <= 0:
        return float("nan")
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return float(z * math.sqrt(max(discordance, 0.0) * max(deff, 0.0) / n))
