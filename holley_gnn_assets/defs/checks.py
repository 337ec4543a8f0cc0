"""Blocking data-quality checks on the exported tables (logic in core.table_checks)."""

from __future__ import annotations

import pandas as pd
from dagster import AssetCheckResult, AssetIn, MetadataValue, asset_check

from holley_gnn_assets.defs.resources import PipelineSettings, WarehouseResource
from holley_gnn_assets.quality import table_checks as tc


def _result(outcome: tc.CheckOutcome) -> AssetCheckResult:
    meta = {"offending_rows": outcome.count, "detail": outcome.detail}
    if outcome.samples:
        meta["samples"] = MetadataValue.json(outcome.samples)
    return AssetCheckResult(passed=outcome.passed, metadata=meta)


@asset_check(asset="user_nodes", blocking=True, description="email_lower unique and not null")
def user_key_unique(user_nodes: pd.DataFrame) -> AssetCheckResult:
    return _result(tc.unique_not_null(user_nodes, "email_lower"))


@asset_check(asset="product_nodes", blocking=True, description="sku unique and not null")
def product_key_unique(product_nodes: pd.DataFrame) -> AssetCheckResult:
    return _result(tc.unique_not_null(product_nodes, "sku"))


@asset_check(asset="vehicle_nodes", blocking=True, description="vehicle_id unique and not null")
def vehicle_key_unique(vehicle_nodes: pd.DataFrame) -> AssetCheckResult:
    return _result(tc.unique_not_null(vehicle_nodes, "vehicle_id"))


_NODE_INS = {
    "user_nodes": AssetIn("user_nodes"),
    "product_nodes": AssetIn("product_nodes"),
    "vehicle_nodes": AssetIn("vehicle_nodes"),
}


def _all_pass(*outcomes: tc.CheckOutcome) -> tc.CheckOutcome:
    bad = [o for o in outcomes if not o.passed]
    return tc.CheckOutcome(
        passed=not bad,
        count=sum(o.count for o in bad),
        detail="; ".join(o.detail for o in bad) or "all endpoints exist",
        samples=[s for o in bad for s in o.samples][:5],
    )


@asset_check(asset="user_product_edges", blocking=True, additional_ins=_NODE_INS,
             description="every user->product endpoint is a node")
def user_product_endpoints(user_product_edges, user_nodes, product_nodes, vehicle_nodes):
    return _result(_all_pass(
        tc.endpoints_exist(user_product_edges, "email_lower", user_nodes, "email_lower"),
        tc.endpoints_exist(user_product_edges, "sku", product_nodes, "sku"),
    ))


@asset_check(asset="product_vehicle_edges", blocking=True, additional_ins=_NODE_INS,
             description="every fitment endpoint is a node")
def product_vehicle_endpoints(product_vehicle_edges, user_nodes, product_nodes, vehicle_nodes):
    return _result(_all_pass(
        tc.endpoints_exist(product_vehicle_edges, "sku", product_nodes, "sku"),
        tc.endpoints_exist(product_vehicle_edges, "vehicle_id", vehicle_nodes, "vehicle_id"),
    ))


@asset_check(asset="product_product_edges", blocking=True, additional_ins=_NODE_INS,
             description="every co-purchase endpoint is a node")
def product_product_endpoints(product_product_edges, user_nodes, product_nodes, vehicle_nodes):
    return _result(_all_pass(
        tc.endpoints_exist(product_product_edges, "sku_a", product_nodes, "sku"),
        tc.endpoints_exist(product_product_edges, "sku_b", product_nodes, "sku"),
    ))


@asset_check(asset="user_vehicle_edges", blocking=True, additional_ins=_NODE_INS,
             description="every user with a vehicle has exactly one user->vehicle edge")
def one_vehicle_per_user(user_vehicle_edges, user_nodes, product_nodes, vehicle_nodes):
    return _result(_all_pass(
        tc.one_vehicle_edge_per_user(user_nodes, user_vehicle_edges),
        tc.endpoints_exist(user_vehicle_edges, "vehicle_id", vehicle_nodes, "vehicle_id"),
    ))


@asset_check(asset="user_product_edges", blocking=True,
             description="no training edge at or after the cutoff (temporal leakage)")
def no_training_edge_after_cutoff(
    user_product_edges: pd.DataFrame, warehouse: WarehouseResource, pipeline: PipelineSettings
) -> AssetCheckResult:
    windows = pipeline.windows(warehouse.get())
    return _result(tc.before_cutoff(user_product_edges, "last_ts", windows.cutoff))


@asset_check(asset="test_clicks", blocking=True,
             description="test clicks only inside the test window [cutoff, as_of)")
def test_clicks_in_window(
    test_clicks: pd.DataFrame, warehouse: WarehouseResource, pipeline: PipelineSettings
) -> AssetCheckResult:
    windows = pipeline.windows(warehouse.get())
    return _result(tc.inside_window(test_clicks, "ts", windows.cutoff, windows.as_of))


data_checks = [
    user_key_unique, product_key_unique, vehicle_key_unique, user_product_endpoints,
    product_vehicle_endpoints, product_product_endpoints, one_vehicle_per_user,
    no_training_edge_after_cutoff, test_clicks_in_window,
]
