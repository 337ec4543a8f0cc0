"""Array helpers of the generator: Zipf weights, CSR grouping, pair expansion and the
vectorised per-unit categorical sampler (``PrefSampler``)."""

from __future__ import annotations

import numpy as np


def zipf_weights(n: int, a: float, rng: np.random.Generator) -> np.ndarray:
    """Zipf-like weights ``rank^-a`` over a random permutation of ranks, summing to 1."""
    ranks = rng.permutation(n) + 1.0
    w = ranks**-a
    return w / w.sum()


def csr(keys: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """(ptr, order): rows ``order[ptr[k]:ptr[k+1]]`` have key k (stable)."""
    order = np.argsort(keys, kind="stable")
    ptr = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n_keys), out=ptr[1:])
    return ptr, order


def expand(
    units: np.ndarray, ptr: np.ndarray, members: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, member) pair with member in unit ``units[i]`` (members[ptr[u]:ptr[u+1]])."""
    counts = ptr[units + 1] - ptr[units]
    pos = np.repeat(np.arange(len(units)), counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return pos, members[np.repeat(ptr[units], counts) + offs]


class PrefSampler:
    """Draw products from per-unit categorical distributions with one ``searchsorted``.

    ``unit`` (sorted, non-decreasing) and ``prob`` describe the rows; a unit's probabilities sum
    to 1. Drawing for an array of units costs O(n log rows), no Python loop.
    """

    def __init__(self, unit: np.ndarray, product: np.ndarray, prob: np.ndarray, n_units: int):
        order = np.lexsort((product, unit))
        self.unit, self.product = unit[order], product[order]
        prob = prob[order]
        self.ptr = np.zeros(n_units + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.unit, minlength=n_units), out=self.ptr[1:])
        cs = np.cumsum(prob)
        starts = self.ptr[:-1][np.diff(self.ptr) > 0]
        counts = np.diff(self.ptr)[np.diff(self.ptr) > 0]
        within = cs - np.repeat(cs[starts] - prob[starts], counts)
        within[self.ptr[1:][np.diff(self.ptr) > 0] - 1] = 1.0
        self.key = self.unit.astype(np.float64) + np.minimum(within, 1.0)

    def draw(self, units: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One product per requested unit (units must have rows)."""
        u = rng.random(len(units))
        pos = np.searchsorted(self.key, units + u, side="right")
        pos = np.minimum(pos, len(self.key) - 1)
        return self.product[pos]
