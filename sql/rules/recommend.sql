-- The business rules, once, for every arm (BigQuery dialect; DuckDB through sqlglot).
-- include: gnn/_shared_ctes.sql
--
-- Input: a score table {{ scores }} with columns (vehicle_id STRING, email_lower STRING,
-- sku STRING, score FLOAT64). A row with email_lower set scores that user alone (a user with any
-- such row is ranked on its own rows only); a row with email_lower NULL scores the sku for
-- every user of its vehicle_id. With {{ global_scores }} = TRUE the rows with email_lower NULL
-- apply to every user whatever the vehicle, and the fitment rule is off (the global-popularity
-- reference arm); every other arm ranks only products that fit the user's vehicle.
-- The arms yield scores only: the SQL baseline (sql/baseline/scores.sql), the GNN
-- (recommend/gnn_scores.py) and the reference arms (evaluation/reference_arms.py).
--
-- The rules, in this order (tie-break everywhere: score DESC, sku ASC):
--   1. candidates: eligible products (products.eligible: price >= min_price, finite and
--      positive; image starts with image_prefix; not refurbished, service or commodity) that
--      fit the user's vehicle;
--   2. purchase exclusion: skus the user ordered in [purchase_start, scoring_ts);
--   3. variant de-dup: per (user, base_sku) keep the first row;
--   4. part-type cap: per (user, part_type) keep the first max_per_part_type rows;
--   5. rank per user; keep rank_depth rows (ranked) or top_k (recommendations, at most 4).
-- Speed: each group (a vehicle, or the global group) and each user with own score rows has its
-- candidates ranked once by score, and only the top candidate_depth (rules.candidate_depth)
-- reach the per-user rules (steps 2-5), so the rows grow as users x candidate_depth, never as
-- users x catalogue. Each group's list is built once; only users who bought a sku in their
-- group's ranked list are re-ranked on their own (removing any other sku cannot change the
-- list). A user whose candidates were cut and who ends short of LEAST(top_k, 4) is counted by
-- short_users (users_short_capped); the output is the same as without the cut wherever the cut
-- leaves rank_depth rows.
-- Users ranked: every user with a vehicle, or with {{ test_users_only }} the ones with a click or
-- site event in the test window (test_window_users), which is what evaluation reads.
-- Placeholders beyond sql_params: scores (identifier), scoring_ts (TIMESTAMP, midnight of the
-- scoring date), purchase_start (scoring_ts - purchase_exclusion_days), global_scores and
-- test_users_only (BOOL), user_candidates (the arm's own cap on a user's rows: scale.
-- user_candidates), group_cut (INT64: the arm's own cut of each group's rows, 0 = none;
-- recommend/candidate_cut.py), staged (identifier; short_users only).
-- test-params: {"scores": {"table": "scores"}, "scoring_ts": {"timestamp": "2025-12-01"}, "global_scores": false, "test_users_only": false, "staged": {"table": "recommendations"}, "user_candidates": 100, "group_cut": 0}

-- cte: rec_users
SELECT
  u.email_lower, u.vehicle_id, u.year, u.make, u.model,
  IF({{ global_scores }}, '*', u.vehicle_id) AS grp
FROM users AS u
WHERE u.vehicle_id IS NOT NULL
  AND (NOT {{ test_users_only }}
    OR u.email_lower IN (SELECT email_lower FROM test_window_users))

-- cte: rec_own_users
SELECT DISTINCT s.email_lower
FROM {{ scores }} AS s
JOIN rec_users AS u ON u.email_lower = s.email_lower

-- cte: rec_group_scored
-- each group with a ranked user: its candidates (step 1), ranked once by score;
-- n_candidates counts them all
SELECT
  grp, sku, base_sku, part_type, score,
  ROW_NUMBER() OVER (PARTITION BY grp ORDER BY score DESC, sku ASC) AS crn,
  COUNT(*) OVER (PARTITION BY grp) AS n_candidates
FROM (
  SELECT s.grp, p.sku, p.base_sku, p.part_type, s.score
  FROM (
    SELECT IF({{ global_scores }}, '*', vehicle_id) AS grp, sku, score
    FROM {{ scores }}
    WHERE email_lower IS NULL
  ) AS s
  JOIN (SELECT DISTINCT grp FROM rec_users) AS g ON g.grp = s.grp
  JOIN products AS p ON p.sku = s.sku
  LEFT JOIN fitment AS f ON f.vehicle_id = s.grp AND f.sku = s.sku
  WHERE p.eligible AND ({{ global_scores }} OR f.sku IS NOT NULL)
)

-- cte: rec_group_candidates
-- the group's top candidate_depth candidates: every per-user rule reads these only
SELECT grp, sku, base_sku, part_type, score
FROM rec_group_scored
WHERE crn <= {{ candidate_depth }}

-- cte: rec_group_ranked
SELECT grp, sku, score, rank
FROM (
  SELECT
    grp, sku, score,
    ROW_NUMBER() OVER (PARTITION BY grp ORDER BY score DESC, sku ASC) AS rank
  FROM (
    SELECT
      grp, sku, score,
      ROW_NUMBER() OVER (PARTITION BY grp, part_type ORDER BY score DESC, sku ASC) AS prn
    FROM (
      SELECT
        grp, sku, score, part_type,
        ROW_NUMBER() OVER (PARTITION BY grp, base_sku ORDER BY score DESC, sku ASC) AS vrn
      FROM rec_group_candidates
    )
    WHERE vrn = 1
  )
  WHERE prn <= {{ max_per_part_type }}
)
WHERE rank <= {{ rank_depth }}

-- cte: rec_purchases
SELECT DISTINCT o.email_lower, o.sku
FROM order_rows AS o
JOIN rec_users AS u ON u.email_lower = o.email_lower
WHERE o.order_date >= {{ purchase_start }} AND o.order_date < {{ scoring_ts }}

-- cte: rec_group_users
SELECT u.email_lower, u.grp
FROM rec_users AS u
LEFT JOIN rec_own_users AS o ON o.email_lower = u.email_lower
WHERE o.email_lower IS NULL

-- cte: rec_redo
-- purchasers first (few), then a semi join on their group's list
SELECT DISTINCT u.email_lower, u.grp
FROM rec_purchases AS b
JOIN rec_group_users AS u ON u.email_lower = b.email_lower
WHERE EXISTS (
  SELECT 1 FROM rec_group_ranked AS r WHERE r.grp = u.grp AND r.sku = b.sku
)

-- cte: rec_own_scored
-- users with their own score rows: their candidates (step 1), ranked once by score (the
-- score rows are cut to those users first: most arms have none)
SELECT
  u.email_lower, p.sku, p.base_sku, p.part_type, s.score,
  ROW_NUMBER() OVER (PARTITION BY u.email_lower ORDER BY s.score DESC, p.sku ASC) AS crn,
  COUNT(*) OVER (PARTITION BY u.email_lower) AS n_candidates
FROM (
  SELECT email_lower, sku, score
  FROM {{ scores }}
  WHERE email_lower IN (SELECT email_lower FROM rec_own_users)
) AS s
JOIN rec_users AS u ON u.email_lower = s.email_lower
JOIN products AS p ON p.sku = s.sku
LEFT JOIN fitment AS f ON f.vehicle_id = u.vehicle_id AND f.sku = s.sku
WHERE p.eligible AND ({{ global_scores }} OR f.sku IS NOT NULL)

-- cte: rec_user_candidates
-- users with their own scores (their top candidate_depth), and group users whose purchases
-- touch their group's list (the group's top candidate_depth)
SELECT email_lower, sku, base_sku, part_type, score
FROM rec_own_scored
WHERE crn <= {{ candidate_depth }}
UNION ALL
SELECT d.email_lower, c.sku, c.base_sku, c.part_type, c.score
FROM rec_redo AS d
JOIN rec_group_candidates AS c ON c.grp = d.grp

-- cte: rec_user_ranked
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
        c.email_lower, c.sku, c.score, c.part_type,
        ROW_NUMBER() OVER (
          PARTITION BY c.email_lower, c.base_sku ORDER BY c.score DESC, c.sku ASC
        ) AS vrn
      FROM rec_user_candidates AS c
      LEFT JOIN rec_purchases AS b ON b.email_lower = c.email_lower AND b.sku = c.sku
      WHERE b.sku IS NULL
    )
    WHERE vrn = 1
  )
  WHERE prn <= {{ max_per_part_type }}
)
WHERE rank <= {{ rank_depth }}

-- cte: rec_ranked
SELECT u.email_lower, r.rank, r.sku, r.score
FROM (
  SELECT g.email_lower, g.grp
  FROM rec_group_users AS g
  LEFT JOIN rec_redo AS d ON d.email_lower = g.email_lower
  WHERE d.email_lower IS NULL
) AS u
JOIN rec_group_ranked AS r ON r.grp = u.grp
UNION ALL
SELECT email_lower, rank, sku, score FROM rec_user_ranked

-- cte: rec_capped_users
-- users whose candidates were cut: their group's beyond candidate_depth or at the arm's own
-- cut of its group rows (group_cut: the GNN keeps each vehicle's candidate_depth best; 0 =
-- none), or their own rows beyond candidate_depth or at the arm's own cap (user_candidates:
-- the GNN keeps that many)
SELECT u.email_lower
FROM rec_group_users AS u
JOIN (
  SELECT DISTINCT grp FROM rec_group_scored
  WHERE n_candidates > {{ candidate_depth }}
    OR ({{ group_cut }} > 0 AND n_candidates >= {{ group_cut }})
) AS g ON g.grp = u.grp
UNION ALL
SELECT DISTINCT email_lower
FROM rec_own_scored
WHERE n_candidates > {{ candidate_depth }} OR n_candidates >= {{ user_candidates }}

-- name: short_users
-- Users with a vehicle (of rec_users) short of LEAST(top_k, 4) recommendations in the staged
-- rows {{ staged }}, and those of them whose candidates were cut (rec_capped_users).
SELECT
  COUNT(*) AS users,
  COALESCE(SUM(IF(s.email_lower IS NULL, 1, 0)), 0) AS users_short,
  COALESCE(SUM(IF(s.email_lower IS NULL AND c.email_lower IS NOT NULL, 1, 0)), 0)
    AS users_short_capped,
  (SELECT COUNT(*) FROM rec_capped_users) AS users_capped
FROM rec_users AS u
LEFT JOIN (
  SELECT email_lower
  FROM {{ staged }}
  WHERE IF(rec_part_1 IS NULL, 0, 1) + IF(rec_part_2 IS NULL, 0, 1)
    + IF(rec_part_3 IS NULL, 0, 1) + IF(rec_part_4 IS NULL, 0, 1) >= LEAST({{ top_k }}, 4)
) AS s ON s.email_lower = u.email_lower
LEFT JOIN rec_capped_users AS c ON c.email_lower = u.email_lower

-- name: score_problems
-- One row of counts of score rows no rule can rank; the caller stops on any before ranking.
SELECT
  (SELECT COUNT(*) FROM {{ scores }}) AS score_rows,
  (SELECT COUNT(*) FROM {{ scores }} WHERE score IS NULL) AS null_scores,
  (SELECT COUNT(*) FROM {{ scores }} WHERE IS_NAN(score)) AS nan_scores,
  (SELECT COUNT(*) FROM {{ scores }} WHERE IS_INF(score)) AS infinite_scores,
  (SELECT COUNT(*) FROM {{ scores }} WHERE sku IS NULL) AS null_skus,
  (SELECT COUNT(*) FROM {{ scores }}
    WHERE email_lower IS NULL AND vehicle_id IS NULL AND NOT {{ global_scores }})
    AS rows_without_user_or_vehicle

-- name: ranked
-- The ranked long list (email_lower, rank, sku, score) up to rank_depth, for the rank metrics.
SELECT email_lower, rank, sku, score FROM rec_ranked

-- name: recommendations
-- The output rows: one per user with at least one recommendation, top_k slots, null tail.
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
FROM rec_ranked AS r
JOIN rec_users AS u ON u.email_lower = r.email_lower
JOIN products AS p ON p.sku = r.sku
WHERE r.rank <= LEAST({{ top_k }}, 4)
GROUP BY r.email_lower, u.year, u.make, u.model
