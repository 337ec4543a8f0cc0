"""The warehouse interface: one API over DuckDB (embedded default) and BigQuery (production).

SQL lives in ``sql/`` in BigQuery dialect. Both engines run the same files; DuckDB gets them
through sqlglot transpilation (see ``sql_runner``). Source tables follow
``shared/source_contract.md``; ``SOURCE_CONTRACT`` lists the required columns.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import pandas as pd

# dataset role -> table -> required columns (extra columns are ignored)
SOURCE_CONTRACT: dict[str, dict[str, list[str]]] = {
    "company": {
        "ingestion_unified_attributes_schema_incremental": [
            "user_id", "email", "v1_year", "v1_make", "v1_model", "updated_at",
        ],
        "ingestion_unified_schema_incremental": ["user_id", "event_name", "sku", "event_timestamp"],
        "treatment_interaction": [
            "user_id", "treatment_id", "interaction_type", "sku", "interaction_timestamp",
        ],
    },
    "data": {
        "vehicle_product_fitment_data": ["sku", "year", "make", "model"],
        "import_items": ["sku", "PartType", "price", "image_url", "title"],
        "import_items_tags": ["sku", "tag"],
        "import_orders": ["order_id", "email", "sku", "quantity", "order_date", "unit_price"],
    },
}
# local (DuckDB) schema names for the two dataset roles
DUCKDB_DATASETS = {"company": "company_1950", "data": "data_company_1950"}


class WarehouseError(RuntimeError):
    """A warehouse problem with a message that names the table/column/file at fault."""


class Warehouse(abc.ABC):
    """What the pipeline needs from a warehouse."""

    @abc.abstractmethod
    def table_ref(self, role: str, table: str) -> str:
        """Fully qualified BigQuery-dialect reference for a source table of a dataset role."""

    @abc.abstractmethod
    def query_df(self, sql: str) -> pd.DataFrame:
        """Run one BigQuery-dialect SELECT and return its rows."""

    @abc.abstractmethod
    def columns(self, role: str, table: str) -> list[str] | None:
        """Column names of a source table, or None when the table does not exist."""

    @abc.abstractmethod
    def write_output_table(self, df: pd.DataFrame, dataset: str, table: str) -> None:
        """Replace the output table atomically (stage, then swap): all rows or nothing."""

    @abc.abstractmethod
    def read_output_table(self, dataset: str, table: str) -> pd.DataFrame | None:
        """The current output table, or None when it does not exist."""

    def validate_contract(self) -> None:
        """Raise WarehouseError naming the first missing table or column of the source contract."""
        for role, tables in SOURCE_CONTRACT.items():
            for table, required in tables.items():
                cols = self.columns(role, table)
                if cols is None:
                    raise WarehouseError(
                        f"source table {self.table_ref(role, table)} is missing from the warehouse"
                    )
                have = {c.lower() for c in cols}
                for col in required:
                    if col.lower() not in have:
                        raise WarehouseError(
                            f"source table {self.table_ref(role, table)} has no column {col!r}"
                        )

    def describe(self) -> Mapping[str, Any]:
        """Short, secret-free description for metadata."""
        return {"kind": type(self).__name__}
