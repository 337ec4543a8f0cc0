"""Coverage simulation of the interval methods (``evaluation.intervals``), Dagster-free.

A :class:`World` records its truth: vehicles (clusters) with their share of the cold users and
each vehicle's long-run SQL and GNN Hit Rate@4; the true delta is the share-weighted mean of
(GNN - SQL), known exactly. A test set (one replicate) draws ``n_users`` users: vehicle counts
multinomial over the shares, then per user a paired (GNN, SQL) hit. Two vehicle effects:

- ``spread``: vehicles differ persistently in their delta (recorded in the world);
- ``concentration``: the test window moves each vehicle's rates together (a season, a list that
  happens to suit one platform this month): per replicate a vehicle's rates are Beta draws with
  the recorded means and this concentration (None: no window effect). This is what makes users on
  one vehicle correlated within a test set; the truth is the long-run mean.

Within a user the two hits share a uniform draw with probability ``pair_corr`` (lists overlap),
so discordant pairs are rarer than under independence. Everything is seeded.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats as sps

from holley_gnn_assets.evaluation.intervals import METHODS, delta_interval, dersimonian_laird


@dataclasses.dataclass(frozen=True)
class World:
    """A truth-recording population of cold users on vehicles (see the module docstring)."""

    name: str
    shares: tuple[float, ...]
    sql_rates: tuple[float, ...]
    gnn_rates: tuple[float, ...]
    n_users: int
    concentration: float | None = None
    pair_corr: float = 0.5
    changes_delta: bool = False

    @property
    def true_delta(self) -> float:
        """Share-weighted mean of each vehicle's GNN - SQL rate: the estimand."""
        w = np.asarray(self.shares)
        return float(np.sum(w * (np.asarray(self.gnn_rates) - np.asarray(self.sql_rates))))

    @property
    def sql_rate(self) -> float:
        return float(np.sum(np.asarray(self.shares) * np.asarray(self.sql_rates)))

    @property
    def effective_clusters(self) -> float:
        w = np.asarray(self.shares)
        return float(1.0 / np.sum(w**2))


def make_world(name: str, *, n_clusters: int = 13, dominant: float | None = None,
               base: float = 0.3, delta: float = 0.0, spread: float = 0.0,
               concentration: float | None = None, n_users: int = 400,
               seed: int = 0) -> World:
    """A world of ``n_clusters`` vehicles, balanced or with one holding ``dominant`` of the users;
    SQL rate ``base`` everywhere, GNN rate base + delta + a persistent per-vehicle deviation
    (sd ``spread``, centred so the share-weighted delta is exactly ``delta``)."""
    if dominant is None:
        shares = np.full(n_clusters, 1.0 / n_clusters)
    else:
        shares = np.full(n_clusters, (1.0 - dominant) / (n_clusters - 1))
        shares[0] = dominant
    rng = np.random.default_rng(seed)
    dev = rng.normal(0.0, spread, n_clusters) if spread > 0 else np.zeros(n_clusters)
    dev -= np.sum(shares * dev)
    sql = np.full(n_clusters, base)
    gnn = np.clip(base + delta + dev, 0.0, 1.0)
    shift = delta - np.sum(shares * (gnn - sql))  # re-centre after clipping
    gnn = np.clip(gnn + shift, 0.0, 1.0)
    changes = spread > 0 or concentration is not None
    return World(name, tuple(shares), tuple(sql), tuple(gnn), n_users, concentration,
                 changes_delta=changes)


def draw_test_set(world: World, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """One replicate: (gnn hits, sql hits, vehicle codes) of ``world.n_users`` users."""
    counts = rng.multinomial(world.n_users, world.shares)
    codes = np.repeat(np.arange(len(counts)), counts)
    q = np.asarray(world.gnn_rates)
    p = np.asarray(world.sql_rates)
    if world.concentration is not None:
        q, p = _beta(q, world.concentration, rng), _beta(p, world.concentration, rng)
    u = rng.random(len(codes))
    shared = rng.random(len(codes)) < world.pair_corr
    u2 = np.where(shared, u, rng.random(len(codes)))
    return (u < q[codes]).astype(float), (u2 < p[codes]).astype(float), codes


def _beta(mean: np.ndarray, conc: float, rng: np.random.Generator) -> np.ndarray:
    inside = (mean > 0) & (mean < 1)
    out = mean.astype(float).copy()
    m = mean[inside]
    out[inside] = rng.beta(m * conc, (1 - m) * conc)
    return out


@dataclasses.dataclass(frozen=True)
class Coverage:
    """One method on one world: share of replicates whose interval held the true delta, mean
    width, share calling a win (low > 0 and delta >= ``win_band``) on a null world."""

    world: str
    method: str
    coverage: float
    mean_width: float
    false_win: float | None
    undefined: float
    replicates: int


def simulate(world: World, replicates: int, methods: tuple[str, ...] = METHODS,
             n_boot: int = 999, seed: int = 0, alpha: float = 0.05,
             win_band: float = 0.0) -> list[Coverage]:
    """Coverage of each method's (1 - alpha) interval over ``replicates`` test sets."""
    rng = np.random.default_rng(seed)
    truth = world.true_delta
    hits = {m: [] for m in methods}
    widths = {m: [] for m in methods}
    wins = {m: 0 for m in methods}
    undefined = {m: 0 for m in methods}
    for r in range(replicates):
        a, b, codes = draw_test_set(world, rng)
        est = float(np.mean(a - b))
        for m in methods:
            iv = delta_interval(a, b, codes, m, n_boot, seed + r, alpha)
            if not (math.isfinite(iv.lo) and math.isfinite(iv.hi)):
                undefined[m] += 1
                hits[m].append(False)
                continue
            hits[m].append(iv.lo <= truth + 1e-12 and truth - 1e-12 <= iv.hi)
            widths[m].append(iv.hi - iv.lo)
            wins[m] += int(iv.lo > 0 and est >= win_band)
    null = abs(truth) < 1e-12
    return [Coverage(world.name, m, float(np.mean(hits[m])),
                     float(np.mean(widths[m])) if widths[m] else float("nan"),
                     wins[m] / replicates if null else None, undefined[m] / replicates,
                     replicates)
            for m in methods]


def scenarios(n_users: int = 400) -> list[World]:
    """The worlds of the coverage table: balanced and one vehicle with 90% of the users (13
    vehicles), null and planted effect, vehicles that do and do not change the paired difference,
    a Holley-like base rate (0.27), small ones (0.05, 0.004) and a small test set (150 users)."""
    out: list[World] = []
    for label, dom in (("balanced", None), ("dominant90", 0.9)):
        for effect in (0.0, 0.05):
            kind = "null" if effect == 0 else "effect"
            out.append(make_world(f"{label} {kind} iid", dominant=dom, base=0.27, delta=effect,
                                  n_users=n_users))
            out.append(make_world(f"{label} {kind} vehicles differ", dominant=dom, base=0.27,
                                  delta=effect, spread=0.08, n_users=n_users, seed=1))
            out.append(make_world(f"{label} {kind} window shocks", dominant=dom, base=0.27,
                                  delta=effect, concentration=100.0, n_users=n_users))
    out.append(make_world("dominant90 null base 0.05", dominant=0.9, base=0.05, n_users=n_users))
    out.append(make_world("dominant90 effect base 0.05", dominant=0.9, base=0.05, delta=0.04,
                          n_users=n_users))
    out.append(make_world("dominant90 null base 0.004 (real log)", dominant=0.9, base=0.004,
                          n_users=250))
    out.append(make_world("dominant90 effect base 0.004 (real log)", dominant=0.9, base=0.004,
                          delta=0.03, n_users=250))
    out.append(make_world("balanced null small (150 users)", base=0.27, n_users=150))
    out.append(make_world("balanced effect small (150 users)", base=0.27, delta=0.1,
                          n_users=150))
    return out


def coverage_table(results: list[Coverage], worlds: list[World], alpha: float = 0.05) -> str:
    """The results as a Markdown table: one row per world, coverage / width / false wins per
    method."""
    methods = list(dict.fromkeys(r.method for r in results))
    by = {(r.world, r.method): r for r in results}
    head = ["world", "n", "G_eff", "true delta", "measurable", *methods]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for w in worlds:
        cells = []
        for m in methods:
            r = by[(w.name, m)]
            fw = "" if r.false_win is None else f", fw {r.false_win:.1%}"
            und = f", undef {r.undefined:.0%}" if r.undefined else ""
            cells.append(f"{r.coverage:.1%} (w {r.mean_width:.3f}{fw}{und})")
        lines.append(f"| {w.name} | {w.n_users} | {w.effective_clusters:.1f} | "
                     f"{w.true_delta:+.3f} | {'yes' if measurable(w) else 'no'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def measurable(world: World) -> bool:
    """False for a world no interval can cover: window shocks (vehicles whose users move
    together in a test window) with too few effective vehicles to measure them."""
    return world.concentration is None or world.effective_clusters >= 10.0


def verdicts(results: list[Coverage], worlds: list[World], min_coverage: float = 0.93,
             max_false_win: float = 0.025, max_width_ratio: float = 1.5) -> str:
    """Per method: lowest coverage (every world, and the measurable ones), highest false-win
    share on measurable null worlds (with its Clopper-Pearson 95% interval: consistent with the
    nominal ``max_false_win`` when the interval reaches it), width over the user-level
    interval's on dominant-vehicle worlds whose vehicles do not change the paired difference,
    and whether it meets all three."""
    by = {(r.world, r.method): r for r in results}
    methods = list(dict.fromkeys(r.method for r in results))
    meas = [w for w in worlds if measurable(w)]
    iid_dominant = [w for w in worlds if w.effective_clusters < 10 and not w.changes_delta]
    head = ["method", "min coverage (all)", "min coverage (measurable)",
            "max false win (measurable) [MC 95%]", "width / user (dominant, vehicles alike)",
            "meets"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for m in methods:
        cov_all = min(by[(w.name, m)].coverage for w in worlds)
        cov_meas = min(by[(w.name, m)].coverage for w in meas)
        nulls = [by[(w.name, m)] for w in meas if by[(w.name, m)].false_win is not None]
        worst = max(nulls, key=lambda r: r.false_win or 0.0)
        fw_lo, fw_hi = mc_interval(worst.false_win or 0.0, worst.replicates)
        ratios = [by[(w.name, m)].mean_width / by[(w.name, "user")].mean_width
                  for w in iid_dominant if (w.name, "user") in by]
        ratio = max(ratios) if ratios else float("nan")
        ok = cov_meas >= min_coverage and fw_lo <= max_false_win and not ratio > max_width_ratio
        lines.append(f"| {m} | {cov_all:.1%} | {cov_meas:.1%} | {worst.false_win:.1%} "
                     f"[{fw_lo:.1%}, {fw_hi:.1%}] | {ratio:.2f} | {'yes' if ok else 'no'} |")
    return "\n".join(lines) + "\n"


def mc_interval(share: float, replicates: int) -> tuple[float, float]:
    """Clopper-Pearson 95% interval of a coverage share over ``replicates`` (Monte-Carlo error)."""
    k = round(share * replicates)
    res = sps.binomtest(k, replicates).proportion_ci(0.95)
    return float(res.low), float(res.high)


def shock_detection(alike: World, shocked: World, replicates: int, seed: int = 0,
                    false_alarms: tuple[float, ...] = (0.05, 0.15, 0.25)) -> dict[str, object]:
    """How far one test set can tell a world whose vehicles are alike from one with window
    shocks: the 93% quantile of |mean(d) - truth| in each (the half-width a centred interval
    needs for 93% coverage), and how often the DerSimonian-Laird tau**2 flags the shocked world
    when its threshold flags the alike world at each ``false_alarms`` rate."""
    out: dict[str, object] = {}
    taus = {}
    for key, world in (("alike", alike), ("shocked", shocked)):
        rng = np.random.default_rng(seed)
        tau, err = [], []
        for _ in range(replicates):
            a, b, codes = draw_test_set(world, rng)
            d = a - b
            tau.append(dersimonian_laird(d, np.unique(codes, return_inverse=True)[1])[0])
            err.append(abs(float(d.mean()) - world.true_delta))
        taus[key] = np.asarray(tau)
        out[f"error_q93_{key}"] = float(np.quantile(err, 0.93))
    out["detected"] = {fa: float(np.mean(taus["shocked"] > np.quantile(taus["alike"], 1 - fa)))
                       for fa in false_alarms}
    return out
