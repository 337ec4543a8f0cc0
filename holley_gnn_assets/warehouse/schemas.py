"""Column contracts of the intermediate tables (the Parquet assets) and the output table.

Every stage reads and writes exactly these columns; tests check them. Keys:
- user key: ``email_lower`` = LOWER(TRIM(email)) of the user's latest attribute row
- vehicle key: ``vehicle_id`` = ``YEAR|MAKE|MODEL`` (four-digit year; make/model trimmed,
  inner whitespace collapsed to one space, upper-cased), only vehicles present in fitment
- product key: ``sku`` (trimmed)
Times: cutoff C = as_of - 30 days. Training facts have ts < C; test facts C <= ts < as_of.
"""

from __future__ import annotations

USER_NODES = {
    "email_lower": "string",     # unique, not null
    "vehicle_id": "string",      # null when the user's YMM matches no fitment vehicle
    "year": "string", "make": "string", "model": "string",  # normalised; null with vehicle_id
    "tier": "string",            # cold | warm | hot, from pre-cutoff events (clicks count as views)
    "n_views": "int64", "n_carts": "int64", "n_orders": "int64",  # pre-cutoff event counts
}
PRODUCT_NODES = {
    "sku": "string",             # unique, not null (duplicates in import_items resolved)
    "base_sku": "string",        # sku with one trailing colour letter stripped ([0-9][BRGP]$)
    "part_type": "string",
    "title": "string",
    "price": "float64",          # null when missing or <= 0
    "image_url": "string",
    "is_refurbished": "bool", "is_service": "bool", "is_commodity": "bool",
    "eligible": "bool",          # passes static rules: price, image, refurbished/service/commodity
    "order_count": "int64",      # distinct orders before the cutoff (the SQL baseline's popularity)
    "log_popularity": "float64", # ln(1 + order_count)
    "fitment_breadth": "int64",  # number of vehicles it fits
}
PRODUCT_ORDER_DAYS = {  # distinct orders per (sku, day before the cutoff): recent demand
    "sku": "string", "age_days": "int64",  # 0 = the last 24 hours before the cutoff
    "n_orders": "int64",
}
VEHICLE_NODES = {
    "vehicle_id": "string", "year": "string", "make": "string", "model": "string",
    "user_count": "int64", "product_count": "int64",
}
USER_PRODUCT_EDGES = {   # interaction edges, interaction_start <= ts < cutoff
    "email_lower": "string", "sku": "string",
    "weight": "float64",          # sum of event weight * decay
    "n_events": "int64",
    "max_event_weight": "float64",  # strongest event type seen (1 view, 3 cart, 5 order)
    "last_ts": "timestamp",
}
USER_VEHICLE_EDGES = {"email_lower": "string", "vehicle_id": "string", "weight": "float64"}
PRODUCT_VEHICLE_EDGES = {"sku": "string", "vehicle_id": "string", "weight": "float64"}
PRODUCT_PRODUCT_EDGES = {  # stored once with sku_a < sku_b; graph adds both directions
    "sku_a": "string", "sku_b": "string", "n_users": "int64",
    "weight": "float64",  # ln(1 + sum of 1/(lines - 1) per user) (export_edges.sql)
}
TEST_CLICKS = {  # CLICKED with cutoff <= ts < as_of, users with a known email
    "email_lower": "string", "sku": "string", "ts": "timestamp",
}
TEST_EVENTS = {  # second test set: site product events in the test window
    "email_lower": "string", "sku": "string", "event_name": "string", "ts": "timestamp",
}
USER_PURCHASES = {  # orders for purchase exclusion: (user, sku) with the last order date
    "email_lower": "string", "sku": "string", "last_order_ts": "timestamp",
}

SCORES = {  # an arm's score table (sql/rules/recommend.sql): a user's own row, or a vehicle's
    "vehicle_id": "string",      # the vehicle a row scores for (null on a user's own rows)
    "email_lower": "string",     # null on vehicle rows
    "sku": "string", "score": "float64",
}

TABLE_SCHEMAS: dict[str, dict[str, str]] = {
    "user_nodes": USER_NODES,
    "product_nodes": PRODUCT_NODES,
    "vehicle_nodes": VEHICLE_NODES,
    "product_order_days": PRODUCT_ORDER_DAYS,
    "user_product_edges": USER_PRODUCT_EDGES,
    "user_vehicle_edges": USER_VEHICLE_EDGES,
    "product_vehicle_edges": PRODUCT_VEHICLE_EDGES,
    "product_product_edges": PRODUCT_PRODUCT_EDGES,
    "user_purchases": USER_PURCHASES,
    "test_clicks": TEST_CLICKS,
    "test_events": TEST_EVENTS,
}
# the tables the graph is built from (test sets and purchases never reach training)
GRAPH_TABLES = (
    "user_nodes", "product_nodes", "vehicle_nodes", "user_product_edges",
    "user_vehicle_edges", "product_vehicle_edges", "product_product_edges",
)

OUTPUT_COLUMNS = ["email_lower", "year", "make", "model"] + [
    col
    for i in range(1, 5)
    for col in (f"rec_part_{i}", f"rec{i}_price", f"rec{i}_score", f"rec{i}_image")
]
OUTPUT_TYPES: dict[str, str] = {
    col: "float64" if ("price" in col or "score" in col) else "string" for col in OUTPUT_COLUMNS
}
