"""The warehouse source tables as observable source assets: each observation records a data
version from the table's fingerprint (row count and latest timestamp), so the UI shows when a
source changed and which assets are stale against it.

One query (``UNION ALL`` over the seven tables of the source contract) observes them all;
``observe_sources_job`` runs it (from the UI's "Observe sources" or the CLI).
"""

from __future__ import annotations

import warnings

from dagster import (
    AssetSelection,
    BetaWarning,
    DataVersion,
    MetadataValue,
    ObserveResult,
    define_asset_job,
    multi_observable_source_asset,
)

from holley_gnn_assets.defs.assets.exports import SOURCE_SPECS
from holley_gnn_assets.defs.resources import WarehouseResource
from holley_gnn_assets.warehouse.base import SOURCE_CONTRACT, Warehouse

LATEST_COLUMN = {
    "ingestion_unified_attributes_schema_incremental": "updated_at",
    "ingestion_unified_schema_incremental": "event_timestamp",
    "treatment_interaction": "interaction_timestamp",
    "import_orders": "order_date",
}
"""The column whose maximum says how far a table reaches; tables without one (fitment, items,
tags) are fingerprinted by their row count alone."""


def fingerprint_sql(warehouse: Warehouse) -> str:
    """One BigQuery-dialect SELECT: (source_table, row_count, latest) per source table."""
    parts = []
    for role, tables in SOURCE_CONTRACT.items():
        for table in tables:
            column = LATEST_COLUMN.get(table)
            latest = f"CAST(MAX({column}) AS STRING)" if column else "CAST(NULL AS STRING)"
            parts.append(f"SELECT '{table}' AS source_table, COUNT(*) AS row_count, "
                         f"{latest} AS latest FROM {warehouse.table_ref(role, table)}")
    return "\nUNION ALL\n".join(parts)


def source_fingerprints(warehouse: Warehouse) -> dict[str, tuple[int, str | None]]:
    """(row count, latest timestamp or None) of every source table, by table name."""
    rows = warehouse.query_df(fingerprint_sql(warehouse))
    return {str(r.source_table): (int(r.row_count), None if r.latest is None or r.latest != r.latest
                                  else str(r.latest))
            for r in rows.itertuples(index=False)}


def data_version(row_count: int, latest: str | None) -> str:
    """The data version of a table with ``row_count`` rows reaching ``latest``."""
    return f"rows={row_count};latest={latest or 'none'}"


_KEY_BY_TABLE = {str(spec.metadata["table"]).split(".", 1)[1]: spec.key for spec in SOURCE_SPECS}

with warnings.catch_warnings():
    # multi_observable_source_asset is marked beta in 1.13 (no stable replacement): the one
    # warning is silenced here, where it is chosen, so a code load prints none
    warnings.simplefilter("ignore", BetaWarning)

    @multi_observable_source_asset(specs=SOURCE_SPECS, name="warehouse_sources",
                                   description="Row count and latest timestamp of each "
                                               "warehouse source table (its data version).")
    def warehouse_sources(warehouse: WarehouseResource):
        """Observe every source table in one query; one data version per table."""
        for table, (rows, latest) in source_fingerprints(warehouse.get()).items():
            yield ObserveResult(
                asset_key=_KEY_BY_TABLE[table],
                data_version=DataVersion(data_version(rows, latest)),
                metadata={"dagster/row_count": rows, "latest": MetadataValue.text(latest or "")},
            )


observe_sources_job = define_asset_job(
    "observe_sources_job", selection=AssetSelection.assets(*_KEY_BY_TABLE.values()),
    description="Observe the warehouse source tables (row count, latest timestamp).")
