-- Shared definitions (BigQuery dialect) of the source-contract rules: the one place where the
-- user key, the vehicle key, product de-duplication, the static business rules and the
-- training-window events are defined. Files pull these in with `-- include: gnn/_shared_ctes.sql`;
-- sql_runner.split_named prepends to each named statement the `-- cte:` sections it uses.
--
-- Rules implemented here:
-- * user key: email_lower = LOWER(TRIM(email)); rows with a null/empty email are dropped first.
--   The latest attribute row per email_lower wins (updated_at DESC, ties: user_id DESC, then the
--   raw YMM fields DESC, so the choice is deterministic).
-- * events carry a user_id: it maps to the email of that user_id's latest attribute row that
--   has an email (same ordering). Unmapped user_ids are dropped (counted in input_quality).
-- * vehicle: year = TRIM(year) matching ^[0-9]{4}$; make/model = UPPER of the value with every
--   whitespace run collapsed to one space, then TRIM; vehicle_id = YEAR|MAKE|MODEL. Vehicles are
--   the normalised YMMs of fitment rows (any sku); a user's vehicle is null unless it is one.
-- * products: sku = TRIM(sku), empty skus dropped; duplicates resolved by ROW_NUMBER over the
--   total order (price > 0 first, image starting with image_prefix first, title, image_url,
--   part_type ASC NULLS LAST, price DESC NULLS LAST); rows equal on all these are identical.
--   price is null when missing, not a number (text that does not parse, NaN, infinite) or
--   <= 0: such a product is never eligible. Tags, service and commodity part types compare
--   LOWER(TRIM(...)) against the lower-cased config lists.
-- * test window (cutoff <= ts < as_of): CLICKED treatment interactions (test_click_rows) and
--   product_viewed/added_to_cart/order_placed site events (test_event_rows) on product skus;
--   test_window_users is every email_lower with either (the users evaluation ranks).
-- * training events: product_viewed/added_to_cart/order_placed site events and CLICKED
--   treatment interactions (weighted as a view) with interaction_start <= ts < cutoff, for skus
--   that are product nodes (so tiers and interaction edges see the same events).
-- * source timestamps are read through SAFE_CAST(... AS TIMESTAMP): a no-op on BigQuery; on DuckDB
--   it also accepts TIMESTAMP_NS/TIMESTAMPTZ columns of hand-made extracts (DuckDB refuses to
--   compare TIMESTAMP_NS with a timestamp literal) and text columns; a value that does not parse
--   (a price, a timestamp as text) becomes NULL, so its row drops out of every window, and is
--   counted per table and column in input_quality.

-- cte: attr_rows
SELECT
  CAST(user_id AS STRING) AS user_id,
  LOWER(TRIM(email)) AS email_lower,
  CAST(v1_year AS STRING) AS v1_year,
  CAST(v1_make AS STRING) AS v1_make,
  CAST(v1_model AS STRING) AS v1_model,
  SAFE_CAST(updated_at AS TIMESTAMP) AS updated_at
FROM {{ company }}.ingestion_unified_attributes_schema_incremental
WHERE email IS NOT NULL AND TRIM(email) != ''

-- cte: user_latest
-- the latest row is picked on the raw values; only the winners are normalised
SELECT
  email_lower,
  TRIM(v1_year) AS norm_year,
  NULLIF(UPPER(TRIM(REGEXP_REPLACE(v1_make, r'\s+', ' '))), '') AS norm_make,
  NULLIF(UPPER(TRIM(REGEXP_REPLACE(v1_model, r'\s+', ' '))), '') AS norm_model
FROM (
  SELECT
    email_lower, v1_year, v1_make, v1_model,
    ROW_NUMBER() OVER (
      PARTITION BY email_lower
      ORDER BY updated_at DESC NULLS LAST, user_id DESC NULLS LAST,
        v1_year DESC NULLS LAST, v1_make DESC NULLS LAST, v1_model DESC NULLS LAST
    ) AS rn
  FROM attr_rows
)
WHERE rn = 1

-- cte: uid_email
SELECT user_id, email_lower
FROM (
  SELECT
    user_id, email_lower,
    ROW_NUMBER() OVER (
      PARTITION BY user_id ORDER BY updated_at DESC NULLS LAST, email_lower DESC
    ) AS rn
  FROM attr_rows
  WHERE user_id IS NOT NULL
)
WHERE rn = 1

-- cte: fitment_vehicle_map
-- distinct raw fitment YMMs -> normalised vehicle (valid ones only); normalising the few
-- distinct raw values instead of every fitment row keeps this cheap
SELECT raw_year, raw_make, raw_model, year, make, model,
  CONCAT(year, '|', make, '|', model) AS vehicle_id
FROM (
  SELECT
    raw_year, raw_make, raw_model,
    TRIM(raw_year) AS year,
    UPPER(TRIM(REGEXP_REPLACE(raw_make, r'\s+', ' '))) AS make,
    UPPER(TRIM(REGEXP_REPLACE(raw_model, r'\s+', ' '))) AS model
  FROM (
    SELECT DISTINCT
      CAST(year AS STRING) AS raw_year,
      CAST(make AS STRING) AS raw_make,
      CAST(model AS STRING) AS raw_model
    FROM {{ data }}.vehicle_product_fitment_data
  )
)
WHERE REGEXP_CONTAINS(year, r'^[0-9]{4}$') AND make != '' AND model != ''

-- cte: vehicles
SELECT DISTINCT vehicle_id, year, make, model FROM fitment_vehicle_map

-- cte: fitment
-- distinct (sku, vehicle_id) pairs of fitment rows with a valid vehicle and a non-empty sku
SELECT DISTINCT f.sku, v.vehicle_id
FROM (
  SELECT
    TRIM(CAST(sku AS STRING)) AS sku,
    CAST(year AS STRING) AS raw_year,
    CAST(make AS STRING) AS raw_make,
    CAST(model AS STRING) AS raw_model
  FROM {{ data }}.vehicle_product_fitment_data
) AS f
JOIN fitment_vehicle_map AS v
  ON v.raw_year = f.raw_year AND v.raw_make = f.raw_make AND v.raw_model = f.raw_model
WHERE f.sku != ''

-- cte: users
SELECT u.email_lower, v.vehicle_id, v.year, v.make, v.model
FROM user_latest AS u
LEFT JOIN vehicles AS v
  ON v.year = u.norm_year AND v.make = u.norm_make AND v.model = u.norm_model

-- cte: item_rows
SELECT
  TRIM(CAST(sku AS STRING)) AS sku,
  NULLIF(TRIM(CAST(PartType AS STRING)), '') AS part_type,
  CAST(title AS STRING) AS title,
  SAFE_CAST(price AS FLOAT64) AS raw_price,
  -- NaN and infinite prices are no prices (DuckDB orders NaN above every number, so
  -- `price >= 50` would hold for it); they are counted in input_quality
  IF(IS_NAN(SAFE_CAST(price AS FLOAT64)) OR IS_INF(SAFE_CAST(price AS FLOAT64)), NULL,
    SAFE_CAST(price AS FLOAT64)) AS price,
  CAST(image_url AS STRING) AS image_url
FROM {{ data }}.import_items
WHERE sku IS NOT NULL AND TRIM(CAST(sku AS STRING)) != ''

-- cte: items
SELECT sku, part_type, title, price, image_url
FROM (
  SELECT
    sku, part_type, title, price, image_url,
    ROW_NUMBER() OVER (
      PARTITION BY sku
      ORDER BY
        CASE WHEN price > 0 THEN 0 ELSE 1 END,
        CASE WHEN STARTS_WITH(image_url, {{ image_prefix }}) THEN 0 ELSE 1 END,
        title ASC NULLS LAST, image_url ASC NULLS LAST, part_type ASC NULLS LAST,
        price DESC NULLS LAST
    ) AS rn
  FROM item_rows
)
WHERE rn = 1

-- cte: product_skus
SELECT sku FROM items

-- cte: item_tags
SELECT
  TRIM(CAST(sku AS STRING)) AS sku,
  COUNTIF(LOWER(TRIM(CAST(tag AS STRING))) IN {{ excluded_tags }}) > 0 AS is_refurbished
FROM {{ data }}.import_items_tags
GROUP BY 1

-- cte: order_rows
SELECT
  CAST(order_id AS STRING) AS order_id,
  NULLIF(LOWER(TRIM(email)), '') AS email_lower,
  TRIM(CAST(sku AS STRING)) AS sku,
  SAFE_CAST(order_date AS TIMESTAMP) AS order_date
FROM {{ data }}.import_orders
WHERE sku IS NOT NULL AND order_date IS NOT NULL

-- cte: sku_order_counts
SELECT sku, COUNT(DISTINCT order_id) AS order_count
FROM order_rows
WHERE order_date < {{ cutoff }}
GROUP BY sku

-- cte: sku_fitment_breadth
SELECT sku, COUNT(DISTINCT vehicle_id) AS fitment_breadth FROM fitment GROUP BY sku

-- cte: products
SELECT
  sku, base_sku, part_type, title, price, image_url,
  is_refurbished, is_service, is_commodity,
  COALESCE(price >= {{ min_price }}, FALSE)
    AND COALESCE(STARTS_WITH(image_url, {{ image_prefix }}), FALSE)
    AND NOT is_refurbished AND NOT is_service AND NOT is_commodity AS eligible,
  order_count, LN(1 + order_count) AS log_popularity, fitment_breadth
FROM (
  SELECT
    i.sku,
    CASE WHEN REGEXP_CONTAINS(i.sku, {{ variant_regex }}) THEN SUBSTR(i.sku, 1, LENGTH(i.sku) - 1)
      ELSE i.sku END AS base_sku,
    i.part_type, i.title,
    CASE WHEN i.price > 0 THEN i.price END AS price,
    i.image_url,
    COALESCE(t.is_refurbished, FALSE) AS is_refurbished,
    COALESCE(LOWER(i.part_type) IN {{ service_part_types }}, FALSE) AS is_service,
    COALESCE(LOWER(i.part_type) IN {{ commodity_part_types }}, FALSE) AS is_commodity,
    COALESCE(o.order_count, 0) AS order_count,
    COALESCE(f.fitment_breadth, 0) AS fitment_breadth
  FROM items AS i
  LEFT JOIN item_tags AS t ON t.sku = i.sku
  LEFT JOIN sku_order_counts AS o ON o.sku = i.sku
  LEFT JOIN sku_fitment_breadth AS f ON f.sku = i.sku
)

-- cte: train_events
-- kind: view | cart | order (clicks are views); w: the event type weight from the config
SELECT ev.email_lower, ev.sku, ev.ts, ev.w, ev.kind
FROM (
  SELECT
    m.email_lower,
    TRIM(CAST(e.sku AS STRING)) AS sku,
    SAFE_CAST(e.event_timestamp AS TIMESTAMP) AS ts,
    CASE e.event_name
      WHEN 'product_viewed' THEN {{ w_view }}
      WHEN 'added_to_cart' THEN {{ w_cart }}
      ELSE {{ w_order }}
    END AS w,
    CASE e.event_name
      WHEN 'product_viewed' THEN 'view'
      WHEN 'added_to_cart' THEN 'cart'
      ELSE 'order'
    END AS kind
  FROM {{ company }}.ingestion_unified_schema_incremental AS e
  JOIN uid_email AS m ON m.user_id = CAST(e.user_id AS STRING)
  WHERE e.event_name IN ('product_viewed', 'added_to_cart', 'order_placed')
    AND SAFE_CAST(e.event_timestamp AS TIMESTAMP) >= {{ interaction_start }}
    AND SAFE_CAST(e.event_timestamp AS TIMESTAMP) < {{ cutoff }}
  UNION ALL
  SELECT
    m.email_lower,
    TRIM(CAST(c.sku AS STRING)) AS sku,
    SAFE_CAST(c.interaction_timestamp AS TIMESTAMP) AS ts,
    {{ w_click }} AS w,
    'view' AS kind
  FROM {{ company }}.treatment_interaction AS c
  JOIN uid_email AS m ON m.user_id = CAST(c.user_id AS STRING)
  WHERE c.interaction_type = 'CLICKED'
    AND SAFE_CAST(c.interaction_timestamp AS TIMESTAMP) >= {{ interaction_start }}
    AND SAFE_CAST(c.interaction_timestamp AS TIMESTAMP) < {{ cutoff }}
) AS ev
JOIN product_skus AS p ON p.sku = ev.sku

-- cte: test_click_rows
SELECT m.email_lower, p.sku, SAFE_CAST(c.interaction_timestamp AS TIMESTAMP) AS ts
FROM {{ company }}.treatment_interaction AS c
JOIN uid_email AS m ON m.user_id = CAST(c.user_id AS STRING)
JOIN product_skus AS p ON p.sku = TRIM(CAST(c.sku AS STRING))
WHERE c.interaction_type = 'CLICKED'
  AND SAFE_CAST(c.interaction_timestamp AS TIMESTAMP) >= {{ cutoff }}
  AND SAFE_CAST(c.interaction_timestamp AS TIMESTAMP) < {{ as_of }}

-- cte: test_event_rows
SELECT m.email_lower, p.sku, e.event_name, SAFE_CAST(e.event_timestamp AS TIMESTAMP) AS ts
FROM {{ company }}.ingestion_unified_schema_incremental AS e
JOIN uid_email AS m ON m.user_id = CAST(e.user_id AS STRING)
JOIN product_skus AS p ON p.sku = TRIM(CAST(e.sku AS STRING))
WHERE e.event_name IN ('product_viewed', 'added_to_cart', 'order_placed')
  AND SAFE_CAST(e.event_timestamp AS TIMESTAMP) >= {{ cutoff }}
  AND SAFE_CAST(e.event_timestamp AS TIMESTAMP) < {{ as_of }}

-- cte: test_window_users
SELECT email_lower FROM test_click_rows
UNION DISTINCT
SELECT email_lower FROM test_event_rows
