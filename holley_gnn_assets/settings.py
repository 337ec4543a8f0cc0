"""Runtime settings from the environment: where data is read and where artifacts go.

- ``HOLLEY_GNN_WAREHOUSE``: path of the DuckDB warehouse (embedded default)
- ``HOLLEY_GNN_HOME``: artifacts, Parquet tables, MLflow store, reports (default ``./.holley_gnn``)
- ``HOLLEY_GNN_AS_OF``: the as-of date T (``YYYY-MM-DD``); default: the synthetic warehouse's
  own date, otherwise today
- ``HOLLEY_GNN_WAREHOUSE_KIND``: ``duckdb`` (default) or ``bigquery``
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from holley_gnn_assets.config import parse_date


def home_dir() -> Path:
    """The artifact home (created on first use)."""
    path = Path(os.environ.get("HOLLEY_GNN_HOME", ".holley_gnn")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def warehouse_path() -> Path:
    """The configured DuckDB warehouse path (default: the demo warehouse under the home)."""
    env = os.environ.get("HOLLEY_GNN_WAREHOUSE")
    return Path(env).resolve() if env else home_dir() / "warehouse_demo.duckdb"


def warehouse_kind() -> str:
    """``duckdb`` or ``bigquery``."""
    kind = os.environ.get("HOLLEY_GNN_WAREHOUSE_KIND", "duckdb").strip().lower()
    if kind not in {"duckdb", "bigquery"}:
        raise ValueError(f"HOLLEY_GNN_WAREHOUSE_KIND={kind!r}: expected 'duckdb' or 'bigquery'")
    return kind


def as_of_override() -> dt.date | None:
    """``HOLLEY_GNN_AS_OF`` parsed, or None when unset."""
    value = os.environ.get("HOLLEY_GNN_AS_OF")
    return parse_date(value, "HOLLEY_GNN_AS_OF") if value else None
