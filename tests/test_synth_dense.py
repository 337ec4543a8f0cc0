"""The dense synthetic world (``dense_tiny``, seconds): full fitment, engaged users with about
100 interactions each, deterministic per seed, per-vehicle preferences set by the signal."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from holley_gnn_assets.synth import SCALES, generate_warehouse

# the export SQL's normalised vehicle of a fitment row (year|MAKE|MODEL)
FITMENT_SQL = """
SELECT DISTINCT TRIM(sku) AS sku,
  TRIM(year) || '|' || UPPER(TRIM(REGEXP_REPLACE(make, '\\s+', ' ', 'g'))) || '|'
    || UPPER(TRIM(REGEXP_REPLACE(model, '\\s+', ' ', 'g'))) AS vehicle_id
FROM data_company_1950.vehicle_product_fitment_data
"""
# product interactions before the cutoff: views, carts, order lines and email clicks
INTERACTIONS_SQL = """
WITH w AS (SELECT * FROM synth_truth.world),
ev AS (
  SELECT user_id, sku, event_name AS kind
  FROM company_1950.ingestion_unified_schema_incremental, w
  WHERE event_name IN ('product_viewed', 'added_to_cart', 'order_placed')
    AND event_timestamp >= w.interaction_start AND event_timestamp < w.cutoff
  UNION ALL
  SELECT user_id, sku, 'clicked' FROM company_1950.treatment_interaction, w
  WHERE interaction_type = 'CLICKED'
    AND interaction_timestamp >= w.interaction_start AND interaction_timestamp < w.cutoff)
SELECT ev.*, u.vehicle_id, u.tier FROM ev JOIN synth_truth.users u USING (user_id)
"""


def _q(path: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql).df()


def _gen(path: Path, seed: int = 0, signal: float = 1.0) -> dict:
    return generate_warehouse(path, scale="dense_tiny", seed=seed, signal=signal, progress=False)


@pytest.fixture(scope="module")
def dense(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("dense") / "dense_tiny.duckdb"
    return path, _gen(path)


def _digests(path: Path) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        out = {}
        for t in tables:
            h = pd.util.hash_pandas_object(con.sql(f"SELECT * FROM {t}").df(), index=False)
            out[t] = hashlib.sha256(h.to_numpy().tobytes()).hexdigest()
    return out


def test_every_product_fits_every_vehicle(dense):
    path, stats = dense
    params = SCALES["dense_tiny"]
    fit = _q(path, FITMENT_SQL)
    skus = _q(path, "SELECT DISTINCT sku FROM data_company_1950.import_items").sku
    n_v = fit.vehicle_id.nunique()
    assert n_v == params["n_vehicles"] and len(skus) == params["n_products"]
    assert len(fit) == n_v * len(skus) and set(fit.sku) == set(skus)
    truth = _q(path, "SELECT vehicle_id, SUM(prob) AS s, COUNT(*) AS n "
                     "FROM synth_truth.vehicle_preference GROUP BY 1")
    assert (truth.n == len(skus)).all() and np.allclose(truth.s, 1.0)
    assert set(truth.vehicle_id) == set(fit.vehicle_id)
    assert stats["rows"]["synth_truth.vehicle_preference"] == n_v * len(skus)


def test_most_users_engaged_with_about_100_interactions(dense):
    path, stats = dense
    ev = _q(path, INTERACTIONS_SQL)
    per_user = ev.groupby("user_id").size()
    n_users = SCALES["dense_tiny"]["n_users"]
    assert len(per_user) / n_users >= 0.85  # engaged: any interaction before the cutoff
    assert 85 <= per_user.mean() <= 115 and per_user.min() >= 50 and per_user.max() <= 160
    assert set(ev.tier) == {"warm", "hot"}  # only engaged users have pre-cutoff interactions
    assert stats["tiers"]["warm"] + stats["tiers"]["hot"] == len(per_user)
    kinds = ev.kind.value_counts(normalize=True)
    assert kinds["product_viewed"] > 0.5 and kinds["added_to_cart"] > 0.05
    assert kinds["order_placed"] > 0.03 and kinds["clicked"] > 0.1
    test_clicks = _q(path, "SELECT n_test_clicks FROM synth_truth.world").n_test_clicks[0]
    assert test_clicks == stats["n_test_clicks"] > 100


def test_deterministic_per_seed(dense, tmp_path):
    path, _ = dense
    _gen(tmp_path / "again.duckdb", seed=0)
    _gen(tmp_path / "other.duckdb", seed=1)
    first, again, other = (_digests(p) for p in (path, tmp_path / "again.duckdb",
                                                 tmp_path / "other.duckdb"))
    assert first == again and len(first) == 13
    assert first["data_company_1950.import_orders"] != other["data_company_1950.import_orders"]
    assert first["synth_truth.users"] != other["synth_truth.users"]


def _top4_efficiency(path: Path) -> tuple[float, float]:
    """Mean true top-4 mass captured (relative to the best 4) per vehicle when ranking by the
    vehicle's own cart/order users and by everyone's."""
    ev = _q(path, INTERACTIONS_SQL)
    strong = ev[ev.kind.isin(["added_to_cart", "order_placed"]) & ev.vehicle_id.notna()]
    strong = strong.drop_duplicates(["user_id", "sku"])
    per_v = strong.groupby(["vehicle_id", "sku"]).size().rename("c")
    glob = strong.groupby("sku").size().rename("g")
    truth = _q(path, "SELECT vehicle_id, sku, prob FROM synth_truth.vehicle_preference")
    df = truth.join(per_v, on=["vehicle_id", "sku"]).join(glob, on="sku").fillna(0.0)
    eff_v, eff_g = [], []
    for _, d in df.groupby("vehicle_id"):
        best = d.prob.nlargest(4).sum()
        eff_v.append(d.sort_values(["c", "g", "sku"], ascending=[False, False, True])
                     .prob.head(4).sum() / best)
        eff_g.append(d.sort_values(["g", "sku"], ascending=[False, True]).prob.head(4).sum()
                     / best)
    return float(np.mean(eff_v)), float(np.mean(eff_g))


def test_signal_plants_per_vehicle_preferences(tmp_path):
    """Signal 0: every vehicle has the same true preference; signal 2: vehicles differ and the
    per-vehicle popularity of carts/orders finds each vehicle's best products far better than
    global popularity does."""
    _gen(tmp_path / "null.duckdb", signal=0.0)
    null = _q(tmp_path / "null.duckdb", "SELECT vehicle_id, sku, prob FROM "
                                        "synth_truth.vehicle_preference")
    wide = null.pivot(index="sku", columns="vehicle_id", values="prob")
    assert np.allclose(wide.to_numpy(), wide.to_numpy()[:, :1])
    _gen(tmp_path / "planted.duckdb", signal=2.0)
    planted = _q(tmp_path / "planted.duckdb", "SELECT vehicle_id, sku, prob FROM "
                                              "synth_truth.vehicle_preference")
    wide = planted.pivot(index="sku", columns="vehicle_id", values="prob")
    assert not np.allclose(wide.to_numpy(), wide.to_numpy()[:, :1])
    per_vehicle, global_ = _top4_efficiency(tmp_path / "planted.duckdb")
    assert per_vehicle >= 0.9 and per_vehicle > global_ + 0.1
