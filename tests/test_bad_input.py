"""What the first real run would hit (issue 13): typed garbage, missing columns, future-dated
facts and vehicles without eligible products are counted or named, never a bare driver error."""

from __future__ import annotations

from pathlib import Path

import pytest

from holley_gnn_assets.config.settings import TimeWindows, load_config
from holley_gnn_assets.recommend import apply_rules
from holley_gnn_assets.recommend.sql_baseline import build_sql_scores
from holley_gnn_assets.warehouse.base import WarehouseError
from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
from holley_gnn_assets.warehouse.exports import contract_counts, run_exports
from tests.micro_warehouse import build_micro_warehouse
from tests.test_engine_agreement import AS_OF, _world


def _text_world(world: dict) -> dict:
    """import_items.price and three timestamps as text, with values that do not parse."""
    items = world["import_items"]
    for i, row in enumerate(items[:3]):
        row["price"] = "n/a" if i == 0 else ("" if i == 1 else "12,50")
    world["import_orders"].append({"order_id": "bad", "email": "u1@x.com", "sku": "A1",
                                   "quantity": 1, "order_date": "yesterday", "unit_price": 1.0})
    world["ingestion_unified_schema_incremental"] = [
        {"user_id": "1", "event_name": "product_viewed", "sku": "A1",
         "event_timestamp": "not a time"},
        {"user_id": "1", "event_name": "product_viewed", "sku": "A2",
         "event_timestamp": "2026-01-05 10:00:00"},
        {"user_id": "1", "event_name": "added_to_cart", "sku": "A2",
         "event_timestamp": "2027-01-01 00:00:00"},  # after the as-of date
    ]
    return world


TEXT_COLUMNS = {
    "import_items": {"price": "VARCHAR"},
    "import_orders": {"order_date": "VARCHAR"},
    "ingestion_unified_schema_incremental": {"event_timestamp": "VARCHAR"},
}


def test_text_columns_with_garbage_are_counted_and_excluded(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(build_micro_warehouse(tmp_path / "w.duckdb", _text_world(_world()),
                                               column_types=TEXT_COLUMNS))
    cfg = load_config()
    windows = TimeWindows.from_config(cfg, AS_OF)
    counts = contract_counts(wh, cfg, windows)
    assert counts["import_items_price_unparseable"] == 3  # 'n/a', '' and '12,50'
    assert counts["import_orders_order_date_unparseable"] == 1
    assert counts["events_event_timestamp_unparseable"] == 1
    assert counts["future_dated_events"] == 1
    tables = run_exports(wh, cfg, windows)
    products = tables["product_nodes"].set_index("sku")
    assert products.loc[["A1", "A2", "A3"], "price"].isna().all()
    assert not products.loc[["A1", "A2", "A3"], "eligible"].any()
    edges = tables["user_product_edges"]
    assert set(edges["sku"]) == {"A2"}  # the unparseable and the future event are not edges
    build_sql_scores(wh, cfg, windows)
    staged = apply_rules.build_recommendations(wh, cfg, windows, "sql", AS_OF)
    recs = apply_rules.read_recommendations(wh, staged)
    assert len(recs) >= 5
    assert not {"A1", "A2", "A3"} & set(recs[[f"rec_part_{i}" for i in range(1, 5)]]
                                        .stack().dropna())


def test_missing_column_is_named_by_every_sql_step(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(build_micro_warehouse(tmp_path / "w.duckdb", _world(),
                                               drop_columns={"import_items": ["image_url"]}))
    cfg = load_config()
    windows = TimeWindows.from_config(cfg, AS_OF)
    pattern = r"data_company_1950\.import_items has no column 'image_url'"
    with pytest.raises(WarehouseError, match=pattern):
        run_exports(wh, cfg, windows)
    with pytest.raises(WarehouseError, match=pattern):
        build_sql_scores(wh, cfg, windows)
    with pytest.raises(WarehouseError, match=pattern):
        apply_rules.build_recommendations(wh, cfg, windows, "sql", AS_OF)


def test_vehicles_without_eligible_products_and_their_users_are_counted(tmp_path: Path) -> None:
    world = _world()
    # V2 (1970 Ford Mustang) gets only ineligible products: its user u4 can get no row
    world["vehicle_product_fitment_data"] = [
        f for f in world["vehicle_product_fitment_data"]
        if f["year"] != "1970" or f["sku"] in {"CHEAP", "REF"}
    ]
    wh = DuckDBWarehouse(build_micro_warehouse(tmp_path / "w.duckdb", world))
    cfg = load_config()
    counts = contract_counts(wh, cfg, TimeWindows.from_config(cfg, AS_OF))
    assert counts["vehicles_without_eligible_products"] == 1
    assert counts["users_on_vehicles_without_eligible_products"] == 1


def test_driver_errors_name_the_statement(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(build_micro_warehouse(tmp_path / "w.duckdb", _world()))
    with pytest.raises(WarehouseError, match="statement broken") as err:
        wh.query_named({"broken": "SELECT CAST('x' AS INT64) AS n"}, {})
    assert "Conversion" in str(err.value)


def test_emails_with_invisible_or_look_alike_characters_are_counted(tmp_path: Path) -> None:
    """The key stays LOWER(TRIM(email)) (docs/reliability.md): an email with a zero-width space
    or a Cyrillic look-alike letter is another user, and each is counted in input_quality."""
    from holley_gnn_assets.warehouse.exports import export_file

    world = _world()
    attrs = world["ingestion_unified_attributes_schema_incremental"]
    base = {k: v for k, v in attrs[0].items() if k not in ("user_id", "email")}
    attrs += [{**base, "user_id": "zw", "email": "u1\u200b@x.com"},
              {**base, "user_id": "cy", "email": "u\u04301@x.com"}]  # Cyrillic a
    wh = DuckDBWarehouse(build_micro_warehouse(tmp_path / "w.duckdb", world))
    cfg = load_config()
    windows = TimeWindows.from_config(cfg, AS_OF)
    quality = export_file(wh, "gnn/export_nodes.sql", cfg, windows,
                          names=["input_quality"])["input_quality"].iloc[0]
    assert int(quality["users_email_invisible_chars"]) == 1
    assert int(quality["users_email_non_ascii"]) == 2  # the invisible one is non-ASCII too
