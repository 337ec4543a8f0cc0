"""The adaptive test window: grown in steps until it holds eval.min_test_clicks, reported, and
an inconclusive decision when even the widest window is too small."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from dagster import DagsterInstance, materialize
from micro_warehouse import build_micro_warehouse

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.config.time_windows import choose_test_window, window_candidates
from holley_gnn_assets.config.validation import SettingsError
from holley_gnn_assets.evaluation.markdown import report_markdown
from holley_gnn_assets.evaluation.report import evaluate, window_params
from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
from holley_gnn_assets.warehouse.exports import run_exports
from holley_gnn_assets.warehouse.window_counts import adaptive_windows

AS_OF = dt.date(2025, 12, 1)  # default cutoff 2025-11-01; 44 d: 2025-10-18; 58 d: 2025-10-04
GROWN_CUTOFF = dt.date(2025, 10, 18)


def _user(uid: str) -> dict:
    return {"user_id": uid, "email": f"{uid}@x.com", "v1_year": "1969",
            "v1_make": "Chevrolet", "v1_model": "Camaro", "updated_at": "2025-01-01"}


def _click(uid: str, sku: str, ts: str, kind: str = "CLICKED") -> dict:
    return {"user_id": uid, "treatment_id": "t1", "interaction_type": kind, "sku": sku,
            "interaction_timestamp": ts}


CLICKS = [
    # default window [11-01, 12-01): 3 test clicks ...
    _click("u1", "A", "2025-11-05 10:00:00"),
    _click("u2", "B", "2025-11-20 10:00:00"),
    _click("u3", "C", "2025-11-30 23:00:00"),
    # ... and rows the export drops, so the count must drop them too
    _click("u1", "Z", "2025-11-10 10:00:00"),  # sku not in the catalog
    _click("u2", "A", "2025-11-12 10:00:00", kind="OPENED"),
    _click("u9", "A", "2025-11-15 10:00:00"),  # user_id without an attribute row
    _click("u1", "C", "2025-12-01 00:00:00"),  # at as_of: outside
    # [10-18, 11-01): 3 more (one exactly at the grown cutoff belongs to the test set)
    _click("u4", "A", "2025-10-20 10:00:00"),
    _click("u1", "B", "2025-10-31 23:59:00"),
    _click("u2", "C", "2025-10-18 00:00:00"),
    # [10-04, 10-18): 1 more; training data under the 44 d window
    _click("u3", "A", "2025-10-10 10:00:00"),
]


@pytest.fixture
def click_world(tmp_path: Path) -> DuckDBWarehouse:
    """Four users on one vehicle, three products, the clicks above."""
    fitment = [{"sku": s, "year": "1969", "make": "Chevrolet", "model": "Camaro"} for s in "ABC"]
    items = [{"sku": s, "PartType": "Carburetor", "price": 100.0, "image_url": "https://img/x.jpg",
              "title": f"title {s}"} for s in "ABC"]
    path = build_micro_warehouse(tmp_path / "wh.duckdb", {
        "ingestion_unified_attributes_schema_incremental": [_user(u) for u in
                                                             ("u1", "u2", "u3", "u4")],
        "treatment_interaction": CLICKS,
        "vehicle_product_fitment_data": fitment,
        "import_items": items,
    })
    return DuckDBWarehouse(path)


def _cfg(min_clicks: int, **time: int) -> dict:
    return load_config(overrides={"eval": {"min_test_clicks": min_clicks}, "time": time})


# ---- the choice ------------------------------------------------------------------------------


def test_candidates_step_up_to_the_maximum() -> None:
    assert window_candidates(30, 14, 90) == [30, 44, 58, 72, 86, 90]
    assert window_candidates(30, 30, 90) == [30, 60, 90]
    assert window_candidates(30, 14, 30) == [30]


def test_too_few_clicks_grow_the_window_and_the_export_matches_the_count(click_world) -> None:
    cfg = _cfg(6)
    windows = adaptive_windows(click_world, cfg, AS_OF)
    assert windows.test_window_days == 44 and windows.cutoff == GROWN_CUTOFF
    assert windows.window_clicks == 6 and windows.enough_test_clicks is True
    assert windows.test_window_reason == (
        "default 30 d held 3 test clicks < eval.min_test_clicks=6; grew to 44 d: 6 clicks")
    tables = run_exports(click_world, cfg, windows)
    assert len(tables["test_clicks"]) == windows.window_clicks
    assert tables["test_clicks"]["ts"].min() == pd.Timestamp(GROWN_CUTOFF)
    # training ends at the moved cutoff: the 10-20 click is test data, the 10-10 one trains
    edges = set(zip(tables["user_product_edges"]["email_lower"],
                    tables["user_product_edges"]["sku"], strict=True))
    assert ("u3@x.com", "A") in edges and ("u4@x.com", "A") not in edges
    assert (tables["user_product_edges"]["last_ts"] < pd.Timestamp(GROWN_CUTOFF)).all()


def test_enough_clicks_keep_the_default_window(click_world) -> None:
    windows = adaptive_windows(click_world, _cfg(3), AS_OF)
    assert windows.test_window_days == 30 and windows.window_clicks == 3
    assert windows.test_window_reason == "default 30 d held 3 test clicks >= eval.min_test_clicks=3"


def test_even_the_maximum_too_small_keeps_the_default_and_says_so(click_world) -> None:
    windows = adaptive_windows(click_world, _cfg(100), AS_OF)
    assert windows.test_window_days == 30 and windows.enough_test_clicks is False
    assert "even the maximum 90 d holds 7" in windows.test_window_reason
    assert windows.test_window_reason.endswith("(a small test set: the interval decides)")


def test_windows_past_the_interaction_start_are_skipped() -> None:
    as_of = dt.date(2025, 10, 15)  # interaction_start 2025-09-01: 44 d would start on it
    windows = choose_test_window(_cfg(10), as_of, {dt.date(2025, 9, 20): 4, as_of: 50})
    assert windows.test_window_days == 30 and windows.window_clicks == 4
    assert "skipped" in windows.test_window_reason and "maximum 30 d" in windows.test_window_reason


# ---- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("time", "key"), [
    ({"test_window_step_days": 0}, "time.test_window_step_days"),
    ({"max_test_window_days": 20}, "time.max_test_window_days"),
    ({"max_test_window_days": "ninety"}, "time.max_test_window_days"),
])
def test_bad_window_config_is_named(time: dict, key: str) -> None:
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        load_config(overrides={"time": time})


# ---- the report ------------------------------------------------------------------------------


def _clear_win_world() -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """40 cold users on 8 vehicles: GNN's first pick is every user's click, SQL's never is."""
    emails = [f"user{i}" for i in range(40)]
    users = pd.DataFrame({"email_lower": emails, "vehicle_id": [f"V{i % 8}" for i in range(40)],
                          "tier": "cold"})
    clicks = pd.DataFrame({"email_lower": emails, "sku": "GOOD"})

    def ranked(skus: list[str]) -> pd.DataFrame:
        return pd.DataFrame([(u, r + 1, s, 10.0 - r) for u in emails for r, s in enumerate(skus)],
                            columns=["email_lower", "rank", "sku", "score"])

    return {"gnn": ranked(["GOOD", "X1"]), "sql": ranked(["X2", "X3"])}, users, clicks


def test_too_small_even_at_the_maximum_is_flagged_and_decided_by_its_interval() -> None:
    """Below eval.min_test_clicks even at the widest window the decision carries the small-sample
    flag; an interval that settles it decides (here every user is a GNN hit and an SQL miss)."""
    arms, users, clicks = _clear_win_world()
    per_day = {AS_OF - dt.timedelta(days=1): len(clicks)}
    cfg = _cfg(41)
    short = choose_test_window(cfg, AS_OF, per_day)
    report = evaluate(arms, users, clicks, None, cfg, windows=short)
    assert report["decision"] == "clear_win" and report["small_sample"] is True
    assert "small test set (default 30 d held 40" in report["decision_reason"]
    assert report["small_sample_reason"].startswith("default 30 d held 40")
    assert report["test_window"]["enough_test_clicks"] is False
    assert report["tiers"]["cold"]["delta_hit_rate@4"] == 1.0
    assert "Small test set: default 30 d held 40" in report_markdown(report)
    enough = choose_test_window(_cfg(40), AS_OF, per_day)
    big = evaluate(arms, users, clicks, None, _cfg(40), windows=enough)
    assert big["decision"] == "clear_win" and big["small_sample"] is False


def test_a_small_test_set_the_interval_does_not_settle_stays_inconclusive() -> None:
    """Half the users a GNN hit, half an SQL hit: delta 0, interval wide: inconclusive, flagged."""
    arms, users, clicks = _clear_win_world()
    half = users["email_lower"].isin([f"user{i}" for i in range(0, 40, 2)])
    clicks = clicks.assign(sku=np.where(half.to_numpy(), "GOOD", "X2"))
    short = choose_test_window(_cfg(41), AS_OF, {AS_OF - dt.timedelta(days=1): len(clicks)})
    report = evaluate(arms, users, clicks, None, _cfg(41), windows=short)
    assert report["decision"] == "inconclusive" and report["small_sample"] is True
    assert "is neutral but CI" in report["decision_reason"]


def test_the_report_markdown_and_mlflow_params_name_the_window() -> None:
    arms, users, clicks = _clear_win_world()
    per_day = {dt.date(2025, 11, 20): 10, dt.date(2025, 10, 1): 30}
    cfg = _cfg(40)
    windows = choose_test_window(cfg, AS_OF, per_day)
    assert windows.test_window_days == 72  # 30 d: 10, 44 d: 10, 58 d: 10, 72 d: 40
    report = evaluate(arms, users, clicks, None, cfg, windows=windows)
    assert report["cutoff"] == "2025-09-20" and report["test_window"]["days"] == 72
    assert report["test_window"]["default_days"] == 30
    markdown = report_markdown(report)
    assert "Test window: 72 d, [2025-09-20, 2025-12-01): default 30 d held 10 test clicks" \
        in markdown
    params = window_params(report)
    assert params["test_window.days"] == "72" and "grew to 72 d: 40 clicks" in params[
        "test_window.reason"]


def test_a_test_set_that_disagrees_with_the_count_is_flagged() -> None:
    arms, users, clicks = _clear_win_world()
    cfg = _cfg(40)
    windows = choose_test_window(cfg, AS_OF, {AS_OF - dt.timedelta(days=3): 45})
    report = evaluate(arms, users, clicks, None, cfg, windows=windows)
    assert any("chosen on 45 clicks but the test set holds 40" in w for w in report["warnings"])
    assert report["decision"] == "clear_win"  # 40 clicks still reach eval.min_test_clicks


# ---- through Dagster -------------------------------------------------------------------------


def test_the_export_asset_uses_the_grown_window(click_world, tmp_path: Path) -> None:
    from holley_gnn_assets.defs.assets.exports import test_tables
    from holley_gnn_assets.defs.assets.run_window import run_window
    from holley_gnn_assets.defs.resources import PipelineSettings, WarehouseResource

    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(_cfg(6)))
    resources = {
        "pipeline": PipelineSettings(config_path=str(config), home=str(tmp_path / "home")),
        "warehouse": WarehouseResource(kind="duckdb", duckdb_path=str(click_world.path)),
    }
    with DagsterInstance.ephemeral() as instance:
        result = materialize([run_window, test_tables], resources=resources, instance=instance,
                             partition_key=AS_OF.isoformat())
    assert result.success
    meta = {ev.materialization.asset_key.to_user_string(): ev.materialization.metadata
            for ev in (e.step_materialization_data for e in
                       result.get_asset_materialization_events())}
    assert meta["test_clicks"]["cutoff"].value == GROWN_CUTOFF.isoformat()
    assert meta["test_clicks"]["dagster/row_count"].value == 6
    assert all(ev.passed for ev in result.get_asset_check_evaluations())


def test_an_empty_test_set_stays_no_test_data() -> None:
    arms, users, clicks = _clear_win_world()
    cfg = _cfg(40)
    windows = choose_test_window(cfg, AS_OF, {})
    assert windows.enough_test_clicks is False and windows.window_clicks == 0
    report = evaluate(arms, users, clicks.iloc[:0], None, cfg, windows=windows)
    assert report["decision"] == "no_test_data"
    # the window's reason does not announce another decision
    assert "inconclusive" not in report["test_window"]["reason"]
    assert report["test_window"]["reason"].endswith("(no test clicks to measure)")
