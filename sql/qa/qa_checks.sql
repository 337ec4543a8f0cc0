-- QA checks on a staged recommendations table (BigQuery dialect), spec section 12. They run
-- in the warehouse on every arm's staged output (the GNN's and the SQL baseline's), against the
-- same product, user and order definitions the rules use.
-- include: gnn/_shared_ctes.sql
--
-- One named query per check; each returns the violating rows (an empty result = pass), except
-- users_with_recs, which returns one row of counts that holley_gnn_assets/quality/qa_gates.py
-- compares with the configured minimum, and qa_population, the rows and filled slots checked
-- (the population each gate's failing count is out of; not a check). Rows carry user_hash
-- (first 12 hex digits of MD5(email_lower)), never an email.
-- Placeholders beyond sql_params: recs (identifier of an OUTPUT_COLUMNS table), purchase_start,
-- scoring_ts (the scoring date's purchase-exclusion window).
-- test-params: {"recs": {"table": "recommendations"}, "scoring_ts": {"timestamp": "2025-12-01"}}

-- cte: qa_slots
SELECT email_lower, 1 AS slot, rec_part_1 AS sku, rec1_price AS price, rec1_score AS score,
  rec1_image AS image
FROM {{ recs }}
UNION ALL
SELECT email_lower, 2, rec_part_2, rec2_price, rec2_score, rec2_image FROM {{ recs }}
UNION ALL
SELECT email_lower, 3, rec_part_3, rec3_price, rec3_score, rec3_image FROM {{ recs }}
UNION ALL
SELECT email_lower, 4, rec_part_4, rec4_price, rec4_score, rec4_image FROM {{ recs }}

-- cte: qa_filled
SELECT
  SUBSTR(TO_HEX(MD5(email_lower)), 1, 12) AS user_hash, email_lower, slot, sku, price, score,
  image,
  CASE WHEN REGEXP_CONTAINS(sku, {{ variant_regex }}) THEN SUBSTR(sku, 1, LENGTH(sku) - 1)
    ELSE sku END AS base_sku
FROM qa_slots
WHERE sku IS NOT NULL

-- name: qa_population
SELECT
  (SELECT COUNT(*) FROM {{ recs }}) AS n_rows,
  (SELECT COUNT(*) FROM qa_filled) AS n_slots

-- name: users_with_recs
SELECT
  (SELECT COUNT(DISTINCT email_lower) FROM {{ recs }} WHERE rec_part_1 IS NOT NULL)
    AS n_users_with_recs,
  (SELECT COUNT(*) FROM users WHERE vehicle_id IS NOT NULL) AS n_users_with_vehicle

-- name: duplicate_skus
-- the same sku, or two variants of one base sku, twice in one user's row
SELECT user_hash, base_sku, COUNT(*) AS n
FROM qa_filled
GROUP BY user_hash, base_sku
HAVING COUNT(*) > 1

-- name: excluded_products
-- refurbished, service or commodity products (the products flags and the config lists)
SELECT f.user_hash, f.slot, f.sku, p.part_type
FROM qa_filled AS f
JOIN products AS p ON p.sku = f.sku
WHERE p.is_refurbished OR p.is_service OR p.is_commodity
  OR LOWER(TRIM(p.part_type)) IN {{ service_part_types }}
  OR LOWER(TRIM(p.part_type)) IN {{ commodity_part_types }}

-- name: price_floor
SELECT user_hash, slot, sku, price
FROM qa_filled
WHERE price IS NULL OR IS_NAN(price) OR IS_INF(price) OR price < {{ min_price }}

-- name: https_images
SELECT user_hash, slot, sku, image
FROM qa_filled
WHERE image IS NULL OR NOT STARTS_WITH(image, {{ image_prefix }})

-- name: score_order
-- scores non-increasing from rec 1 to rec 4; empty slots only at the tail; a sku has a score
SELECT
  SUBSTR(TO_HEX(MD5(email_lower)), 1, 12) AS user_hash,
  rec1_score, rec2_score, rec3_score, rec4_score
FROM {{ recs }}
WHERE rec2_score > rec1_score OR rec3_score > rec2_score OR rec4_score > rec3_score
  OR (rec_part_1 IS NULL AND rec_part_2 IS NOT NULL)
  OR (rec_part_2 IS NULL AND rec_part_3 IS NOT NULL)
  OR (rec_part_3 IS NULL AND rec_part_4 IS NOT NULL)
  OR (rec_part_1 IS NOT NULL AND rec1_score IS NULL)
  OR (rec_part_2 IS NOT NULL AND rec2_score IS NULL)
  OR (rec_part_3 IS NOT NULL AND rec3_score IS NULL)
  OR (rec_part_4 IS NOT NULL AND rec4_score IS NULL)

-- name: part_type_cap
SELECT f.user_hash, p.part_type, COUNT(*) AS n
FROM qa_filled AS f
JOIN products AS p ON p.sku = f.sku
GROUP BY f.user_hash, p.part_type
HAVING COUNT(*) > {{ max_per_part_type }}

-- name: purchased_recently
-- a sku the user ordered in [purchase_start, scoring_ts) (365 days before the scoring date)
SELECT DISTINCT f.user_hash, f.slot, f.sku
FROM qa_filled AS f
JOIN order_rows AS b ON b.email_lower = f.email_lower AND b.sku = f.sku
WHERE b.order_date >= {{ purchase_start }} AND b.order_date < {{ scoring_ts }}
