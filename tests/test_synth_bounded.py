"""Big-basket and broad-fitment worlds of the generator (issue 27), on their tiny presets."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from holley_gnn_assets.synth import orders
from holley_gnn_assets.synth.generator import generate_warehouse
from holley_gnn_assets.synth.scales import SCALES, resolve_params


def _world(tmp_path: Path, scale: str) -> duckdb.DuckDBPyConnection:
    path = tmp_path / f"{scale}.duckdb"
    generate_warehouse(path, scale=scale, seed=0, progress=False)
    return duckdb.connect(str(path), read_only=True)


def test_presets_exist_with_their_knobs() -> None:
    for name in ("big_basket_tiny", "big_basket_demo", "big_basket_full"):
        assert SCALES[name]["basket_median"] > 0
    for name in ("broad_tiny", "broad_demo", "broad_100k"):
        assert SCALES[name]["scope_universal"] == 1.0
        assert SCALES[name]["warm_share"] + SCALES[name]["hot_share"] < 0.5  # mostly cold
    assert (SCALES["broad_demo"]["n_users"], SCALES["broad_demo"]["n_products"]) == (4000, 4000)
    assert SCALES["broad_100k"]["n_users"] == 100_000
    assert SCALES["demo"]["basket_median"] == 0  # the spec worlds keep their bundle model


def test_basket_sizes_are_heavy_tailed() -> None:
    params = resolve_params("big_basket_demo", {})
    sizes = orders.basket_sizes(params, 20_000, np.random.default_rng(0))
    assert 20 <= np.median(sizes) <= 30  # drawn; duplicate lines merge to ~15
    assert sizes.max() == params["basket_max"] and sizes.min() >= 1
    bundles = orders.basket_sizes(resolve_params("demo", {}), 20_000,
                                     np.random.default_rng(0))
    assert set(np.unique(bundles)) == {1, 2, 3, 4}


def test_bad_basket_median_is_named() -> None:
    # the range is named (an unknown key, as before the knob existed, would not match)
    with pytest.raises(ValueError, match=r"basket_median=5000.0 must lie in \[1, basket_max=450\]"):
        resolve_params("tiny", {"basket_median": 5000.0})


def test_big_basket_tiny_world_has_big_orders(tmp_path: Path) -> None:
    con = _world(tmp_path, "big_basket_tiny")
    med, top = con.execute(
        "SELECT MEDIAN(n), MAX(n) FROM (SELECT order_id, COUNT(*) AS n "
        "FROM data_company_1950.import_orders GROUP BY 1)").fetchone()
    assert 10 <= med <= 25 and top >= 60


def test_broad_tiny_world_fits_every_product_to_every_vehicle(tmp_path: Path) -> None:
    con = _world(tmp_path, "broad_tiny")
    n_rows, n_sku, n_veh = con.execute(
        "SELECT COUNT(*), COUNT(DISTINCT sku), COUNT(DISTINCT (year, make, model)) "
        "FROM (SELECT DISTINCT sku, year, UPPER(TRIM(make)) AS make, UPPER(TRIM(model)) AS model"
        " FROM data_company_1950.vehicle_product_fitment_data)").fetchone()
    assert n_sku == SCALES["broad_tiny"]["n_products"] or n_sku > 250
    assert n_rows == n_sku * n_veh
