-- The A/B assignment (spec section 7, phase 2): every user of the recommendations output table
-- in one arm, 'gnn' or 'sql', by a salted hash of email_lower (BigQuery dialect; DuckDB through
-- sqlglot). Deterministic: the same salt and users give the same rows in every run and engine.
--
-- bucket = (first 8 hex digits of SHA-256(salt || ':' || email_lower)) mod 10000, in [0, 10000);
-- arm = 'gnn' when bucket < treatment_buckets (= round(ab_test.treatment_share * 10000)).
-- TO_HEX(SHA256(...)) is the lower-case hex digest of the UTF-8 bytes on both engines (DuckDB:
-- LOWER(HEX(UNHEX(SHA256(...))))), and CAST('0x...' AS INT64) reads hex on both; 8 digits stay
-- below 2^32, so no sign issue. Python twin: recommend/ab_assignment.py::bucket_of.
-- Placeholders: recommendations (identifier of the output table), salt (string), salt_id (string,
-- a digest of the salt recorded in every row), treatment_buckets (integer).
-- test-params: {"recommendations": {"table": "recommendations"}, "salt": "test-salt", "salt_id": "0123456789ab", "treatment_buckets": 5000}

-- name: ab_assignment
WITH hashed AS (
  SELECT
    r.email_lower,
    CASE WHEN r.year IS NULL OR r.make IS NULL OR r.model IS NULL THEN NULL
         ELSE CONCAT(r.year, '|', r.make, '|', r.model) END AS vehicle_id,
    MOD(CAST(CONCAT('0x', SUBSTR(TO_HEX(SHA256(CONCAT({{ salt }}, ':', r.email_lower))), 1, 8))
             AS INT64), 10000) AS bucket
  FROM {{ recommendations }} AS r
  WHERE r.email_lower IS NOT NULL
)
SELECT
  email_lower,
  vehicle_id,
  IF(bucket < {{ treatment_buckets }}, 'gnn', 'sql') AS arm,
  bucket,
  {{ salt_id }} AS salt_id
FROM hashed
ORDER BY email_lower
