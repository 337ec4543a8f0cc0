-- The SQL baseline as it runs today: global popularity within vehicle fitment (BigQuery dialect).
-- It reads the warehouse source tables; the user key, vehicle key, product de-duplication and the
-- static rules come from the shared definitions (the same ones the graph export uses).
-- include: gnn/_shared_ctes.sql
--
-- score = products.order_count: distinct orders before the cutoff C, recomputed here from
-- import_orders (the same definition as product_nodes.order_count), cast to FLOAT64.
-- Order of operations and tie-break, identical to holley_gnn_assets/core/rules.py:
--   1. candidates: eligible products (price, https image, not refurbished/service/commodity)
--      that fit the user's vehicle;
--   2. purchase exclusion: skus the user ordered in [purchase_start, scoring_ts);
--   3. variant de-dup: per (user, base_sku) keep the first row by (score DESC, sku ASC);
--   4. part-type cap: per (user, part_type) keep the first max_per_part_type rows, same order;
--   5. rank per user by (score DESC, sku ASC); keep rank_depth (ranked) / top_k (output).
-- Speed: each vehicle is ranked once (steps 1, 3-5); only users who bought a sku that is in
-- their vehicle's ranked list are re-ranked on their own (removing any other sku cannot change
-- the list). No user x product cross join.
-- Placeholders beyond sql_params: scoring_ts (TIMESTAMP, midnight of the scoring date) and
-- purchase_start (scoring_ts - 365 days).
-- test-params: {"scoring_ts": {"timestamp": "2025-12-01"}}

-- cte: bl_candidates
SELECT f.vehicle_id, p.sku, p.base_sku, p.part_type, CAST(p.order_count AS FLOAT64) AS score
FROM (SELECT DISTINCT vehicle_id, sku FROM fitment) AS f
JOIN products AS p ON p.sku = f.sku
WHERE p.eligible

-- cte: bl_vehicle_ranked
SELECT vehicle_id, sku, score, rank
FROM (
  SELECT
    vehicle_id, sku, score,
    ROW_NUMBER() OVER (PARTITION BY vehicle_id ORDER BY score DESC, sku ASC) AS rank
  FROM (
    SELECT
      vehicle_id, sku, score,
      ROW_NUMBER() OVER (PARTITION BY vehicle_id, part_type ORDER BY score DESC, sku ASC) AS prn
    FROM (
      SELECT
        vehicle_id, sku, score, part_type,
        ROW_NUMBER() OVER (PARTITION BY vehicle_id, base_sku ORDER BY score DESC, sku ASC) AS vrn
      FROM bl_candidates
    )
    WHERE vrn = 1
  )
  WHERE prn <= {{ max_per_part_type }}
)
WHERE rank <= {{ rank_depth }}

-- cte: bl_users
SELECT email_lower, vehicle_id, year, make, model FROM users WHERE vehicle_id IS NOT NULL

-- cte: bl_purchases
SELECT DISTINCT email_lower, sku
FROM order_rows
WHERE email_lower IS NOT NULL
  AND order_date >= {{ purchase_start }} AND order_date < {{ scoring_ts }}

-- cte: bl_redo
-- purchasers first (few), then a semi join on their vehicle's list
SELECT DISTINCT u.email_lower, u.vehicle_id
FROM bl_purchases AS b
JOIN bl_users AS u ON u.email_lower = b.email_lower
WHERE EXISTS (
  SELECT 1 FROM bl_vehicle_ranked AS r WHERE r.vehicle_id = u.vehicle_id AND r.sku = b.sku
)

-- cte: bl_user_ranked
SELECT email_lower, sku, score, rank
FROM (
  SELECT
    email_lower, sku, score,
    ROW_NUMBER() OVER (PARTITION BY email_lower ORDER BY score DESC, sku ASC) AS rank
  FROM (
    SELECT
      email_lower, sku, score,
      ROW_NUMBER() OVER (PARTITION BY email_lower, part_type ORDER BY score DESC, sku ASC) AS prn
    FROM (
      SELECT
        d.email_lower, c.sku, c.score, c.part_type,
        ROW_NUMBER() OVER (
          PARTITION BY d.email_lower, c.base_sku ORDER BY c.score DESC, c.sku ASC
        ) AS vrn
      FROM bl_redo AS d
      JOIN bl_candidates AS c ON c.vehicle_id = d.vehicle_id
      LEFT JOIN bl_purchases AS b ON b.email_lower = d.email_lower AND b.sku = c.sku
      WHERE b.sku IS NULL
    )
    WHERE vrn = 1
  )
  WHERE prn <= {{ max_per_part_type }}
)
WHERE rank <= {{ rank_depth }}

-- cte: bl_ranked
SELECT u.email_lower, r.rank, r.sku, r.score
FROM (
  SELECT u.email_lower, u.vehicle_id
  FROM bl_users AS u
  LEFT JOIN bl_redo AS d ON d.email_lower = u.email_lower
  WHERE d.email_lower IS NULL
) AS u
JOIN bl_vehicle_ranked AS r ON r.vehicle_id = u.vehicle_id
UNION ALL
SELECT email_lower, rank, sku, score FROM bl_user_ranked

-- name: ranked
-- The ranked long list (email_lower, rank, sku, score) up to rank_depth, for the rank metrics.
SELECT email_lower, rank, sku, score FROM bl_ranked

-- name: ranked_test_users
-- The same ranked list restricted to the users with a click or site event in the test window
-- (test_window_users): what evaluation needs, without moving every user's list out.
SELECT r.email_lower, r.rank, r.sku, r.score
FROM bl_ranked AS r
WHERE r.email_lower IN (SELECT email_lower FROM test_window_users)

-- name: recommendations
-- The output table: one row per user with at least one recommendation, top_k slots, null tail.
SELECT
  r.email_lower, u.year, u.make, u.model,
  MAX(IF(r.rank = 1, r.sku, NULL)) AS rec_part_1,
  MAX(IF(r.rank = 1, p.price, NULL)) AS rec1_price,
  MAX(IF(r.rank = 1, r.score, NULL)) AS rec1_score,
  MAX(IF(r.rank = 1, p.image_url, NULL)) AS rec1_image,
  MAX(IF(r.rank = 2, r.sku, NULL)) AS rec_part_2,
  MAX(IF(r.rank = 2, p.price, NULL)) AS rec2_price,
  MAX(IF(r.rank = 2, r.score, NULL)) AS rec2_score,
  MAX(IF(r.rank = 2, p.image_url, NULL)) AS rec2_image,
  MAX(IF(r.rank = 3, r.sku, NULL)) AS rec_part_3,
  MAX(IF(r.rank = 3, p.price, NULL)) AS rec3_price,
  MAX(IF(r.rank = 3, r.score, NULL)) AS rec3_score,
  MAX(IF(r.rank = 3, p.image_url, NULL)) AS rec3_image,
  MAX(IF(r.rank = 4, r.sku, NULL)) AS rec_part_4,
  MAX(IF(r.rank = 4, p.price, NULL)) AS rec4_price,
  MAX(IF(r.rank = 4, r.score, NULL)) AS rec4_score,
  MAX(IF(r.rank = 4, p.image_url, NULL)) AS rec4_image
FROM bl_ranked AS r
JOIN bl_users AS u ON u.email_lower = r.email_lower
JOIN products AS p ON p.sku = r.sku
WHERE r.rank <= LEAST({{ top_k }}, 4)
GROUP BY r.email_lower, u.year, u.make, u.model
