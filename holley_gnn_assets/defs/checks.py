"""Blocking data-quality checks on the exported tables, as the export assets' check specs.

Each check is declared here once (name, checked table, description, the node tables it
needs) and evaluated inside the export step that produced the table (``defs/assets/
exports.py``), on the DataFrame in memory: nothing is reloaded through the IO manager except
the node tables an edge check compares against. The logic lives in ``quality.table_checks``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import pandas as pd
from dagster import AssetCheckKey, AssetCheckResult, AssetCheckSpec, AssetKey, MetadataValue

from holley_gnn_assets.quality import table_checks as tc
from holley_gnn_assets.settings import TimeWindows

Tables = Mapping[str, pd.DataFrame]
NODE_TABLES = ("user_nodes", "product_nodes", "vehicle_nodes")


@dataclass(frozen=True)
class DataCheck:
    """One blocking check of an exported table: ``evaluate(tables, windows)``."""

    name: str
    table: str
    description: str
    evaluate: Callable[[Tables, TimeWindows], tc.CheckOutcome]
    needs: tuple[str, ...] = ()

    @property
    def key(self) -> AssetCheckKey:
        """The check's key (asset = the checked table)."""
        return AssetCheckKey(AssetKey(self.table), self.name)

    def spec(self) -> AssetCheckSpec:
        """The blocking check spec the producing multi-asset declares."""
        return AssetCheckSpec(self.name, asset=self.table, description=self.description,
                              blocking=True)


def _all_pass(*outcomes: tc.CheckOutcome) -> tc.CheckOutcome:
    bad = [o for o in outcomes if not o.passed]
    return tc.CheckOutcome(
        passed=not bad,
        count=sum(o.count for o in bad),
        detail="; ".join(o.detail for o in bad) or "all endpoints exist",
        samples=[s for o in bad for s in o.samples][:5],
    )


def _endpoints(edges: str, pairs: Iterable[tuple[str, str, str]]):
    """Every ``(edge column, node table, node key)`` endpoint of ``edges`` is a node."""
    pairs = tuple(pairs)

    def evaluate(t: Tables, _w: TimeWindows) -> tc.CheckOutcome:
        return _all_pass(*(tc.endpoints_exist(t[edges], col, t[nodes], key)
                           for col, nodes, key in pairs))

    return evaluate


DATA_CHECKS: tuple[DataCheck, ...] = (
    DataCheck("user_key_unique", "user_nodes", "email_lower unique and not null",
              lambda t, _w: tc.unique_not_null(t["user_nodes"], "email_lower")),
    DataCheck("product_key_unique", "product_nodes", "sku unique and not null",
              lambda t, _w: tc.unique_not_null(t["product_nodes"], "sku")),
    DataCheck("vehicle_key_unique", "vehicle_nodes", "vehicle_id unique and not null",
              lambda t, _w: tc.unique_not_null(t["vehicle_nodes"], "vehicle_id")),
    DataCheck("user_product_endpoints", "user_product_edges",
              "every user->product endpoint is a node",
              _endpoints("user_product_edges", [("email_lower", "user_nodes", "email_lower"),
                                                ("sku", "product_nodes", "sku")]),
              needs=("user_nodes", "product_nodes")),
    DataCheck("product_vehicle_endpoints", "product_vehicle_edges",
              "every fitment endpoint is a node",
              _endpoints("product_vehicle_edges", [("sku", "product_nodes", "sku"),
                                                   ("vehicle_id", "vehicle_nodes", "vehicle_id")]),
              needs=("product_nodes", "vehicle_nodes")),
    DataCheck("product_product_endpoints", "product_product_edges",
              "every co-purchase endpoint is a node",
              _endpoints("product_product_edges", [("sku_a", "product_nodes", "sku"),
                                                   ("sku_b", "product_nodes", "sku")]),
              needs=("product_nodes",)),
    DataCheck("one_vehicle_per_user", "user_vehicle_edges",
              "every user with a vehicle has exactly one user->vehicle edge",
              lambda t, _w: _all_pass(
                  tc.one_vehicle_edge_per_user(t["user_nodes"], t["user_vehicle_edges"]),
                  tc.endpoints_exist(t["user_vehicle_edges"], "vehicle_id", t["vehicle_nodes"],
                                     "vehicle_id")),
              needs=("user_nodes", "vehicle_nodes")),
    DataCheck("no_training_edge_after_cutoff", "user_product_edges",
              "no training edge at or after the cutoff (temporal leakage)",
              lambda t, w: tc.before_cutoff(t["user_product_edges"], "last_ts", w.cutoff)),
    DataCheck("test_clicks_in_window", "test_clicks",
              "test clicks only inside the test window [cutoff, as_of)",
              lambda t, w: tc.inside_window(t["test_clicks"], "ts", w.cutoff, w.as_of)),
)


def checks_on(tables: Iterable[str]) -> list[DataCheck]:
    """The data checks whose checked table is one of ``tables``."""
    names = set(tables)
    return [c for c in DATA_CHECKS if c.table in names]


def check_result(check: DataCheck, tables: Tables, windows: TimeWindows) -> AssetCheckResult:
    """Evaluate ``check`` on in-memory tables: pass/fail, offending rows, detail, samples."""
    outcome = check.evaluate(tables, windows)
    meta = {"offending_rows": outcome.count, "detail": outcome.detail}
    if outcome.samples:
        meta["samples"] = MetadataValue.json(outcome.samples)
    return AssetCheckResult(asset_key=AssetKey(check.table), check_name=check.name,
                            passed=outcome.passed, metadata=meta)
