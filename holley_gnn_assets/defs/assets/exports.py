"""Warehouse source tables (external assets) and the exported node/edge/test tables.

The three export multi-assets are subsettable: a run that selects some of their tables (or
only some checks) runs only the statements those need. The blocking data checks of
``defs/checks.py`` are check specs of the asset that produces the table.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from dagster import AssetIn, AssetOut, AssetSpec, MetadataValue, Output, multi_asset

from holley_gnn_assets.config.time_windows import TimeWindows
from holley_gnn_assets.defs.checks import (
    NODE_TABLES,
    DataCheck,
    check_result,
    checks_on,
    data_checks_failed,
)
from holley_gnn_assets.defs.executor import warehouse_retry_policy
from holley_gnn_assets.defs.k8s_tags import cpu_op_tags
from holley_gnn_assets.defs.partitions import DAILY, window_metadata, windows_of
from holley_gnn_assets.defs.resources import PipelineSettings, WarehouseResource
from holley_gnn_assets.failures import no_retry
from holley_gnn_assets.warehouse.base import DUCKDB_DATASETS, SOURCE_CONTRACT
from holley_gnn_assets.warehouse.exports import INPUT_QUALITY, export_file

GRAPH_NAMES = {
    "ingestion_unified_attributes_schema_incremental": "ingestion_unified_attributes",
    "ingestion_unified_schema_incremental": "ingestion_unified_schema",
}
"""Source tables whose names the graph would cut to the same ``ingestion_…_incremental``: their
asset key ends in a shorter, distinct name (the description and ``table`` name the table)."""

SOURCE_SPECS = [
    AssetSpec(
        key=[DUCKDB_DATASETS[role], GRAPH_NAMES.get(table, table)],
        description=f"Warehouse source table {DUCKDB_DATASETS[role]}.{table} (source contract)",
        group_name="warehouse",
        metadata={"table": f"{DUCKDB_DATASETS[role]}.{table}",
                  "required_columns": ", ".join(columns)},
        kinds={"bigquery"},
    )
    for role, tables in SOURCE_CONTRACT.items()
    for table, columns in tables.items()
]
_SRC = {str(spec.metadata["table"]).split(".", 1)[1]: spec.key for spec in SOURCE_SPECS}
SOURCE_KEYS = list(_SRC.values())

EXPORTS: dict[str, dict[str, Any]] = {
    "gnn/export_nodes.sql": {
        "name": "node_tables",
        "outs": ["user_nodes", "product_nodes", "vehicle_nodes", "product_order_days"],
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
    "product_order_days": "Distinct orders per product and day before the cutoff (recent demand).",
    "user_product_edges": "Interaction edges before the cutoff, weight = type weight x decay.",
    "user_vehicle_edges": "Each user with a vehicle -> that vehicle.",
    "product_vehicle_edges": "Fitment edges.",
    "product_product_edges": "Co-purchase pairs ordered by >= 2 distinct users, each user "
                             "counting 1/(lines - 1) of the order, weight ln(1 + strength), at "
                             "most co_purchase.max_neighbours per product.",
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


def _needed_tables(context, outs: list[str]) -> tuple[list[str], list[DataCheck]]:
    """The selected outputs and checks' tables (file order), and the selected checks."""
    selected = context.op_execution_context.selected_output_names
    selected_checks = [c for c in checks_on(outs) if c.key in context.selected_asset_check_keys]
    wanted = set(selected) | {c.table for c in selected_checks}
    return [name for name in outs if name in wanted], selected_checks


def _run_export(
    context,  # AssetExecutionContext (unannotated: the hint is a string in a closure)
    sql_file: str,
    spec: dict[str, Any],
    warehouse: WarehouseResource,
    pipeline: PipelineSettings,
    run_window: TimeWindows,
    nodes: dict[str, pd.DataFrame] | None = None,
):
    """Run only the statements the selection needs; yield their outputs and check results."""
    with no_retry():  # a missing table/column fails once, at once
        yield from _export_outputs(context, sql_file, spec, warehouse, pipeline,
                                   windows_of(context, run_window), nodes)


def _export_outputs(
    context,
    sql_file: str,
    spec: dict[str, Any],
    warehouse: WarehouseResource,
    pipeline: PipelineSettings,
    windows: TimeWindows,
    nodes: dict[str, pd.DataFrame] | None,
):
    outs: list[str] = spec["outs"]
    names, selected_checks = _needed_tables(context, outs)
    wh = warehouse.get()
    selected = context.op_execution_context.selected_output_names
    with_quality = outs[0] in selected and sql_file == INPUT_QUALITY[0]
    context.log.info(f"exporting {sql_file} {names}: as_of={windows.as_of} "
                     f"cutoff={windows.cutoff}")
    tables = export_file(wh, sql_file, pipeline.cfg, windows,
                         names=[*names, *([INPUT_QUALITY[1]] if with_quality else [])])
    quality = tables.pop(INPUT_QUALITY[1], None)
    for name in names:
        if name not in selected:
            continue
        df = tables[name]
        meta = table_metadata(name, df)
        meta.update(window_metadata(windows))
        if quality is not None and name == outs[0]:
            meta["input_quality"] = MetadataValue.md(quality.to_markdown(index=False))
            # every non-zero count as its own number (the run summary prints them)
            for col, value in quality.iloc[0].items():
                if int(value or 0):
                    meta[f"input_quality/{col}"] = int(value)
        yield Output(df, output_name=name, metadata=meta)
    available = {**(nodes or {}), **tables}
    failed = []
    for data_check in selected_checks:
        result = check_result(data_check, available, windows)
        yield result
        if not result.passed:
            failed.append(result)
    if failed:  # the run's error names the checks and their numbers, in words
        raise data_checks_failed(failed)


def _outs(names: list[str]) -> dict[str, AssetOut]:
    return {name: AssetOut(description=DESCRIPTIONS[name], group_name="exports", is_required=False,
                           kinds={"parquet"}) for name in names}


def _specs(names: list[str]) -> list:
    return [c.spec() for c in checks_on(names)]


def _decorate(sql_file: str, ins: dict[str, AssetIn] | None = None):
    spec = EXPORTS[sql_file]
    return multi_asset(
        name=spec["name"], outs=_outs(spec["outs"]), check_specs=_specs(spec["outs"]),
        deps=spec["deps"], can_subset=True, retry_policy=warehouse_retry_policy(),
        op_tags=cpu_op_tags("4", "8Gi"), partitions_def=DAILY,
        ins={"run_window": AssetIn("run_window"), **(ins or {})},
    )


_NODES_FILE, _EDGES_FILE, _TEST_FILE = EXPORTS


@_decorate(_NODES_FILE)
def node_tables(context, warehouse: WarehouseResource, pipeline: PipelineSettings,
                run_window: TimeWindows):
    """User, product and vehicle node tables (and the input-quality counts)."""
    yield from _run_export(context, _NODES_FILE, EXPORTS[_NODES_FILE], warehouse, pipeline,
                           run_window)


@_decorate(_EDGES_FILE, ins={name: AssetIn(name) for name in NODE_TABLES})
def edge_tables(
    context,
    warehouse: WarehouseResource,
    pipeline: PipelineSettings,
    run_window: TimeWindows,
    user_nodes: pd.DataFrame,
    product_nodes: pd.DataFrame,
    vehicle_nodes: pd.DataFrame,
):
    """Edge tables and purchases; endpoint checks compare against the stored node tables."""
    nodes = {"user_nodes": user_nodes, "product_nodes": product_nodes,
             "vehicle_nodes": vehicle_nodes}
    yield from _run_export(context, _EDGES_FILE, EXPORTS[_EDGES_FILE], warehouse, pipeline,
                           run_window, nodes)


@_decorate(_TEST_FILE)
def test_tables(context, warehouse: WarehouseResource, pipeline: PipelineSettings,
                run_window: TimeWindows):
    """Held-out test clicks and site events."""
    yield from _run_export(context, _TEST_FILE, EXPORTS[_TEST_FILE], warehouse, pipeline,
                           run_window)


export_assets = [node_tables, edge_tables, test_tables]
