"""Cold users by how much history their vehicle holds: every arm's Hit Rate@4 per bucket of the
vehicle's engaged owners (its warm and hot users, those with interactions before the cutoff).

It reads no truth, so it means the same on a real warehouse: a vehicle nobody engaged with can
only borrow from its look-alikes, one with many engaged owners has its own count, and the table
shows in which of these the GNN's difference from SQL and the per-vehicle count sits.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

# engaged owners per vehicle: buckets (-1, 0], (0, 2], (2, 9], (9, inf) of the integer counts
EDGES = (-1, 0, 2, 9, math.inf)
LABELS = ("0", "1-2", "3-9", "10+")


def engaged_owners(users: pd.DataFrame) -> pd.Series:
    """Warm and hot users per vehicle_id (``users``: email_lower, vehicle_id, tier)."""
    engaged = users[users["tier"].isin(["warm", "hot"]) & users["vehicle_id"].notna()]
    return engaged.groupby("vehicle_id")["email_lower"].nunique()


def by_vehicle_owners(per_user: dict[str, pd.DataFrame],
                      owners: pd.Series) -> list[dict[str, Any]]:
    """One row per bucket: users, vehicles and each arm's mean Hit Rate@4 (None when the
    bucket is empty). ``per_user``: arm -> per-user metrics with ``vehicle_id`` (every arm
    scores the same users)."""
    def bucket(pu: pd.DataFrame) -> pd.Series:
        return pd.cut(pu["vehicle_id"].map(owners).fillna(0), EDGES, labels=LABELS)

    first = next(iter(per_user.values()))
    size = first.groupby(bucket(first), observed=False)["vehicle_id"].agg(["size", "nunique"])
    hit = {arm: pu["hit_rate@4"].groupby(bucket(pu), observed=False).mean()
           for arm, pu in per_user.items()}
    return [{"owners": label, "n_users": int(size.loc[label, "size"]),
             "n_vehicles": int(size.loc[label, "nunique"]),
             "hit_rate@4": {arm: None if pd.isna(h[label]) else float(h[label])
                            for arm, h in hit.items()}}
            for label in LABELS]
