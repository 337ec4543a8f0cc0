-- export_test_set.sql (BigQuery dialect): the held-out test facts, cutoff <= ts < as_of
-- (cutoff and as_of are TIMESTAMPs at 00:00 UTC of their dates; an event exactly at the cutoff
-- belongs to the test set, never to training). Columns: holley_gnn_assets/core/schemas.py.
-- user_id -> email through the user_id's latest attribute row (gnn/_shared_ctes.sql); only users
-- of user_nodes and skus of product_nodes are kept: a click on a sku that is not in the catalog
-- can never be recommended by either model, so it is dropped (counted by neither model).
-- Every click/event row is kept (no de-duplication); evaluation decides how to count them.
-- include: gnn/_shared_ctes.sql

-- name: test_clicks
SELECT m.email_lower, p.sku, CAST(c.interaction_timestamp AS TIMESTAMP) AS ts
FROM {{ company }}.treatment_interaction AS c
JOIN uid_email AS m ON m.user_id = CAST(c.user_id AS STRING)
JOIN product_skus AS p ON p.sku = TRIM(CAST(c.sku AS STRING))
WHERE c.interaction_type = 'CLICKED'
  AND CAST(c.interaction_timestamp AS TIMESTAMP) >= {{ cutoff }}
  AND CAST(c.interaction_timestamp AS TIMESTAMP) < {{ as_of }};

-- name: test_events
SELECT m.email_lower, p.sku, e.event_name, CAST(e.event_timestamp AS TIMESTAMP) AS ts
FROM {{ company }}.ingestion_unified_schema_incremental AS e
JOIN uid_email AS m ON m.user_id = CAST(e.user_id AS STRING)
JOIN product_skus AS p ON p.sku = TRIM(CAST(e.sku AS STRING))
WHERE e.event_name IN ('product_viewed', 'added_to_cart', 'order_placed')
  AND CAST(e.event_timestamp AS TIMESTAMP) >= {{ cutoff }}
  AND CAST(e.event_timestamp AS TIMESTAMP) < {{ as_of }};
