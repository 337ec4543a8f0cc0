"""The business rules, run by the warehouse: ``sql/rules/recommend.sql`` over any score table.

Every arm (the SQL baseline, the GNN, the reference arms) only yields a score table
(``warehouse.schemas.SCORES``); this module loads it into the staging dataset, checks it, and
runs the one rules file on it, so both arms get identical post-processing and the output is
built where the data lives (a BigQuery job, not a bigger pod).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from holley_gnn_assets.config.settings import TimeWindows
from holley_gnn_assets.failures import EmptyInputError
from holley_gnn_assets.warehouse.base import Warehouse, WarehouseError
from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS, SCORES
from holley_gnn_assets.warehouse.sql import Ident, sql_params

log = logging.getLogger(__name__)

RULES_SQL = "rules/recommend.sql"
RANKED_COLUMNS = ["email_lower", "rank", "sku", "score"]


class ScoreTableError(ValueError):
    """A score table that no rule can rank (non-finite scores, missing keys)."""


def staging_dataset(cfg: Mapping[str, Any]) -> str:
    """The dataset (a schema in DuckDB) holding score tables and staged outputs."""
    return str(cfg["output"]["staging_dataset"])


def run_suffix(run_id: str) -> str:
    """The short run id that names a run's staging tables (``recs_gnn_<suffix>``)."""
    return run_id.replace("-", "")[:12].lower()


def _named(base: str, run: str) -> str:
    return f"{base}_{run}" if run else base


def scores_table(arm: str, run: str = "") -> str:
    """Staging table name of an arm's scores (of run ``run``: each run stages its own)."""
    return _named(f"scores_{arm}", run)


def recs_table(arm: str, run: str = "") -> str:
    """Staging table name of an arm's recommendations (the output rows, before QA)."""
    return _named(f"recs_{arm}", run)


def expire_staging(warehouse: Warehouse, cfg: Mapping[str, Any], table: str, run: str) -> None:
    """A run's staging table expires after ``output.staging_expiration_hours`` (BigQuery; the
    DuckDB warehouse drops finished runs' tables at the next start instead)."""
    if run:
        warehouse.expire_table(staging_dataset(cfg), table,
                               int(cfg["output"]["staging_expiration_hours"]))


def check_score_frame(df: pd.DataFrame, arm: str) -> None:
    """Raise ScoreTableError naming the arm and the problem: a missing column, a NaN or infinite
    score, a row without sku or without user and vehicle."""
    missing = [c for c in SCORES if c not in df.columns]
    if missing:
        raise ScoreTableError(f"scores of arm {arm!r} lack column(s) {missing}")
    score = pd.to_numeric(df["score"], errors="coerce").astype("float64")
    bad = {
        "null, NaN or non-numeric scores": int(score.isna().sum()),
        "infinite scores": int(np.isinf(score.to_numpy()).sum()),
        "rows without sku": int(df["sku"].isna().sum()),
    }
    problems = {k: v for k, v in bad.items() if v}
    if problems:
        raise ScoreTableError(f"scores of arm {arm!r} have {problems} (of {len(df)} rows)")


def write_scores(warehouse: Warehouse, cfg: Mapping[str, Any], arm: str, df: pd.DataFrame,
                 run: str = "") -> str:
    """Check an arm's score frame and load it into the staging dataset (one load job)."""
    check_score_frame(df, arm)
    t0 = time.perf_counter()
    warehouse.load_table(df, staging_dataset(cfg), scores_table(arm, run), SCORES)
    expire_staging(warehouse, cfg, scores_table(arm, run), run)
    log.info("scores of %s: %d rows loaded in %.1fs", arm, len(df), time.perf_counter() - t0)
    return warehouse.table_id(staging_dataset(cfg), scores_table(arm, run))


def rules_params(
    warehouse: Warehouse,
    cfg: Mapping[str, Any],
    windows: TimeWindows,
    arm: str,
    scoring_date: dt.date,
    *,
    test_users_only: bool,
    global_scores: bool = False,
    run: str = "",
    group_cut: int = 0,
) -> dict[str, Any]:
    """Placeholders of recommend.sql: sql_params plus the score table, the scoring date's
    purchase window [scoring_date - purchase_exclusion_days, scoring_date) and the arm's own
    cut of its group rows (``group_cut``, 0 = none: counted as capped in short_users)."""
    params = sql_params(cfg, windows, warehouse.dataset_refs())
    ts = dt.datetime(scoring_date.year, scoring_date.month, scoring_date.day)
    params.update(
        scores=Ident(warehouse.table_id(staging_dataset(cfg), scores_table(arm, run))),
        scoring_ts=ts,
        purchase_start=ts - dt.timedelta(days=int(windows.purchase_exclusion_days)),
        test_users_only=bool(test_users_only),
        global_scores=bool(global_scores),
        group_cut=int(group_cut),
    )
    return params


def _raise_score_problems(row: pd.DataFrame, params: Mapping[str, Any], arm: str) -> None:
    counts = {k: int(v) for k, v in row.iloc[0].items()}
    problems = {k: v for k, v in counts.items() if k != "score_rows" and v}
    if problems:
        raise ScoreTableError(
            f"score table {params['scores'].value} (arm {arm!r}) has {problems} of "
            f"{counts['score_rows']} rows: no rule runs on it"
        )


def _check_scores_in_warehouse(warehouse: Warehouse, params: dict[str, Any], arm: str) -> None:
    row = warehouse.run_named(RULES_SQL, params, ["score_problems"])["score_problems"]
    _raise_score_problems(row, params, arm)


class ArmScores(NamedTuple):
    """Where an arm's score table is: the run that staged it, and whether its scores are
    global (no fitment rule: ``global_pop``)."""

    run: str = ""
    global_scores: bool = False


def ranked_lists(
    warehouse: Warehouse,
    cfg: Mapping[str, Any],
    windows: TimeWindows,
    arm: str,
    scoring_date: dt.date,
    *,
    global_scores: bool = False,
    test_users_only: bool = True,
    run: str = "",
) -> pd.DataFrame:
    """The arm's ranked lists [email_lower, rank, sku, score] (up to rules.rank_depth) of the
    users with a click or site event in the test window (what evaluation reads), or of every
    user with a vehicle."""
    return ranked_lists_of_arms(warehouse, cfg, windows, {arm: ArmScores(run, global_scores)},
                                scoring_date, test_users_only=test_users_only)[arm]


def ranked_lists_of_arms(
    warehouse: Warehouse,
    cfg: Mapping[str, Any],
    windows: TimeWindows,
    arms: Mapping[str, ArmScores],
    scoring_date: dt.date,
    *,
    test_users_only: bool = True,
) -> dict[str, pd.DataFrame]:
    """``ranked_lists`` of several arms: every score table is checked first, then the rules
    run once per arm in one warehouse session, the arm-independent CTEs (users, products,
    fitment, purchases, test users) computed once for all arms."""
    params = {arm: rules_params(warehouse, cfg, windows, arm, scoring_date,
                                test_users_only=test_users_only,
                                global_scores=spec.global_scores, run=spec.run)
              for arm, spec in arms.items()}
    checks = warehouse.run_named_per_key(RULES_SQL, params, ["score_problems"])
    for arm, frames in checks.items():
        _raise_score_problems(frames["score_problems"], params[arm], arm)
    t0 = time.perf_counter()
    frames = warehouse.run_named_per_key(RULES_SQL, params, ["ranked"])
    out: dict[str, pd.DataFrame] = {}
    for arm in arms:
        ranked = frames[arm]["ranked"][RANKED_COLUMNS].astype({"rank": "int64",
                                                                "score": "float64"})
        out[arm] = ranked.sort_values(["email_lower", "rank"],
                                      kind="stable").reset_index(drop=True)
    log.info("%s: ranked lists of %d test users in %.1fs", ", ".join(arms),
             max((df["email_lower"].nunique() for df in out.values()), default=0),
             time.perf_counter() - t0)
    return out


def build_recommendations(
    warehouse: Warehouse,
    cfg: Mapping[str, Any],
    windows: TimeWindows,
    arm: str,
    scoring_date: dt.date,
    run: str = "",
    group_cut: int = 0,
) -> dict[str, Any]:
    """Build the arm's output rows (every user with a vehicle) as a staging table, in the
    warehouse; return its id and row counts. EmptyInputError when no user gets a row.
    ``group_cut``: the arm kept only each group's best ``group_cut`` rows (rules_params)."""
    warehouse.validate_contract()  # a missing table or column is named before any SQL runs
    params = rules_params(warehouse, cfg, windows, arm, scoring_date, test_users_only=False,
                          run=run, group_cut=group_cut)
    _check_scores_in_warehouse(warehouse, params, arm)
    dataset, table = staging_dataset(cfg), recs_table(arm, run)
    t0 = time.perf_counter()
    warehouse.materialize(RULES_SQL, "recommendations", params, dataset, table)
    expire_staging(warehouse, cfg, table, run)
    seconds = time.perf_counter() - t0
    ref = Ident(warehouse.table_id(dataset, table)).render()
    counts = warehouse.query_df(
        f"SELECT COUNT(*) AS n_rows, COUNTIF(rec_part_4 IS NOT NULL) AS n_full FROM {ref}"
    ).iloc[0]
    if not int(counts["n_rows"]):
        raise EmptyInputError(f"arm {arm!r}: 0 users get recommendations: "
                              f"{describe_empty_input(warehouse)}")
    short = short_users(warehouse, params, Ident(warehouse.table_id(dataset, table)))
    log.info("%s: %d users with recommendations built in %.1fs; %d of %d users short of %d "
             "(%d of them with candidates cut at rules.candidate_depth / scale.user_candidates)",
             arm, counts["n_rows"], seconds, short["users_short"], short["users"],
             min(int(cfg["rules"]["top_k"]), 4), short["users_short_capped"])
    return {
        "table": warehouse.table_id(dataset, table),
        "dataset": dataset,
        "name": table,
        "run": run,
        "rows": int(counts["n_rows"]),
        "users_with_4_recs": int(counts["n_full"] or 0),
        **short,
        "seconds": round(seconds, 2),
    }


def describe_empty_input(warehouse: Warehouse) -> str:
    """What the sources lack when nothing can be recommended: fitment rows, users with a
    vehicle (counted in the warehouse)."""
    fitment = Ident(warehouse.table_ref("data", "vehicle_product_fitment_data")).render()
    users = Ident(warehouse.table_ref("company", "ingestion_unified_attributes_schema_incremental"))
    row = warehouse.query_df(
        f"SELECT (SELECT COUNT(*) FROM {fitment}) AS fitment_rows, "
        f"(SELECT COUNT(DISTINCT user_id) FROM {users.render()} WHERE v1_year IS NOT NULL "
        "AND v1_make IS NOT NULL AND v1_model IS NOT NULL) AS users_with_vehicle").iloc[0]
    return (f"{int(row['fitment_rows']):,} fitment rows in {fitment}, "
            f"{int(row['users_with_vehicle']):,} users with a year, make and model in "
            f"{users.render()}")


def short_users(warehouse: Warehouse, params: dict[str, Any], staged: Ident) -> dict[str, int]:
    """Users with a vehicle, those short of LEAST(top_k, 4) recommendations in ``staged``, those
    of them whose candidates were cut (``users_short_capped``) and every user whose were
    (``users_capped``), from recommend.sql's ``short_users``."""
    row = warehouse.run_named(RULES_SQL, {**params, "staged": staged}, ["short_users"])
    return {k: int(v or 0) for k, v in row["short_users"].iloc[0].items()}


def read_recommendations(warehouse: Warehouse, staged: Mapping[str, Any]) -> pd.DataFrame:
    """A staged recommendations table as a DataFrame in OUTPUT_COLUMNS order (tests, previews)."""
    df = warehouse.read_output_table(staged["dataset"], staged["name"])
    if df is None:
        raise WarehouseError(f"staged recommendations {staged['table']} do not exist")
    return df[OUTPUT_COLUMNS].sort_values("email_lower", kind="stable").reset_index(drop=True)


def preview(warehouse: Warehouse, staged: Mapping[str, Any], n: int = 5) -> pd.DataFrame:
    """A few staged output rows without the email column (no personal data in metadata)."""
    cols = [c for c in OUTPUT_COLUMNS if c != "email_lower"][:11]
    ref = Ident(staged["table"]).render()
    return warehouse.query_df(
        f"SELECT {', '.join(cols)} FROM {ref} ORDER BY rec1_score DESC, rec_part_1 LIMIT {int(n)}"
    )
