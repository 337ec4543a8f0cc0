-- export_edges.sql (BigQuery dialect): the four edge tables of the graph (spec §2-§3) and the
-- users' purchases for purchase exclusion. Columns are exactly holley_gnn_assets/core/schemas.py.
-- Shared rules: gnn/_shared_ctes.sql.
--
-- Interaction edges (user_product_edges): training events (product_viewed, added_to_cart,
-- order_placed site events and CLICKED email treatments weighted as a view) with
-- interaction_start <= ts < cutoff, users of user_nodes, skus of product_nodes.
--   weight = SUM(type_weight * POW(0.5, age_days / half_life_days)), where
--   age_days = (cutoff - ts) in days (fractional), i.e. the age is measured at the cutoff
--   (00:00 UTC of the cutoff date), so an event just before the cutoff weighs ~type_weight
--   and one half_life_days earlier half of it.
-- Co-purchase (product_product_edges): orders with order_date < cutoff; pairs of distinct
-- product-node skus in one order_id; n_users = distinct order emails (LOWER(TRIM)) that ordered
-- both in one order; kept when n_users >= min_users; weight = LN(n_users); sku_a < sku_b.
-- user_purchases: orders with cutoff - purchase_exclusion_days <= order_date < as_of, for user
-- nodes and product-node skus, the last order per (user, sku) on each side of the cutoff;
-- the scorer filters by its own scoring date.
-- include: gnn/_shared_ctes.sql

-- name: user_product_edges
SELECT
  email_lower,
  sku,
  SUM(w * POW(0.5, TIMESTAMP_DIFF({{ cutoff }}, ts, MICROSECOND) / 86400000000.0
    / {{ half_life_days }})) AS weight,
  COUNT(*) AS n_events,
  MAX(w) AS max_event_weight,
  MAX(ts) AS last_ts
FROM train_events
GROUP BY email_lower, sku;

-- name: user_vehicle_edges
SELECT email_lower, vehicle_id, 1.0 AS weight
FROM users
WHERE vehicle_id IS NOT NULL;

-- name: product_vehicle_edges
SELECT f.sku, f.vehicle_id, 1.0 AS weight
FROM fitment AS f
JOIN product_skus AS p ON p.sku = f.sku;

-- name: product_product_edges
WITH order_items AS (
  SELECT DISTINCT o.order_id, o.sku, o.email_lower
  FROM order_rows AS o
  JOIN product_skus AS p ON p.sku = o.sku
  WHERE o.order_date < {{ cutoff }} AND o.email_lower IS NOT NULL AND o.order_id IS NOT NULL
),
pairs AS (
  SELECT a.sku AS sku_a, b.sku AS sku_b, COUNT(DISTINCT a.email_lower) AS n_users
  FROM order_items AS a
  JOIN order_items AS b
    ON b.order_id = a.order_id AND b.email_lower = a.email_lower AND a.sku < b.sku
  GROUP BY a.sku, b.sku
)
SELECT sku_a, sku_b, n_users, LN(n_users) AS weight
FROM pairs
WHERE n_users >= {{ min_users }};

-- name: user_purchases
SELECT o.email_lower, o.sku, MAX(o.order_date) AS last_order_ts
FROM order_rows AS o
JOIN users AS u ON u.email_lower = o.email_lower
JOIN product_skus AS p ON p.sku = o.sku
WHERE o.order_date >= {{ purchase_start }} AND o.order_date < {{ as_of }}
-- one row per side of the cutoff, so a re-order inside the test window cannot hide the
-- pre-cutoff purchase from the evaluation's exclusion (scoring date = cutoff)
GROUP BY o.email_lower, o.sku, o.order_date < {{ cutoff }};
