"""Worlds with time (synth/time_model.py): the knobs are recorded in the truth, seasons shape
demand, launched products appear only after their launch, declined ones fade out, orders-only
logs hold no views, carts or email clicks before the cutoff, and the oracle reads the truth at
the test window."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from holley_gnn_assets.synth import SCALES, generate_warehouse
from holley_gnn_assets.synth.scales import resolve_params


def _q(path: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql).df()


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("time")
    out = {}
    for scale in ("seasonal_tiny", "launches_tiny", "orders_only_tiny"):
        out[scale] = root / f"{scale}.duckdb"
        generate_warehouse(out[scale], scale=scale, seed=5, signal=2.0, progress=False)
    return out


def test_presets_and_overrides_of_the_time_knobs() -> None:
    for size in ("tiny", "demo", "full"):
        assert SCALES[f"seasonal_{size}"]["seasonal_amplitude"] > 0
        assert SCALES[f"launches_{size}"]["launch_share"] > 0
        assert SCALES[f"orders_only_{size}"]["orders_only"] is True
        assert SCALES[f"seasonal_{size}"]["n_users"] == SCALES[size]["n_users"]
    assert resolve_params("tiny", {"orders_only": True})["orders_only"] is True
    with pytest.raises(ValueError, match="orders_only"):
        resolve_params("tiny", {"orders_only": 1})
    with pytest.raises(ValueError, match="seasonal_amplitude"):
        resolve_params("tiny", {"seasonal_amplitude": 1.5})
    with pytest.raises(ValueError, match="launch_share"):
        resolve_params("tiny", {"launch_share": 2.0})


def test_truth_records_the_knobs_and_a_stationary_world_has_none(worlds, tmp_path) -> None:
    params = _q(worlds["launches_tiny"], "SELECT params FROM synth_truth.world").params[0]
    assert '"launch_share": 0.05' in params and '"decline_share": 0.02' in params
    prod = _q(worlds["launches_tiny"], "SELECT * FROM synth_truth.products")
    n = len(prod)
    assert prod["launch_date"].notna().sum() == round(0.05 * n)
    assert prod["decline_date"].notna().sum() == round(0.02 * n)
    assert prod["trending"].sum() == round(0.05 * n)
    # declined products are gone by the test window, launched ones boosted
    assert (prod.loc[prod["decline_date"].notna(), "time_factor"] == 0).all()
    assert prod.loc[prod["launch_date"].notna(), "time_factor"].min() > 1.0
    plain = tmp_path / "plain.duckdb"
    generate_warehouse(plain, scale="tiny", seed=5, signal=2.0, progress=False)
    p = _q(plain, "SELECT * FROM synth_truth.products")
    assert (p["time_factor"] == 1.0).all() and p["launch_date"].isna().all()


def test_seasonal_demand_follows_each_cluster_phase(worlds, tmp_path) -> None:
    sql = """SELECT DAYOFYEAR(o.order_date) AS doy, p.season_peak_day AS peak
             FROM data_company_1950.import_orders o JOIN synth_truth.products p USING (sku)"""
    d = _q(worlds["seasonal_tiny"], sql)
    cos = np.cos(2 * np.pi * (d["doy"] - d["peak"]) / 365.25)
    # E[cos] under 1 + a cos(.) is a/2 = 0.4 (0 with no season)
    assert cos.mean() > 0.25, cos.mean()
    # the same world without seasons: orders are spread over the phase (peak days of the
    # seasonal world's clusters, which the stationary draw ignores)
    plain = tmp_path / "plain.duckdb"
    generate_warehouse(plain, scale="tiny", seed=5, signal=2.0, progress=False)
    peaks = _q(worlds["seasonal_tiny"], "SELECT sku, season_peak_day FROM synth_truth.products")
    o = _q(plain, "SELECT DAYOFYEAR(order_date) AS doy, sku FROM data_company_1950.import_orders")
    o = o.merge(peaks, on="sku")
    assert abs(np.cos(2 * np.pi * (o["doy"] - o["season_peak_day"]) / 365.25).mean()) < 0.1


def test_launched_products_appear_only_after_launch_and_declined_ones_fade(worlds) -> None:
    path = worlds["launches_tiny"]
    facts = """
      SELECT sku, order_date AS ts FROM data_company_1950.import_orders
      UNION ALL SELECT sku, event_timestamp FROM company_1950.ingestion_unified_schema_incremental
        WHERE event_name IN ('product_viewed', 'added_to_cart', 'order_placed')
      UNION ALL SELECT sku, interaction_timestamp FROM company_1950.treatment_interaction
        WHERE interaction_type = 'CLICKED'"""
    f = _q(path, f"""SELECT f.ts, p.launch_date, p.decline_date FROM ({facts}) f
                     JOIN synth_truth.products p USING (sku)""")
    launched = f[f["launch_date"].notna()]
    assert len(launched) > 0
    assert (launched["ts"] >= launched["launch_date"]).all()
    cutoff = _q(path, "SELECT cutoff FROM synth_truth.world").cutoff[0]
    early = _q(path, "SELECT MIN(launch_date) AS m FROM synth_truth.products").m[0]
    assert early >= cutoff - pd.Timedelta(days=43)
    # launched products sell in the test window (boosted), more than their catalogue share
    tc = _q(path, """SELECT AVG(CAST(p.launch_date IS NOT NULL AS INT)) AS s
                     FROM company_1950.treatment_interaction t
                     JOIN synth_truth.products p USING (sku), synth_truth.world w
                     WHERE t.interaction_type = 'CLICKED'
                       AND t.interaction_timestamp >= w.cutoff""")
    assert tc.s[0] > 0.05
    declined = f[f["decline_date"].notna()]
    assert len(declined) > 0
    assert (declined["ts"] < declined["decline_date"] + pd.Timedelta(days=90)).all()


def test_orders_only_log_has_no_views_carts_or_clicks_before_the_cutoff(worlds) -> None:
    path = worlds["orders_only_tiny"]
    site = _q(path, """SELECT e.event_name, COUNT(*) AS n
                       FROM company_1950.ingestion_unified_schema_incremental e,
                            synth_truth.world w
                       WHERE e.event_timestamp < w.cutoff GROUP BY 1""")
    names = set(site["event_name"])
    assert "order_placed" in names and not names & {"product_viewed", "added_to_cart"}
    clicks = _q(path, """SELECT SUM(CAST(t.interaction_timestamp < w.cutoff AS INT)) AS before,
                                SUM(CAST(t.interaction_timestamp >= w.cutoff AS INT)) AS after
                         FROM company_1950.treatment_interaction t, synth_truth.world w
                         WHERE t.interaction_type = 'CLICKED'""")
    assert clicks.before[0] == 0 and clicks.after[0] > 100  # the test clicks stay


def test_oracle_reads_the_truth_at_the_test_window() -> None:
    from holley_gnn_assets.config.settings import load_config
    from holley_gnn_assets.evaluation.reference_arms import reference_scores

    tables = {
        "product_nodes": pd.DataFrame({"sku": ["a", "b"], "order_count": [10, 5]}),
        "product_vehicle_edges": pd.DataFrame({"vehicle_id": ["v", "v"], "sku": ["a", "b"]}),
        "user_nodes": pd.DataFrame({"email_lower": ["u"], "vehicle_id": ["v"]}),
        "user_product_edges": None,
    }
    truth = pd.DataFrame({"vehicle_id": ["v", "v"], "sku": ["a", "b"], "prob": [0.6, 0.4],
                          "time_factor": [0.0, 2.0]})
    oracle = reference_scores(tables, load_config(), truth)["oracle"].set_index("sku")["score"]
    assert oracle["b"] > oracle["a"] == 0.0
