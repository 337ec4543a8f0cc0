"""Warehouse source tables (external assets) and the exported node/edge/test tables."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dagster import AssetOut, AssetSpec, MetadataValue, Output, multi_asset

from holley_gnn_assets.defs.k8s_tags import cpu_op_tags
from holley_gnn_assets.defs.resources import PipelineSettings, WarehouseResource
from holley_gnn_assets.settings import get_settings
from holley_gnn_assets.warehouse.base import DUCKDB_DATASETS, SOURCE_CONTRACT
from holley_gnn_assets.warehouse.exports import export_file

SOURCE_SPECS = [
    AssetSpec(
        key=[DUCKDB_DATASETS[role], table],
        description=f"Warehouse source table {DUCKDB_DATASETS[role]}.{table} (source contract)",
        group_name="warehouse",
        metadata={"required_columns": ", ".join(columns)},
        kinds={"bigquery"},
    )
    for role, tables in SOURCE_CONTRACT.items()
    for table, columns in tables.items()
]
_SRC = {spec.key.path[-1]: spec.key for spec in SOURCE_SPECS}
SOURCE_KEYS = list(_SRC.values())

EXPORTS: dict[str, dict[str, Any]] = {
    "gnn/export_nodes.sql": {
        "name": "node_tables",
        "outs": ["user_nodes", "product_nodes", "vehicle_nodes"],
        "deps": list(_SRC.values()),
    },
    "gnn/export_edges.sql": {
        "name": "edge_tables",
        "outs": [
            "user_product_edges", "user_vehicle_edges", "product_vehicle_edges",
            "product_product_edges", "user_purchases",
        ],
        "deps": list(_SRC.values()),
    },
    "gnn/export_test_set.sql": {
        "name": "test_tables",
        "outs": ["test_clicks", "test_events"],
        "deps": [_SRC["treatment_interaction"], _SRC["ingestion_unified_schema_incremental"],
                 _SRC["ingestion_unified_attributes_schema_incremental"],
                 _SRC["import_items"]],
    },
}

DESCRIPTIONS = {
    "user_nodes": "One row per user (LOWER(TRIM(email))): latest vehicle, engagement tier.",
    "product_nodes": "One row per SKU with rule flags and features (popularity before the cutoff).",
    "vehicle_nodes": "Normalised (year, make, model) vehicles present in fitment.",
    "user_product_edges": "Interaction edges before the cutoff, weight = type weight x decay.",
    "user_vehicle_edges": "Each user with a vehicle -> that vehicle.",
    "product_vehicle_edges": "Fitment edges.",
    "product_product_edges": "Co-purchase pairs ordered by >= 2 distinct users, weight ln(n).",
    "user_purchases": "Orders in the 365 days before the cutoff up to the as-of date (exclusion).",
    "test_clicks": "Held-out email clicks in the test window (never used in training).",
    "test_events": "Held-out site product events in the test window (second test set).",
}


def table_metadata(name: str, df: pd.DataFrame) -> dict[str, Any]:
    """Row counts and per-table statistics (no personal data)."""
    meta: dict[str, Any] = {"dagster/row_count": len(df)}
    if name == "user_nodes":
        tiers = df["tier"].value_counts().to_dict()
        meta.update({f"tier_{t}": int(tiers.get(t, 0)) for t in ("cold", "warm", "hot")})
        meta["users_without_vehicle"] = int(df["vehicle_id"].isna().sum())
    elif name == "product_nodes":
        meta["eligible_products"] = int(df["eligible"].sum())
        meta["part_types"] = int(df["part_type"].nunique())
    elif name.endswith("_edges") and len(df):
        meta["total_weight"] = float(df["weight"].sum())
    return meta


def _make_export_asset(sql_file: str, spec: dict[str, Any]):
    outs = {name: AssetOut(description=DESCRIPTIONS[name], group_name="exports",
                           kinds={"parquet"}) for name in spec["outs"]}

    @multi_asset(name=spec["name"], outs=outs, deps=spec["deps"], can_subset=False,
                 op_tags=cpu_op_tags(get_settings(), "4", "8Gi"))
    def _export(
        context,  # AssetExecutionContext (left unannotated: the hint is a string in a closure)
        warehouse: WarehouseResource,
        pipeline: PipelineSettings,
    ):
        wh = warehouse.get()
        windows = pipeline.windows(wh)
        context.log.info(
            f"exporting {sql_file}: as_of={windows.as_of} cutoff={windows.cutoff}"
        )
        tables = export_file(wh, sql_file, pipeline.cfg, windows)
        quality = tables.pop("input_quality", None)
        for name in spec["outs"]:
            df = tables[name]
            meta = table_metadata(name, df)
            meta.update({"as_of": str(windows.as_of), "cutoff": str(windows.cutoff)})
            if quality is not None and name == spec["outs"][0]:
                meta["input_quality"] = MetadataValue.md(
                    quality.to_markdown(index=False) if hasattr(quality, "to_markdown")
                    else str(quality)
                )
            yield Output(df, output_name=name, metadata=meta)

    return _export


export_assets = [_make_export_asset(f, s) for f, s in EXPORTS.items()]
