"""Demand that moves in time: seasons per product cluster, launches, decline and trends.

Every draw of the generator picks a product first and a time (or the time first); with a
``TimeModel`` the product of each draw is re-drawn, by rejection, until it is accepted with
probability g_j(t) / bound, so at every instant t the preference is P(j | v) x g_j(t)
(normalised). The intensity g_j(t) multiplies:

- a season of the product's cluster: 1 + seasonal_amplitude x cos(2 pi (day of year - phase_c)
  / 365.25), one peak day per cluster;
- a launch (``launch_share`` of the products, uniformly at random): 0 before the launch day
  (uniform over the ``launch_days`` before the cutoff), ``launch_boost`` from it on;
- a decline (``decline_share``, drawn in proportion to the square root of attractiveness, so
  products that sold well are the likelier to fade): 1 until the decline day (uniform in
  [cutoff - 2 years, cutoff - 90 days]), then falling linearly to 0 over ``decline_fade_days``;
- a trend (``trending_share``, uniformly): exp(ln(trend_growth) x (t - cutoff) / 1 year).

With every knob at 0 no model is built and the generator draws exactly what it drew before.
The truth (``synth_truth.products``) records each product's launch/decline days, trend flag,
cluster phase and ``time_factor``: the mean of g_j over the test window, by which the oracle
multiplies the stationary preference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

DAY = 86_400
YEAR_DAYS = 365.25
TIME_KNOBS = ("seasonal_amplitude", "launch_share", "decline_share", "trending_share")
_MAX_ROUNDS = 1000


@dataclass
class TimeModel:
    """Per-product time intensity g_j(t) (module doc) and the rejection re-draw."""

    amplitude: float
    phase: np.ndarray  # [n_clusters] day of year of the cluster's peak
    cluster: np.ndarray  # [n_products]
    launch: np.ndarray  # [n_products] epoch seconds of the launch; -1: not a launch
    launch_boost: float
    decline: np.ndarray  # [n_products] epoch seconds the decline starts; -1: none
    fade_s: float
    trending: np.ndarray  # [n_products] bool
    trend_rate: float  # ln(growth) per year
    cutoff: int
    bound: float
    rng: np.random.Generator
    unresolved: int = 0  # draws kept after _MAX_ROUNDS rejections (see resample)

    def intensity(self, products: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """g_j(t) for each (product, epoch second) pair."""
        ts = np.asarray(ts, dtype=np.float64)
        doy = (ts / DAY) % YEAR_DAYS
        g = 1.0 + self.amplitude * np.cos(
            2 * np.pi * (doy - self.phase[self.cluster[products]]) / YEAR_DAYS)
        launch = self.launch[products]
        g = np.where(launch >= 0, np.where(ts < launch, 0.0, g * self.launch_boost), g)
        decline = self.decline[products]
        fade = np.clip(1.0 - (ts - decline) / self.fade_s, 0.0, 1.0)
        g = np.where(decline >= 0, g * fade, g)
        trend = np.exp(self.trend_rate * (ts - self.cutoff) / (YEAR_DAYS * DAY))
        return np.where(self.trending[products], g * trend, g)

    def resample(self, products: np.ndarray, ts: np.ndarray,
                 redraw: Callable[[np.ndarray, np.random.Generator], np.ndarray]) -> np.ndarray:
        """``products`` with each draw re-drawn (``redraw(indices, rng)``: new products for
        those draws, from the same stationary distribution) until accepted at its time."""
        out = np.array(products, copy=True)
        ts = np.asarray(ts)
        todo = np.arange(len(out))
        for _ in range(_MAX_ROUNDS):
            accept = self.rng.random(len(todo)) * self.bound < self.intensity(out[todo], ts[todo])
            todo = todo[~accept]
            if len(todo) == 0:
                return out
            out[todo] = redraw(todo, self.rng)
        # a unit (vehicle) whose products are almost all unavailable at that time (declined,
        # not launched yet) keeps its last draw: counted, recorded in the truth
        self.unresolved += len(todo)
        return out

    def window_factor(self, lo: int, hi: int, n_products: int, step: int = DAY) -> np.ndarray:
        """Mean g_j(t) of every product over [lo, hi) on a grid of ``step`` seconds."""
        grid = np.arange(lo + step // 2, hi, step, dtype=np.int64)
        total = np.zeros(n_products)
        products = np.arange(n_products)
        for t in grid:
            total += self.intensity(products, np.full(n_products, t))
        return total / max(len(grid), 1)


def has_time(params: dict[str, Any]) -> bool:
    """Whether any time knob is set (else the world is stationary)."""
    return any(float(params[k]) > 0 for k in TIME_KNOBS)


def build_time_model(params: dict[str, Any], cluster: np.ndarray, attract: np.ndarray,
                     n_clusters: int, cutoff: int, as_of: int,
                     rng: np.random.Generator) -> TimeModel | None:
    """The world's ``TimeModel`` from the knobs (None when every knob is 0)."""
    if not has_time(params):
        return None
    n = len(cluster)
    amplitude = float(params["seasonal_amplitude"])
    if amplitude > 1.0:
        raise ValueError(f"seasonal_amplitude={amplitude} must lie in [0, 1]")
    phase = rng.uniform(0.0, YEAR_DAYS, n_clusters)
    launch = np.full(n, -1, dtype=np.int64)
    n_launch = round(float(params["launch_share"]) * n)
    launched = rng.choice(n, n_launch, replace=False)
    span = int(float(params["launch_days"]) * DAY)
    launch[launched] = cutoff - rng.integers(DAY, max(span, 2 * DAY), n_launch)
    decline = np.full(n, -1, dtype=np.int64)
    free = np.setdiff1d(np.arange(n), launched)
    n_decline = min(round(float(params["decline_share"]) * n), len(free))
    p = np.sqrt(attract[free])
    p /= p.sum()
    declined = rng.choice(free, n_decline, replace=False, p=p)
    decline[declined] = cutoff - rng.integers(90 * DAY, 730 * DAY, n_decline)
    trending = np.zeros(n, dtype=bool)
    trending[rng.choice(n, round(float(params["trending_share"]) * n), replace=False)] = True
    growth = float(params["trend_growth"])
    if growth < 1.0:
        raise ValueError(f"trend_growth={growth} must be >= 1")
    rate = float(np.log(growth))
    boost = float(params["launch_boost"])
    if n_launch and boost <= 0:
        raise ValueError("launch_boost must be > 0 when launch_share > 0")
    bound = (1.0 + amplitude) * max(1.0, boost if n_launch else 1.0) * (
        float(np.exp(rate * (as_of - cutoff) / (YEAR_DAYS * DAY))) if trending.any() else 1.0)
    return TimeModel(amplitude, phase, cluster, launch, boost, decline,
                     float(params["decline_fade_days"]) * DAY, trending, rate, cutoff,
                     bound * (1 + 1e-9), rng)


def days_of(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds (-1: none) as dates (NaT for none)."""
    s = np.asarray(seconds, dtype=np.int64)
    out = (s // DAY).astype("datetime64[D]")
    return np.where(s >= 0, out, np.datetime64("NaT"))
