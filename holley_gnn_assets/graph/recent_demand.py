"""Recent demand from the order log: counts over the last N days before the cutoff and
counts decayed with a half-life, each with its window or half-life chosen on validation.

Input: ``product_order_days`` (sku, age_days, n_orders): distinct orders per product and day,
age_days = whole days between the order and the cutoff (0 = the last day before it).

Validation (``choose``): the last ``recent.holdout_days`` before the cutoff are held out; each
candidate's counts are computed as of the start of that holdout (ages shifted by it). With the
fitment (``Fitment``: eligible fitting products per vehicle, vehicles weighted by their users)
the score is Hit Rate@k within fitment of the held-out orders: each vehicle's top k products by
the counts, and an order of product s a hit with the user-weighted share of the vehicles s fits
that have s in their top k (the buyer's vehicle is unknown; evaluation ranks within fitment).
Without it: the orders-weighted mean reciprocal rank over the whole catalogue. The best
candidate wins (ties: the first listed).
Ties among products with equal recent counts are broken by their counts over all time, so a
window that holds nothing ranks like the SQL baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.recommend.group_top_k import best_per_group

ALL_TIME = 0  # a window of 0 days / a half-life of 0: every order before the cutoff, undecayed


class Fitment:
    """Eligible fitting (vehicle, sku) pairs with the vehicle's weight (its users + 1), and the
    list length k of the validation's Hit Rate (integer codes, so each candidate costs one
    sort)."""

    def __init__(self, pairs: pd.DataFrame, k: int) -> None:
        self.k = int(k)
        self.vehicle = pd.factorize(pairs["vehicle_id"])[0]
        self.sku_codes, self.skus = pd.factorize(pairs["sku"])
        self.w = pairs["w"].to_numpy(np.float64)
        self.sku_weight = np.bincount(self.sku_codes, weights=self.w, minlength=len(self.skus))

    @classmethod
    def from_tables(cls, tables: Mapping[str, pd.DataFrame], k: int) -> Fitment:
        """From ``product_vehicle_edges``, ``product_nodes`` (eligible) and ``user_nodes``."""
        products = tables["product_nodes"]
        eligible = set(products.loc[products["eligible"].astype(bool), "sku"])
        fit = tables["product_vehicle_edges"][["vehicle_id", "sku"]].drop_duplicates()
        fit = fit[fit["sku"].isin(eligible)]
        users = tables["user_nodes"]["vehicle_id"].dropna().value_counts()
        w = fit["vehicle_id"].map(users).fillna(0.0).to_numpy(np.float64) + 1.0
        return cls(fit.assign(w=w).reset_index(drop=True), int(k))

    def hit_rate(self, score: pd.Series, targets: pd.Series) -> float:
        """Orders-weighted Hit Rate@k within fitment of ``targets`` (sku -> orders)."""
        if targets.sum() <= 0 or len(self.w) == 0:
            return 0.0
        s = score.reindex(self.skus).fillna(0.0).to_numpy()[self.sku_codes]
        top = best_per_group(self.vehicle, s, np.arange(len(s)), self.k)  # ties: row order
        hit = np.bincount(self.sku_codes[top], weights=self.w[top], minlength=len(self.skus))
        share = pd.Series(hit / np.maximum(self.sku_weight, 1e-300), index=self.skus)
        p = share.reindex(targets.index).fillna(0.0)
        return float((p * targets).sum() / targets.sum())


@dataclass(frozen=True)
class RecentChoice:
    """A window or half-life chosen on validation, and every candidate's validation MRR."""

    value: float
    val_mrr: dict[float, float] = field(default_factory=dict)


def _check(days: pd.DataFrame) -> None:
    missing = [c for c in ("sku", "age_days", "n_orders") if c not in days.columns]
    if missing:
        raise ValueError(f"product_order_days lacks column(s) {missing}")


def window_counts(days: pd.DataFrame, n_days: float, offset: int = 0) -> pd.Series:
    """Orders per sku with offset <= age_days < offset + n_days (n_days 0: every age >=
    offset)."""
    _check(days)
    age = days["age_days"].to_numpy()
    keep = age >= offset
    if n_days > 0:
        keep &= age < offset + n_days
    sel = days[keep]
    return sel.groupby("sku")["n_orders"].sum().astype(float)


def decayed_counts(days: pd.DataFrame, half_life: float, offset: int = 0) -> pd.Series:
    """sum n_orders x 0.5 ** ((age_days - offset) / half_life) per sku over ages >= offset,
    rescaled to the undecayed total (half-life 0: the undecayed counts)."""
    _check(days)
    sel = days[days["age_days"] >= offset]
    n = sel["n_orders"].to_numpy(np.float64)
    if half_life <= 0:
        return pd.Series(n, index=sel["sku"].to_numpy()).groupby(level=0).sum()
    w = n * np.power(0.5, (sel["age_days"].to_numpy(np.float64) - offset + 0.5) / half_life)
    out = pd.Series(w, index=sel["sku"].to_numpy()).groupby(level=0).sum()
    return out * (n.sum() / max(w.sum(), 1e-300))


def tie_broken(recent: pd.Series, all_time: pd.Series, skus: pd.Index) -> pd.Series:
    """``recent`` over ``skus`` (missing: 0) plus the all-time count scaled below 1 of the
    smallest step, so equal recent counts rank by all-time popularity."""
    r = recent.reindex(skus).fillna(0.0).astype(float)
    a = all_time.reindex(skus).fillna(0.0).astype(float).to_numpy()
    step = float(np.min(np.diff(np.unique(r.to_numpy())), initial=1.0))
    return r + 0.5 * step * a / (1.0 + float(np.max(a, initial=0.0)))


def _mrr(score: pd.Series, targets: pd.Series) -> float:
    """Orders-weighted mean reciprocal rank of the target skus (weights) under ``score``."""
    if targets.sum() <= 0:
        return 0.0
    rank = score.rank(ascending=False, method="average")
    r = rank.reindex(targets.index)
    rr = (1.0 / r).fillna(0.0)
    return float((rr * targets).sum() / targets.sum())


def choose(days: pd.DataFrame, skus: Sequence[str] | pd.Index, candidates: Sequence[float],
           holdout_days: int, kind: str, fitment: Fitment | None = None) -> RecentChoice:
    """The candidate window (``kind`` "window") or half-life ("half_life") whose counts as of
    ``holdout_days`` before the cutoff rank the held-out orders best (module doc)."""
    if not candidates:
        raise ValueError(f"recent demand: no {kind} candidates configured")
    if len(candidates) == 1:
        return RecentChoice(float(candidates[0]), {})
    skus = pd.Index(skus)
    targets = window_counts(days, holdout_days, 0)
    past = window_counts(days, ALL_TIME, holdout_days)
    mrr: dict[float, float] = {}
    for c in candidates:
        counts = (window_counts(days, float(c), holdout_days) if kind == "window"
                  else decayed_counts(days, float(c), holdout_days))
        score = tie_broken(counts, past, skus)
        mrr[float(c)] = (_mrr(score, targets) if fitment is None
                         else fitment.hit_rate(score, targets))
    best = max(mrr, key=lambda c: (mrr[c], -list(mrr).index(c)))
    return RecentChoice(best, mrr)


def recent_pop_counts(days: pd.DataFrame, skus: pd.Index, recent: Mapping[str, Any],
                      fitment: Fitment | None = None) -> tuple[pd.Series, RecentChoice]:
    """``recent_pop``'s score per sku (orders in the chosen last N days, all-time tie-break)
    and the choice of N (``recent.pop_days``, validated over ``recent.holdout_days``)."""
    choice = choose(days, skus, list(recent["pop_days"]), int(recent["holdout_days"]), "window",
                    fitment)
    score = tie_broken(window_counts(days, choice.value), window_counts(days, ALL_TIME), skus)
    return score, choice


def prior_counts(days: pd.DataFrame, skus: pd.Index, recent: Mapping[str, Any],
                 fitment: Fitment | None = None) -> tuple[pd.Series, RecentChoice]:
    """The model's popularity count per sku: orders decayed with the half-life chosen on
    validation from ``recent.prior_half_life_days`` (0: the all-time count)."""
    choice = choose(days, skus, list(recent["prior_half_life_days"]),
                    int(recent["holdout_days"]), "half_life", fitment)
    counts = decayed_counts(days, choice.value).reindex(skus).fillna(0.0)
    return counts, choice


def time_aware_prior(tables: Mapping[str, pd.DataFrame], cfg: Mapping[str, Any],
                     skus: pd.Index) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The popularity count the model's prior, negatives and validation baseline read, one per
    sku of ``skus``: None (keep product_nodes.order_count) without ``product_order_days`` or
    when ``recent.prior_half_life_days`` lists only 0; with its choice for the graph stats."""
    days = tables.get("product_order_days")
    if days is None or not any(float(h) > 0 for h in cfg["recent"]["prior_half_life_days"]):
        return None, {"prior_half_life_days": float(ALL_TIME)}
    counts, choice = prior_counts(days, skus, cfg["recent"],
                                  Fitment.from_tables(tables, cfg["rules"]["top_k"]))
    stats: dict[str, Any] = {"prior_half_life_days": choice.value}
    stats.update({f"prior_val_mrr_h{k:g}": round(v, 6) for k, v in choice.val_mrr.items()})
    return counts.to_numpy(np.float64), stats
