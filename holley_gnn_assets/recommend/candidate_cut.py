"""An arm's score rows cut to what the rules can read: each vehicle's best eligible candidates.

``sql/rules/recommend.sql`` ranks each group (a vehicle, or the global group) once by score
DESC, sku ASC over its eligible candidates and hands only the top
``rules.candidate_depth`` to the per-user rules. Rows below that depth never reach a list, so
an arm computed in Python can drop them before the load: the rules then build the same lists
from ~k rows a vehicle instead of one per fitting product. The caller passes the rows the
rules would accept as candidates (fitting products: every arm here scores only those).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from holley_gnn_assets.recommend.apply_rules import check_score_frame
from holley_gnn_assets.recommend.group_top_k import best_per_group


def top_candidates(scores: pd.DataFrame, eligible: pd.Series, k: int,
                   arm: str = "scores") -> pd.DataFrame:
    """``scores`` [vehicle_id, email_lower, sku, score] with its vehicle rows (``email_lower``
    null; a null vehicle is the global group) cut to each vehicle's ``k`` best whose sku is
    ``eligible`` (sku -> bool; missing: not eligible), by score DESC, sku ASC. Users' own rows
    are kept as they are (their arm bounds them). Rows keep their order in ``scores``. A score
    table no rule could rank (``apply_rules.check_score_frame``) is refused first, naming
    ``arm``, so no bad row is cut away unseen."""
    if k < 1:
        raise ValueError(f"top_candidates: k must be >= 1, got {k}")
    check_score_frame(scores, arm)
    if not len(scores):
        return scores
    sku_code, skus = pd.factorize(scores["sku"], sort=True)  # code order = sku ASC
    ok = eligible.reindex(skus, fill_value=False).to_numpy(dtype=bool)[sku_code]
    group = pd.factorize(scores["vehicle_id"], use_na_sentinel=False)[0]
    own = scores["email_lower"].notna().to_numpy()
    best = best_per_group(group, scores["score"].to_numpy(dtype=np.float64), sku_code, k,
                          keep=ok & ~own)
    keep = np.sort(np.concatenate([best, np.flatnonzero(own)]))
    if len(keep) == len(scores):
        return scores
    return scores.iloc[keep].reset_index(drop=True)
