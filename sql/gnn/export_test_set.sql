-- export_test_set.sql (BigQuery dialect): the held-out test facts, cutoff <= ts < as_of
-- (cutoff and as_of are TIMESTAMPs at 00:00 UTC of their dates; an event exactly at the cutoff
-- belongs to the test set, never to training). Columns: holley_gnn_assets/core/schemas.py.
-- user_id -> email through the user_id's latest attribute row (gnn/_shared_ctes.sql); only users
-- of user_nodes and skus of product_nodes are kept: a click on a sku that is not in the catalog
-- can never be recommended by either model, so it is dropped (counted by neither model).
-- Every click/event row is kept (no de-duplication); evaluation decides how to count them.
-- include: gnn/_shared_ctes.sql

-- name: test_clicks
SELECT email_lower, sku, ts FROM test_click_rows;

-- name: test_events
SELECT email_lower, sku, event_name, ts FROM test_event_rows;

-- name: test_click_days
-- the test clicks above (the same rows as test_clicks) per UTC day: the adaptive test window
-- (holley_gnn_assets/time_windows.py) renders this once with the widest window's cutoff and
-- sums the days of each candidate window; a cutoff is midnight UTC, so a window's count is
-- exactly the row count test_clicks exports for it. The day is YYYY-MM-DD text (one type on
-- both engines).
SELECT CAST(DATE(ts) AS STRING) AS day, COUNT(*) AS n_clicks
FROM test_click_rows
GROUP BY day;
