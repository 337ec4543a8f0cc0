"""Run the graph export SQL (sql/gnn/*.sql) on a warehouse and return typed DataFrames.

Every returned table has exactly the columns of ``core/schemas.py`` in that order, with
pandas dtypes: ``string`` -> ``string``, ``int64``, ``float64``, ``bool``, and ``timestamp`` ->
``datetime64[ns]`` holding naive UTC times (BigQuery's tz-aware UTC is converted).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from holley_gnn_assets.config.settings import TimeWindows
from holley_gnn_assets.warehouse import schemas
from holley_gnn_assets.warehouse.base import Warehouse, WarehouseError
from holley_gnn_assets.warehouse.sql import (
    load_sql,
    parse_sql_file,
    sql_params,
)

TABLE_SCHEMAS: dict[str, dict[str, str]] = schemas.TABLE_SCHEMAS
EXPORT_FILES: dict[str, list[str]] = {
    "gnn/export_nodes.sql": ["user_nodes", "product_nodes", "vehicle_nodes",
                             "product_order_days"],
    "gnn/export_edges.sql": [
        "user_product_edges",
        "user_vehicle_edges",
        "product_vehicle_edges",
        "product_product_edges",
        "user_purchases",
    ],
    "gnn/export_test_set.sql": ["test_clicks", "test_events"],
}
INPUT_QUALITY = ("gnn/export_nodes.sql", "input_quality")


def coerce_to_schema(df: pd.DataFrame, table: str, schema: Mapping[str, str]) -> pd.DataFrame:
    """Exactly the schema's columns, in order, with its dtypes; errors name table and column."""
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise WarehouseError(f"export {table} lacks column(s) {missing}")
    out = {}
    for col, kind in schema.items():
        s = df[col]
        try:
            if kind == "string":
                out[col] = s.astype("string")
            elif kind == "int64":
                if s.isna().any():
                    raise ValueError("null values")
                out[col] = s.astype("int64")
            elif kind == "float64":
                out[col] = pd.to_numeric(s).astype("float64")
            elif kind == "bool":
                if s.isna().any():
                    raise ValueError("null values")
                out[col] = s.astype(bool)
            elif kind == "timestamp":
                ts = pd.to_datetime(s, utc=True)
                out[col] = ts.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
            else:
                raise ValueError(f"unknown schema type {kind!r}")
        except (ValueError, TypeError) as exc:
            raise WarehouseError(f"export {table}.{col} cannot be {kind}: {exc}") from exc
    return pd.DataFrame(out, index=pd.RangeIndex(len(df)))


def _canonical_order(df: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by every column in schema order (the first is the key).

    SQL without ORDER BY returns rows in an engine- and thread-dependent order, and build_graph
    numbers nodes in row order: without this a seeded training run is not reproducible.
    """
    return df.sort_values(list(df.columns), kind="mergesort").reset_index(drop=True)


def export_file(
    warehouse: Warehouse,
    relative_path: str,
    cfg: Mapping[str, Any],
    windows: TimeWindows,
    names: Iterable[str] | None = None,
    validate: bool = True,
) -> dict[str, pd.DataFrame]:
    """Run the named statements of one export file (default: all of them), typed.

    Tables with a schema in ``core/schemas.py`` are coerced to it; others (``input_quality``,
    one row of counts) come back as the query returned them.
    """
    if validate:
        warehouse.validate_contract()
    if names is None:
        names = list(parse_sql_file(load_sql(relative_path)).statements)
    params = sql_params(cfg, windows, warehouse.dataset_refs())
    frames = warehouse.run_named(relative_path, params, names)
    return {
        name: _canonical_order(coerce_to_schema(df, name, TABLE_SCHEMAS[name]))
        if name in TABLE_SCHEMAS
        else df
        for name, df in frames.items()
    }


def run_exports(
    warehouse: Warehouse, cfg: Mapping[str, Any], windows: TimeWindows
) -> dict[str, pd.DataFrame]:
    """All export tables (nodes, edges, purchases, test sets), contract validated first."""
    warehouse.validate_contract()
    out: dict[str, pd.DataFrame] = {}
    for path, names in EXPORT_FILES.items():
        out.update(export_file(warehouse, path, cfg, windows, names=names, validate=False))
    return out


def contract_counts(
    warehouse: Warehouse, cfg: Mapping[str, Any], windows: TimeWindows
) -> dict[str, int]:
    """Counts of dropped or handled bad input (null emails, garbage years, duplicate skus...)."""
    path, name = INPUT_QUALITY
    frame = export_file(warehouse, path, cfg, windows, names=[name])[name]
    if len(frame) != 1:
        raise WarehouseError(f"{path}:{name} returned {len(frame)} rows, expected 1")
    return {col: int(frame.iloc[0][col]) for col in frame.columns}


def timed_exports(
    warehouse: Warehouse, cfg: Mapping[str, Any], windows: TimeWindows
) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """Like :func:`run_exports`, plus seconds per export file (for metadata/profiling)."""
    warehouse.validate_contract()
    out: dict[str, pd.DataFrame] = {}
    seconds: dict[str, float] = {}
    for path, names in EXPORT_FILES.items():
        start = time.perf_counter()
        out.update(export_file(warehouse, path, cfg, windows, names=names, validate=False))
        seconds[path] = round(time.perf_counter() - start, 3)
    return out, seconds
