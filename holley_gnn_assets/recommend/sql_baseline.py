"""The SQL baseline (today's pipeline) run on a warehouse: sql/baseline/recommendations.sql."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import pandas as pd

from holley_gnn_assets.recommend.rules import RANKED_COLUMNS
from holley_gnn_assets.settings import TimeWindows
from holley_gnn_assets.warehouse.base import Warehouse, WarehouseError
from holley_gnn_assets.warehouse.exports import _run_named, dataset_refs
from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS
from holley_gnn_assets.warehouse.sql import sql_params

log = logging.getLogger(__name__)
BASELINE_SQL = "baseline/recommendations.sql"


def baseline_params(
    warehouse: Warehouse, cfg: dict, windows: TimeWindows, scoring_date: dt.date
) -> dict[str, Any]:
    """sql_params plus the scoring date's purchase window [scoring_date - 365 d, scoring_date)."""
    params = sql_params(cfg, windows, dataset_refs(warehouse))
    ts = dt.datetime(scoring_date.year, scoring_date.month, scoring_date.day)
    params["scoring_ts"] = ts
    params["purchase_start"] = ts - dt.timedelta(days=int(windows.purchase_exclusion_days))
    return params


def run_sql_baseline(
    warehouse: Warehouse,
    cfg: dict,
    windows: TimeWindows,
    scoring_date: dt.date,
    with_ranked: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Run the baseline: (recommendations [OUTPUT_COLUMNS], ranked long [email_lower, rank,
    sku, score] up to rules.rank_depth, or None when ``with_ranked`` is False).

    On DuckDB both statements run in one session with the shared CTEs materialised once
    (``exports._run_named`` / ``query_named``); elsewhere each runs self-contained.
    """
    params = baseline_params(warehouse, cfg, windows, scoring_date)
    names = ["recommendations", "ranked"] if with_ranked else ["recommendations"]
    t0 = time.perf_counter()
    frames = _run_named(warehouse, BASELINE_SQL, params, names)
    recs = frames["recommendations"]
    missing = [c for c in OUTPUT_COLUMNS if c not in recs.columns]
    if missing:
        raise WarehouseError(f"{BASELINE_SQL}:recommendations lacks column(s) {missing}")
    recs = _typed_recs(recs[OUTPUT_COLUMNS])
    ranked = _typed_ranked(frames["ranked"]) if with_ranked else None
    log.info("sql baseline: %d users with recs in %.1fs", len(recs), time.perf_counter() - t0)
    return recs, ranked


def sql_ranked_for_test_users(
    warehouse: Warehouse, cfg: dict, windows: TimeWindows, scoring_date: dt.date
) -> pd.DataFrame:
    """The baseline's ranked lists (statement ``ranked_test_users``) of the users with a click
    or site event in the test window only: what evaluation reads, without the output table."""
    params = baseline_params(warehouse, cfg, windows, scoring_date)
    t0 = time.perf_counter()
    frame = _run_named(warehouse, BASELINE_SQL, params, ["ranked_test_users"])
    ranked = _typed_ranked(frame["ranked_test_users"])
    log.info("sql baseline: ranked lists of %d test users in %.1fs",
             ranked["email_lower"].nunique(), time.perf_counter() - t0)
    return ranked


def _typed_ranked(ranked: pd.DataFrame) -> pd.DataFrame:
    out = ranked[RANKED_COLUMNS].astype({"rank": "int64", "score": "float64"})
    return out.sort_values(["email_lower", "rank"], kind="stable").reset_index(drop=True)


def _typed_recs(recs: pd.DataFrame) -> pd.DataFrame:
    out = recs.copy()
    for col in OUTPUT_COLUMNS:
        if "price" in col or "score" in col:
            out[col] = pd.to_numeric(out[col]).astype("float64")
        else:
            out[col] = out[col].astype("string")
    return out.sort_values("email_lower", kind="stable").reset_index(drop=True)


def python_popularity(
    tables: dict[str, pd.DataFrame], cfg: dict, scoring_date: dt.date, depth: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same baseline through the Python rules engine (product_nodes.order_count as score).

    Must reproduce :func:`run_sql_baseline` row for row (tests/test_engine_agreement.py).
    """
    from holley_gnn_assets.recommend import rules as R

    rules = R.Rules.from_config(cfg)
    depth = int(depth or rules.rank_depth)
    products = tables["product_nodes"]
    catalog = R.ProductCatalog(products, rules)
    cand = R.fitting_candidates(catalog, tables["product_vehicle_edges"])
    pop = products.set_index("sku")["order_count"].astype("float64")
    cand = cand.assign(score=cand["sku"].map(pop).to_numpy())
    users = tables["user_nodes"]
    users = users[users["vehicle_id"].notna()]
    purchases = R.purchases_in_window(
        tables["user_purchases"], scoring_date, rules.purchase_exclusion_days
    )
    ranked = R.rank_groups_then_users(
        cand, users[["email_lower", "vehicle_id"]], catalog, depth, purchases
    )
    recs = R.to_output_schema(ranked, users, products, rules.top_k)
    return recs, ranked
