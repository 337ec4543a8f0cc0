"""Known-answer tests of the export SQL (sql/gnn/*.sql) on hand-built DuckDB warehouses."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from micro_warehouse import build_micro_warehouse

from holley_gnn_assets.config import settings as config_mod
from holley_gnn_assets.config.settings import TimeWindows, load_config
from holley_gnn_assets.warehouse import exports
from holley_gnn_assets.warehouse import sql as sql_runner
from holley_gnn_assets.warehouse.base import Warehouse, WarehouseError
from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
from holley_gnn_assets.warehouse.schemas import SCORES
from holley_gnn_assets.warehouse.sql import Ident, SqlRenderError

AS_OF = dt.date(2025, 12, 1)  # cutoff 2025-11-01, interaction_start 2025-09-01
CUTOFF = dt.datetime(2025, 11, 1)

ATTRS = "ingestion_unified_attributes_schema_incremental"
EVENTS = "ingestion_unified_schema_incremental"
CLICKS = "treatment_interaction"
FITMENT = "vehicle_product_fitment_data"
ITEMS = "import_items"
TAGS = "import_items_tags"
ORDERS = "import_orders"


def user(
    uid: str,
    email: str | None,
    year="1969",
    make="Chevrolet",
    model="Camaro",
    updated_at="2025-01-01",
) -> dict:
    return {
        "user_id": uid,
        "email": email,
        "v1_year": year,
        "v1_make": make,
        "v1_model": model,
        "updated_at": updated_at,
    }


def item(
    sku: str, price=100.0, image="https://img/x.jpg", part_type="Carburetor", title=None
) -> dict:
    return {
        "sku": sku,
        "PartType": part_type,
        "price": price,
        "image_url": image,
        "title": title or f"title {sku}",
    }


def event(uid: str, name: str, sku: str | None, ts) -> dict:
    return {"user_id": uid, "event_name": name, "sku": sku, "event_timestamp": str(ts)}


def click(uid: str, sku: str, ts, kind="CLICKED") -> dict:
    return {
        "user_id": uid,
        "treatment_id": "t1",
        "interaction_type": kind,
        "sku": sku,
        "interaction_timestamp": str(ts),
    }


def order(oid: str, email: str, sku: str, ts) -> dict:
    return {
        "order_id": oid,
        "email": email,
        "sku": sku,
        "quantity": 1,
        "order_date": str(ts),
        "unit_price": 10.0,
    }


FIT = [{"sku": s, "year": "1969", "make": "Chevrolet", "model": "Camaro"} for s in "ABC"]


def run(tmp_path: Path, tables: dict, overrides: dict | None = None, **kw) -> dict:
    """Build the warehouse, run every export, return the tables (plus input_quality)."""
    base = {FITMENT: FIT, ITEMS: [item(s) for s in "ABC"]}
    base.update(tables)
    wh = DuckDBWarehouse(build_micro_warehouse(tmp_path / "wh.duckdb", base, **kw))
    cfg = load_config(overrides=overrides)
    windows = TimeWindows.from_config(cfg, AS_OF)
    out = exports.run_exports(wh, cfg, windows)
    out["input_quality"] = pd.DataFrame([exports.contract_counts(wh, cfg, windows)])
    return out


def by(df: pd.DataFrame, *keys: str) -> dict:
    return {
        tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in df.to_dict("records")
    }


# ---- users -------------------------------------------------------------------------------


def test_latest_attribute_row_wins_and_emails_are_normalised(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        {
            ATTRS: [
                user("u1", " Foo@X.com ", "1969", "Chevrolet", "Camaro", "2025-03-01"),
                user("u2", "foo@x.com", "1970", "Ford", "Mustang", "2025-01-01"),
                user("u3", None, updated_at="2025-06-01"),
                user("u4", "   ", updated_at="2025-06-01"),
                user("u5", "bar@y.com", "1970", "Ford", "Mustang", "2025-05-01"),
                user("u5", "bar@y.com", "1969", "Chevrolet", "Camaro", "2025-04-01"),
            ]
        },
    )
    users = by(out["user_nodes"], "email_lower")
    assert sorted(users) == ["bar@y.com", "foo@x.com"]
    assert users["foo@x.com"]["vehicle_id"] == "1969|CHEVROLET|CAMARO"
    # bar's latest row is a Ford Mustang, which no fitment row has: no vehicle
    assert pd.isna(users["bar@y.com"]["vehicle_id"]) and pd.isna(users["bar@y.com"]["make"])
    q = out["input_quality"].iloc[0]
    assert q["attribute_rows_null_email"] == 2 and q["users"] == 2
    assert q["users_no_vehicle"] == 1


def test_events_map_through_the_user_ids_latest_row(tmp_path: Path) -> None:
    # u1 first had old@x.com, later new@x.com: its events belong to new@x.com
    out = run(
        tmp_path,
        {
            ATTRS: [
                user("u1", "old@x.com", updated_at="2025-01-01"),
                user("u1", "NEW@x.com", updated_at="2025-02-01"),
            ],
            EVENTS: [
                event("u1", "product_viewed", "A", "2025-10-01"),
                event("ghost", "product_viewed", "A", "2025-10-01"),
            ],
        },
    )
    edges = out["user_product_edges"]
    assert edges["email_lower"].tolist() == ["new@x.com"]
    assert out["input_quality"].iloc[0]["product_events_unknown_user"] == 1


# ---- vehicles ----------------------------------------------------------------------------


def test_vehicle_normalisation_and_garbage_years(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        {
            FITMENT: [
                {"sku": "A", "year": " 1969 ", "make": " chevrolet ", "model": "camaro   z28"},
                {"sku": "B", "year": "1969", "make": "CHEVROLET", "model": "Camaro\tZ28"},
                {"sku": "C", "year": "69", "make": "Chevrolet", "model": "Camaro"},
                {"sku": "C", "year": "19x9", "make": "Chevrolet", "model": "Camaro"},
                {"sku": "ZZ", "year": "1970", "make": "Ford", "model": "Mustang"},
            ],
            ATTRS: [
                user("u1", "a@x.com", "1969", "Chevrolet ", "  Camaro Z28"),
                user("u2", "b@x.com", "69", "Chevrolet", "Camaro"),
                user("u3", "c@x.com", None, "Chevrolet", "Camaro Z28"),
                user("u4", "d@x.com", "1970", "ford", "mustang"),
            ],
        },
    )
    vehicles = by(out["vehicle_nodes"], "vehicle_id")
    assert set(vehicles) == {"1969|CHEVROLET|CAMARO Z28", "1970|FORD|MUSTANG"}
    v = vehicles["1969|CHEVROLET|CAMARO Z28"]
    assert (v["year"], v["make"], v["model"]) == ("1969", "CHEVROLET", "CAMARO Z28")
    assert v["user_count"] == 1 and v["product_count"] == 2
    # ZZ is not in import_items: the vehicle exists (fitment) but has no product
    assert vehicles["1970|FORD|MUSTANG"]["product_count"] == 0
    assert vehicles["1970|FORD|MUSTANG"]["user_count"] == 1
    users = by(out["user_nodes"], "email_lower")
    assert users["a@x.com"]["vehicle_id"] == "1969|CHEVROLET|CAMARO Z28"
    assert pd.isna(users["b@x.com"]["vehicle_id"]) and pd.isna(users["c@x.com"]["vehicle_id"])
    assert pd.isna(users["b@x.com"]["year"])
    uv = out["user_vehicle_edges"]
    assert sorted(uv["email_lower"]) == ["a@x.com", "d@x.com"] and (uv["weight"] == 1.0).all()
    pv = out["product_vehicle_edges"]
    assert sorted(pv["sku"]) == ["A", "B"]  # C has only garbage years, ZZ is no product
    products = by(out["product_nodes"], "sku")
    assert [products[s]["fitment_breadth"] for s in "ABC"] == [1, 1, 0]
    q = out["input_quality"].iloc[0]
    assert q["fitment_rows_bad_year"] == 2 and q["users_bad_year"] == 2
    assert q["fitment_skus_not_in_items"] == 1


# ---- products ----------------------------------------------------------------------------


def test_duplicate_sku_resolved_deterministically(tmp_path: Path) -> None:
    rows = [
        item(" D ", price=-5.0, image="https://a.jpg", title="a"),
        item("D", price=120.0, image="http://b.jpg", title="b"),
        item("D", price=80.0, image="https://c.jpg", title="c"),
        item("D", price=90.0, image="https://d.jpg", title="d"),
        item("E", price=None, image=None, title="e1"),
        item("E", price=None, image=None, title="e0"),
    ]
    first = run(tmp_path / "1", {ITEMS: rows})["product_nodes"]
    second = run(tmp_path / "2", {ITEMS: rows[::-1]})["product_nodes"]
    pd.testing.assert_frame_equal(
        first.sort_values("sku").reset_index(drop=True),
        second.sort_values("sku").reset_index(drop=True),
    )
    products = by(first, "sku")
    assert sorted(products) == ["D", "E"]
    # positive price first, then https image, then title: row 'c'
    assert (products["D"]["title"], products["D"]["price"]) == ("c", 80.0)
    assert products["E"]["title"] == "e0"


def test_product_flags_popularity_and_eligibility(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        {
            ITEMS: [
                item("100B"),
                item("100X"),
                item("R1", part_type="Carburetor"),
                item("S1", part_type=" installation service "),
                item("K1", part_type="Fasteners"),
                item("P1", price=0.0),
                item("P2", price=49.99),
                item("P3", price=50.0),
                item("H1", image="http://x.jpg"),
                item("H2", image=""),
            ],
            TAGS: [
                {"sku": "R1", "tag": " REFURBISHED"},
                {"sku": "100B", "tag": "Clearance"},
                {"sku": "NOPE", "tag": "New"},
            ],
            ORDERS: [
                order("o1", "a@x.com", "100B", "2025-05-01"),
                order("o1", "a@x.com", "100B", "2025-05-01"),
                order("o2", "b@x.com", "100B", "2025-10-31 23:59:59"),
                order("o3", "b@x.com", "100B", CUTOFF),
            ],
        },
    )
    p = by(out["product_nodes"], "sku")
    assert p["100B"]["base_sku"] == "100" and p["100X"]["base_sku"] == "100X"
    assert p["100B"]["order_count"] == 2  # o1 (two rows) and o2; o3 is at the cutoff
    assert math.isclose(p["100B"]["log_popularity"], math.log(3))
    assert p["R1"]["is_refurbished"] and not p["100B"]["is_refurbished"]
    assert p["S1"]["is_service"] and p["K1"]["is_commodity"]
    assert pd.isna(p["P1"]["price"]) and p["P2"]["price"] == 49.99
    eligible = {s for s, r in p.items() if r["eligible"]}
    assert eligible == {"100B", "100X", "P3"}
    assert out["input_quality"].iloc[0]["tagged_skus_not_in_items"] == 1


# ---- interaction edges, tiers, windows ---------------------------------------------------


def test_edge_weight_and_decay_known_answer(tmp_path: Path) -> None:
    day = dt.timedelta(days=1)
    out = run(
        tmp_path,
        {
            ATTRS: [user("u1", "a@x.com")],
            EVENTS: [
                event("u1", "product_viewed", "A", CUTOFF - 90 * day),
                event("u1", "added_to_cart", "A", CUTOFF - 45 * day),
                event("u1", "page_viewed", "A", CUTOFF - 1 * day),
            ],
            CLICKS: [click("u1", "B", CUTOFF - 30 * day), click("u1", "B", CUTOFF - day, "VIEWED")],
        },
        overrides={"time": {"interaction_start": "2025-01-01"}},
    )
    e = by(out["user_product_edges"], "email_lower", "sku")
    a = e[("a@x.com", "A")]
    assert math.isclose(a["weight"], 1.0 * 0.5 + 3.0 * 0.5**0.5, rel_tol=1e-9)
    assert a["n_events"] == 2 and a["max_event_weight"] == 3.0
    assert a["last_ts"] == pd.Timestamp(CUTOFF - 45 * day)
    b = e[("a@x.com", "B")]
    assert math.isclose(b["weight"], 0.5 ** (30 / 90), rel_tol=1e-9)
    assert b["n_events"] == 1 and b["max_event_weight"] == 1.0


def test_decay_half_life_comes_from_config(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        {
            ATTRS: [user("u1", "a@x.com")],
            EVENTS: [event("u1", "order_placed", "A", CUTOFF - dt.timedelta(days=10))],
        },
        overrides={"time": {"decay_half_life_days": 10}, "event_weights": {"order_placed": 7}},
    )
    assert math.isclose(out["user_product_edges"]["weight"].iloc[0], 3.5, rel_tol=1e-9)


def test_window_boundaries(tmp_path: Path) -> None:
    sec = dt.timedelta(seconds=1)
    start = dt.datetime(2025, 9, 1)
    as_of = dt.datetime(2025, 12, 1)
    out = run(
        tmp_path,
        {
            ATTRS: [user("u1", "a@x.com")],
            CLICKS: [
                click("u1", "A", CUTOFF),
                click("u1", "B", CUTOFF - sec),
                click("u1", "C", as_of - sec),
                click("u1", "C", as_of),
                click("u1", "C", start),
                click("u1", "A", start - sec),
            ],
            EVENTS: [
                event("u1", "added_to_cart", "A", CUTOFF),
                event("u1", "product_viewed", "B", CUTOFF - sec),
            ],
        },
    )
    edges = by(out["user_product_edges"], "sku")
    assert sorted(edges) == ["B", "C"]
    assert edges["B"]["n_events"] == 2 and edges["C"]["n_events"] == 1  # C: start is inclusive
    tc = out["test_clicks"].sort_values("ts")
    assert tc["sku"].tolist() == ["A", "C"]
    assert tc["ts"].tolist() == [pd.Timestamp(CUTOFF), pd.Timestamp(as_of - sec)]
    te = out["test_events"]
    assert te[["sku", "event_name"]].values.tolist() == [["A", "added_to_cart"]]
    # the cart at the cutoff is a test fact: u1 is warm (views/clicks only) in training
    assert out["user_nodes"]["tier"].tolist() == ["warm"]


def test_tier_assignment(tmp_path: Path) -> None:
    ts = "2025-10-01"
    out = run(
        tmp_path,
        {
            ATTRS: [user(f"u{i}", f"u{i}@x.com") for i in range(6)],
            EVENTS: [
                event("u1", "product_viewed", "A", ts),
                event("u2", "product_viewed", "A", ts),
                event("u2", "added_to_cart", "B", ts),
                event("u3", "order_placed", "C", ts),
                event("u5", "added_to_cart", "NOT_A_PRODUCT", ts),
                event("u5", "email_opened", None, ts),
            ],
            CLICKS: [click("u4", "A", ts), click("u4", "A", ts)],
        },
    )
    users = by(out["user_nodes"], "email_lower")
    tiers = {e: r["tier"] for e, r in users.items()}
    assert tiers == {
        "u0@x.com": "cold",
        "u1@x.com": "warm",
        "u2@x.com": "hot",
        "u3@x.com": "hot",
        "u4@x.com": "warm",
        "u5@x.com": "cold",
    }
    u2 = users["u2@x.com"]
    assert (u2["n_views"], u2["n_carts"], u2["n_orders"]) == (1, 1, 0)
    assert users["u4@x.com"]["n_views"] == 2 and users["u3@x.com"]["n_orders"] == 1
    # every warm/hot user has an interaction edge and no cold user has one
    warm_hot = {e for e, t in tiers.items() if t != "cold"}
    assert set(out["user_product_edges"]["email_lower"]) == warm_hot


# ---- co-purchase and purchases -------------------------------------------------------------


def co_orders() -> list[dict]:
    return [
        order("o1", "a@x.com", "B", "2025-06-01"),
        order("o1", "a@x.com", "A", "2025-06-01"),
        order("o2", " A@X.com", "A", "2025-06-02"),
        order("o2", "a@x.com", "B", "2025-06-02"),
        order("o3", "b@x.com", "A", "2025-07-01"),
        order("o3", "b@x.com", "C", "2025-07-01"),
        order("o4", "c@x.com", "B", "2025-07-01"),
        order("o4", "c@x.com", "C", "2025-07-01"),
        order("o5", "d@x.com", "B", "2025-07-01"),
        order("o5", "d@x.com", "C", "2025-07-01"),
        order("o6", "e@x.com", "A", CUTOFF),
        order("o6", "e@x.com", "C", CUTOFF),
    ]


def test_user_purchases_window(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        {
            ATTRS: [user("u1", "a@x.com")],
            ORDERS: [
                order("o1", "A@x.com ", "A", "2024-11-01"),  # cutoff - 365 days: kept
                order("o2", "a@x.com", "B", "2024-10-31 23:59:59"),
                order("o3", "a@x.com", "A", "2025-11-30 12:00:00"),
                order("o4", "a@x.com", "C", "2025-12-01"),  # at as_of: out
                order("o5", "z@x.com", "C", "2025-06-01"),
            ],  # not a user node
        },
    )
    up = out["user_purchases"].sort_values("last_order_ts")
    # one row per side of the cutoff (2025-11-01): the evaluation (scoring date = cutoff)
    # still sees the pre-cutoff order of A although A was bought again in the test window
    assert up[["email_lower", "sku"]].values.tolist() == [["a@x.com", "A"], ["a@x.com", "A"]]
    assert up["last_order_ts"].tolist() == [pd.Timestamp("2024-11-01"),
                                            pd.Timestamp("2025-11-30 12:00:00")]


# ---- schemas, contract, files ---------------------------------------------------------------


def test_every_table_matches_its_schema_even_when_empty(tmp_path: Path) -> None:
    out = run(tmp_path, {})
    for name, schema in exports.TABLE_SCHEMAS.items():
        df = out[name]
        assert list(df.columns) == list(schema), name
        for col, kind in schema.items():
            want = {
                "string": "string",
                "int64": "int64",
                "float64": "float64",
                "bool": "bool",
                "timestamp": "datetime64[ns]",
            }[kind]
            assert str(df[col].dtype) == want, (name, col, df[col].dtype)


@pytest.mark.parametrize("drop", [{"drop_columns": {ITEMS: ["PartType"]}}, {"drop_tables": [TAGS]}])
def test_missing_column_or_table_is_named(tmp_path: Path, drop: dict) -> None:
    with pytest.raises(WarehouseError) as err:
        run(tmp_path, {}, **drop)
    msg = str(err.value)
    if "drop_columns" in drop:
        assert "data_company_1950.import_items" in msg and "'PartType'" in msg
    else:
        assert "data_company_1950.import_items_tags" in msg and "missing" in msg


def test_extra_columns_are_ignored(tmp_path: Path) -> None:
    out = run(tmp_path, {ITEMS: [dict(item("A"), colour="red")]})
    assert out["product_nodes"]["sku"].tolist() == ["A"]


def _sql_files() -> list[Path]:
    return sorted(Path(config_mod.SQL_DIR).rglob("*.sql"))


def _materialise_test_inputs(wh: DuckDBWarehouse, params: dict) -> None:
    """Write the pipeline tables that ``{"table": name}`` test-params ask for."""
    prefix = sql_runner.TEST_INPUTS_DATASET + "."
    wanted = {
        v.value[len(prefix) :]
        for v in params.values()
        if isinstance(v, Ident) and v.value.startswith(prefix)
    }
    if not wanted:
        return
    cfg = load_config()
    tables = exports.run_exports(wh, cfg, TimeWindows.from_config(cfg, AS_OF))
    recs = {
        "email_lower": ["a@x.com"],
        "year": ["1969"],
        "make": ["CHEVROLET"],
        "model": ["CAMARO"],
    }
    for i, sku in enumerate("ABC?", start=1):
        ok = sku != "?"
        recs.update(
            {
                f"rec_part_{i}": [sku if ok else None],
                f"rec{i}_price": [100.0 if ok else None],
                f"rec{i}_score": [float(5 - i) if ok else None],
                f"rec{i}_image": ["https://img/x.jpg" if ok else None],
            }
        )
    tables["recommendations"] = pd.DataFrame(recs)
    fit = tables["product_vehicle_edges"]
    tables["scores"] = fit.assign(email_lower=None, score=1.0)[list(SCORES)]
    for name in sorted(wanted):
        if name not in tables:
            raise AssertionError(f"test-params table {name!r} is not a pipeline table")
        df = tables[name]
        if name == "scores":
            wh.load_table(df, sql_runner.TEST_INPUTS_DATASET, name, SCORES)
            continue
        for col in df.columns:  # DuckDB cannot store pandas' string dtype in every version
            if str(df[col].dtype) == "string":
                df[col] = df[col].astype(object)
        with duckdb.connect(str(wh.path)) as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {sql_runner.TEST_INPUTS_DATASET}")
            con.register("_input", df)
            con.execute(f"CREATE OR REPLACE TABLE {prefix}{name} AS SELECT * FROM _input")


@pytest.mark.parametrize("path", _sql_files(), ids=lambda p: str(p.relative_to(config_mod.SQL_DIR)))
def test_every_sql_file_transpiles_and_runs_on_duckdb(tmp_path: Path, path: Path) -> None:
    """Generic: each named statement of each file under sql/ renders, transpiles and runs.

    Convention (see sql_runner): ``-- test-params: {json}`` supplies placeholders beyond
    sql_params (``{"table": "product_nodes"}`` gives a pipeline table); ``-- test-skip:
    reason`` skips the file.
    """
    raw = path.read_text()
    directives = sql_runner.header_directives(raw)
    if "test-skip" in directives:
        pytest.skip(directives["test-skip"])
    rel = path.relative_to(config_mod.SQL_DIR)
    statements = sql_runner.split_named(sql_runner.load_sql(rel))
    if not statements:
        pytest.skip("only shared CTEs, no statements")
    wh = DuckDBWarehouse(
        build_micro_warehouse(
            tmp_path / "wh.duckdb",
            {
                ATTRS: [user("u1", "a@x.com")],
                FITMENT: FIT,
                ITEMS: [item(s) for s in "ABC"],
                EVENTS: [event("u1", "product_viewed", "A", "2025-10-01")],
                CLICKS: [click("u1", "B", "2025-11-10")],
                ORDERS: [order("o1", "a@x.com", "A", "2025-06-01")],
            },
        )
    )
    cfg = load_config()
    params = sql_runner.sql_params(cfg, TimeWindows.from_config(cfg, AS_OF), wh.dataset_refs())
    params.update(sql_runner.file_test_params(raw))
    _materialise_test_inputs(wh, params)
    for name, sql in statements.items():
        df = wh.query_df(sql_runner.render(sql, params))
        assert isinstance(df, pd.DataFrame), name


# ---- renderer ----------------------------------------------------------------------------


def test_render_quotes_and_rejects_injection() -> None:
    sql = "SELECT {{ s }} AS s, {{ n }} AS n, {{ d }} AS d, {{ t }} AS t FROM {{ ds }}.x"
    out = sql_runner.render(
        sql,
        {
            "s": "it's \\ ok",
            "n": 2.5,
            "d": dt.date(2025, 1, 2),
            "t": dt.datetime(2025, 1, 2),
            "ds": Ident("auxia-gcp.c_1"),
        },
    )
    assert "DATE '2025-01-02'" in out and "TIMESTAMP '2025-01-02 00:00:00'" in out
    assert "`auxia-gcp`.c_1.x" in out
    import duckdb

    row = duckdb.sql(sql_runner.to_duckdb(out.replace(" FROM `auxia-gcp`.c_1.x", ""))).fetchone()
    assert row[0] == "it's \\ ok" and row[1] == 2.5
    for bad in [Ident("x; DROP TABLE y"), Ident("a.b.c.d"), float("nan"), object(), [1, 2]]:
        with pytest.raises(SqlRenderError):
            sql_runner.render("SELECT {{ v }}", {"v": bad})
    with pytest.raises(SqlRenderError, match="missing_one"):
        sql_runner.render("SELECT {{ missing_one }}", {})
    with pytest.raises(SqlRenderError, match="malformed"):
        sql_runner.render("SELECT {{ a b }}", {"a": 1})


def test_render_lists_keep_in_semantics() -> None:
    import duckdb

    for values, inside in [(["a", "b'c"], True), ([], False)]:
        sql = sql_runner.render(
            "SELECT {{ probe }} IN {{ v }}, 'zz' NOT IN {{ v }}", {"v": values, "probe": "b'c"}
        )
        assert duckdb.sql(sql_runner.to_duckdb(sql)).fetchone() == (inside, True)


def test_split_named_adds_only_needed_ctes() -> None:
    text = (
        "-- header\n-- cte: a\nSELECT 1 AS x\n-- cte: b\nSELECT x FROM a\n-- cte: c\nSELECT 3\n"
        "-- name: one\nSELECT * FROM b;\n-- name: two\nWITH own AS (SELECT 2 AS y)\n"
        "SELECT * FROM own;\n"
    )
    stmts = sql_runner.split_named(text)
    assert set(stmts) == {"one", "two"}
    assert stmts["one"].startswith("WITH a AS (") and "c AS" not in stmts["one"]
    assert stmts["two"].startswith("WITH own AS")
    import duckdb

    assert duckdb.sql(sql_runner.to_duckdb(stmts["one"])).fetchall() == [(1,)]
    with pytest.raises(SqlRenderError, match="twice"):
        sql_runner.split_named("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")
    with pytest.raises(SqlRenderError, match="before the first"):
        sql_runner.split_named("SELECT 0;\n-- name: a\nSELECT 1;")
    assert sql_runner.split_named("SELECT 1;") == {"main": "SELECT 1"}


def test_other_timestamp_types_of_an_extract_are_accepted(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        {
            ATTRS: [user("u1", "a@x.com")],
            CLICKS: [click("u1", "A", "2025-10-01"), click("u1", "B", CUTOFF)],
            ORDERS: [order("o1", "a@x.com", "A", "2025-06-01")],
        },
        column_types={
            CLICKS: {"interaction_timestamp": "TIMESTAMP_NS"},
            ORDERS: {"order_date": "TIMESTAMPTZ"},
        },
    )
    assert out["user_product_edges"]["sku"].tolist() == ["A"]
    assert out["test_clicks"]["ts"].tolist() == [pd.Timestamp(CUTOFF)]
    assert out["user_purchases"]["last_order_ts"].tolist() == [pd.Timestamp("2025-06-01")]


class _OneQueryAtATime(DuckDBWarehouse):
    """The same warehouse without the session path: each statement self-contained."""

    query_named = Warehouse.query_named


def test_session_path_and_self_contained_statements_agree(tmp_path: Path) -> None:
    ts = "2025-10-01"
    path = build_micro_warehouse(
        tmp_path / "wh.duckdb",
        {
            ATTRS: [user("u1", "a@x.com"), user("u2", "b@x.com", "1970", "Ford", "Mustang")],
            FITMENT: FIT,
            ITEMS: [item(s) for s in "ABC"] + [item("A", price=-1.0)],
            EVENTS: [event("u1", "added_to_cart", "A", ts), event("u2", "product_viewed", "B", ts)],
            CLICKS: [click("u1", "C", ts), click("u2", "A", "2025-11-20")],
            ORDERS: co_orders(),
        },
    )
    cfg = load_config(overrides={"co_purchase": {"min_users": 1}})
    windows = TimeWindows.from_config(cfg, AS_OF)
    fast = exports.run_exports(DuckDBWarehouse(path), cfg, windows)
    plain = exports.run_exports(_OneQueryAtATime(path), cfg, windows)
    assert sum(len(df) for df in fast.values()) > 15
    for name, df in fast.items():
        keys = list(df.columns)
        pd.testing.assert_frame_equal(
            df.sort_values(keys).reset_index(drop=True),
            plain[name].sort_values(keys).reset_index(drop=True),
            obj=name,
        )
