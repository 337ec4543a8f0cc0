"""Data-quality checks on the exported tables (pure pandas; the asset checks wrap these)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class CheckOutcome:
    """Result of one data-quality check: pass/fail, offending count and a few sample rows."""

    passed: bool
    count: int
    detail: str
    samples: list[dict] = field(default_factory=list)


def _outcome(
    bad: pd.DataFrame, what: str, drop: tuple[str, ...] = ("email_lower",)
) -> CheckOutcome:
    safe = bad.drop(columns=[c for c in drop if c in bad.columns]).head(5)
    return CheckOutcome(
        passed=bad.empty,
        count=len(bad),
        detail=f"{len(bad)} {what}",
        samples=[{k: str(v) for k, v in row.items()} for row in safe.to_dict("records")],
    )


def unique_not_null(df: pd.DataFrame, key: str) -> CheckOutcome:
    """Key column unique and not null."""
    bad = df[df[key].isna() | df[key].duplicated(keep=False)]
    return _outcome(bad, f"rows with a null or duplicate {key}")


def endpoints_exist(
    edges: pd.DataFrame, column: str, nodes: pd.DataFrame, node_key: str
) -> CheckOutcome:
    """Every value of ``edges[column]`` is a key of ``nodes``."""
    bad = edges[~edges[column].isin(nodes[node_key])]
    return _outcome(bad, f"edges whose {column} is not a node")


def one_vehicle_edge_per_user(users: pd.DataFrame, user_vehicle: pd.DataFrame) -> CheckOutcome:
    """Users with a vehicle have exactly one user->vehicle edge (to that vehicle); others none."""
    counts = user_vehicle.groupby("email_lower").size()
    with_vehicle = users.loc[users["vehicle_id"].notna(), "email_lower"]
    n = with_vehicle.map(counts).fillna(0)
    wrong = users.loc[with_vehicle.index[n.to_numpy() != 1]]
    extra = user_vehicle[~user_vehicle["email_lower"].isin(with_vehicle)]
    merged = user_vehicle.merge(users[["email_lower", "vehicle_id"]], on="email_lower",
                                suffixes=("", "_user"))
    mismatched = merged[merged["vehicle_id"] != merged["vehicle_id_user"]]
    bad = pd.concat([wrong[["email_lower"]], extra[["email_lower"]],
                     mismatched[["email_lower"]]])
    return _outcome(bad, "users without exactly one matching user->vehicle edge")


def before_cutoff(edges: pd.DataFrame, ts_column: str, cutoff: dt.date) -> CheckOutcome:
    """No training fact at or after the cutoff (temporal leakage)."""
    ts = pd.to_datetime(edges[ts_column], utc=True)
    bad = edges[ts >= pd.Timestamp(cutoff, tz="UTC")]
    return _outcome(bad, f"training edges with {ts_column} at or after the cutoff {cutoff}")


def inside_window(df: pd.DataFrame, ts_column: str, start: dt.date, end: dt.date) -> CheckOutcome:
    """Every row has start <= ts < end (the test window)."""
    ts = pd.to_datetime(df[ts_column], utc=True)
    bad = df[(ts < pd.Timestamp(start, tz="UTC")) | (ts >= pd.Timestamp(end, tz="UTC"))]
    return _outcome(bad, f"rows outside the test window [{start}, {end})")
