"""Tests of the generator's parameters: scale presets, overrides, errors, as-of, progress."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from holley_gnn_assets.synth import SCALES, generate_warehouse


def _gen(path: Path, **kw) -> dict:
    kw.setdefault("scale", "tiny")
    kw.setdefault("progress", False)
    return generate_warehouse(path, **kw)


def _q(path: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql).df()


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="bogus"):
        _gen(tmp_path / "x.duckdb", bogus=1)
    with pytest.raises(ValueError, match="warm_share"):
        _gen(tmp_path / "x.duckdb", warm_share=1.5)
    with pytest.raises(ValueError, match="signal"):
        _gen(tmp_path / "x.duckdb", signal=-1.0)
    with pytest.raises(ValueError, match="as_of"):
        _gen(tmp_path / "x.duckdb", as_of="2026-13-01")
    assert not (tmp_path / "x.duckdb").exists()


def test_overrides_and_as_of(tmp_path):
    path = tmp_path / "o.duckdb"
    stats = _gen(path, warm_share=0.1, hot_share=0.05, as_of=dt.date(2026, 6, 1))
    assert stats["tiers"]["warm"] == 200 and stats["tiers"]["hot"] == 100
    world = _q(path, "SELECT as_of, cutoff FROM synth_truth.world")
    assert world.as_of[0] == pd.Timestamp(2026, 6, 1) and world.cutoff[0] == pd.Timestamp(
        2026, 5, 2
    )
    late = _q(path, "SELECT MAX(order_date) AS m FROM data_company_1950.import_orders").m[0]
    assert late < pd.Timestamp(2026, 6, 1)


def test_progress_lines_name_no_email(tmp_path, capsys):
    _gen(tmp_path / "p.duckdb", progress=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 4 and all(line.startswith("synth: ") for line in err)
    assert not any("@" in line for line in err)


def test_scale_presets_match_the_spec():
    full, demo, tiny_ = SCALES["full"], SCALES["demo"], SCALES["tiny"]
    assert (full["n_users"], full["n_products"], full["n_vehicles"]) == (475_000, 25_000, 2_000)
    assert 2_000 <= full["n_test_clicks"] <= 5_000 and 2_500 <= demo["n_test_clicks"] <= 4_000
    assert 300 <= tiny_["n_test_clicks"] <= 600
    assert 40 <= full["n_part_types"] <= 80


def test_dense_presets_and_their_guards(tmp_path):
    dense = SCALES["dense"]
    assert (dense["n_users"], dense["n_products"]) == (1_000, 1_700)
    assert dense["warm_share"] + dense["hot_share"] >= 0.85
    assert dense["engaged_interactions"] == 100.0
    assert SCALES["dense_tiny"]["n_users"] <= 200
    cold = SCALES["dense_cold"]  # dense, plus a vehicle-only audience of at least half
    assert cold["dense"] and 1 - cold["warm_share"] - cold["hot_share"] >= 0.5
    assert cold["n_users"] * (cold["warm_share"] + cold["hot_share"]) / cold["n_vehicles"] >= 40
    with pytest.raises(ValueError, match="dense"):
        _gen(tmp_path / "d.duckdb", scale="dense_tiny", scope_none=0.1, scope_universal=0.9)
    with pytest.raises(ValueError, match="fixed by the scale"):
        _gen(tmp_path / "d.duckdb", scale="dense_tiny", dense=False)
    with pytest.raises(ValueError, match="engaged_interactions"):
        _gen(tmp_path / "d.duckdb", scale="tiny", engaged_interactions=50.0)
    assert not (tmp_path / "d.duckdb").exists()
