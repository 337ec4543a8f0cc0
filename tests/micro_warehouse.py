"""Hand-made DuckDB warehouses for tests: the seven source-contract tables from small lists.

Usage::

    path = build_micro_warehouse(tmp_path / "wh.duckdb", {
        "ingestion_unified_attributes_schema_incremental": [
            {"user_id": "u1", "email": " Foo@X.com ", "v1_year": "1969",
             "v1_make": "Chevrolet", "v1_model": "Camaro", "updated_at": "2025-01-01"},
        ],
    })

Tables are keyed by their bare name (each name belongs to one dataset role); omitted tables
are created empty with the contract columns; omitted keys of a row are NULL; keys that are
not contract columns become extra columns (the pipeline must ignore them). ``drop_columns``
and ``drop_tables`` build broken warehouses; ``as_of`` writes ``synth_truth.world``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from holley_gnn_assets.warehouse.base import DUCKDB_DATASETS, SOURCE_CONTRACT

# contract column types (DuckDB spelling); every other contract column is VARCHAR
COLUMN_TYPES: dict[str, dict[str, str]] = {
    "ingestion_unified_attributes_schema_incremental": {"updated_at": "TIMESTAMP"},
    "ingestion_unified_schema_incremental": {"event_timestamp": "TIMESTAMP"},
    "treatment_interaction": {"interaction_timestamp": "TIMESTAMP"},
    "vehicle_product_fitment_data": {},
    "import_items": {"price": "DOUBLE"},
    "import_items_tags": {},
    "import_orders": {"quantity": "BIGINT", "order_date": "TIMESTAMP", "unit_price": "DOUBLE"},
}
TABLE_ROLE = {table: role for role, tables in SOURCE_CONTRACT.items() for table in tables}


def qualified(table: str) -> str:
    """``schema.table`` of a contract table in the local DuckDB layout."""
    return f"{DUCKDB_DATASETS[TABLE_ROLE[table]]}.{table}"


def build_micro_warehouse(
    path: str | Path,
    tables: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
    *,
    drop_columns: Mapping[str, Iterable[str]] | None = None,
    drop_tables: Iterable[str] = (),
    as_of: dt.date | str | None = None,
    truth: pd.DataFrame | None = None,
    column_types: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Create (or replace) a DuckDB warehouse file at ``path`` and return its path.

    ``column_types`` overrides DuckDB column types, e.g.
    ``{"treatment_interaction": {"interaction_timestamp": "TIMESTAMP_NS"}}``.
    """
    path = Path(path)
    tables = dict(tables or {})
    unknown = set(tables) | set(drop_columns or {}) | set(drop_tables) | set(column_types or {})
    unknown -= set(TABLE_ROLE)
    if unknown:
        raise ValueError(f"not source-contract tables: {sorted(unknown)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    drop_cols = {t: set(c) for t, c in (drop_columns or {}).items()}
    con = duckdb.connect(str(path))
    try:
        for schema in DUCKDB_DATASETS.values():
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for table, role in TABLE_ROLE.items():
            if table in set(drop_tables):
                continue
            rows = [dict(r) for r in tables.get(table, [])]
            contract = SOURCE_CONTRACT[role][table]
            extra = [k for r in rows for k in r if k not in contract]
            columns = [c for c in contract if c not in drop_cols.get(table, set())]
            columns += list(dict.fromkeys(extra))
            overrides = dict((column_types or {}).get(table, {}))
            types = {c: overrides.get(c, COLUMN_TYPES[table].get(c, "VARCHAR")) for c in columns}
            ddl = ", ".join(f'"{c}" {types[c]}' for c in columns)
            con.execute(f"CREATE TABLE {qualified(table)} ({ddl})")
            if rows:
                frame = pd.DataFrame(
                    {c: pd.Series([r.get(c) for r in rows], dtype=object) for c in columns}
                )
                con.register("_rows", frame)
                casts = ", ".join(f'TRY_CAST("{c}" AS {types[c]})' for c in columns)
                # TRY_CAST would hide a typo in a test row's value: check first
                for c in columns:
                    bad = con.execute(
                        f'SELECT COUNT(*) FROM _rows WHERE "{c}" IS NOT NULL '
                        f'AND TRY_CAST("{c}" AS {types[c]}) IS NULL'
                    ).fetchone()[0]
                    if bad:
                        raise ValueError(f"{table}.{c}: {bad} value(s) are not {types[c]}")
                con.execute(f"INSERT INTO {qualified(table)} SELECT {casts} FROM _rows")
                con.unregister("_rows")
        if as_of is not None or truth is not None:
            con.execute("CREATE SCHEMA IF NOT EXISTS synth_truth")
        if as_of is not None:
            day = dt.date.fromisoformat(str(as_of))
            con.execute("CREATE TABLE synth_truth.world AS SELECT ?::DATE AS as_of", [day])
        if truth is not None:
            con.register("_truth", truth)
            con.execute("CREATE TABLE synth_truth.vehicle_preference AS SELECT * FROM _truth")
            con.unregister("_truth")
    finally:
        con.close()
    return path
