"""Intervals for a paired difference of per-user outcomes (GNN hit - SQL hit) clustered by vehicle.

Every method returns an :class:`Interval` (lo, hi, the standard error it implies and the
reference-distribution quantiles, so the MDE can be computed with the same variance). Methods:

- ``cluster_bootstrap``: whole vehicles resampled with replacement (percentile; the round-2 rule).
  One vehicle holding most users is drawn 0..k times, which inflates the interval.
- ``stratified_bootstrap``: vehicles resampled within strata of similar size (sizes 1-3, 4-15,
  16-63...: floor(log4 of the user count)); a stratum holding a single vehicle resamples that
  vehicle's users instead. Rao-Wu rescaling (k - 1 draws of k units, weights k / (k - 1)) keeps
  a small stratum's variance unbiased (Rao and Wu 1988).
- ``stratified_t``: the stratified bootstrap's standard error with t quantiles, G - 1 degrees of
  freedom (at least 1): mean +/- t * se. The t widens the interval where few vehicles or few
  discordant pairs make the percentile interval too short.
- ``cr2``: cluster-robust variance with the Bell-McCaffrey (CR2) small-sample correction and t
  with G - 1 degrees of freedom. For the mean of d (an intercept-only regression) CR2 has a closed
  form: V = sum_g r_g**2 / (1 - n_g / n) / n**2, r_g the cluster's residual sum; it is unbiased
  when users are independent, whatever the cluster sizes.
- ``wild_cluster``: wild cluster bootstrap-t (unrestricted, Webb six-point weights, CR1 standard
  errors, symmetric interval).
- ``random_effects``: meta-analysis view of the vehicles: the mean of d (user-weighted, the
  estimand's weights) with variance sum_g w_g**2 (s**2 / n_g + tau**2), w_g = n_g / n, s**2 the
  pooled within-vehicle variance and tau**2 the DerSimonian-Laird (method-of-moments) variance
  of the vehicles' mean deltas beyond their sampling noise, pooled over all vehicles; t with
  G - 1 degrees of freedom. A dominant vehicle's window shock is thus estimated from the other
  vehicles' spread, which a single-cluster residual (CR2, the wild bootstrap) cannot do.
- ``random_effects_max``: the larger of the random-effects and the stratified_t variances, t(G - 1).
- ``user``: users resampled (ignores clustering).

The closed forms are hand-written (a few lines of numpy each) because statsmodels' cluster
covariances are CR1 only and scipy has no clustered bootstrap; both would also be 10-100x slower
than these vectorised forms inside the coverage simulation.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from scipy import stats as sps

from holley_gnn_assets.evaluation.statistics import CACHED_WEIGHTS, cluster_weights

METHODS = ("stratified_t", "stratified_bootstrap", "cr2", "cluster_bootstrap", "wild_cluster",
           "random_effects", "random_effects_max", "user")
WEBB = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])


@dataclasses.dataclass(frozen=True)
class Interval:
    """A (1 - alpha) interval of mean(a - b); ``se`` its standard error, ``df`` the t degrees of
    freedom of its reference distribution (None: normal)."""

    lo: float
    hi: float
    se: float
    df: float | None = None

    def quantile(self, p: float) -> float:
        """The reference distribution's p-quantile (t with ``df``, else normal)."""
        return float(sps.t.ppf(p, self.df) if self.df else sps.norm.ppf(p))


NAN = Interval(float("nan"), float("nan"), float("nan"))


def cluster_codes(clusters: np.ndarray | None, n: int) -> np.ndarray:
    """Integer codes 0..G-1 of the clusters (each user its own cluster when None)."""
    if clusters is None:
        return np.arange(n)
    return np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)[1]


def effective_clusters(clusters: np.ndarray | None, n: int | None = None) -> float:
    """Kish's effective number of clusters, (sum n_g)**2 / sum n_g**2: 13 equal vehicles give 13,
    one of 13 holding 90% of the users gives about 1.2."""
    codes = cluster_codes(clusters, n if n is not None else len(clusters))  # type: ignore[arg-type]
    if len(codes) == 0:
        return 0.0
    sizes = np.bincount(codes).astype(np.float64)
    return float(sizes.sum() ** 2 / np.sum(sizes**2))


def delta_interval(a: np.ndarray, b: np.ndarray, clusters: np.ndarray | None, method: str,
                   n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> Interval:
    """The ``method``'s (1 - alpha) interval of mean(a) - mean(b); NaN where undefined."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes differ in shape: {a.shape} vs {b.shape}")
    if method not in METHODS:
        raise ValueError(f"interval method {method!r} is not one of {METHODS}")
    if len(a) == 0:
        return NAN
    d = a - b
    codes = cluster_codes(None if method == "user" else clusters, len(d))
    if method == "cr2":
        return cr2(d, codes, alpha)
    if method == "wild_cluster":
        return wild_cluster(d, codes, n_boot, seed, alpha)
    if method == "stratified_bootstrap":
        return stratified_bootstrap(d, codes, n_boot, seed, alpha)
    if method == "stratified_t":
        return stratified_t(d, codes, n_boot, seed, alpha)
    if method == "random_effects":
        return random_effects(d, codes, alpha)
    if method == "random_effects_max":
        boot_se = stratified_bootstrap(d, codes, n_boot, seed, alpha).se
        return random_effects(d, codes, alpha, floor_se=boot_se)
    return cluster_bootstrap(d, codes, n_boot, seed, alpha)  # cluster_bootstrap, user


def _sums(d: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.bincount(codes, weights=d), np.bincount(codes).astype(np.float64)


def _cluster_residuals(d: np.ndarray, codes: np.ndarray
                       ) -> tuple[int, float, np.ndarray, np.ndarray]:
    """(n, mean(d), each cluster's summed residual from the mean, each cluster's size): what
    the cluster-robust variances (CR2, the wild bootstrap's CR1) are built from."""
    sums, counts = _sums(d, codes)
    mean = float(d.mean())
    return len(d), mean, sums - mean * counts, counts


def _percentile(deltas: np.ndarray, alpha: float) -> Interval:
    lo, hi = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    return Interval(float(lo), float(hi), float(np.std(deltas, ddof=1)))


def cluster_bootstrap(d: np.ndarray, codes: np.ndarray, n_boot: int, seed: int,
                      alpha: float) -> Interval:
    """Percentile interval resampling whole clusters (ratio estimator)."""
    sums, counts = _sums(d, codes)
    w = cluster_weights(len(sums), n_boot, seed)  # the same draw for every arm of a tier
    return _percentile((w @ sums) / np.maximum(w @ counts, 1.0), alpha)


def stratified_bootstrap(d: np.ndarray, codes: np.ndarray, n_boot: int, seed: int,
                         alpha: float) -> Interval:
    """Percentile interval resampling clusters within log4-size strata; a stratum of one cluster
    resamples its users (the stratum's total user count is kept per resample)."""
    sums, counts = _sums(d, codes)
    strata = np.floor(np.log2(counts) / 2).astype(int)  # vehicles within a factor of 4 in size
    units = []
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        if len(members) == 1:  # resample the users of the stratum's only cluster
            unit_sums = d[codes == members[0]]
            units.append((unit_sums, np.ones_like(unit_sums)))
        else:
            units.append((sums[members], counts[members]))
    num = np.zeros(n_boot)
    den = np.zeros(n_boot)
    draws = _stratum_weights(tuple(len(u[0]) for u in units), n_boot, seed)
    for (unit_sums, unit_counts), w in zip(units, draws, strict=True):
        if w is None:  # a stratum of one user: nothing to resample
            num += unit_sums[0]
            den += unit_counts[0]
            continue
        num += w @ unit_sums
        den += w @ unit_counts
    return _percentile(num / np.maximum(den, 1.0), alpha)


def _stratum_weights(sizes: tuple[int, ...], n_boot: int, seed: int
                     ) -> tuple[np.ndarray | None, ...]:
    """Rao-Wu weights per stratum of ``sizes`` units (k - 1 draws weighted k / (k - 1),
    unbiased for a stratum's variance; None for a stratum of one unit), drawn in stratum order
    from one generator: kept for reuse (every arm of a tier has the same strata) up to
    ``CACHED_WEIGHTS`` entries, read-only."""
    if n_boot * sum(sizes) > CACHED_WEIGHTS:
        return _draw_stratum_weights(sizes, n_boot, seed)
    return _kept_stratum_weights(sizes, n_boot, seed)


def _draw_stratum_weights(sizes: tuple[int, ...], n_boot: int, seed: int
                          ) -> tuple[np.ndarray | None, ...]:
    rng = np.random.default_rng(seed)
    return tuple(None if k == 1 else
                 rng.multinomial(k - 1, np.full(k, 1.0 / k), size=n_boot) * (k / (k - 1))
                 for k in sizes)


@functools.lru_cache(maxsize=4)
def _kept_stratum_weights(sizes: tuple[int, ...], n_boot: int, seed: int
                          ) -> tuple[np.ndarray | None, ...]:
    draws = _draw_stratum_weights(sizes, n_boot, seed)
    for w in draws:
        if w is not None:
            w.setflags(write=False)
    return draws


def stratified_t(d: np.ndarray, codes: np.ndarray, n_boot: int, seed: int,
                 alpha: float) -> Interval:
    """mean(d) +/- t_{G-1} * the stratified bootstrap's standard error (G - 1 at least 1)."""
    se = stratified_bootstrap(d, codes, n_boot, seed, alpha).se
    n_clusters = int(codes.max()) + 1
    df = float(max(n_clusters - 1, 1))
    q = float(sps.t.ppf(1 - alpha / 2, df))
    mean = float(d.mean())
    return Interval(mean - q * se, mean + q * se, se, df)


def cr2(d: np.ndarray, codes: np.ndarray, alpha: float) -> Interval:
    """CR2 (Bell-McCaffrey) variance of mean(d), t with G - 1 df; NaN for fewer than 2 clusters."""
    n, mean, resid, counts = _cluster_residuals(d, codes)
    g = len(resid)
    if g < 2:
        return NAN
    var = float(np.sum(resid**2 / (1.0 - counts / n)) / n**2)
    se = math.sqrt(max(var, 0.0))
    q = float(sps.t.ppf(1 - alpha / 2, g - 1))
    return Interval(float(mean - q * se), float(mean + q * se), se, float(g - 1))


def wild_cluster(d: np.ndarray, codes: np.ndarray, n_boot: int, seed: int,
                 alpha: float) -> Interval:
    """Symmetric wild cluster bootstrap-t: d* = mean + v_g * residual, v_g Webb weights; the
    interval is mean +/- q * se_CR1, q the (1 - alpha) quantile of |t*|."""
    n, mean, resid, counts = _cluster_residuals(d, codes)
    g = len(resid)
    if g < 2:
        return NAN
    scale = g / (g - 1)
    se = math.sqrt(scale * np.sum(resid**2)) / n
    if se == 0:
        return Interval(float(mean), float(mean), 0.0)
    v = np.random.default_rng(seed).choice(WEBB, size=(n_boot, g))
    shift = (v @ resid) / n  # mean* - mean
    resid_star = v * resid - shift[:, None] * counts
    se_star = np.sqrt(scale * np.sum(resid_star**2, axis=1)) / n
    t_star = np.abs(shift) / np.where(se_star > 0, se_star, np.inf)
    q = float(np.quantile(t_star, 1 - alpha))
    return Interval(float(mean - q * se), float(mean + q * se), se)


def dersimonian_laird(d: np.ndarray, codes: np.ndarray) -> tuple[float, float]:
    """(tau**2, s**2): the DerSimonian-Laird between-vehicle variance of the vehicles' mean d
    with each vehicle's sampling variance s**2 / n_g, s**2 pooled within vehicles. With these
    weights (proportional to n_g) DL's Q * s**2 is the between-vehicle sum of squares B, so
    tau**2 = max(0, (B - (G - 1) s**2) / (n - sum n_g**2 / n)), defined even where s**2 = 0."""
    sums, counts = _sums(d, codes)
    n, g = len(d), len(counts)
    means = sums / counts
    within_df = n - g
    s2 = float(np.sum((d - means[codes]) ** 2) / within_df) if within_df > 0 else float("nan")
    between = float(np.sum(counts * (means - d.mean()) ** 2))
    denom = n - float(np.sum(counts**2)) / n
    if not math.isfinite(s2):  # every vehicle a single user: only the total variance is known
        return 0.0, between / max(n - 1, 1)
    return max(0.0, (between - (g - 1) * s2) / denom), s2


def random_effects(d: np.ndarray, codes: np.ndarray, alpha: float,
                   floor_se: float = 0.0) -> Interval:
    """mean(d) +/- t_{G-1} * se, se**2 = max(sum_g w_g**2 (s**2 / n_g + tau**2), floor_se**2),
    w_g = n_g / n, tau**2 and s**2 from :func:`dersimonian_laird`; NaN below 2 vehicles."""
    counts = np.bincount(codes).astype(np.float64)
    g, n = len(counts), len(d)
    if g < 2:
        return NAN
    tau2, s2 = dersimonian_laird(d, codes)
    w = counts / n
    var = float(np.sum(w**2 * (s2 / counts + tau2)))
    se = math.sqrt(max(var, floor_se**2, 0.0))
    q = float(sps.t.ppf(1 - alpha / 2, g - 1))
    mean = float(d.mean())
    return Interval(mean - q * se, mean + q * se, se, float(g - 1))


def mde(interval: Interval, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable |delta| with the interval's own standard error and reference
    distribution: (q_{1-alpha/2} + q_{power}) * se; NaN where the interval is undefined."""
    if not math.isfinite(interval.se):
        return float("nan")
    return (interval.quantile(1 - alpha / 2) + interval.quantile(power)) * interval.se
