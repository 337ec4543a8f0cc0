"""Write the warehouse tables into a DuckDB file with the contract's exact column types, then
move it over the target path atomically (temp file in the same folder + ``os.replace``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

# "schema.table" -> [(column, DuckDB type)], in the source contract's column order
CONTRACT_TABLES: dict[str, list[tuple[str, str]]] = {
    "company_1950.ingestion_unified_attributes_schema_incremental": [
        ("user_id", "VARCHAR NOT NULL"),
        ("email", "VARCHAR"),
        ("v1_year", "VARCHAR"),
        ("v1_make", "VARCHAR"),
        ("v1_model", "VARCHAR"),
        ("updated_at", "TIMESTAMP"),
    ],
    "company_1950.ingestion_unified_schema_incremental": [
        ("user_id", "VARCHAR"),
        ("event_name", "VARCHAR"),
        ("sku", "VARCHAR"),
        ("event_timestamp", "TIMESTAMP"),
    ],
    "company_1950.treatment_interaction": [
        ("user_id", "VARCHAR"),
        ("treatment_id", "VARCHAR"),
        ("interaction_type", "VARCHAR"),
        ("sku", "VARCHAR"),
        ("interaction_timestamp", "TIMESTAMP"),
    ],
    "data_company_1950.vehicle_product_fitment_data": [
        ("sku", "VARCHAR"),
        ("year", "VARCHAR"),
        ("make", "VARCHAR"),
        ("model", "VARCHAR"),
    ],
    "data_company_1950.import_items": [
        ("sku", "VARCHAR"),
        ("PartType", "VARCHAR"),
        ("price", "DOUBLE"),
        ("image_url", "VARCHAR"),
        ("title", "VARCHAR"),
    ],
    "data_company_1950.import_items_tags": [("sku", "VARCHAR"), ("tag", "VARCHAR")],
    "data_company_1950.import_orders": [
        ("order_id", "VARCHAR"),
        ("email", "VARCHAR"),
        ("sku", "VARCHAR"),
        ("quantity", "BIGINT"),
        ("order_date", "TIMESTAMP"),
        ("unit_price", "DOUBLE"),
    ],
}

TRUTH_TABLES: dict[str, list[tuple[str, str]]] = {
    "synth_truth.world": [
        ("as_of", "DATE"),
        ("cutoff", "DATE"),
        ("interaction_start", "DATE"),
        ("seed", "BIGINT"),
        ("signal", "DOUBLE"),
        ("scale", "VARCHAR"),
        ("n_users", "BIGINT"),
        ("n_products", "BIGINT"),
        ("n_vehicles", "BIGINT"),
        ("n_groups", "BIGINT"),
        ("n_clusters", "BIGINT"),
        ("n_warm", "BIGINT"),
        ("n_hot", "BIGINT"),
        ("n_test_clicks", "BIGINT"),
        ("generator_version", "VARCHAR"),
        ("params", "VARCHAR"),
    ],
    "synth_truth.vehicle_preference": [
        ("vehicle_id", "VARCHAR"),
        ("sku", "VARCHAR"),
        ("prob", "DOUBLE"),
    ],
    "synth_truth.vehicles": [
        ("vehicle_id", "VARCHAR"),
        ("group_id", "BIGINT"),
        ("engine_family", "VARCHAR"),
        ("era", "BIGINT"),
        ("user_weight", "DOUBLE"),
    ],
    "synth_truth.products": [
        ("sku", "VARCHAR"),
        ("cluster", "BIGINT"),
        ("attractiveness", "DOUBLE"),
        ("scope", "VARCHAR"),
        ("demand", "DOUBLE"),
        ("time_factor", "DOUBLE"),  # mean time intensity over the test window (1: stationary)
        ("launch_date", "DATE"),
        ("decline_date", "DATE"),
        ("trending", "BOOLEAN"),
        ("season_peak_day", "DOUBLE"),  # day of year of the cluster's seasonal peak
    ],
    "synth_truth.affinity": [("group_id", "BIGINT"), ("cluster", "BIGINT"), ("affinity", "DOUBLE")],
    "synth_truth.users": [
        ("user_id", "VARCHAR"),
        ("email_lower", "VARCHAR"),
        ("vehicle_id", "VARCHAR"),
        ("tier", "VARCHAR"),
    ],
}


def temp_path_for(path: Path) -> Path:
    """The temp file a write to ``path`` goes through (same folder, so os.replace is atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_duckdb(path: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a fresh temp database that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    wal = tmp.with_name(tmp.name + ".wal")
    for leftover in (tmp, wal):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        con.execute("SET enable_progress_bar = false")
        yield con
        con.execute("CHECKPOINT")
        con.close()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            con.close()
        for leftover in (tmp, wal):
            leftover.unlink(missing_ok=True)
        raise


def write_table(
    con: duckdb.DuckDBPyConnection, name: str, columns: list[tuple[str, str]], df: pd.DataFrame
) -> int:
    """Create ``name`` with exactly ``columns`` (DuckDB types) and fill it from ``df``."""
    schema = name.split(".")[0]
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    ddl = ", ".join(f'"{c}" {t}' for c, t in columns)
    con.execute(f"CREATE TABLE {name} ({ddl})")
    missing = [c for c, _ in columns if c not in df.columns]
    if missing:
        raise ValueError(f"internal: frame for {name} lacks columns {missing}")
    data = pa.Table.from_pandas(df[[c for c, _ in columns]], preserve_index=False)
    con.register("synth_src", data)
    try:
        select = ", ".join(f'CAST("{c}" AS {t.split()[0]})' for c, t in columns)
        con.execute(f"INSERT INTO {name} SELECT {select} FROM synth_src")
    finally:
        con.unregister("synth_src")
    return len(df)
