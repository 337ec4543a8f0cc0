"""Graph statistics of a run and their comparison with the last successful run's (spec §9).

``graph_stats`` measures the graph a run trained on (node and edge counts per type, density
per edge type, tier shares, share of users with a vehicle, fitting products per vehicle);
``compare_stats`` compares them with an earlier run's: a statistic that dropped by more than
``max_drop_share`` is a drop (blocking), one that moved by more than ``warn_shift_share``
either way is a shift (warning). Plain Python and pandas; the Dagster check wraps it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from holley_gnn_assets.graph.types import EDGE_TYPES, TIERS

PREFIX = "graph_stats/"
"""Metadata key prefix of every statistic (``graph_stats/edges/product__fits__vehicle``)."""
CONFIG_HASH_KEY = "graph_stats_config_hash"
GRAPH_CONFIG_SECTIONS = ("time", "event_weights", "co_purchase", "rules", "warehouse")
"""The config sections that shape the exported tables and the graph (``time.as_of`` aside)."""
_FORWARD = tuple(et for et in EDGE_TYPES if not et[1].startswith("rev_"))
_NEEDED = {"user_nodes": ("tier", "vehicle_id"),
           "product_vehicle_edges": ("sku", "vehicle_id"),
           "vehicle_nodes": ("vehicle_id",)}

Level = Literal["ok", "warn", "drop"]


def graph_config_hash(cfg: Mapping[str, Any]) -> str:
    """Stable hash of the config sections that shape the graph (``GRAPH_CONFIG_SECTIONS``,
    without ``time.as_of``, which moves with every run)."""
    part = {name: cfg[name] for name in GRAPH_CONFIG_SECTIONS}
    part["time"] = {k: v for k, v in part["time"].items() if k != "as_of"}
    blob = json.dumps(part, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _require(tables: Mapping[str, pd.DataFrame]) -> None:
    for name, columns in _NEEDED.items():
        if name not in tables:
            raise ValueError(f"graph_stats: table {name!r} is missing")
        missing = [c for c in columns if c not in tables[name].columns]
        if missing:
            raise ValueError(f"graph_stats: table {name!r} lacks column(s) {missing}")


def graph_stats(data: Any, tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
    """Statistics of one run's graph: ``data`` is the HeteroData, ``tables`` the exported
    tables it was built from (``user_nodes``, ``vehicle_nodes``, ``product_vehicle_edges``).

    Keys: ``nodes/<type>``, ``edges/<src>__<rel>__<dst>`` and ``density/<...>`` (edges over
    source x target nodes) per forward edge type, ``users_total``, ``tier_share/<tier>``
    (all users), ``users_with_vehicle_share``, ``fitting_products_per_vehicle/{mean,median}``.
    """
    _require(tables)
    out: dict[str, float] = {}
    for node_type in data.node_types:
        out[f"nodes/{node_type}"] = int(data[node_type].num_nodes or 0)
    for et in _FORWARD:
        if et not in data.edge_types:
            continue
        name = "__".join(et)
        n_edges = int(data[et].edge_index.shape[1])
        out[f"edges/{name}"] = n_edges
        pairs = out.get(f"nodes/{et[0]}", 0) * out.get(f"nodes/{et[2]}", 0)
        out[f"density/{name}"] = n_edges / pairs if pairs else 0.0
    users = tables["user_nodes"]
    out["users_total"] = len(users)
    tiers = users["tier"].astype(object).str.lower().value_counts()
    for tier in TIERS:
        out[f"tier_share/{tier}"] = float(tiers.get(tier, 0)) / len(users) if len(users) else 0.0
    out["users_with_vehicle_share"] = float(users["vehicle_id"].notna().mean()) if len(users) \
        else 0.0
    fits = tables["product_vehicle_edges"]
    per_vehicle = (fits.groupby("vehicle_id")["sku"].nunique()
                   .reindex(tables["vehicle_nodes"]["vehicle_id"].dropna().unique(), fill_value=0))
    out["fitting_products_per_vehicle/mean"] = float(per_vehicle.mean()) if len(per_vehicle) \
        else 0.0
    out["fitting_products_per_vehicle/median"] = float(per_vehicle.median()) \
        if len(per_vehicle) else 0.0
    return out


def as_metadata(stats: Mapping[str, float], config_hash: str) -> dict[str, Any]:
    """The statistics as flat materialization metadata (prefixed keys) plus the config hash."""
    meta: dict[str, Any] = {PREFIX + k: v for k, v in stats.items()}
    meta[CONFIG_HASH_KEY] = config_hash
    return meta


def from_metadata(meta: Mapping[str, Any]) -> tuple[dict[str, float], str | None]:
    """Inverse of ``as_metadata`` on plain values: ``(statistics, config hash or None)``."""
    stats = {k[len(PREFIX):]: float(v) for k, v in meta.items()
             if k.startswith(PREFIX) and isinstance(v, int | float)}
    config_hash = meta.get(CONFIG_HASH_KEY)
    return stats, str(config_hash) if config_hash is not None else None


@dataclass(frozen=True)
class StatShift:
    """One statistic in both runs: relative change (None when the previous value was 0)."""

    name: str
    previous: float
    current: float
    change: float | None
    level: Level

    def describe(self) -> str:
        """``name: previous -> current (change)``."""
        pct = "from 0" if self.change is None else f"{self.change:+.1%}"
        return f"{self.name}: {_num(self.previous)} -> {_num(self.current)} ({pct})"


@dataclass(frozen=True)
class Comparison:
    """The outcome: ``pass``, ``warn``, ``fail`` or ``nothing_to_compare`` (with why)."""

    status: Literal["pass", "warn", "fail", "nothing_to_compare"]
    reason: str
    shifts: list[StatShift] = field(default_factory=list)

    def of_level(self, level: Level) -> list[StatShift]:
        """The statistics at ``level``."""
        return [s for s in self.shifts if s.level == level]

    def table_md(self) -> str:
        """Markdown table: statistic, previous, current, change, verdict."""
        rows = [f"| {s.name} | {_num(s.previous)} | {_num(s.current)} | "
                f"{'from 0' if s.change is None else f'{s.change:+.1%}'} | {s.level} |"
                for s in self.shifts]
        return "\n".join(["| statistic | previous | current | change | verdict |",
                          "|---|---|---|---|---|", *rows])


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.4g}"


def _level(previous: float, current: float, max_drop: float, warn_shift: float
           ) -> tuple[float | None, Level]:
    if previous == 0:
        return None, ("ok" if current == 0 else "warn")
    change = (current - previous) / abs(previous)
    if change < -max_drop:
        return change, "drop"
    return change, ("warn" if abs(change) > warn_shift else "ok")


def compare_stats(current: Mapping[str, float], previous: Mapping[str, float],
                  max_drop_share: float, warn_shift_share: float) -> Comparison:
    """Compare the statistics both runs have; the worst level decides the status."""
    common = sorted(set(current) & set(previous))
    if not common:
        return Comparison("nothing_to_compare", "the previous run recorded none of this run's "
                          "graph statistics")
    shifts = []
    for name in common:
        prev, cur = float(previous[name]), float(current[name])
        if math.isnan(prev) or math.isnan(cur):
            continue
        change, level = _level(prev, cur, max_drop_share, warn_shift_share)
        shifts.append(StatShift(name, prev, cur, change, level))
    drops = [s for s in shifts if s.level == "drop"]
    warns = [s for s in shifts if s.level == "warn"]
    if drops:
        return Comparison("fail", f"{len(drops)} statistic(s) dropped by more than "
                          f"{max_drop_share:.0%}: " + "; ".join(s.describe() for s in drops),
                          shifts)
    if warns:
        return Comparison("warn", f"{len(warns)} statistic(s) moved by more than "
                          f"{warn_shift_share:.0%}: " + "; ".join(s.describe() for s in warns),
                          shifts)
    return Comparison("pass", f"{len(shifts)} statistics within {warn_shift_share:.0%} of the "
                      "previous run's", shifts)


def judge(current: Mapping[str, Any], previous: Mapping[str, Any] | None, previous_label: str,
          max_drop_share: float, warn_shift_share: float) -> Comparison:
    """Compare a run's metadata with the previous successful run's (plain metadata values).

    Nothing is compared, and the reason says why, when there is no previous run, when its
    metadata has no graph statistics, or when it was built under another graph config.
    """
    stats, config_hash = from_metadata(current)
    if not stats:
        raise ValueError("graph regression check: the checked materialization has no "
                         f"{PREFIX}* metadata (the heterodata asset records it)")
    if previous is None:
        return Comparison("nothing_to_compare",
                          "first run: no earlier successful run to compare with")
    prev_stats, prev_hash = from_metadata(previous)
    if not prev_stats:
        return Comparison("nothing_to_compare", f"the previous run ({previous_label}) recorded "
                          "no graph statistics (it predates the regression check)")
    if prev_hash is None:
        return Comparison("nothing_to_compare", f"the previous run ({previous_label}) recorded "
                          "no config hash with its graph statistics")
    if prev_hash != config_hash:
        return Comparison("nothing_to_compare", f"the previous run ({previous_label}) was built "
                          f"under another graph config (hash {prev_hash} here {config_hash}: "
                          f"sections {', '.join(GRAPH_CONFIG_SECTIONS)} differ)")
    return compare_stats(stats, prev_stats, max_drop_share, warn_shift_share)
