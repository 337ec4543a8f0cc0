"""The rules file (sql/rules/recommend.sql) against a test-only reference engine, row for row:
the SQL arm's popularity scores, and GNN-like scores with users' own rows; the products no rule
may pass (NaN price, refurbished, http image) reach neither arm."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from holley_gnn_assets.config.settings import TimeWindows, load_config
from holley_gnn_assets.recommend import apply_rules
from holley_gnn_assets.recommend.sql_baseline import build_sql_scores
from holley_gnn_assets.warehouse.base import Warehouse
from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
from holley_gnn_assets.warehouse.exports import run_exports
from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS
from tests.micro_warehouse import build_micro_warehouse
from tests.reference_rules import python_popularity, python_scores

AS_OF = dt.date(2026, 3, 31)
CUTOFF = dt.date(2026, 3, 1)
V1 = {"v1_year": "1969", "v1_make": "Chevrolet", "v1_model": " Camaro "}
V2 = {"v1_year": "1970", "v1_make": "FORD", "v1_model": "Mustang"}
FIT = {"V1": ("1969", "chevrolet", "camaro"), "V2": ("1970", "Ford", "MUSTANG")}


def _item(sku: str, part: str, price: float | None = 100.0, image: str | None = None) -> dict:
    return {
        "sku": sku,
        "PartType": part,
        "price": price,
        "image_url": image if image is not None else f"https://img/{sku}.jpg",
        "title": sku,
    }


def _world() -> dict[str, list[dict]]:
    items = [
        _item("A1", "Intake"),
        _item("A2", "Intake"),
        _item("A3", "Intake"),
        _item("100B", "Carb"),
        _item("100R", "Carb"),
        _item("100G", "Carb"),
        _item("T1", "Exhaust"),
        _item("T2", "Ignition"),
        _item("T3", "Ignition"),
        _item("CHEAP", "Gauge", 10.0),
        _item("HTTP", "Gauge", image="http://img/h.jpg"),
        _item("REF", "Gauge"),
        _item("SVC", "Installation Service"),
        _item("FAST", "fasteners"),
        _item("DUP", "Pump", 0.0),
        _item("DUP", "Pump", 120.0),
        _item("NOIMG", "Pump", image=""),
        _item("NAN", "Gauge", "NaN"),
        _item("INF", "Gauge", "Infinity"),
    ]
    # popularity before the cutoff (distinct orders, the buyers' orders below included):
    # A1 7, A2 6, A3 4 = 100R 4, T1 3, 100B 2 = T2 = T3, 100G 1 = DUP
    pop = {
        "A1": 6,
        "A2": 5,
        "A3": 4,
        "100B": 2,
        "100R": 3,
        "100G": 1,
        "T1": 2,
        "T2": 2,
        "T3": 2,
        "CHEAP": 9,
        "HTTP": 9,
        "REF": 9,
        "SVC": 9,
        "FAST": 9,
        "DUP": 1,
        "NOIMG": 9,
        "NAN": 9,
        "INF": 9,
    }
    orders: list[dict] = []
    for sku, n in pop.items():
        for i in range(n):
            orders.append(
                {
                    "order_id": f"o-{sku}-{i}",
                    "email": f"pop{i}@shop.com",
                    "sku": sku,
                    "quantity": 1,
                    "order_date": "2025-06-01",
                    "unit_price": 1.0,
                }
            )
    # a second line of the same order does not count twice
    orders.append(
        {
            "order_id": "o-A3-0",
            "email": "pop0@shop.com",
            "sku": "A3",
            "quantity": 2,
            "order_date": "2025-06-01",
            "unit_price": 1.0,
        }
    )
    # after the cutoff: must not change popularity
    orders += [
        {
            "order_id": f"late{i}",
            "email": "late@shop.com",
            "sku": "T3",
            "quantity": 1,
            "order_date": "2026-03-10",
            "unit_price": 1.0,
        }
        for i in range(5)
    ]
    users = [
        {"user_id": "1", "email": "U1@x.com", **V1},
        {"user_id": "2", "email": " u2@x.com", **V1},
        {"user_id": "3", "email": "u3@x.com", **V1},
        {"user_id": "4", "email": "u4@x.com", **V2},
        {
            "user_id": "5",
            "email": "u5@x.com",
            "v1_year": "19x9",
            "v1_make": "Ford",
            "v1_model": "Mustang",
        },
        {"user_id": "6", "email": "u6@x.com", **V1},
        {"user_id": "8", "email": "u8@x.com", **V1},
    ]
    for u in users:
        u["updated_at"] = "2025-01-01"
    buys = [  # (email, sku, date)
        ("u2@x.com", "A1", "2025-12-01"),  # excluded at C and T
        ("u3@x.com", "A2", "2025-01-20"),  # > 365 days before C: not excluded
        ("u6@x.com", "100R", "2025-11-01"),  # variant: 100B takes its place
        ("u6@x.com", "CHEAP", "2025-11-01"),  # not in the list: no change
        ("u8@x.com", "T1", "2026-03-05"),  # test window: excluded at T only
        ("u4@x.com", "T1", "2025-10-01"),
    ]
    orders += [
        {
            "order_id": f"b{i}",
            "email": e,
            "sku": s,
            "quantity": 1,
            "order_date": d,
            "unit_price": 1.0,
        }
        for i, (e, s, d) in enumerate(buys)
    ]
    fit_v1 = [
        "A1",
        "A2",
        "A3",
        "100B",
        "100R",
        "100G",
        "T1",
        "T2",
        "T3",
        "CHEAP",
        "HTTP",
        "REF",
        "SVC",
        "FAST",
        "DUP",
        "NOIMG",
        "NAN",
        "INF",
    ]
    fitment = [
        {"sku": s, "year": FIT["V1"][0], "make": FIT["V1"][1], "model": FIT["V1"][2]}
        for s in fit_v1
    ]
    fitment += [
        {"sku": s, "year": FIT["V2"][0], "make": FIT["V2"][1], "model": FIT["V2"][2]}
        for s in ["A1", "T1", "CHEAP", "REF", "NAN", "HTTP"]
    ]
    return {
        "ingestion_unified_attributes_schema_incremental": users,
        "import_items": items,
        "import_items_tags": [{"sku": "REF", "tag": "REFURBISHED"}, {"sku": "A1", "tag": "New"}],
        "import_orders": orders,
        "vehicle_product_fitment_data": fitment,
    }


BANNED = {"NAN", "INF", "REF", "HTTP", "CHEAP", "SVC", "FAST", "NOIMG"}


def sql_arm(warehouse: Warehouse, cfg: dict, windows: TimeWindows, scoring_date: dt.date):
    """The SQL arm through the package: scores in the warehouse, rules file, staged output."""
    build_sql_scores(warehouse, cfg, windows)
    staged = apply_rules.build_recommendations(warehouse, cfg, windows, "sql", scoring_date)
    recs = apply_rules.read_recommendations(warehouse, staged)
    ranked = apply_rules.ranked_lists(warehouse, cfg, windows, "sql", scoring_date,
                                      test_users_only=False)
    return recs, ranked


def _same_ranked(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        a.astype({"email_lower": str, "sku": str}).reset_index(drop=True),
        b.astype({"email_lower": str, "sku": str}).reset_index(drop=True),
        check_dtype=False,
    )


def _compare(warehouse: DuckDBWarehouse, cfg: dict, scoring_date: dt.date) -> tuple:
    windows = TimeWindows.from_config(cfg, AS_OF)
    tables = run_exports(warehouse, cfg, windows)
    sql_recs, sql_ranked = sql_arm(warehouse, cfg, windows, scoring_date)
    py_recs, py_ranked = python_popularity(tables, cfg, scoring_date)
    assert list(sql_recs.columns) == OUTPUT_COLUMNS
    pd.testing.assert_frame_equal(sql_recs, py_recs, check_dtype=False)
    _same_ranked(sql_ranked, py_ranked)
    return sql_recs, sql_ranked


@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory) -> DuckDBWarehouse:
    path = build_micro_warehouse(Path(tmp_path_factory.mktemp("wh")) / "micro.duckdb", _world())
    return DuckDBWarehouse(path)


def test_agreement_at_cutoff(micro: DuckDBWarehouse) -> None:
    cfg = load_config()
    recs, ranked = _compare(micro, cfg, CUTOFF)
    lists = ranked.groupby("email_lower")["sku"].agg(list).to_dict()
    v1 = ["A1", "A2", "100R", "T1", "T2", "T3", "DUP"]  # A3 capped; 100B/100G de-duplicated
    assert lists["u1@x.com"] == v1 and lists["u3@x.com"] == v1 and lists["u8@x.com"] == v1
    assert lists["u2@x.com"] == ["A2", "100R", "A3", "T1", "T2", "T3", "DUP"]
    assert lists["u6@x.com"] == ["A1", "A2", "T1", "100B", "T2", "T3", "DUP"]
    assert lists["u4@x.com"] == ["A1"]  # < 4 eligible; T1 bought
    assert "u5@x.com" not in lists  # no vehicle
    u4 = recs.set_index("email_lower").loc["u4@x.com"]
    assert pd.isna(u4["rec_part_2"]) and pd.isna(u4["rec4_score"])
    assert recs.set_index("email_lower").loc["u1@x.com", "make"] == "CHEVROLET"


def test_agreement_at_as_of(micro: DuckDBWarehouse) -> None:
    cfg = load_config()
    _, ranked = _compare(micro, cfg, AS_OF)
    lists = ranked.groupby("email_lower")["sku"].agg(list).to_dict()
    assert lists["u8@x.com"] == ["A1", "A2", "100R", "T2", "T3", "DUP"]


def test_agreement_small_depth_and_cap(micro: DuckDBWarehouse) -> None:
    cfg = load_config(overrides={"rules": {"rank_depth": 3, "max_per_part_type": 1}})
    _, ranked = _compare(micro, cfg, CUTOFF)
    assert ranked.groupby("email_lower").size().max() == 3


def test_agreement_on_synthetic_tiny_world(tmp_path: Path) -> None:
    from holley_gnn_assets.synth.generator import generate_warehouse

    info = generate_warehouse(tmp_path / "tiny.duckdb", scale="tiny", seed=0, progress=False)
    warehouse = DuckDBWarehouse(tmp_path / "tiny.duckdb")
    cfg = load_config()
    windows = TimeWindows.from_config(cfg, info["as_of"])
    tables = run_exports(warehouse, cfg, windows)
    for scoring_date in (windows.cutoff, windows.as_of):
        sql_recs, sql_ranked = sql_arm(warehouse, cfg, windows, scoring_date)
        py_recs, py_ranked = python_popularity(tables, cfg, scoring_date)
        assert len(sql_recs) > 1000
        pd.testing.assert_frame_equal(sql_recs, py_recs, check_dtype=False)
        _same_ranked(sql_ranked, py_ranked)


def test_ranked_test_users_is_the_full_list_restricted(tmp_path: Path) -> None:
    """Evaluation's SQL ranked list (test-window users only) equals the full list filtered to
    the users of the exported test clicks and events."""
    from holley_gnn_assets.evaluation.report import test_window_users
    from holley_gnn_assets.synth.generator import generate_warehouse

    info = generate_warehouse(tmp_path / "tiny.duckdb", scale="tiny", seed=1, progress=False)
    warehouse = DuckDBWarehouse(tmp_path / "tiny.duckdb")
    cfg = load_config()
    windows = TimeWindows.from_config(cfg, info["as_of"])
    tables = run_exports(warehouse, cfg, windows)
    wanted = test_window_users(tables["test_clicks"], tables["test_events"])
    _, full = sql_arm(warehouse, cfg, windows, windows.cutoff)
    only = apply_rules.ranked_lists(warehouse, cfg, windows, "sql", windows.cutoff)
    expected = full[full["email_lower"].isin(wanted)].reset_index(drop=True)
    assert 100 < only["email_lower"].nunique() < full["email_lower"].nunique()
    pd.testing.assert_frame_equal(only, expected, check_dtype=False)


def test_reorder_inside_test_window(tmp_path: Path) -> None:
    """A sku bought before the cutoff and again inside the test window is excluded at C.

    Needs user_purchases to keep the last order before the cutoff (not only the last order
    before as_of); see the export of user_purchases.
    """
    world = _world()
    world["ingestion_unified_attributes_schema_incremental"].append(
        {"user_id": "7", "email": "u7@x.com", "updated_at": "2025-01-01", **V1}
    )
    world["import_orders"] += [
        {
            "order_id": f"r{i}",
            "email": "u7@x.com",
            "sku": "A1",
            "quantity": 1,
            "order_date": d,
            "unit_price": 1.0,
        }
        for i, d in enumerate(["2026-02-19", "2026-03-05"])
    ]
    wh = DuckDBWarehouse(build_micro_warehouse(tmp_path / "reorder.duckdb", world))
    _, ranked = _compare(wh, load_config(), CUTOFF)
    assert "A1" not in set(ranked.loc[ranked["email_lower"] == "u7@x.com", "sku"])


def gnn_like_scores(tables: dict[str, pd.DataFrame], seed: int) -> pd.DataFrame:
    """Random vehicle rows for every fitment pair, and own rows for two users; the products no
    rule may pass get the highest scores, so only the rules keep them out."""
    rng = np.random.default_rng(seed)
    fit = tables["product_vehicle_edges"][["vehicle_id", "sku"]].drop_duplicates()
    veh = fit.assign(email_lower=None, score=rng.integers(0, 6, len(fit)).astype(float))
    own = pd.DataFrame({"email_lower": ["u1@x.com"] * 6 + ["u6@x.com"] * 3, "vehicle_id": None,
                        "sku": ["A3", "T2", "100G", "100B", "NAN", "REF", "A1", "100R", "HTTP"],
                        "score": [3.0, 3.0, 2.0, 2.5, 99.0, 98.0, 1.0, 5.0, 97.0]})
    out = pd.concat([veh.astype({"email_lower": object}), own.astype({"vehicle_id": object})],
                    ignore_index=True)
    out.loc[out["sku"].isin(BANNED), "score"] = 100.0
    return out[["vehicle_id", "email_lower", "sku", "score"]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_user_and_vehicle_scores_agree_with_reference(micro: DuckDBWarehouse, seed: int) -> None:
    cfg = load_config()
    windows = TimeWindows.from_config(cfg, AS_OF)
    tables = run_exports(micro, cfg, windows)
    scores = gnn_like_scores(tables, seed)
    apply_rules.write_scores(micro, cfg, "gnn", scores)
    for day in (CUTOFF, AS_OF):
        got = apply_rules.ranked_lists(micro, cfg, windows, "gnn", day, test_users_only=False)
        _same_ranked(got, python_scores(tables, cfg, scores, day))
    lists = got.groupby("email_lower")["sku"].agg(list).to_dict()
    assert lists["u1@x.com"] == ["A3", "T2", "100B"]  # own rows only; 100G a variant of 100B
    assert lists["u6@x.com"] == ["A1"]  # 100R bought; HTTP not eligible


def test_banned_products_reach_neither_arm(micro: DuckDBWarehouse) -> None:
    """NaN/infinite price, refurbished, http image (and the other static rules) keep a product
    out of both arms although it has the highest popularity and the highest GNN score."""
    cfg = load_config()
    windows = TimeWindows.from_config(cfg, AS_OF)
    tables = run_exports(micro, cfg, windows)
    products = tables["product_nodes"].set_index("sku")
    assert pd.isna(products.loc["NAN", "price"]) and pd.isna(products.loc["INF", "price"])
    assert not products.loc[sorted(BANNED), "eligible"].any()
    apply_rules.write_scores(micro, cfg, "gnn", gnn_like_scores(tables, 0))
    for arm in ("sql", "gnn"):
        if arm == "sql":
            build_sql_scores(micro, cfg, windows)
        staged = apply_rules.build_recommendations(micro, cfg, windows, arm, AS_OF)
        recs = apply_rules.read_recommendations(micro, staged)
        slots = set(recs[[f"rec_part_{i}" for i in range(1, 5)]].stack().dropna())
        ranked = apply_rules.ranked_lists(micro, cfg, windows, arm, CUTOFF,
                                          test_users_only=False)
        assert len(recs) >= 5 and slots and not slots & BANNED, (arm, slots & BANNED)
        assert not set(ranked["sku"]) & BANNED
        prices = recs[[f"rec{i}_price" for i in range(1, 5)]].stack().dropna()
        assert (prices >= 50).all() and np.isfinite(prices).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, None])
def test_non_finite_scores_are_named_before_any_rule(micro: DuckDBWarehouse, bad) -> None:
    cfg = load_config()
    scores = pd.DataFrame({"vehicle_id": ["1969|CHEVROLET|CAMARO"] * 2, "email_lower": None,
                           "sku": ["A1", "A2"], "score": [1.0, bad]})
    with pytest.raises(apply_rules.ScoreTableError, match="arm 'gnn'"):
        apply_rules.write_scores(micro, cfg, "gnn", scores)
