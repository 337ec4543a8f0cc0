-- export_nodes.sql (BigQuery dialect): the three node tables of the graph (spec §2-§3) and
-- one row of input-quality counts. Columns are exactly holley_gnn_assets/core/schemas.py.
-- Rules (user key, vehicle normalisation, product de-duplication and flags, training events)
-- live in gnn/_shared_ctes.sql and are documented there.
-- Placeholders: company, data (dataset refs), cutoff, interaction_start (TIMESTAMP, 00:00 UTC),
-- w_view, w_cart, w_order, w_click, min_price, image_prefix, variant_regex, excluded_tags,
-- service_part_types, commodity_part_types.
-- include: gnn/_shared_ctes.sql

-- name: user_nodes
-- One row per email_lower (latest attribute row). tier from the pre-cutoff training events
-- (interaction_start <= ts < cutoff, product skus only): hot = any cart or order event,
-- warm = views/email clicks only, cold = none. n_views counts clicks as views.
WITH activity AS (
  SELECT
    email_lower,
    COUNTIF(kind = 'view') AS n_views,
    COUNTIF(kind = 'cart') AS n_carts,
    COUNTIF(kind = 'order') AS n_orders
  FROM train_events
  GROUP BY email_lower
)
SELECT
  u.email_lower, u.vehicle_id, u.year, u.make, u.model,
  CASE
    WHEN COALESCE(a.n_carts, 0) + COALESCE(a.n_orders, 0) > 0 THEN 'hot'
    WHEN COALESCE(a.n_views, 0) > 0 THEN 'warm'
    ELSE 'cold'
  END AS tier,
  COALESCE(a.n_views, 0) AS n_views,
  COALESCE(a.n_carts, 0) AS n_carts,
  COALESCE(a.n_orders, 0) AS n_orders
FROM users AS u
LEFT JOIN activity AS a ON a.email_lower = u.email_lower;

-- name: product_nodes
-- One row per trimmed sku of import_items. order_count = distinct orders before the cutoff;
-- fitment_breadth = distinct normalised vehicles the sku fits.
SELECT
  sku, base_sku, part_type, title, price, image_url,
  is_refurbished, is_service, is_commodity, eligible,
  order_count, log_popularity, fitment_breadth
FROM products;

-- name: product_order_days
-- Distinct orders per product-node sku and day before the cutoff (the order_count of
-- product_nodes, split by age): age_days = whole days between the order and the cutoff
-- (0 = the last 24 hours before it). Recent demand (graph/recent_demand.py) reads it.
SELECT
  o.sku,
  CAST(FLOOR(TIMESTAMP_DIFF({{ cutoff }}, o.order_date, MICROSECOND) / 86400000000.0) AS INT64)
    AS age_days,
  COUNT(DISTINCT o.order_id) AS n_orders
FROM order_rows AS o
JOIN product_skus AS p ON p.sku = o.sku
WHERE o.order_date < {{ cutoff }}
GROUP BY o.sku, age_days;

-- name: vehicle_nodes
-- Every normalised fitment vehicle. user_count = user nodes on it; product_count = distinct
-- product-node skus that fit it.
WITH vehicle_users AS (
  SELECT vehicle_id, COUNT(*) AS user_count
  FROM users
  WHERE vehicle_id IS NOT NULL
  GROUP BY vehicle_id
),
vehicle_products AS (
  SELECT f.vehicle_id, COUNT(DISTINCT f.sku) AS product_count
  FROM fitment AS f
  JOIN product_skus AS p ON p.sku = f.sku
  GROUP BY f.vehicle_id
)
SELECT
  v.vehicle_id, v.year, v.make, v.model,
  COALESCE(vu.user_count, 0) AS user_count,
  COALESCE(vp.product_count, 0) AS product_count
FROM vehicles AS v
LEFT JOIN vehicle_users AS vu ON vu.vehicle_id = v.vehicle_id
LEFT JOIN vehicle_products AS vp ON vp.vehicle_id = v.vehicle_id;

-- name: input_quality
-- One row of counts of bad input that the rules dropped or handled (for run metadata).
-- (COUNT(*) ... WHERE, not COUNTIF: DuckDB's COUNT_IF over no rows is NULL, BigQuery's is 0.)
SELECT
  (SELECT COUNT(*) FROM {{ company }}.ingestion_unified_attributes_schema_incremental)
    AS attribute_rows,
  (SELECT COUNT(*) FROM {{ company }}.ingestion_unified_attributes_schema_incremental
    WHERE email IS NULL OR TRIM(email) = '') AS attribute_rows_null_email,
  (SELECT COUNT(*) FROM user_latest) AS users,
  (SELECT COUNT(*) FROM user_latest
    WHERE norm_year IS NULL OR NOT REGEXP_CONTAINS(norm_year, r'^[0-9]{4}$')) AS users_bad_year,
  (SELECT COUNT(*) FROM users WHERE vehicle_id IS NULL) AS users_no_vehicle,
  -- the user key stays the contract's LOWER(TRIM(email)) (docs/reliability.md): keys with an
  -- invisible character (zero-width space/joiners, word joiner, BOM, soft hyphen) or any other
  -- non-ASCII character (look-alike letters) are counted, not merged
  (SELECT COUNT(*) FROM user_latest
    WHERE REGEXP_CONTAINS(email_lower, r'[\x{200B}-\x{200D}\x{2060}\x{FEFF}\x{00AD}]'))
    AS users_email_invisible_chars,
  (SELECT COUNT(*) FROM user_latest WHERE REGEXP_CONTAINS(email_lower, r'[^\x{0000}-\x{007F}]'))
    AS users_email_non_ascii,
  (SELECT COUNT(*) FROM {{ data }}.import_items) AS item_rows,
  (SELECT COUNT(*) FROM {{ data }}.import_items
    WHERE sku IS NULL OR TRIM(CAST(sku AS STRING)) = '') AS item_rows_empty_sku,
  (SELECT COUNT(*) FROM item_rows) - (SELECT COUNT(*) FROM items) AS item_rows_duplicate_sku,
  (SELECT COUNT(*) FROM items WHERE price IS NULL OR price <= 0)
    AS products_price_missing_or_nonpositive,
  (SELECT COUNT(*) FROM item_rows WHERE IS_NAN(raw_price) OR IS_INF(raw_price))
    AS item_rows_price_nan_or_infinite,
  (SELECT COUNT(*) FROM items WHERE NOT COALESCE(STARTS_WITH(image_url, {{ image_prefix }}), FALSE))
    AS products_image_not_prefix,
  (SELECT COUNT(*) FROM item_tags AS t LEFT JOIN items AS i ON i.sku = t.sku
    WHERE i.sku IS NULL) AS tagged_skus_not_in_items,
  (SELECT COUNT(*) FROM {{ data }}.vehicle_product_fitment_data
    WHERE NOT COALESCE(REGEXP_CONTAINS(TRIM(CAST(year AS STRING)), r'^[0-9]{4}$'), FALSE))
    AS fitment_rows_bad_year,
  (SELECT COUNT(*) FROM (SELECT DISTINCT sku FROM fitment) AS f
    LEFT JOIN items AS i ON i.sku = f.sku WHERE i.sku IS NULL) AS fitment_skus_not_in_items,
  (SELECT COUNT(*) FROM {{ company }}.ingestion_unified_schema_incremental AS e
    LEFT JOIN uid_email AS m ON m.user_id = CAST(e.user_id AS STRING)
    WHERE e.event_name IN ('product_viewed', 'added_to_cart', 'order_placed')
      AND m.user_id IS NULL) AS product_events_unknown_user,
  (SELECT COUNT(*) FROM {{ data }}.import_orders
    WHERE email IS NULL OR TRIM(email) = '') AS order_rows_null_email,
  -- values that do not parse: excluded (NULL), counted per table and column
  (SELECT COUNT(*) FROM {{ data }}.import_items
    WHERE price IS NOT NULL AND SAFE_CAST(price AS FLOAT64) IS NULL) AS import_items_price_unparseable,
  (SELECT COUNT(*) FROM {{ company }}.ingestion_unified_attributes_schema_incremental
    WHERE updated_at IS NOT NULL AND SAFE_CAST(updated_at AS TIMESTAMP) IS NULL)
    AS attributes_updated_at_unparseable,
  (SELECT COUNT(*) FROM {{ company }}.ingestion_unified_schema_incremental
    WHERE event_timestamp IS NOT NULL AND SAFE_CAST(event_timestamp AS TIMESTAMP) IS NULL)
    AS events_event_timestamp_unparseable,
  (SELECT COUNT(*) FROM {{ company }}.treatment_interaction
    WHERE interaction_timestamp IS NOT NULL
      AND SAFE_CAST(interaction_timestamp AS TIMESTAMP) IS NULL)
    AS treatment_interaction_timestamp_unparseable,
  (SELECT COUNT(*) FROM {{ data }}.import_orders
    WHERE order_date IS NOT NULL AND SAFE_CAST(order_date AS TIMESTAMP) IS NULL)
    AS import_orders_order_date_unparseable,
  -- facts dated at or after the as-of date: never used (training ends at C, tests at T)
  (SELECT COUNT(*) FROM {{ company }}.ingestion_unified_schema_incremental
    WHERE SAFE_CAST(event_timestamp AS TIMESTAMP) >= {{ as_of }}) AS future_dated_events,
  (SELECT COUNT(*) FROM {{ company }}.treatment_interaction
    WHERE SAFE_CAST(interaction_timestamp AS TIMESTAMP) >= {{ as_of }}) AS future_dated_clicks,
  (SELECT COUNT(*) FROM order_rows WHERE order_date >= {{ as_of }}) AS future_dated_orders,
  -- vehicles none of whose fitting products is eligible: their users get no recommendations
  (SELECT COUNT(*) FROM vehicles AS v WHERE NOT EXISTS (
    SELECT 1 FROM fitment AS f JOIN products AS p ON p.sku = f.sku
    WHERE f.vehicle_id = v.vehicle_id AND p.eligible)) AS vehicles_without_eligible_products,
  (SELECT COUNT(*) FROM users AS u WHERE u.vehicle_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM fitment AS f JOIN products AS p ON p.sku = f.sku
    WHERE f.vehicle_id = u.vehicle_id AND p.eligible)) AS users_on_vehicles_without_eligible_products;
