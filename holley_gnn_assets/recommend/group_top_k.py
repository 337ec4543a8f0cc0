"""Each group's k best rows by score, ties by a second key: the one ranking the scorers share.

The rules file ranks by score DESC, sku ASC; every Python-side cut that must keep exactly the
rows the rules would read (a vehicle's candidates, a user's own rows, a vehicle's top k in the
recent-demand validation) ranks the same way, through this function.
"""

from __future__ import annotations

import numpy as np


def best_per_group(group: np.ndarray, score: np.ndarray, tie: np.ndarray,
                   k: int | np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Positions (ascending) of each group's ``k`` best rows by ``score`` DESC, then ``tie``
    ASC, among the rows ``keep`` marks (all when None). ``group``: integer codes; ``k``: one
    for every group, or an array indexed by group code."""
    idx = np.arange(len(group)) if keep is None else np.flatnonzero(keep)
    order = idx[np.lexsort((tie[idx], -score[idx], group[idx]))]
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, np.int64)
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    limit = k if np.isscalar(k) else np.asarray(k)[g]
    return np.sort(order[rank < limit])
