"""Every arm's ranked lists at the cutoff, through the one rules file, for the evaluation.

The GNN's and the SQL baseline's score tables are already in the staging dataset (their
assets wrote them); the reference arms' score tables are written here. Each arm is then ranked
by ``sql/rules/recommend.sql`` for the users of the test window only, all arms in one
warehouse session (the CTEs no arm changes computed once).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from holley_gnn_assets.config.settings import TimeWindows
from holley_gnn_assets.evaluation.reference_arms import (
    REFERENCE_ARMS,
    RecentPop,
    reference_scores,
)
from holley_gnn_assets.graph.lookalikes import NEIGHBOURS
from holley_gnn_assets.recommend import apply_rules
from holley_gnn_assets.recommend.candidate_cut import top_candidates
from holley_gnn_assets.warehouse.base import Warehouse


def ranked_arms(
    warehouse: Warehouse, cfg: dict, windows: TimeWindows, tables: dict[str, pd.DataFrame],
    lookalikes: int = NEIGHBOURS, staged_runs: Mapping[str, str] | None = None, run: str = "",
    recent: RecentPop | None = None, evaluated: pd.Index | None = None,
) -> dict[str, pd.DataFrame]:
    """``{arm: ranked lists}`` for ``gnn``, ``sql`` and the reference arms, at the cutoff.

    ``tables``: the export tables the reference arms need (product_nodes, user_nodes,
    product_vehicle_edges, user_product_edges); ``lookalikes``: ``lookalike_pop``'s pool
    (the model's validation choice); ``staged_runs``: the run that staged each of ``gnn`` and
    ``sql`` (its staging tables are read); ``run``: the run the reference arms are written
    under; ``recent``: ``recent_pop``'s scores and window, when the caller has them;
    ``evaluated``: the users whose lists the evaluation reads (``report.test_window_users``):
    when given, the reference arms' vehicle rows are written for those users' vehicles only
    (the same lists for them; a third fewer rows to load and rank at full scale). Each
    vehicle's rows are cut to its ``rules.candidate_depth`` best eligible ones first
    (``recommend/candidate_cut.py``): the rules read no others."""
    staged_runs = staged_runs or {}
    warehouse.validate_contract()
    specs = {arm: apply_rules.ArmScores(staged_runs.get(arm, "")) for arm in ("gnn", "sql")}
    vehicles = None if evaluated is None else _vehicles_of(tables["user_nodes"], evaluated)
    eligible = tables["product_nodes"].set_index("sku")["eligible"].astype(bool)
    depth = int(cfg["rules"]["candidate_depth"])
    for arm, scores in reference_scores(tables, cfg, warehouse.read_truth(),
                                         lookalikes, recent).items():
        if vehicles is not None:  # global rows (no vehicle) apply to every user: all kept
            scores = scores[scores["vehicle_id"].isna() | scores["vehicle_id"].isin(vehicles)]
        # the rules read each vehicle's top candidate_depth eligible rows only: the same lists
        scores = top_candidates(scores, eligible, depth, arm)
        apply_rules.write_scores(warehouse, cfg, arm, scores, run=run)
        specs[arm] = apply_rules.ArmScores(run, REFERENCE_ARMS[arm])
    return apply_rules.ranked_lists_of_arms(warehouse, cfg, windows, specs, windows.cutoff)


def _vehicles_of(users: pd.DataFrame, emails: pd.Index) -> pd.Index:
    """The distinct vehicles of the users ``emails`` (user_nodes' email_lower, vehicle_id)."""
    return pd.Index(users.loc[users["email_lower"].isin(emails), "vehicle_id"].dropna().unique())
