"""Per-user ranking metrics from a ranked long frame and the set of clicked SKUs.

Definitions (rank is 1-based; ``clicked`` = the user's distinct clicked SKUs, exact SKU match):
- ``hit_rate@4``: 1 if any clicked SKU is in the top 4, else 0;
- ``recall@k``: |clicked ∩ top k| / |clicked| (k = 10, 20);
- ``mrr``: 1 / rank of the first clicked SKU in the ranked list (0 if none is in the list;
  the list is ``rank_depth`` long, so this is MRR@rank_depth);
- ``ndcg@10``: binary gains, DCG = sum over clicked SKUs at rank r <= 10 of 1/log2(r + 1),
  divided by the ideal DCG = sum_{i=1}^{min(|clicked|, 10)} 1/log2(i + 1).
A user with no ranked list scores 0 on every metric.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ["hit_rate@4", "recall@10", "recall@20", "mrr", "ndcg@10"]


def per_user_metrics(ranked: pd.DataFrame, clicks: pd.DataFrame) -> pd.DataFrame:
    """One row per user in ``clicks`` (email_lower, sku) with the METRICS columns."""
    for df, what, cols in (
        (ranked, "ranked", ["email_lower", "rank", "sku"]),
        (clicks, "clicks", ["email_lower", "sku"]),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{what} lacks column(s) {missing}")
    truth = clicks[["email_lower", "sku"]].dropna().drop_duplicates()
    n_clicked = truth.groupby("email_lower").size().rename("n_clicked")
    users = n_clicked.index
    hits = ranked[["email_lower", "rank", "sku"]].merge(truth, on=["email_lower", "sku"])
    r = hits["rank"].to_numpy(dtype=np.float64)
    hits = hits.assign(
        h4=(r <= 4).astype(float),
        h10=(r <= 10).astype(float),
        h20=(r <= 20).astype(float),
        rr=1.0 / r,
        dcg=np.where(r <= 10, 1.0 / np.log2(r + 1.0), 0.0),
    )
    agg = hits.groupby("email_lower").agg(
        h4=("h4", "max"),
        h10=("h10", "sum"),
        h20=("h20", "sum"),
        rr=("rr", "max"),
        dcg=("dcg", "sum"),
    )
    agg = agg.reindex(users, fill_value=0.0)
    n = n_clicked.to_numpy(dtype=np.float64)
    disc = np.cumsum(1.0 / np.log2(np.arange(2, 12)))
    idcg = disc[np.minimum(n, 10).astype(int) - 1]
    out = pd.DataFrame(
        {
            "hit_rate@4": agg["h4"].to_numpy(),
            "recall@10": agg["h10"].to_numpy() / n,
            "recall@20": agg["h20"].to_numpy() / n,
            "mrr": agg["rr"].to_numpy(),
            "ndcg@10": agg["dcg"].to_numpy() / idcg,
        },
        index=users,
    )
    out.index.name = "email_lower"
    return out.reset_index()


def mean_metrics(per_user: pd.DataFrame) -> dict[str, float | None]:
    """Means of METRICS over users; None for an empty frame (nothing measured, never 0.0)."""
    if per_user.empty:
        return {m: None for m in METRICS}
    return {m: float(per_user[m].mean()) for m in METRICS}
