"""Each injected fault makes exactly its QA check fail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import pytest

from holley_gnn_assets.quality.qa_gates import run_qa
from holley_gnn_assets.settings import load_config
from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS

SCORING = dt.date(2026, 3, 1)
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


def _products() -> pd.DataFrame:
    rows = [
        ("P1", "A"),
        ("P2", "A"),
        ("P3", "B"),
        ("P4", "C"),
        ("P5", "D"),
        ("P6", "E"),
        ("P7", "F"),
        ("P8", "A"),
        ("123B", "G"),
        ("123R", "H"),
        ("REFX", "R"),
        ("SVCX", "Gift Card"),
    ]
    df = pd.DataFrame(rows, columns=["sku", "part_type"])
    df["price"] = 100.0
    df["image_url"] = "https://img/" + df["sku"]
    df["is_refurbished"] = df["sku"].eq("REFX")
    df["is_service"] = False
    df["is_commodity"] = False
    return df


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


def _users() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "email_lower": ["u1@x.com", "u2@x.com", "u3@x.com", "u4@x.com"],
            "vehicle_id": ["V1", "V1", "V2", None],
        }
    )


def _purchases() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "email_lower": ["u1@x.com", "u2@x.com"],
            "sku": ["P1", "P5"],
            "last_order_ts": pd.to_datetime(["2025-01-01", "2026-03-05"]),
        }
    )


def _failed(recs: pd.DataFrame, purchases: pd.DataFrame | None = None) -> set[str]:
    res = run_qa(
        recs,
        _products(),
        _purchases() if purchases is None else purchases,
        _users(),
        load_config(),
        SCORING,
    )
    assert {r.name for r in res} == CHECKS
    for r in res:
        for row in r.sample_rows:
            assert "email_lower" not in row and not any("@" in str(v) for v in row.values())
    return {r.name for r in res if not r.passed}


def test_good_frame_passes() -> None:
    assert _failed(_good()) == set()


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
def test_fault_fails_exactly_its_check(check: str) -> None:
    assert _failed(FAULTS[check](_good())) == {check}


def test_exact_duplicate_and_null_gap() -> None:
    dup = _set(
        "u2@x.com", rec_part_3="P5", rec3_price=100.0, rec3_score=1.0, rec3_image="https://img/P5"
    )(_good())
    assert _failed(dup) == {"duplicate_skus"}
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
    assert _failed(gap) == {"score_order"}


def test_purchased_and_too_few_users() -> None:
    bought = pd.concat(
        [
            _purchases(),
            pd.DataFrame(
                {
                    "email_lower": ["u3@x.com"],
                    "sku": ["P7"],
                    "last_order_ts": pd.to_datetime(["2026-01-30"]),
                }
            ),
        ],
        ignore_index=True,
    )
    assert _failed(_good(), bought) == {"purchased_recently"}
    res = run_qa(_good().iloc[:2], _products(), _purchases(), _users(), load_config(), SCORING)
    bad = [r for r in res if not r.passed]
    assert [r.name for r in bad] == ["users_with_recs"]
    assert bad[0].sample_rows[0] == {
        "n_users_with_recs": 2,
        "required": 3,
        "n_users_with_vehicle": 3,
    }


def test_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="rec4_image"):
        run_qa(
            _good().drop(columns="rec4_image"),
            _products(),
            _purchases(),
            _users(),
            load_config(),
            SCORING,
        )
