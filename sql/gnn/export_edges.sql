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
-- both in one order; kept when n_users >= min_users; sku_a < sku_b. Strength: each user
-- counts 1 / (lines - 1) for the pair, lines = the distinct product skus of the order (the
-- user's smallest such order), so every line of a basket spreads one unit over its partners
-- and a 400-line order weighs no more than a pair (pair-only orders: strength = n_users). A
-- pair also needs strength >= min_strength (co_purchase.min_strength): two users' 20-line
-- orders (2/19) are chance, not a pairing. weight = LN(n_users) (the spec's), or with
-- co_purchase.weight_by_basket LN(1 + strength). The cap (co_purchase.max_neighbours, 0 = none):
-- each product ranks its pairs (co_purchase.rank_by: users = n_users DESC, strength DESC;
-- strength = strength DESC, n_users DESC; then other sku ASC) and keeps its
-- max_neighbours strongest; a pair stays when either product keeps it (co_purchase.
-- neighbour_rule = either: at most max_neighbours x products pairs, every product keeps its
-- own strongest, a hub may be kept by many) or when both do (both: at most max_neighbours per
-- product). Either way the kept edges grow with the products, not with basket size squared.
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
  SELECT
    order_id, sku, email_lower,
    COUNT(*) OVER (PARTITION BY order_id, email_lower) AS lines
  FROM (
    SELECT DISTINCT o.order_id, o.sku, o.email_lower
    FROM order_rows AS o
    JOIN product_skus AS p ON p.sku = o.sku
    WHERE o.order_date < {{ cutoff }} AND o.email_lower IS NOT NULL AND o.order_id IS NOT NULL
  )
),
user_pairs AS (
  SELECT a.sku AS sku_a, b.sku AS sku_b, a.email_lower,
    MAX(1.0 / GREATEST(a.lines - 1, 1)) AS share
  FROM order_items AS a
  JOIN order_items AS b
    ON b.order_id = a.order_id AND b.email_lower = a.email_lower AND a.sku < b.sku
  GROUP BY a.sku, b.sku, a.email_lower
),
pairs AS (
  SELECT sku_a, sku_b, COUNT(*) AS n_users, SUM(share) AS strength
  FROM user_pairs
  GROUP BY sku_a, sku_b
  HAVING COUNT(*) >= {{ min_users }} AND SUM(share) >= {{ min_strength }}
),
directed AS (
  SELECT sku_a AS sku, sku_b AS other, n_users, strength FROM pairs
  UNION ALL
  SELECT sku_b AS sku, sku_a AS other, n_users, strength FROM pairs
),
ranked AS (
  SELECT sku, other,
    ROW_NUMBER() OVER (
      PARTITION BY sku
      ORDER BY IF({{ rank_by_strength }}, strength, n_users) DESC,
        IF({{ rank_by_strength }}, n_users, strength) DESC, other ASC
    ) AS rk
  FROM directed
)
SELECT
  p.sku_a, p.sku_b, p.n_users,
  IF({{ weight_by_basket }}, LN(1 + p.strength), LN(p.n_users)) AS weight
FROM pairs AS p
JOIN ranked AS ra ON ra.sku = p.sku_a AND ra.other = p.sku_b
JOIN ranked AS rb ON rb.sku = p.sku_b AND rb.other = p.sku_a
WHERE {{ max_neighbours }} = 0
  OR (ra.rk <= {{ max_neighbours }} AND rb.rk <= {{ max_neighbours }})
  OR (NOT {{ both_keep }} AND (ra.rk <= {{ max_neighbours }} OR rb.rk <= {{ max_neighbours }}));

-- name: user_purchases
SELECT o.email_lower, o.sku, MAX(o.order_date) AS last_order_ts
FROM order_rows AS o
JOIN users AS u ON u.email_lower = o.email_lower
JOIN product_skus AS p ON p.sku = o.sku
WHERE o.order_date >= {{ purchase_start }} AND o.order_date < {{ as_of }}
-- one row per side of the cutoff, so a re-order inside the test window cannot hide the
-- pre-cutoff purchase from the evaluation's exclusion (scoring date = cutoff)
GROUP BY o.email_lower, o.sku, o.order_date < {{ cutoff }};
