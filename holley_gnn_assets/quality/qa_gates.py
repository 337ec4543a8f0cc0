"""QA gates (sql/qa/qa_checks.sql) on an arm's staged recommendations, run in the warehouse.

The same file runs on DuckDB (through sqlglot) and on BigQuery, against the staged table of each
arm and the product, user and order definitions the rules use; a failure of any check blocks
the output table.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from holley_gnn_assets.settings import TimeWindows
from holley_gnn_assets.warehouse.base import Warehouse, WarehouseError
from holley_gnn_assets.warehouse.sql import Ident, load_sql, parse_sql_file, sql_params

QA_SQL = "qa/qa_checks.sql"
MAX_SAMPLES = 5

DESCRIPTIONS = {
    "users_with_recs": "enough users with recommendations (qa.min_users_with_recs, or "
    "qa.min_share_with_recs of users with a vehicle in smaller worlds)",
    "duplicate_skus": "no SKU twice per user (colour variants count as one base SKU)",
    "excluded_products": "no refurbished, service or commodity products",
    "price_floor": "every recommended price >= rules.min_price",
    "https_images": "every image URL starts with rules.image_prefix",
    "score_order": "rec1 >= rec2 >= rec3 >= rec4 scores; empty slots only at the tail",
    "part_type_cap": "at most rules.max_per_part_type SKUs of one PartType per user",
    "purchased_recently": "nothing the user ordered in the 365 days before the scoring date",
}


@dataclass
class QAResult:
    """One check: passed, number of violating rows, a few sample rows (no emails)."""

    name: str
    passed: bool
    count: int
    sample_rows: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""


def run_qa(
    warehouse: Warehouse,
    cfg: dict,
    windows: TimeWindows,
    recs_table: str,
    scoring_date: dt.date,
) -> list[QAResult]:
    """Run every check of qa_checks.sql on the staged table ``recs_table`` (a dotted id);
    see ``DESCRIPTIONS``."""
    warehouse.validate_contract()
    ts = dt.datetime(scoring_date.year, scoring_date.month, scoring_date.day)
    params = sql_params(cfg, windows, warehouse.dataset_refs())
    params.update(
        recs=Ident(recs_table),
        purchase_start=ts - dt.timedelta(days=int(windows.purchase_exclusion_days)),
        scoring_ts=ts,
    )
    names = list(parse_sql_file(load_sql(QA_SQL)).statements)
    try:
        frames = warehouse.run_named(QA_SQL, params, names)
    except WarehouseError as exc:
        raise WarehouseError(f"QA checks on {recs_table} failed to run: {exc}") from exc
    return [_result(name, frames[name], cfg["qa"]) for name in names]


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    rows = df.head(MAX_SAMPLES).astype(object).where(df.head(MAX_SAMPLES).notna(), None)
    return [{k: v for k, v in r.items() if k != "email_lower"} for r in rows.to_dict("records")]


def _result(name: str, frame: pd.DataFrame, qa: dict) -> QAResult:
    desc = DESCRIPTIONS.get(name, name)
    if name == "users_with_recs":
        have = int(frame.iloc[0]["n_users_with_recs"])
        n_vehicle = int(frame.iloc[0]["n_users_with_vehicle"])
        floor = int(qa["min_users_with_recs"])
        need = (
            floor if n_vehicle >= floor else math.ceil(float(qa["min_share_with_recs"]) * n_vehicle)
        )
        return QAResult(
            name,
            have >= need,
            have,
            [{"n_users_with_recs": have, "required": need, "n_users_with_vehicle": n_vehicle}],
            desc,
        )
    return QAResult(name, frame.empty, int(len(frame)), _records(frame), desc)
