"""Blocking checks: data quality of the exported tables, and the graph against the last run's.

Data checks: each check is declared here once (name, checked table, description, the node tables it
needs) and evaluated inside the export step that produced the table (``defs/assets/
exports.py``), on the DataFrame in memory: nothing is reloaded through the IO manager except
the node tables an edge check compares against. The logic lives in ``quality.table_checks``.

``graph_regression``: the ``heterodata`` asset records its graph statistics as materialization
metadata; this check compares them with the last successful run's, read from the Dagster
instance (logic in ``quality.graph_stats``). Blocking: a drop stops the run before anything
downstream of the graph, ``recommendations_table`` included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import pandas as pd
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    EventLogRecord,
    Failure,
    MetadataValue,
    asset_check,
)

from holley_gnn_assets.config.settings import TimeWindows
from holley_gnn_assets.defs.resources import PipelineSettings
from holley_gnn_assets.quality import graph_stats
from holley_gnn_assets.quality import table_checks as tc

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
    """Evaluate ``check`` on in-memory tables: pass/fail; failing rows, threshold (0) and
    population (the checked table's rows) as separate numbers; detail, samples."""
    outcome = check.evaluate(tables, windows)
    population = len(tables[check.table])
    meta: dict = {
        "failing": MetadataValue.int(outcome.count), "threshold": MetadataValue.int(0),
        "population": MetadataValue.int(population),
        "failing_share": MetadataValue.float(round(outcome.count / population, 6)
                                             if population else 0.0),
        "population_counts": f"rows of {check.table}", "detail": outcome.detail,
    }
    if outcome.samples:
        meta["samples"] = MetadataValue.json(outcome.samples)
    verdict = "passed" if outcome.passed else "FAILED"
    description = (f"{verdict} {check.name}: {outcome.count:,} failing (at most 0 allowed) of "
                   f"{population:,} rows of {check.table}: {outcome.detail}")
    return AssetCheckResult(asset_key=AssetKey(check.table), check_name=check.name,
                            passed=outcome.passed, metadata=meta, description=description)


def data_checks_failed(results: list[AssetCheckResult]) -> Failure:
    """The export step's error when data checks failed: each check in words with its numbers
    (raised after every result was recorded, instead of Dagster's generic check error)."""
    words = "; ".join(
        f"{r.asset_key.to_user_string()} {(r.description or '').removeprefix('FAILED ')}"
        for r in results)
    first = results[0]
    return Failure(
        description=f"Data check stopped the run: {words}. Nothing downstream ran; "
                    "recommendations_table was not written (it keeps its previous rows).",
        metadata={"gate": f"{first.asset_key.to_user_string()}:{first.check_name}",
                  **{k: first.metadata[k] for k in ("failing", "threshold", "population")}},
        allow_retries=False,
    )


# -- graph regression against the last successful run ---------------------------------------

GRAPH_ASSET = AssetKey("heterodata")
_PAGE, _MOST = 25, 500  # materializations read per page, and at most


def _records(instance: DagsterInstance, key: AssetKey):
    """The asset's materialization records, newest first (at most ``_MOST``)."""
    cursor, seen = None, 0
    while seen < _MOST:
        page = instance.fetch_materializations(key, limit=_PAGE, cursor=cursor)
        yield from page.records
        seen += len(page.records)
        if not page.has_more or not page.records:
            return
        cursor = page.cursor


def _succeeded(instance: DagsterInstance, run_id: str) -> bool:
    """The run succeeded, or a re-execution of it did (and so used this materialization)."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return False
    if run.status == DagsterRunStatus.SUCCESS:
        return True
    _root, group = instance.get_run_group(run_id) or (None, [])
    lineage, grown = {run_id}, True
    while grown:  # re-executions of this run, of those, ...
        grown = False
        for later in group:
            if later.parent_run_id in lineage and later.run_id not in lineage:
                if later.status == DagsterRunStatus.SUCCESS:
                    return True
                lineage.add(later.run_id)
                grown = True
    return False


def current_and_previous(instance: DagsterInstance, key: AssetKey, run_id: str
                         ) -> tuple[EventLogRecord | None, EventLogRecord | None]:
    """This run's materialization of ``key`` (else the newest one), and the newest one before
    it from another run that succeeded (``None`` when there is none)."""
    records = list(_records(instance, key))
    current = next((r for r in records if r.run_id == run_id), records[0] if records else None)
    if current is None:
        return None, None
    for record in records[records.index(current) + 1:]:
        if record.run_id != current.run_id and _succeeded(instance, record.run_id):
            return current, record
    return current, None


def _values(record: EventLogRecord) -> dict:
    mat = record.asset_materialization
    return {k: getattr(v, "value", v) for k, v in (mat.metadata if mat else {}).items()}


@asset_check(asset=GRAPH_ASSET, name="graph_regression", blocking=True,
             description="Graph statistics (node and edge counts, density, tier shares, users "
                         "with a vehicle, fitting products per vehicle) against the last "
                         "successful run's: a drop beyond regression.max_drop_share blocks the "
                         "output, a shift beyond regression.warn_shift_share warns.")
def graph_regression(context, pipeline: PipelineSettings) -> AssetCheckResult:
    """Compare this run's graph statistics with the last successful run's."""
    # context: AssetCheckExecutionContext (unannotated: the hint is a string here)
    bounds = pipeline.cfg["regression"]
    current, previous = current_and_previous(context.instance, GRAPH_ASSET, context.run.run_id)
    if current is None:
        raise RuntimeError("graph_regression: heterodata was never materialized")
    label = f"run {previous.run_id[:8]}" if previous is not None else "none"
    outcome = graph_stats.judge(_values(current), _values(previous) if previous else None,
                                label, bounds["max_drop_share"], bounds["warn_shift_share"])
    meta: dict = {
        "verdict": outcome.status, "reason": outcome.reason,
        "checked_run": current.run_id,
        "compared_with_run": previous.run_id if previous is not None else "none",
        "max_drop_share": bounds["max_drop_share"],
        "warn_shift_share": bounds["warn_shift_share"],
        "drops": len(outcome.of_level("drop")), "shifts": len(outcome.of_level("warn")),
        # the gate's numbers: statistics dropping too far, the most allowed, those compared
        "failing": MetadataValue.int(len(outcome.of_level("drop"))),
        "threshold": MetadataValue.int(0),
        "population": MetadataValue.int(len(outcome.shifts)),
        "population_counts": "graph statistics compared",
    }
    if previous is not None:
        meta["previous_materialized_at"] = MetadataValue.timestamp(previous.timestamp)
    if outcome.shifts:
        meta["comparison"] = MetadataValue.md(outcome.table_md())
    message = (f"graph regression against {label}: {outcome.reason}" if previous is not None
               else f"graph regression: {outcome.reason}")
    log = {"fail": context.log.error, "warn": context.log.warning}.get(outcome.status,
                                                                      context.log.info)
    log(message)
    return AssetCheckResult(
        passed=outcome.status in ("pass", "nothing_to_compare"),
        severity=AssetCheckSeverity.WARN if outcome.status == "warn" else AssetCheckSeverity.ERROR,
        metadata=meta, description=message,
    )


regression_checks = [graph_regression]
