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

from holley_gnn_assets.config.settings import TimeWindows
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


POPULATION = "qa_population"
"""The named query counting what the gates check (staged rows, filled slots); not a gate."""
FAILING_UNIT = {
    "users_with_recs": "users with a vehicle and no recommendation",
    "duplicate_skus": "(user, base SKU) pairs recommended twice",
    "excluded_products": "recommended slots with an excluded product",
    "price_floor": "recommended slots below the price floor",
    "https_images": "recommended slots without an https image",
    "score_order": "users whose scores are out of order",
    "part_type_cap": "(user, PartType) pairs over the cap",
    "purchased_recently": "recommended slots bought in the last 365 days",
}
POPULATION_UNIT = {"users_with_recs": "users with a vehicle", "score_order": "staged users"}
"""What each gate's population counts; the others count filled recommendation slots."""


@dataclass
class QAResult:
    """One check: passed; ``count`` failing units (see ``FAILING_UNIT``) against ``threshold``
    (the most allowed) out of ``population``; a few sample rows (no emails)."""

    name: str
    passed: bool
    count: int
    sample_rows: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    threshold: int = 0
    population: int = 0

    @property
    def failing_unit(self) -> str:
        """What ``count`` counts."""
        return FAILING_UNIT.get(self.name, "violating rows")

    @property
    def population_unit(self) -> str:
        """What ``population`` counts."""
        return POPULATION_UNIT.get(self.name, "filled recommendation slots")

    def summary(self) -> str:
        """One line: ``FAILED users_with_recs: 9,000 users with a vehicle and no
        recommendation (at most 2,000 allowed) of 20,000 users with a vehicle``."""
        verdict = "passed" if self.passed else "FAILED"
        return (f"{verdict} {self.name}: {self.count:,} {self.failing_unit} (at most "
                f"{self.threshold:,} allowed) of {self.population:,} {self.population_unit}")


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
    counted = frames[POPULATION].iloc[0]
    sizes = {"rows": int(counted["n_rows"]), "slots": int(counted["n_slots"])}
    return [_result(name, frames[name], cfg["qa"], sizes) for name in names if name != POPULATION]


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    rows = df.head(MAX_SAMPLES).astype(object).where(df.head(MAX_SAMPLES).notna(), None)
    return [{k: v for k, v in r.items() if k != "email_lower"} for r in rows.to_dict("records")]


def _result(name: str, frame: pd.DataFrame, qa: dict, sizes: dict[str, int]) -> QAResult:
    desc = DESCRIPTIONS[name]
    if name == "users_with_recs":
        have = int(frame.iloc[0]["n_users_with_recs"])
        n_vehicle = int(frame.iloc[0]["n_users_with_vehicle"])
        floor = int(qa["min_users_with_recs"])
        need = (
            floor if n_vehicle >= floor else math.ceil(float(qa["min_share_with_recs"]) * n_vehicle)
        )
        # failing: users with a vehicle left without a row; allowed: all but the required ones
        return QAResult(
            name,
            have >= need,
            max(n_vehicle - have, 0),
            [{"n_users_with_recs": have, "required": need, "n_users_with_vehicle": n_vehicle}],
            desc,
            threshold=max(n_vehicle - need, 0),
            population=n_vehicle,
        )
    population = sizes["rows"] if name in POPULATION_UNIT else sizes["slots"]
    return QAResult(name, frame.empty, int(len(frame)), _records(frame), desc,
                    threshold=0, population=population)
