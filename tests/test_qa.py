"""Each injected fault makes exactly its QA check fail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from holley_gnn_assets.config.settings import TimeWindows, load_config
from holley_gnn_assets.quality.qa_gates import run_qa
from holley_gnn_assets.warehouse.base import WarehouseError
from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS
from tests.micro_warehouse import build_micro_warehouse

SCORING = dt.date(2026, 3, 1)
AS_OF = dt.date(2026, 3, 31)
STAGING = "temp_holley_gnn_staging"
CHECKS = {
    "users_with_recs",
    "duplicate_skus",
    "excluded_products",
    "price_floor",
    "https_images",
    "score_order",
    "part_type_cap",
    "purchased_recently",
}
PRODUCTS = [("P1", "A"), ("P2", "A"), ("P3", "B"), ("P4", "C"), ("P5", "D"), ("P6", "E"),
            ("P7", "F"), ("P8", "A"), ("123B", "G"), ("123R", "H"), ("REFX", "R"),
            ("SVCX", "Gift Card")]
ORDERS = [("u1@x.com", "P1", "2025-01-01"), ("u2@x.com", "P5", "2026-03-05")]


def _warehouse(path: Path, orders: list[tuple[str, str, str]]) -> DuckDBWarehouse:
    """Items, a refurbished tag, users u1-u3 with a vehicle (u4 without), the given orders."""
    vehicles = {"V1": ("1969", "Chevrolet", "Camaro"), "V2": ("1970", "Ford", "Mustang")}
    users = [("u1@x.com", "V1"), ("u2@x.com", "V1"), ("u3@x.com", "V2"), ("u4@x.com", None)]
    tables = {
        "import_items": [{"sku": s, "PartType": pt, "price": 100.0, "title": s,
                          "image_url": f"https://img/{s}"} for s, pt in PRODUCTS],
        "import_items_tags": [{"sku": "REFX", "tag": "Refurbished"}],
        "vehicle_product_fitment_data": [
            {"sku": s, "year": y, "make": mk, "model": md}
            for s, _ in PRODUCTS for (y, mk, md) in vehicles.values()],
        "ingestion_unified_attributes_schema_incremental": [
            {"user_id": e, "email": e, "updated_at": "2025-01-01",
             **dict(zip(("v1_year", "v1_make", "v1_model"),
                        vehicles[v] if v else ("1800", "X", "Y"), strict=True))}
            for e, v in users],
        "import_orders": [{"order_id": f"o{i}", "email": e, "sku": s, "quantity": 1,
                           "order_date": d, "unit_price": 1.0}
                          for i, (e, s, d) in enumerate(orders)],
    }
    return DuckDBWarehouse(build_micro_warehouse(path, tables))


def _run(path: Path, recs: pd.DataFrame, orders=ORDERS):
    wh = _warehouse(path / "wh.duckdb", list(orders))
    wh.load_table(recs, STAGING, "recs_test")
    cfg = load_config()
    return run_qa(wh, cfg, TimeWindows.from_config(cfg, AS_OF), f"{STAGING}.recs_test", SCORING)


def _failed(path: Path, recs: pd.DataFrame, orders=ORDERS) -> set[str]:
    res = _run(path, recs, orders)
    assert {r.name for r in res} == CHECKS
    for r in res:
        for row in r.sample_rows:
            assert "email_lower" not in row and not any("@" in str(v) for v in row.values())
    return {r.name for r in res if not r.passed}


def _row(email: str, skus: list[str | None], scores: list[float | None]) -> dict:
    row: dict = {"email_lower": email, "year": "1969", "make": "CHEVROLET", "model": "CAMARO"}
    for i, (s, sc) in enumerate(zip(skus, scores, strict=True), start=1):
        row[f"rec_part_{i}"] = s
        row[f"rec{i}_price"] = None if s is None else 100.0
        row[f"rec{i}_score"] = sc
        row[f"rec{i}_image"] = None if s is None else f"https://img/{s}"
    return row


def _good() -> pd.DataFrame:
    rows = [
        _row("u1@x.com", ["P1", "P2", "P3", "P4"], [4.0, 3.0, 2.0, 1.0]),
        _row("u2@x.com", ["P5", "P6", None, None], [2.0, 2.0, None, None]),
        _row("u3@x.com", ["P1", "P3", "P5", "P7"], [0.9, 0.5, 0.5, 0.1]),
    ]
    return pd.DataFrame(rows)[OUTPUT_COLUMNS]


def test_good_frame_passes(tmp_path: Path) -> None:
    assert _failed(tmp_path, _good()) == set()


def _set(email: str, **cols: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def apply(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for col, val in cols.items():
            df.loc[df["email_lower"] == email, col] = val
        return df

    return apply


FAULTS = {
    "excluded_products": _set(
        "u2@x.com",
        rec_part_3="REFX",
        rec3_price=100.0,
        rec3_score=1.0,
        rec3_image="https://img/REFX",
    ),
    "price_floor": _set("u1@x.com", rec4_price=10.0),
    "nan_price": _set("u1@x.com", rec4_price=float("nan")),
    "https_images": _set("u1@x.com", rec4_image="http://img/P4"),
    "duplicate_skus": _set(
        "u2@x.com",
        rec_part_3="123B",
        rec3_price=100.0,
        rec3_score=1.0,
        rec3_image="https://img/123B",
        rec_part_4="123R",
        rec4_price=100.0,
        rec4_score=1.0,
        rec4_image="https://img/123R",
    ),
    "score_order": _set("u3@x.com", rec3_score=0.7),
    "part_type_cap": _set("u1@x.com", rec_part_3="P8", rec3_image="https://img/P8"),
}


@pytest.mark.parametrize("check", sorted(FAULTS))
def test_fault_fails_exactly_its_check(tmp_path: Path, check: str) -> None:
    expected = "price_floor" if check == "nan_price" else check
    assert _failed(tmp_path, FAULTS[check](_good())) == {expected}


def test_exact_duplicate_and_null_gap(tmp_path: Path) -> None:
    dup = _set(
        "u2@x.com", rec_part_3="P5", rec3_price=100.0, rec3_score=1.0, rec3_image="https://img/P5"
    )(_good())
    assert _failed(tmp_path, dup) == {"duplicate_skus"}
    gap = _set(
        "u2@x.com",
        rec_part_2=None,
        rec2_price=None,
        rec2_score=None,
        rec2_image=None,
        rec_part_3="P6",
        rec3_price=100.0,
        rec3_score=1.0,
        rec3_image="https://img/P6",
    )(_good())
    assert _failed(tmp_path, gap) == {"score_order"}


def test_purchased_and_too_few_users(tmp_path: Path) -> None:
    bought = [*ORDERS, ("u3@x.com", "P7", "2026-01-30")]
    assert _failed(tmp_path, _good(), bought) == {"purchased_recently"}
    res = _run(tmp_path, _good().iloc[:2])
    bad = [r for r in res if not r.passed]
    assert [r.name for r in bad] == ["users_with_recs"]
    assert bad[0].sample_rows[0] == {
        "n_users_with_recs": 2,
        "required": 3,
        "n_users_with_vehicle": 3,
    }
    # the failing count is the users left without a row, not the users with one
    assert (bad[0].count, bad[0].threshold, bad[0].population) == (1, 0, 3)
    assert bad[0].summary() == ("FAILED users_with_recs: 1 users with a vehicle and no "
                                "recommendation (at most 0 allowed) of 3 users with a vehicle")


def test_gate_numbers_count_failing_slots_out_of_filled_ones(tmp_path: Path) -> None:
    """Two of the ten filled slots carry an http image: failing 2, threshold 0, of 10."""
    recs = _set("u1@x.com", rec4_image="http://img/P4", rec3_image="http://img/P3")(_good())
    res = {r.name: r for r in _run(tmp_path, recs)}
    https = res["https_images"]
    assert (https.passed, https.count, https.threshold, https.population) == (False, 2, 0, 10)
    users = res["users_with_recs"]
    assert (users.passed, users.count, users.threshold, users.population) == (True, 0, 0, 3)
    assert res["score_order"].population == 3  # users (rows), not slots


def test_missing_table_is_named(tmp_path: Path) -> None:
    wh = _warehouse(tmp_path / "wh.duckdb", ORDERS)
    cfg = load_config()
    with pytest.raises(WarehouseError, match=f"QA checks on {STAGING}.nothing"):
        run_qa(wh, cfg, TimeWindows.from_config(cfg, AS_OF), f"{STAGING}.nothing", SCORING)
