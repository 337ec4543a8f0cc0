"""The A/B assignment table: built by the warehouse (sql/ab/assignment.sql, real DuckDB), the
same rows in every run, 50/50 within noise, a new salt reshuffles, an empty salt is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from scipy.stats import binomtest

from holley_gnn_assets.config.settings import load_config, load_settings
from holley_gnn_assets.config.validation import SettingsError
from holley_gnn_assets.recommend import ab_assignment as ab
from holley_gnn_assets.warehouse.base import WarehouseError
from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS, OUTPUT_TYPES

EMAILS = [f"user{i:05d}@example.com" for i in range(10_000)] + ["josé.núñez@correo.es"]


def output_rows(emails: list[str]) -> pd.DataFrame:
    """A recommendations output table (OUTPUT_COLUMNS) for ``emails``, no recommendation."""
    df = pd.DataFrame({c: None for c in OUTPUT_COLUMNS}, index=range(len(emails)))
    df["email_lower"] = emails
    df["year"], df["make"], df["model"] = "1969", "CHEVROLET", "CAMARO"
    return df


def warehouse_with_output(path: Path, cfg: dict, emails: list[str]) -> DuckDBWarehouse:
    duckdb.connect(str(path)).close()  # an empty warehouse file
    wh = DuckDBWarehouse(path)
    wh.load_table(output_rows(emails), cfg["output"]["dataset"], cfg["output"]["table"],
                  OUTPUT_TYPES)
    return wh


def read_assignment(wh: DuckDBWarehouse, cfg: dict) -> pd.DataFrame:
    df = wh.read_output_table(cfg["output"]["dataset"], cfg["ab_test"]["table"])
    assert df is not None
    return df.sort_values("email_lower").reset_index(drop=True)


@pytest.fixture(scope="module")
def cfg() -> dict:
    return load_config(overrides={"ab_test": {"salt": "test-salt-v1"}})


@pytest.fixture(scope="module")
def assigned(tmp_path_factory: pytest.TempPathFactory, cfg: dict):
    wh = warehouse_with_output(tmp_path_factory.mktemp("ab") / "wh.duckdb", cfg, EMAILS)
    summary = ab.write_assignment(wh, cfg)
    return wh, summary, read_assignment(wh, cfg)


def test_empty_salt_is_a_named_error_at_settings_load() -> None:
    for salt in ("", "  "):
        with pytest.raises(SettingsError, match=r"ab_test\.salt=.*salt is empty"):
            load_settings(env={}, overrides={"ab_test": {"salt": salt}})
    with pytest.raises(SettingsError, match=r"ab_test\.write_assignment"):
        load_settings(env={}, overrides={"ab_test": {"write_assignment": "sometimes"}})
    assert load_settings(env={}).cfg["ab_test"]["salt"]  # the packaged default is non-empty


def test_sql_buckets_equal_the_sha256_twin(assigned, cfg: dict) -> None:
    """DuckDB runs the BigQuery SQL (TO_HEX(SHA256), CAST('0x..' AS INT64)): same bucket as
    hashlib, i.e. the standard digest BigQuery computes."""
    _, summary, df = assigned
    assert list(df.columns) == ab.ASSIGNMENT_COLUMNS
    assert len(df) == len(EMAILS) == summary["rows"]
    salt = cfg["ab_test"]["salt"]
    digest = {e: int(hashlib.sha256(f"{salt}:{e}".encode()).hexdigest()[:8], 16) % 10_000
              for e in EMAILS}
    assert df["bucket"].tolist() == [digest[e] for e in df["email_lower"]]
    assert df["arm"].tolist() == [ab.arm_of(e, salt) for e in df["email_lower"]]
    assert set(df["arm"]) == {"gnn", "sql"}
    assert (df["vehicle_id"] == "1969|CHEVROLET|CAMARO").all()
    assert set(df["salt_id"]) == {ab.salt_id(salt)} and salt not in summary["salt_id"]


def test_split_is_fifty_fifty_within_noise(assigned) -> None:
    _, summary, df = assigned
    n, n_gnn = len(df), int((df["arm"] == "gnn").sum())
    assert summary["users_gnn"] == n_gnn and summary["users_sql"] == n - n_gnn
    z = (n_gnn - n / 2) / (n**0.5 / 2)
    assert abs(z) < 4, f"{n_gnn} of {n} in the GNN arm (z = {z:.2f})"
    assert binomtest(n_gnn, n, 0.5).pvalue > 1e-4


def test_two_writes_give_identical_rows(assigned, cfg: dict) -> None:
    wh, summary, first = assigned
    again = ab.write_assignment(wh, cfg)
    assert again == summary
    pd.testing.assert_frame_equal(read_assignment(wh, cfg), first)


def test_a_user_keeps_the_arm_when_others_come_and_go(tmp_path: Path, cfg: dict,
                                                      assigned) -> None:
    """The arm depends on the salt and the email only, not on who else is in the table."""
    _, _, full = assigned
    subset = EMAILS[::7]
    wh = warehouse_with_output(tmp_path / "wh.duckdb", cfg, subset)
    ab.write_assignment(wh, cfg)
    part = read_assignment(wh, cfg)
    expected = full[full["email_lower"].isin(subset)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, expected)


def test_another_salt_reshuffles(tmp_path: Path, cfg: dict, assigned) -> None:
    _, _, first = assigned
    other = {**cfg, "ab_test": {**cfg["ab_test"], "salt": "test-salt-v2"}}
    wh = warehouse_with_output(tmp_path / "wh.duckdb", other, EMAILS)
    summary = ab.write_assignment(wh, other)
    second = read_assignment(wh, other)
    assert summary["salt_id"] != ab.salt_id(cfg["ab_test"]["salt"])
    switched = float((second["arm"] != first["arm"]).mean())
    assert 0.45 < switched < 0.55, switched  # independent hashes: about half switch arms


def test_treatment_share_and_quoted_salt(tmp_path: Path, cfg: dict) -> None:
    salt = "it's a \\ salt"
    other = {**cfg, "ab_test": {**cfg["ab_test"], "salt": salt, "treatment_share": 0.3}}
    wh = warehouse_with_output(tmp_path / "wh.duckdb", other, EMAILS)
    ab.write_assignment(wh, other)
    df = read_assignment(wh, other)
    assert df["arm"].tolist() == [ab.arm_of(e, salt, 0.3) for e in df["email_lower"]]
    n_gnn = int((df["arm"] == "gnn").sum())
    assert binomtest(n_gnn, len(df), 0.3).pvalue > 1e-4


def test_no_output_table_is_named_and_the_previous_assignment_stays(tmp_path: Path,
                                                                     cfg: dict) -> None:
    wh = warehouse_with_output(tmp_path / "wh.duckdb", cfg, EMAILS[:50])
    ab.write_assignment(wh, cfg)
    before = read_assignment(wh, cfg)
    moved = {**cfg, "output": {**cfg["output"], "table": "no_such_table"}}
    with pytest.raises(WarehouseError, match="no_such_table"):
        ab.write_assignment(wh, moved)
    pd.testing.assert_frame_equal(read_assignment(wh, cfg), before)
    assert ab.audience_size(wh, moved) is None and ab.audience_size(wh, cfg) == 50


@pytest.mark.parametrize(("decision", "mode", "write"), [
    ("clear_win", "on_clear_win", True), ("marginal", "on_clear_win", False),
    ("inconclusive", "on_clear_win", False), (None, "on_clear_win", False),
    ("worse", "always", True), ("clear_win", "never", False),
])
def test_write_policy(decision: str | None, mode: str, write: bool) -> None:
    ok, reason = ab.should_write(decision, mode)
    assert ok is write
    assert (mode in reason) or (decision in reason)
