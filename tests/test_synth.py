"""Tests of the synthetic warehouse generator (tiny scale, seconds)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from holley_gnn_assets.synth import generate_warehouse
from holley_gnn_assets.synth.writer import atomic_duckdb, temp_path_for
from holley_gnn_assets.warehouse.base import SOURCE_CONTRACT

# the source contract's types (shared/source_contract.md), as DuckDB names them
CONTRACT_TYPES = {
    "company_1950.ingestion_unified_attributes_schema_incremental": {
        "user_id": "VARCHAR",
        "email": "VARCHAR",
        "v1_year": "VARCHAR",
        "v1_make": "VARCHAR",
        "v1_model": "VARCHAR",
        "updated_at": "TIMESTAMP",
    },
    "company_1950.ingestion_unified_schema_incremental": {
        "user_id": "VARCHAR",
        "event_name": "VARCHAR",
        "sku": "VARCHAR",
        "event_timestamp": "TIMESTAMP",
    },
    "company_1950.treatment_interaction": {
        "user_id": "VARCHAR",
        "treatment_id": "VARCHAR",
        "interaction_type": "VARCHAR",
        "sku": "VARCHAR",
        "interaction_timestamp": "TIMESTAMP",
    },
    "data_company_1950.vehicle_product_fitment_data": {
        "sku": "VARCHAR",
        "year": "VARCHAR",
        "make": "VARCHAR",
        "model": "VARCHAR",
    },
    "data_company_1950.import_items": {
        "sku": "VARCHAR",
        "PartType": "VARCHAR",
        "price": "DOUBLE",
        "image_url": "VARCHAR",
        "title": "VARCHAR",
    },
    "data_company_1950.import_items_tags": {"sku": "VARCHAR", "tag": "VARCHAR"},
    "data_company_1950.import_orders": {
        "order_id": "VARCHAR",
        "email": "VARCHAR",
        "sku": "VARCHAR",
        "quantity": "BIGINT",
        "order_date": "TIMESTAMP",
        "unit_price": "DOUBLE",
    },
}

# normalised fitment vehicles and each user's latest-row vehicle, as the export SQL defines them
FITMENT_SQL = """
SELECT DISTINCT TRIM(sku) AS sku,
  TRIM(year) || '|' || UPPER(TRIM(REGEXP_REPLACE(make, '\\s+', ' ', 'g'))) || '|'
    || UPPER(TRIM(REGEXP_REPLACE(model, '\\s+', ' ', 'g'))) AS vehicle_id
FROM data_company_1950.vehicle_product_fitment_data
WHERE REGEXP_MATCHES(TRIM(year), '^[0-9]{4}$')
"""
LATEST_SQL = """
SELECT user_id, LOWER(TRIM(email)) AS email_lower,
  TRIM(v1_year) || '|' || UPPER(TRIM(REGEXP_REPLACE(v1_make, '\\s+', ' ', 'g'))) || '|'
    || UPPER(TRIM(REGEXP_REPLACE(v1_model, '\\s+', ' ', 'g'))) AS ymm
FROM company_1950.ingestion_unified_attributes_schema_incremental
WHERE email IS NOT NULL AND TRIM(email) != ''
QUALIFY ROW_NUMBER() OVER (PARTITION BY LOWER(TRIM(email)) ORDER BY updated_at DESC) = 1
"""
# tiers from pre-cutoff product events and email clicks in [interaction_start, cutoff)
TIERS_SQL = (
    """
WITH w AS (SELECT * FROM synth_truth.world),
ev AS (
  SELECT user_id, event_name AS kind FROM company_1950.ingestion_unified_schema_incremental, w
  WHERE event_name IN ('product_viewed', 'added_to_cart', 'order_placed')
    AND event_timestamp >= w.interaction_start AND event_timestamp < w.cutoff
  UNION ALL
  SELECT user_id, 'click' FROM company_1950.treatment_interaction, w
  WHERE interaction_type = 'CLICKED'
    AND interaction_timestamp >= w.interaction_start AND interaction_timestamp < w.cutoff
)
SELECT l.user_id,
  CASE WHEN COUNT(*) FILTER (WHERE kind IN ('added_to_cart', 'order_placed')) > 0 THEN 'hot'
       WHEN COUNT(ev.kind) > 0 THEN 'warm' ELSE 'cold' END AS tier
FROM ("""
    + LATEST_SQL
    + """) l LEFT JOIN ev USING (user_id)
GROUP BY l.user_id
"""
)


def _gen(path: Path, **kw) -> dict:
    kw.setdefault("scale", "tiny")
    kw.setdefault("progress", False)
    return generate_warehouse(path, **kw)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("synth") / "tiny.duckdb"
    return path, _gen(path, seed=0, signal=1.0)


def _q(path: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql).df()


def _table_digests(path: Path) -> dict[str, str]:
    out = {}
    with duckdb.connect(str(path), read_only=True) as con:
        for table in CONTRACT_TYPES:
            df = con.sql(f"SELECT * FROM {table}").df()
            h = pd.util.hash_pandas_object(df, index=False).to_numpy()
            out[table] = hashlib.sha256(h.tobytes()).hexdigest()
    return out


def test_contract_tables_columns_and_types(tiny):
    path, stats = tiny
    cols = _q(
        path,
        "SELECT table_schema || '.' || table_name AS t, column_name, data_type "
        "FROM information_schema.columns",
    )
    for table, types in CONTRACT_TYPES.items():
        got = dict(cols[cols.t == table][["column_name", "data_type"]].values)
        assert got == types, table
        role = "company" if table.startswith("company_1950.") else "data"
        assert set(SOURCE_CONTRACT[role][table.split(".")[1]]) == set(types)
        assert stats["rows"][table] > 0
    truth = set(cols.t[cols.t.str.startswith("synth_truth.")])
    assert {"synth_truth.world", "synth_truth.vehicle_preference"} <= truth
    world = _q(path, "SELECT * FROM synth_truth.world")
    assert len(world) == 1 and world.as_of[0] == pd.Timestamp(2026, 11, 1)
    assert world.cutoff[0] == pd.Timestamp(2026, 10, 2) and world.n_users[0] == 2000
    assert stats["as_of"] == dt.date(2026, 11, 1)


def test_read_truth_carries_demand_group_and_cluster(tiny):
    """The truth the reference arms read: every preference row with its product's demand and
    cluster and its vehicle's group, as synth_truth records them."""
    from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse

    path, _ = tiny
    truth = DuckDBWarehouse(str(path)).read_truth()
    pref = _q(path, "SELECT * FROM synth_truth.vehicle_preference")
    assert len(truth) == len(pref) and truth[["group_id", "cluster", "demand"]].notna().all().all()
    want = _q(path, """SELECT p.vehicle_id, p.sku, v.group_id, pr.cluster
        FROM synth_truth.vehicle_preference p JOIN synth_truth.products pr USING (sku)
        JOIN synth_truth.vehicles v USING (vehicle_id)""")
    got = truth.merge(want, on=["vehicle_id", "sku"], suffixes=("", "_want"))
    assert len(got) == len(pref)
    assert (got["group_id"] == got["group_id_want"]).all()
    assert (got["cluster"] == got["cluster_want"]).all()


def test_deterministic_per_seed(tiny, tmp_path):
    path, _ = tiny
    again = tmp_path / "again.duckdb"
    other = tmp_path / "other.duckdb"
    _gen(again, seed=0, signal=1.0)
    _gen(other, seed=1, signal=1.0)
    first, second, third = (_table_digests(p) for p in (path, again, other))
    assert first == second
    assert all(first[t] != third[t] for t in CONTRACT_TYPES)


def _signal_stats(path: Path) -> dict[str, float]:
    """Per vehicle: Spearman of the true preference with the expected demand and with the
    observed pre-cutoff order counts; and the true mass of the top 4 by order count (the SQL
    popularity ranking) relative to the best possible top 4."""
    df = _q(
        path,
        """
        WITH gl AS (
          SELECT sku, COUNT(DISTINCT order_id) AS n FROM data_company_1950.import_orders,
            synth_truth.world w WHERE order_date < w.cutoff GROUP BY sku)
        SELECT p.vehicle_id, p.sku, p.prob, pr.demand, COALESCE(gl.n, 0) AS orders,
          v.user_weight
        FROM synth_truth.vehicle_preference p JOIN synth_truth.products pr USING (sku)
        JOIN synth_truth.vehicles v USING (vehicle_id) LEFT JOIN gl USING (sku)""",
    )
    rho_demand, rho_orders, eff, weight = [], [], [], []
    for _, d in df.groupby("vehicle_id"):
        if len(d) < 5:
            continue
        rho_demand.append(spearmanr(d.prob, d.demand)[0])
        rho_orders.append(spearmanr(d.prob, d.orders)[0])
        sql_top = d.sort_values(["orders", "sku"], ascending=[False, True]).prob.head(4).sum()
        eff.append(sql_top / d.prob.nlargest(4).sum())
        weight.append(d.user_weight.iloc[0])
    return {
        "min_rho_demand": float(np.min(rho_demand)),
        "rho_demand": float(np.average(rho_demand, weights=weight)),
        "rho_orders": float(np.average(rho_orders, weights=weight)),
        "sql_efficiency": float(np.average(eff, weights=weight)),
    }


def test_signal_knob(tmp_path):
    """Signal 0: each vehicle's true preference ranks its products exactly as global demand
    does (popularity within fitment is optimal); signal 2: it does not."""
    res = {0.0: [], 2.0: []}
    for seed in (0, 1, 2):
        for signal in res:
            path = tmp_path / f"s{seed}_{signal}.duckdb"
            _gen(path, seed=seed, signal=signal, n_outside_orders=10_000)
            res[signal].append(_signal_stats(path))
    null = {k: np.mean([r[k] for r in res[0.0]]) for k in res[0.0][0]}
    planted = {k: np.mean([r[k] for r in res[2.0]]) for k in res[2.0][0]}
    assert min(r["min_rho_demand"] for r in res[0.0]) > 0.999
    assert planted["rho_demand"] < 0.9
    assert null["rho_orders"] > 0.8
    assert planted["rho_orders"] < null["rho_orders"] - 0.05
    assert null["sql_efficiency"] > 0.95
    assert planted["sql_efficiency"] < null["sql_efficiency"] - 0.03


def test_tier_shares_match_truth(tiny):
    path, _ = tiny
    tiers = _q(path, TIERS_SQL)
    truth = _q(path, "SELECT user_id, tier FROM synth_truth.users")
    merged = tiers.merge(truth, on="user_id", suffixes=("", "_truth"))
    assert len(merged) == len(tiers)
    assert (merged.tier == merged.tier_truth).all()
    share = tiers.tier.value_counts(normalize=True)
    assert share["cold"] > 0.97
    assert 0.01 <= share["warm"] <= 0.02
    assert 0.003 <= share["hot"] <= 0.008


def test_vehicle_preference_is_a_distribution_over_fitting_skus(tiny):
    path, _ = tiny
    sums = _q(
        path,
        "SELECT vehicle_id, SUM(prob) AS s, MIN(prob) AS lo "
        "FROM synth_truth.vehicle_preference GROUP BY 1",
    )
    assert np.allclose(sums.s, 1.0) and (sums.lo > 0).all()
    assert sums.vehicle_id.str.fullmatch(r"\d{4}\|[A-Z0-9 \-]+\|[A-Z0-9 \-]+").all()
    diff = _q(
        path,
        f"""
        SELECT
          (SELECT COUNT(*) FROM (SELECT vehicle_id, sku FROM synth_truth.vehicle_preference
                                 EXCEPT SELECT vehicle_id, sku FROM ({FITMENT_SQL}))) AS extra,
          (SELECT COUNT(*) FROM (SELECT vehicle_id, sku FROM ({FITMENT_SQL})
                                 EXCEPT SELECT vehicle_id, sku FROM synth_truth.vehicle_preference))
            AS missing""",
    )
    assert diff.extra[0] == 0 and diff.missing[0] == 0


def test_latest_attribute_row_names_the_true_vehicle(tiny):
    path, _ = tiny
    df = _q(
        path,
        f"""
        SELECT l.user_id, f.vehicle_id AS derived, u.vehicle_id AS truth
        FROM ({LATEST_SQL}) l JOIN synth_truth.users u USING (user_id)
        LEFT JOIN (SELECT DISTINCT vehicle_id FROM ({FITMENT_SQL})) f ON f.vehicle_id = l.ymm""",
    )
    assert (df.derived.fillna("-") == df.truth.fillna("-")).all()
    no_vehicle = df.truth.isna().mean()
    assert 0.01 < no_vehicle < 0.08
    changed = _q(
        path,
        f"""
        SELECT COUNT(DISTINCT a.user_id) AS n FROM (
          SELECT user_id, TRIM(v1_year) || UPPER(TRIM(REGEXP_REPLACE(v1_make, '\\s+', ' ', 'g')))
            || UPPER(TRIM(REGEXP_REPLACE(v1_model, '\\s+', ' ', 'g'))) AS k
          FROM company_1950.ingestion_unified_attributes_schema_incremental) a
        JOIN ({LATEST_SQL}) l USING (user_id)
        WHERE a.k != REPLACE(l.ymm, '|', '')""",
    )
    assert changed.n[0] > 20


def test_messy_inputs_present(tiny):
    path, _ = tiny
    attrs = _q(path, "SELECT * FROM company_1950.ingestion_unified_attributes_schema_incremental")
    assert attrs.email.isna().any() and (attrs.email.fillna("x").str.strip() == "").any()
    assert (attrs.email.dropna() != attrs.email.dropna().str.strip()).any()
    assert (attrs.email.dropna() != attrs.email.dropna().str.lower()).any()
    assert attrs.v1_year.isna().any() and attrs.v1_year.isin(["19x9", ""]).any()
    assert (attrs.v1_make.dropna().str.contains("  ")).any()
    assert attrs.v1_make.dropna().str.isupper().any() and attrs.v1_make.dropna().str.islower().any()
    assert attrs.user_id.value_counts().max() > 1
    items = _q(path, "SELECT * FROM data_company_1950.import_items")
    assert items.sku.duplicated().sum() >= 2
    img = items.image_url
    assert img.str.startswith("http://").any() and img.str.startswith("https://").any()
    assert img.isna().any() and (img == "").any()
    assert items.price.isna().any() and (items.price <= 0).any() and (items.price < 50).any()
    variants = items.sku[items.sku.str.contains(r"[0-9][BRGP]$")]
    bases = variants.str[:-1]
    assert bases.duplicated().any()  # several colours share a base sku
    parts = set(items.PartType)
    assert {"Installation Service", "Gift Card", "Fasteners", "Fluids & Lubricants"} & parts
    assert 30 <= len(parts) <= 80
    tags = _q(path, "SELECT tag FROM data_company_1950.import_items_tags").tag
    refurb = set(tags[tags.str.lower() == "refurbished"])
    assert len(refurb) >= 2 and {"Clearance", "New"} <= set(tags)
    events = _q(
        path, "SELECT DISTINCT event_name FROM company_1950.ingestion_unified_schema_incremental"
    ).event_name
    assert {
        "page_viewed",
        "email_opened",
        "product_viewed",
        "added_to_cart",
        "order_placed",
    } <= set(events)
    kinds = _q(path, "SELECT DISTINCT interaction_type FROM company_1950.treatment_interaction")
    assert set(kinds.interaction_type) == {"SENT", "VIEWED", "CLICKED"}
    outside = _q(
        path,
        """
        SELECT AVG(CASE WHEN a.e IS NULL THEN 1 ELSE 0 END) AS share
        FROM data_company_1950.import_orders o
        LEFT JOIN (SELECT DISTINCT LOWER(TRIM(email)) AS e FROM
                   company_1950.ingestion_unified_attributes_schema_incremental) a
          ON a.e = LOWER(TRIM(o.email))""",
    )
    assert outside.share[0] > 0.5
    bundles = _q(
        path,
        "SELECT COUNT(*) AS n FROM data_company_1950.import_orders GROUP BY order_id HAVING n >= 2",
    )
    assert len(bundles) > 100


def test_test_window(tiny):
    path, stats = tiny
    clicks = _q(
        path,
        f"""
        SELECT t.user_id, t.sku, u.tier, u.vehicle_id,
          (SELECT COUNT(*) FROM ({FITMENT_SQL}) f WHERE f.sku = t.sku
             AND f.vehicle_id = u.vehicle_id) AS fits
        FROM company_1950.treatment_interaction t, synth_truth.world w, synth_truth.users u
        WHERE t.user_id = u.user_id AND interaction_type = 'CLICKED'
          AND interaction_timestamp > w.cutoff AND interaction_timestamp < w.as_of""",
    )
    assert 300 <= len(clicks) <= 600 and stats["n_test_clicks"] == len(clicks)
    assert (clicks.tier == "cold").mean() > 0.8
    assert (clicks.fits == 1).all() and clicks.sku.notna().all()
    window = _q(
        path,
        """
        SELECT
          (SELECT COUNT(*) FROM company_1950.ingestion_unified_schema_incremental,
             synth_truth.world w
           WHERE event_name = 'product_viewed' AND event_timestamp > w.cutoff) AS views,
          (SELECT COUNT(*) FROM data_company_1950.import_orders o, synth_truth.world w,
             synth_truth.users u WHERE LOWER(TRIM(o.email)) = u.email_lower
             AND order_date > w.cutoff) AS test_orders,
          (SELECT COUNT(DISTINCT u.user_id) FROM data_company_1950.import_orders o,
             synth_truth.world w, synth_truth.users u WHERE LOWER(TRIM(o.email)) = u.email_lower
             AND order_date < w.cutoff AND order_date >= w.cutoff - INTERVAL 365 DAY) AS buyers,
          (SELECT MAX(interaction_timestamp) FROM company_1950.treatment_interaction,
             synth_truth.world w) < (SELECT as_of FROM synth_truth.world) AS before_as_of""",
    )
    assert window.views[0] > 100 and window.test_orders[0] > 0 and window.buyers[0] > 0
    assert window.before_as_of[0]


def test_test_clicks_follow_the_true_preference(tiny):
    """The clicked sku's true probability averages to its expectation under the truth."""
    path, _ = tiny
    df = _q(
        path,
        """
        WITH c AS (
          SELECT u.vehicle_id, t.sku FROM company_1950.treatment_interaction t
          JOIN synth_truth.users u USING (user_id), synth_truth.world w
          WHERE interaction_type = 'CLICKED' AND interaction_timestamp > w.cutoff),
        sq AS (SELECT vehicle_id, SUM(prob * prob) AS e FROM synth_truth.vehicle_preference
               GROUP BY 1)
        SELECT p.prob, sq.e FROM c JOIN synth_truth.vehicle_preference p USING (vehicle_id, sku)
        JOIN sq USING (vehicle_id)""",
    )
    se = df.prob.std() / np.sqrt(len(df))
    assert abs(df.prob.mean() - df.e.mean()) < 4 * se


def test_atomic_overwrite(tiny, tmp_path):
    good = tmp_path / "wh.duckdb"
    _gen(good, seed=3)
    before = hashlib.sha256(good.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="unknown scale"):
        generate_warehouse(good, scale="huge", progress=False)
    with pytest.raises(ValueError, match="n_vehicles"):
        _gen(good, n_vehicles=100_000)  # fails inside generation, after validation
    with pytest.raises(RuntimeError, match="boom"), atomic_duckdb(good) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
        raise RuntimeError("boom")
    assert hashlib.sha256(good.read_bytes()).hexdigest() == before
    assert not temp_path_for(good).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wh.duckdb"]
    _gen(good, seed=4)
    assert hashlib.sha256(good.read_bytes()).hexdigest() != before
