"""Resources that give every asset the same config, as-of date and warehouse."""

from __future__ import annotations

import datetime as dt
import os
from functools import cached_property
from pathlib import Path

from dagster import ConfigurableResource

from holley_gnn_assets.config import TimeWindows, load_config, parse_date
from holley_gnn_assets.core.warehouse import Warehouse
from holley_gnn_assets.settings import as_of_override, home_dir, warehouse_path


class WarehouseResource(ConfigurableResource):
    """The warehouse, by kind: the embedded DuckDB file or BigQuery (via dagster-gcp)."""

    kind: str = "duckdb"
    duckdb_path: str = ""
    bq_project: str = "auxia-gcp"
    bq_company_dataset: str = "company_1950"
    bq_data_dataset: str = "data_company_1950"
    bq_output_project: str = "auxia-reporting"
    bq_location: str = "US"
    bq_job_timeout_s: int = 600
    bq_use_storage_api: bool = False

    def get(self) -> Warehouse:
        """Open the configured warehouse."""
        if self.kind == "duckdb":
            from holley_gnn_assets.core.warehouse_duckdb import DuckDBWarehouse

            return DuckDBWarehouse(self.duckdb_path or str(warehouse_path()))
        if self.kind == "bigquery":
            from holley_gnn_assets.core.warehouse_bigquery import BigQueryWarehouse

            return BigQueryWarehouse(
                project=self.bq_project,
                company_dataset=self.bq_company_dataset,
                data_dataset=self.bq_data_dataset,
                output_project=self.bq_output_project,
                location=self.bq_location,
                job_timeout_s=self.bq_job_timeout_s,
                use_storage_api=self.bq_use_storage_api,
            )
        raise ValueError(f"warehouse kind {self.kind!r}: expected 'duckdb' or 'bigquery'")


class PipelineSettings(ConfigurableResource):
    """Config file, as-of date and artifact home, resolved the same way in every step."""

    config_path: str = ""
    as_of: str = ""
    home: str = ""

    @cached_property
    def cfg(self) -> dict:
        """The loaded config."""
        return load_config(self.config_path or None)

    def home_dir(self) -> Path:
        """Artifact home."""
        path = Path(self.home).resolve() if self.home else home_dir()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolve_as_of(self, warehouse: Warehouse) -> dt.date:
        """Resource value, HOLLEY_GNN_AS_OF, config, the synthetic warehouse's date, today."""
        if self.as_of:
            return parse_date(self.as_of, "as_of")
        env = as_of_override()
        if env:
            return env
        if self.cfg["time"].get("as_of"):
            return parse_date(self.cfg["time"]["as_of"], "time.as_of")
        own = getattr(warehouse, "synthetic_as_of", None)
        if callable(own):
            value = own()
            if value:
                return value
        return dt.date.today()

    def windows(self, warehouse: Warehouse) -> TimeWindows:
        """The time windows for this run."""
        return TimeWindows.from_config(self.cfg, self.resolve_as_of(warehouse))


def default_warehouse_resource() -> WarehouseResource:
    """Warehouse resource from the environment (HOLLEY_GNN_WAREHOUSE_KIND and friends)."""
    kind = os.environ.get("HOLLEY_GNN_WAREHOUSE_KIND", "duckdb").strip().lower()
    if kind == "bigquery":
        return WarehouseResource(
            kind="bigquery",
            bq_project=os.environ.get("HOLLEY_GNN_BQ_PROJECT", "auxia-gcp"),
            bq_output_project=os.environ.get("HOLLEY_GNN_BQ_OUTPUT_PROJECT", "auxia-reporting"),
            bq_use_storage_api=os.environ.get("HOLLEY_GNN_BQ_STORAGE_API", "false").lower()
            in {"1", "true", "yes"},
        )
    return WarehouseResource(kind="duckdb", duckdb_path=str(warehouse_path()))
