"""Evaluation's ranking: every arm ranked in one warehouse session equals each arm alone, and
the reference arms written for the evaluated users' vehicles only give those users the same
lists (evaluation/ranked_arms.py, recommend/apply_rules.ranked_lists_of_arms)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from holley_gnn_assets.config.settings import TimeWindows, load_config
from holley_gnn_assets.recommend import apply_rules
from holley_gnn_assets.recommend.sql_baseline import build_sql_scores
from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
from holley_gnn_assets.warehouse.exports import run_exports
from tests.micro_warehouse import build_micro_warehouse
from tests.test_engine_agreement import AS_OF, CUTOFF, _world, gnn_like_scores


@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory) -> DuckDBWarehouse:
    """The rules tests' micro world (test_engine_agreement)."""
    path = build_micro_warehouse(Path(tmp_path_factory.mktemp("wh")) / "micro.duckdb", _world())
    return DuckDBWarehouse(path)


class _RecordingWarehouse(DuckDBWarehouse):
    """A real DuckDB warehouse that records, per session, the CTEs computed once for every
    arm and each arm's own."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.sessions: list[tuple[list[str], dict[str, list[str]]]] = []

    def query_named_per_key(self, shared, per_key):  # noqa: ANN001, ANN201 (a test seam)
        self.sessions.append((list(shared), {k: list(c) for k, (c, _) in per_key.items()}))
        return super().query_named_per_key(shared, per_key)


def test_arms_ranked_in_one_session_equal_each_arm_alone(micro: DuckDBWarehouse) -> None:
    """Several arms in one session (the arm-independent CTEs computed once) give each arm the
    lists it gets alone, for the test users and for everyone; a CTE that reads the arm's
    scores or global flag is never shared."""
    from holley_gnn_assets.evaluation.reference_arms import reference_scores

    cfg = load_config()
    windows = TimeWindows.from_config(cfg, AS_OF)
    tables = run_exports(micro, cfg, windows)
    build_sql_scores(micro, cfg, windows)
    apply_rules.write_scores(micro, cfg, "gnn", gnn_like_scores(tables, 1))
    apply_rules.write_scores(micro, cfg, "global_pop", reference_scores(tables, cfg)["global_pop"])
    arms = {"sql": apply_rules.ArmScores(), "gnn": apply_rules.ArmScores(),
            "global_pop": apply_rules.ArmScores(global_scores=True)}
    recording = _RecordingWarehouse(micro.path)
    for test_users_only in (True, False):
        together = apply_rules.ranked_lists_of_arms(recording, cfg, windows, arms, CUTOFF,
                                                    test_users_only=test_users_only)
        for arm, spec in arms.items():
            alone = apply_rules.ranked_lists(micro, cfg, windows, arm, CUTOFF,
                                             global_scores=spec.global_scores,
                                             test_users_only=test_users_only)
            pd.testing.assert_frame_equal(together[arm], alone)
    assert together["gnn"]["email_lower"].nunique() >= 5  # everyone (the micro world has no
    assert not together["gnn"].equals(together["sql"])    # test-window user at this cutoff)
    shared, own = recording.sessions[-1]
    assert {"users", "products", "fitment", "order_rows", "test_window_users"} <= set(shared)
    per_arm = {"rec_users", "rec_group_scored", "rec_own_scored", "rec_ranked"}
    assert not per_arm & set(shared)
    assert all(per_arm <= set(ctes) for ctes in own.values())


def test_reference_rows_for_evaluated_vehicles_only_give_the_same_lists(tmp_path: Path) -> None:
    """ranked_arms with ``evaluated`` (reference rows written for those users' vehicles only)
    gives every evaluated user the lists of the full score tables, with fewer rows written."""
    from holley_gnn_assets.evaluation.ranked_arms import ranked_arms
    from holley_gnn_assets.evaluation.report import test_window_users
    from holley_gnn_assets.synth.generator import generate_warehouse

    info = generate_warehouse(tmp_path / "tiny.duckdb", scale="tiny", seed=2, progress=False)
    warehouse = DuckDBWarehouse(tmp_path / "tiny.duckdb")
    cfg = load_config()
    windows = TimeWindows.from_config(cfg, info["as_of"])
    tables = run_exports(warehouse, cfg, windows)
    build_sql_scores(warehouse, cfg, windows)
    apply_rules.write_scores(warehouse, cfg, "gnn", gnn_like_scores(tables, 0))
    # a few of the test users: their vehicles are a small part of the world's
    wanted = test_window_users(tables["test_clicks"], tables["test_events"])[:20]
    full = ranked_arms(warehouse, cfg, windows, tables, run="full")
    cut = ranked_arms(warehouse, cfg, windows, tables, run="cut", evaluated=wanted)
    assert set(cut) == set(full) and {"vehicle_pop", "global_pop", "lookalike_pop"} <= set(cut)
    for arm, lists in full.items():
        expected = lists[lists["email_lower"].isin(wanted)].reset_index(drop=True)
        got = cut[arm][cut[arm]["email_lower"].isin(wanted)].reset_index(drop=True)
        assert got["email_lower"].nunique() > 10, arm
        pd.testing.assert_frame_equal(got, expected)
    rows = warehouse.query_df(
        "SELECT (SELECT COUNT(*) FROM temp_holley_gnn_staging.scores_vehicle_pop_cut) AS cut, "
        "(SELECT COUNT(*) FROM temp_holley_gnn_staging.scores_vehicle_pop_full) AS full"
    ).iloc[0]
    assert 0 < rows["cut"] < rows["full"]
