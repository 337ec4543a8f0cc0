"""Cold users by how much history their vehicle holds: every arm's Hit Rate@4 per bucket of the
vehicle's engaged owners (its warm and hot users, those with interactions before the cutoff).

It reads no truth, so it means the same on a real warehouse: a vehicle nobody engaged with can
only borrow from its look-alikes, one with many engaged owners has its own count, and the table
shows in which of these the GNN's difference from SQL and the per-vehicle count sits.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

# (lowest, highest or None, label) engaged owners per vehicle
OWNER_BUCKETS: tuple[tuple[int, int | None, str], ...] = (
    (0, 0, "0"), (1, 2, "1-2"), (3, 9, "3-9"), (10, None, "10+"))


def engaged_owners(users: pd.DataFrame) -> pd.Series:
    """Warm and hot users per vehicle_id (``users``: email_lower, vehicle_id, tier)."""
    engaged = users[users["tier"].isin(["warm", "hot"]) & users["vehicle_id"].notna()]
    return engaged.groupby("vehicle_id")["email_lower"].nunique()


def by_vehicle_owners(per_user: dict[str, pd.DataFrame],
                      owners: pd.Series) -> list[dict[str, Any]]:
    """One row per bucket: users, vehicles and each arm's mean Hit Rate@4 (None when the
    bucket is empty). ``per_user``: arm -> per-user metrics with ``vehicle_id``."""
    rows = []
    for lo, hi, label in OWNER_BUCKETS:
        row: dict[str, Any] = {"owners": label, "hit_rate@4": {}}
        for arm, pu in per_user.items():
            n = pu["vehicle_id"].map(owners).fillna(0)
            inside = pu[(n >= lo) & (n <= hi if hi is not None else True)]
            row["n_users"] = int(len(inside))
            row["n_vehicles"] = int(inside["vehicle_id"].nunique())
            row["hit_rate@4"][arm] = (float(inside["hit_rate@4"].mean()) if len(inside)
                                      else None)
        rows.append(row)
    return rows
