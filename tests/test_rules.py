"""Known-answer tests of the Python rules engine on a hand-built catalogue."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from holley_gnn_assets.recommend import rules as R
from holley_gnn_assets.settings import load_config
from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS

SCORING = dt.date(2026, 3, 1)


def _products() -> pd.DataFrame:
    rows = [
        # sku, part_type, price, image, refurb, score(V1)
        ("A1", "X", 100.0, "https://i/a1", False),
        ("A2", "X", 100.0, "https://i/a2", False),
        ("A3", "X", 100.0, "https://i/a3", False),
        ("100B", "Y", 80.0, "https://i/b", False),
        ("100R", "Y", 80.0, "https://i/r", False),
        ("T2", "W", 60.0, "https://i/t2", False),
        ("T1", "Z", 60.0, "https://i/t1", False),
        ("CHEAP", "Q", 10.0, "https://i/c", False),
        ("HTTP", "Q", 90.0, "http://i/h", False),
        ("REF", "Q", 90.0, "https://i/r", True),
        ("SVC", "installation service ", 90.0, "https://i/s", False),
        ("NOPRICE", "Q", None, "https://i/n", False),
    ]
    df = pd.DataFrame(rows, columns=["sku", "part_type", "price", "image_url", "is_refurbished"])
    return df


def _catalog(cfg: dict) -> R.ProductCatalog:
    return R.ProductCatalog(_products(), R.Rules.from_config(cfg))


@pytest.fixture()
def cfg() -> dict:
    return load_config()


def test_eligibility_and_base_sku(cfg: dict) -> None:
    rules = R.Rules.from_config(cfg)
    p = _products()
    ok = dict(zip(p["sku"], R.eligible_mask(p, rules), strict=True))
    assert [s for s, v in ok.items() if not v] == ["CHEAP", "HTTP", "REF", "SVC", "NOPRICE"]
    bases = R.base_sku(pd.Series(["100B", "100R", "100", "AB", "12P", "12PX"]), rules)
    assert bases.tolist() == ["100", "100", "100", "AB", "12", "12PX"]


def _group_cands() -> pd.DataFrame:
    v1 = {
        "A1": 10,
        "A2": 9,
        "A3": 8,
        "100B": 7,
        "100R": 7.5,
        "T2": 5,
        "T1": 5,
        "CHEAP": 99,
        "HTTP": 99,
        "REF": 99,
        "SVC": 99,
        "NOPRICE": 99,
    }
    v2 = {"A1": 1, "T1": 2, "CHEAP": 50}
    rows = [("V1", s, float(x)) for s, x in v1.items()] + [
        ("V2", s, float(x)) for s, x in v2.items()
    ]
    return pd.DataFrame(rows, columns=["vehicle_id", "sku", "score"])


def test_rank_order_dedup_cap_ties(cfg: dict) -> None:
    cat = _catalog(cfg)
    users = pd.DataFrame(
        {"email_lower": ["u1", "u2", "u3", "u4"], "vehicle_id": ["V1", "V1", "V1", "V2"]}
    )
    purch = pd.DataFrame(
        {
            "email_lower": ["u2", "u3", "u4"],
            "sku": ["A1", "A1", "CHEAP"],
            "last_order_ts": pd.to_datetime(["2026-02-01", "2025-01-01", "2026-02-01"], utc=True),
        }
    )
    window = R.purchases_in_window(purch, SCORING, 365)
    assert window["email_lower"].tolist() == ["u2", "u4"]  # u3's order is 424 days old
    ranked = R.rank_groups_then_users(_group_cands(), users, cat, depth=20, purchases=window)
    lists = ranked.groupby("email_lower")["sku"].agg(list).to_dict()
    assert lists["u1"] == ["A1", "A2", "100R", "T1", "T2"]
    assert lists["u3"] == lists["u1"]
    assert lists["u2"] == ["A2", "A3", "100R", "T1", "T2"]  # A3 enters once A1 is excluded
    assert lists["u4"] == ["T1", "A1"]
    r1 = ranked[ranked["email_lower"] == "u1"]
    assert r1["rank"].tolist() == [1, 2, 3, 4, 5]
    assert np.all(np.diff(r1["score"].to_numpy()) <= 0)
    # depth cut
    short = R.rank_groups_then_users(_group_cands(), users, cat, depth=2, purchases=window)
    assert short.groupby("email_lower").size().max() == 2


def test_user_level_equals_group_path(cfg: dict) -> None:
    """The group shortcut gives what ranking every user on its own gives."""
    cat = _catalog(cfg)
    rng = np.random.default_rng(0)
    users = pd.DataFrame(
        {"email_lower": [f"u{i}" for i in range(40)], "vehicle_id": rng.choice(["V1", "V2"], 40)}
    )
    skus = _products()["sku"].to_numpy()
    purch = pd.DataFrame(
        {"email_lower": rng.choice(users["email_lower"], 60), "sku": rng.choice(skus, 60)}
    ).drop_duplicates()
    gc = _group_cands().assign(score=lambda d: rng.integers(0, 4, len(d)).astype(float))
    fast = R.rank_groups_then_users(gc, users, cat, depth=20, purchases=purch)
    per_user = users.merge(gc, on="vehicle_id")[["email_lower", "sku", "score"]]
    slow = R.rank_with_rules(per_user, cat, 20, key="email_lower", exclude=purch)
    slow = slow.sort_values(["email_lower", "rank"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(fast, slow[R.RANKED_COLUMNS], check_dtype=False)


def test_to_output_schema_null_tail(cfg: dict) -> None:
    cat = _catalog(cfg)
    users = pd.DataFrame(
        {
            "email_lower": ["u1", "u4", "u9"],
            "vehicle_id": ["V1", "V2", "V9"],
            "year": ["1969", "1970", "1971"],
            "make": ["CHEVROLET"] * 3,
            "model": ["CAMARO"] * 3,
        }
    )
    ranked = R.rank_groups_then_users(_group_cands(), users, cat, depth=20)
    out = R.to_output_schema(ranked, users, _products())
    assert list(out.columns) == OUTPUT_COLUMNS
    assert out["email_lower"].tolist() == ["u1", "u4"]  # u9's vehicle has no candidates
    u4 = out.iloc[1]
    assert u4["rec_part_1"] == "T1" and u4["rec_part_2"] == "A1"
    assert pd.isna(u4["rec_part_3"]) and pd.isna(u4["rec4_score"]) and pd.isna(u4["rec3_image"])
    u1 = out.iloc[0]
    assert [u1[f"rec_part_{i}"] for i in range(1, 5)] == ["A1", "A2", "100R", "T1"]
    assert u1["rec3_price"] == 80.0 and u1["rec3_image"] == "https://i/r"
    assert u1["rec1_score"] >= u1["rec2_score"] >= u1["rec3_score"] >= u1["rec4_score"]


def test_bad_input_is_named(cfg: dict) -> None:
    rules = R.Rules.from_config(cfg)
    with pytest.raises(ValueError, match="duplicate sku"):
        R.ProductCatalog(pd.concat([_products(), _products().head(1)]), rules)
    with pytest.raises(ValueError, match="lacks column"):
        R.rank_with_rules(pd.DataFrame({"key": [1], "sku": ["A1"]}), _catalog(cfg), 4)
    with pytest.raises(ValueError, match="NaN"):
        R.rank_with_rules(
            pd.DataFrame({"key": [1], "sku": ["A1"], "score": [np.nan]}), _catalog(cfg), 4
        )
    with pytest.raises(ValueError, match="'rules'"):
        R.Rules.from_config({})
