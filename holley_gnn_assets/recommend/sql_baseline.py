"""The SQL baseline arm: today's ranking signal (order-count popularity among the products that
fit each vehicle), computed in the warehouse by ``sql/baseline/scores.sql`` into the staging
dataset. Its rules are the same file as every other arm's (``apply_rules``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from holley_gnn_assets.config.settings import TimeWindows
from holley_gnn_assets.recommend.apply_rules import expire_staging, scores_table, staging_dataset
from holley_gnn_assets.warehouse.base import Warehouse
from holley_gnn_assets.warehouse.sql import Ident, sql_params

log = logging.getLogger(__name__)

BASELINE_SQL = "baseline/scores.sql"
ARM = "sql"


def build_sql_scores(
    warehouse: Warehouse, cfg: Mapping[str, Any], windows: TimeWindows, run: str = ""
) -> dict[str, Any]:
    """Materialise the baseline's score table (one row per fitment pair) in the staging
    dataset; return its id, row count and seconds."""
    warehouse.validate_contract()  # a missing table or column is named before any SQL runs
    params = sql_params(cfg, windows, warehouse.dataset_refs())
    dataset, table = staging_dataset(cfg), scores_table(ARM, run)
    t0 = time.perf_counter()
    warehouse.materialize(BASELINE_SQL, "scores", params, dataset, table)
    expire_staging(warehouse, cfg, table, run)
    seconds = time.perf_counter() - t0
    ref = Ident(warehouse.table_id(dataset, table)).render()
    rows = int(warehouse.query_df(f"SELECT COUNT(*) AS n FROM {ref}").iloc[0]["n"])
    log.info("sql baseline: %d score rows in %.1fs", rows, seconds)
    return {"table": warehouse.table_id(dataset, table), "rows": rows,
            "seconds": round(seconds, 2)}
