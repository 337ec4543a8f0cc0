"""QA checks of a recommendations table (sql/qa/qa_checks.sql) on an in-memory DuckDB.

The DataFrames are registered as DuckDB views and every named check of the SQL file runs
after sqlglot transpilation; on BigQuery the same file runs with real table identifiers.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS
from holley_gnn_assets.warehouse.sql import Ident, load_sql, render, split_named, to_duckdb

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


def _utc(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """tz-aware UTC microseconds: DuckDB sees TIMESTAMPTZ, like a BigQuery TIMESTAMP literal."""
    ts = pd.to_datetime(df[col], utc=True).astype("datetime64[us, UTC]")
    return df.assign(**{col: ts})


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    rows = df.head(MAX_SAMPLES).astype(object).where(df.head(MAX_SAMPLES).notna(), None)
    return [{k: v for k, v in r.items() if k != "email_lower"} for r in rows.to_dict("records")]


def run_qa(
    recs_df: pd.DataFrame,
    products_df: pd.DataFrame,
    user_purchases_df: pd.DataFrame,
    users_df: pd.DataFrame,
    cfg: dict,
    scoring_date: dt.date,
) -> list[QAResult]:
    """Run every check of qa_checks.sql; see ``DESCRIPTIONS``."""
    missing = [c for c in OUTPUT_COLUMNS if c not in recs_df.columns]
    if missing:
        raise ValueError(f"recommendations lack column(s) {missing}")
    rules, qa = cfg["rules"], cfg["qa"]
    ts = dt.datetime(scoring_date.year, scoring_date.month, scoring_date.day)
    days = int(cfg["time"]["purchase_exclusion_days"])
    params = {
        "recs": Ident("qa_recs"),
        "products": Ident("qa_products"),
        "purchases": Ident("qa_purchases"),
        "users": Ident("qa_users"),
        "min_price": float(rules["min_price"]),
        "image_prefix": str(rules["image_prefix"]),
        "variant_regex": str(rules["variant_suffix_regex"]),
        "service_part_types": [str(s).strip().lower() for s in rules["service_part_types"]],
        "commodity_part_types": [str(s).strip().lower() for s in rules["commodity_part_types"]],
        "max_per_part_type": int(rules["max_per_part_type"]),
        "purchase_start": ts - dt.timedelta(days=days),
        "scoring_ts": ts,
    }
    statements = split_named(load_sql(QA_SQL))
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        # copied into DuckDB tables through Arrow (no per-value conversion of pandas strings)
        for table, frame in (
            ("qa_recs", recs_df[OUTPUT_COLUMNS]),
            ("qa_products", products_df),
            ("qa_purchases", _utc(user_purchases_df, "last_order_ts")),
            ("qa_users", users_df),
        ):
            con.register("_qa_in", pa.Table.from_pandas(frame, preserve_index=False))
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM _qa_in")
            con.unregister("_qa_in")
        results = []
        for name, sql in statements.items():
            try:
                frame = con.execute(to_duckdb(render(sql, params))).df()
            except duckdb.Error as exc:
                raise ValueError(f"QA check {name} failed to run: {exc}") from exc
            results.append(_result(name, frame, qa))
        return results
    finally:
        con.close()


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
