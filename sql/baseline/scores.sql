-- The SQL baseline's scores (BigQuery dialect): today's ranking signal, popularity among the
-- products that fit each vehicle, and nothing else. The business rules (eligibility, purchase
-- exclusion, variants, part-type cap, top-k) are applied by sql/rules/recommend.sql, the same
-- file that ranks every other arm.
-- include: gnn/_shared_ctes.sql
--
-- score = products.order_count: distinct orders before the cutoff C, recomputed from
-- import_orders (the same definition as product_nodes.order_count), cast to FLOAT64.
-- One row per (vehicle_id, sku) fitment pair; email_lower is NULL (a vehicle-level score).

-- name: scores
SELECT
  f.vehicle_id,
  CAST(NULL AS STRING) AS email_lower,
  p.sku,
  CAST(p.order_count AS FLOAT64) AS score
FROM fitment AS f
JOIN products AS p ON p.sku = f.sku
