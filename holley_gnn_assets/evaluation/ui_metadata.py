"""The evaluation as the Dagster UI shows it: the per-tier decision table (shown inline), the
chart embedded in Markdown (a data URI: the UI cannot open a local file), the numbers whose
history the Plots tab charts, and readable words where the report holds ``None``."""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

DECISION_TIER = "cold"
"""The tier the decision is taken on (``evaluation.decision``)."""
TREND_TIERS = ("cold", "all")
NOT_MEASURED = "n/a"


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _cell(value: Any, digits: int = 4) -> float | str:
    """A table cell: the number rounded, ``n/a`` where nothing was measured."""
    number = _finite(value)
    return NOT_MEASURED if number is None else round(number, digits)


def reference_arms(report: dict[str, Any]) -> list[str]:
    """The reference arms, in the report's order (every arm but the GNN and SQL)."""
    return [arm for arm in report["arms"] if arm not in ("gnn", "sql")]


def reading(ci: list[float | None] | tuple) -> str:
    """What a tier's GNN - SQL interval says."""
    lo, hi = (_finite(ci[0]), _finite(ci[1])) if ci else (None, None)
    if lo is None or hi is None:
        return NOT_MEASURED
    if lo > 0:
        return "GNN ahead"
    if hi < 0:
        return "SQL ahead"
    return "no clear difference"


def decision_table(report: dict[str, Any]) -> MetadataValue:
    """Per tier: users, Hit Rate@4 of the GNN and SQL, GNN - SQL with its 95% interval (vehicle
    bootstrap), what the interval says, the decision (cold tier), then every reference arm's
    Hit Rate@4 (last: the UI cuts a wide table on the right)."""
    refs = reference_arms(report)
    columns = [TableColumn("tier", "string"), TableColumn("users", "int"),
               TableColumn("gnn", "float", description="Hit Rate@4"),
               TableColumn("sql", "float", description="Hit Rate@4"),
               TableColumn("delta", "float", description="GNN - SQL, Hit Rate@4"),
               TableColumn("ci95_lo", "float", description="95% interval, vehicle bootstrap"),
               TableColumn("ci95_hi", "float", description="95% interval, vehicle bootstrap"),
               TableColumn("reading", "string", description="what the interval says"),
               TableColumn("decision", "string",
                           description=f"taken on the {DECISION_TIER} tier"),
               *(TableColumn(arm, "float", description="Hit Rate@4 (reference)")
                 for arm in refs)]
    records = []
    for tier, block in report["tiers"].items():
        ci = block.get("bootstrap_ci95") or [None, None]
        records.append(TableRecord({
            "tier": tier, "users": int(block["n_users"]),
            "gnn": _cell(block["gnn"]["hit_rate@4"]), "sql": _cell(block["sql"]["hit_rate@4"]),
            "delta": _cell(block.get("delta_hit_rate@4")),
            "ci95_lo": _cell(ci[0]), "ci95_hi": _cell(ci[1]), "reading": reading(ci),
            "decision": str(report["decision"]) if tier == DECISION_TIER else "-",
            **{arm: _cell((block.get(arm) or {}).get("hit_rate@4")) for arm in refs},
        }))
    return MetadataValue.table(records, schema=TableSchema(columns))


def chart_markdown(png: Path, alt: str = "Hit Rate@4 per tier and arm, 95% intervals") -> str:
    """The PNG embedded as a Markdown image (a base64 data URI the UI's Markdown renders)."""
    data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{data})"


def trend_values(report: dict[str, Any]) -> dict[str, float]:
    """The numbers the Plots tab charts across runs: for the cold and all tiers, GNN - SQL and
    its interval bounds, every arm's Hit Rate@4 and the GNN's share of the oracle's headroom
    over SQL (with its bounds). A value that was not measured is left out (no point)."""
    out: dict[str, float] = {}
    for tier in TREND_TIERS:
        block = report["tiers"].get(tier)
        if not block:
            continue
        ci = block.get("bootstrap_ci95") or [None, None]
        share = (block.get("headroom_share") or {}).get("gnn") or {}
        share_ci = share.get("ci95") or [None, None]
        values = {
            f"{tier}_delta": block.get("delta_hit_rate@4"),
            f"{tier}_delta_ci95_lo": ci[0], f"{tier}_delta_ci95_hi": ci[1],
            f"{tier}_gnn_headroom_share": share.get("share"),
            f"{tier}_gnn_headroom_share_ci95_lo": share_ci[0],
            f"{tier}_gnn_headroom_share_ci95_hi": share_ci[1],
            **{f"{tier}_hit_rate@4_{arm}": (block.get(arm) or {}).get("hit_rate@4")
               for arm in report["arms"]},
        }
        out |= {k: round(v, 6) for k, v in ((k, _finite(v)) for k, v in values.items())
                if v is not None}
    return out


def promotion_text(promotion: dict[str, Any]) -> str:
    """``promote`` in words: ``yes``, ``no`` or why nothing was decided (no Python None)."""
    promote = promotion.get("promote")
    if promote is None:
        return f"not decided: {promotion.get('reason')}"
    return "yes" if promote else "no"
