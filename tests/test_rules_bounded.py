"""Rules that rank candidates, not catalogues (issue 27): each group's (vehicle's) and each
own-scored user's candidates are ranked once and only the top rules.candidate_depth reach the
per-user rules; the rows are today's wherever the cut leaves full lists, and the users short
of four because of the cut are counted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from holley_gnn_assets.config.settings import TimeWindows, load_config
from holley_gnn_assets.recommend import apply_rules
from holley_gnn_assets.recommend.sql_baseline import build_sql_scores
from holley_gnn_assets.synth.generator import generate_warehouse
from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
from holley_gnn_assets.warehouse.exports import run_exports
from tests.micro_warehouse import build_micro_warehouse
from tests.test_engine_agreement import AS_OF, CUTOFF, _world

UNCAPPED = 10**6


def _arm(wh: DuckDBWarehouse, cfg: dict, windows: TimeWindows, arm: str, day: dt.date):
    staged = apply_rules.build_recommendations(wh, cfg, windows, arm, day)
    recs = apply_rules.read_recommendations(wh, staged)
    ranked = apply_rules.ranked_lists(wh, cfg, windows, arm, day, test_users_only=False)
    return staged, recs, ranked


def _cfg(depth: int) -> dict:
    return load_config(overrides={"rules": {"candidate_depth": depth},
                                  "scale": {"user_candidates": max(depth, 100)}})


@pytest.fixture(scope="module")
def broad(tmp_path_factory: pytest.TempPathFactory) -> tuple[DuckDBWarehouse, dict]:
    path = Path(tmp_path_factory.mktemp("broad")) / "broad_tiny.duckdb"
    info = generate_warehouse(path, scale="broad_tiny", seed=0, progress=False)
    return DuckDBWarehouse(path), info


def _gnn_like(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Random vehicle rows for every fitment pair and own rows for 40 users."""
    fit = tables["product_vehicle_edges"][["vehicle_id", "sku"]].drop_duplicates()
    users = tables["user_nodes"].dropna(subset=["vehicle_id"]).head(40)
    own = users[["email_lower", "vehicle_id"]].merge(fit, on="vehicle_id")
    nothing = pd.Series(None, dtype=object)
    gnn = pd.concat([fit.assign(email_lower=nothing), own.assign(vehicle_id=nothing)])
    gnn["score"] = np.random.default_rng(0).random(len(gnn))
    return gnn[["vehicle_id", "email_lower", "sku", "score"]]


def _run(wh: DuckDBWarehouse, windows: TimeWindows, arm: str, day: dt.date, depth: int,
         gnn: pd.DataFrame):
    cfg = _cfg(depth)
    if arm == "sql":
        build_sql_scores(wh, cfg, windows)
    else:
        apply_rules.write_scores(wh, cfg, "gnn", gnn)
    return _arm(wh, cfg, windows, arm, day)


def _prefix_and_same_where_full(cut: pd.DataFrame, full: pd.DataFrame, min_full: int = 100):
    """Each cut ranked list is the prefix of today's; a cut list of rank_depth (20) rows is
    today's list."""
    merged = cut.merge(full, on=["email_lower", "rank"], how="left")
    assert (merged["sku_x"] == merged["sku_y"]).all()
    n = cut.groupby("email_lower").size()
    whole = n[n == 20].index
    assert len(whole) >= min_full
    pd.testing.assert_frame_equal(
        cut[cut["email_lower"].isin(whole)].reset_index(drop=True),
        full[full["email_lower"].isin(whole)].reset_index(drop=True))


def test_cut_candidates_give_todays_rows_on_a_broad_world(broad) -> None:
    """broad_tiny: 300 products fit every vehicle; the top 100 per vehicle (and per own-scored
    user) give the same output and ranked lists as the whole catalogue, for the SQL arm and a
    score table with users' own rows, at the cutoff (purchase exclusion) and at as_of."""
    wh, info = broad
    windows = TimeWindows.from_config(_cfg(100), info["as_of"])
    tables = run_exports(wh, _cfg(100), windows)
    gnn = _gnn_like(tables)
    fit = tables["product_vehicle_edges"]
    assert fit.groupby("vehicle_id").size().min() >= 250  # the cut at 100 bites
    for day in (windows.cutoff, windows.as_of):
        for arm in ("sql", "gnn"):
            s_cut, r_cut, k_cut = _run(wh, windows, arm, day, 100, gnn)
            s_all, r_all, k_all = _run(wh, windows, arm, day, UNCAPPED, gnn)
            assert len(r_cut) > 500
            pd.testing.assert_frame_equal(r_cut, r_all)
            _prefix_and_same_where_full(k_cut, k_all)
            if arm == "sql":
                pd.testing.assert_frame_equal(k_cut, k_all)
            assert s_cut["users_capped"] >= len(r_cut) and s_all["users_capped"] == 0
            assert s_cut["users_short_capped"] == 0
            assert s_cut["users_short"] == s_all["users_short"]


def test_a_deeper_cut_keeps_a_prefix_of_todays_lists(broad) -> None:
    """At 60 candidates (20 part types x 2 run out) the ranked lists are shorter, each the
    prefix of today's; the top-4 output is still today's."""
    wh, info = broad
    windows = TimeWindows.from_config(_cfg(60), info["as_of"])
    _, r_cut, k_cut = _run(wh, windows, "sql", windows.cutoff, 60, pd.DataFrame())
    _, r_all, k_all = _run(wh, windows, "sql", windows.cutoff, UNCAPPED, pd.DataFrame())
    pd.testing.assert_frame_equal(r_cut, r_all)
    assert len(k_cut) < len(k_all)
    _prefix_and_same_where_full(k_cut, k_all, min_full=0)


def test_users_short_because_of_the_cut_are_counted(tmp_path: Path) -> None:
    """Micro world: V1 has 10 eligible fitting products, V2 two. At candidate_depth 2 every V1
    user is cut and short; V2's users are short without a cut (2 candidates)."""
    wh = DuckDBWarehouse(build_micro_warehouse(tmp_path / "micro.duckdb", _world()))
    cfg = _cfg(2)
    windows = TimeWindows.from_config(cfg, AS_OF)
    tables = run_exports(wh, cfg, windows)
    build_sql_scores(wh, cfg, windows)
    staged, recs, ranked = _arm(wh, cfg, windows, "sql", CUTOFF)
    users = tables["user_nodes"].dropna(subset=["vehicle_id"])
    v1 = users["vehicle_id"].str.startswith("1969")
    assert ranked.groupby("email_lower").size().max() <= 2
    assert staged["users"] == len(users)
    assert staged["users_short"] == len(users)
    assert staged["users_capped"] == staged["users_short_capped"] == int(v1.sum())
    full = apply_rules.build_recommendations(wh, _cfg(UNCAPPED), windows, "sql", CUTOFF)
    assert full["users_capped"] == full["users_short_capped"] == 0
    assert full["users_short"] < len(users)


def test_an_arms_own_cut_of_its_vehicle_rows_gives_the_same_lists_and_counts(broad) -> None:
    """broad_tiny: a score table whose vehicle rows were cut to each vehicle's 100 best
    eligible (recommend/candidate_cut.py, what the GNN arm and the reference arms load) gives
    the rows and ranked lists of the whole table, and counts the same users as capped."""
    from holley_gnn_assets.recommend.candidate_cut import top_candidates

    wh, info = broad
    cfg = _cfg(100)
    windows = TimeWindows.from_config(cfg, info["as_of"])
    tables = run_exports(wh, cfg, windows)
    gnn = _gnn_like(tables)
    eligible = tables["product_nodes"].set_index("sku")["eligible"].astype(bool)
    cut = top_candidates(gnn, eligible, 100)
    assert cut["email_lower"].isna().sum() < gnn["email_lower"].isna().sum() / 2
    out = {}
    for name, scores, group_cut in (("whole", gnn, 0), ("cut", cut, 100)):
        apply_rules.write_scores(wh, cfg, "gnn", scores, run=name)
        staged = apply_rules.build_recommendations(wh, cfg, windows, "gnn", windows.cutoff,
                                                   run=name, group_cut=group_cut)
        out[name] = (staged, apply_rules.read_recommendations(wh, staged),
                     apply_rules.ranked_lists(wh, cfg, windows, "gnn", windows.cutoff,
                                              test_users_only=False, run=name))
    pd.testing.assert_frame_equal(out["cut"][1], out["whole"][1])
    pd.testing.assert_frame_equal(out["cut"][2], out["whole"][2])
    counts = ("users", "users_short", "users_short_capped", "users_capped")
    assert {k: out["cut"][0][k] for k in counts} == {k: out["whole"][0][k] for k in counts}
    assert out["cut"][0]["users_capped"] > 0
