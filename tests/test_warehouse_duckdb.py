"""DuckDBWarehouse: references, contract checks, errors, atomic output writes, synth extras."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from micro_warehouse import build_micro_warehouse

from holley_gnn_assets.warehouse import duckdb as warehouse_duckdb
from holley_gnn_assets.warehouse.base import WarehouseError
from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse


@pytest.fixture()
def wh(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(
        build_micro_warehouse(
            tmp_path / "wh.duckdb",
            {
                "import_items": [
                    {
                        "sku": "A",
                        "PartType": "Carb",
                        "price": 10.0,
                        "image_url": "https://x",
                        "title": "t",
                    }
                ],
            },
        )
    )


SCHEMA = {"email_lower": "string", "rec1_score": "float64"}


def _output(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "email_lower": [f"user{i}@x.com" for i in range(n)],
            "rec1_score": [float(i) / 3 for i in range(n)],
        }
    )


def test_nonexistent_path_names_the_synth_command(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "wh.duckdb"
    wh = DuckDBWarehouse(missing)
    for call in (wh.validate_contract, lambda: wh.query_df("SELECT 1"), wh.synthetic_as_of):
        with pytest.raises(WarehouseError) as err:
            call()
        assert str(missing) in str(err.value) and "holley-gnn synth --out" in str(err.value)
    assert not missing.exists()


def test_table_ref_columns_and_contract(wh: DuckDBWarehouse) -> None:
    assert wh.table_ref("company", "treatment_interaction") == (
        "company_1950.treatment_interaction"
    )
    assert wh.table_ref("data", "import_items") == "data_company_1950.import_items"
    assert wh.dataset_refs() == {"company": "company_1950", "data": "data_company_1950"}
    assert wh.columns("data", "import_items") == ["sku", "PartType", "price", "image_url", "title"]
    assert wh.columns("data", "no_such_table") is None
    wh.validate_contract()
    with pytest.raises(WarehouseError, match="role"):
        wh.table_ref("other", "import_items")
    with pytest.raises(WarehouseError, match="identifier"):
        wh.table_ref("data", "x; DROP TABLE y")


def test_contract_errors_name_table_and_column(tmp_path: Path) -> None:
    no_col = DuckDBWarehouse(
        build_micro_warehouse(tmp_path / "a.duckdb", drop_columns={"import_orders": ["order_date"]})
    )
    with pytest.raises(WarehouseError, match=r"data_company_1950\.import_orders.*'order_date'"):
        no_col.validate_contract()
    no_table = DuckDBWarehouse(
        build_micro_warehouse(tmp_path / "b.duckdb", drop_tables=["treatment_interaction"])
    )
    with pytest.raises(WarehouseError, match=r"company_1950\.treatment_interaction is missing"):
        no_table.validate_contract()


def test_query_errors_become_warehouse_errors(wh: DuckDBWarehouse) -> None:
    with pytest.raises(WarehouseError, match=r"column 'nope'.*"):
        wh.query_df("SELECT nope FROM data_company_1950.import_items")
    with pytest.raises(WarehouseError, match=r"table .*missing_table.* is missing"):
        wh.query_df("SELECT 1 FROM data_company_1950.missing_table")


def test_query_df_runs_bigquery_dialect(wh: DuckDBWarehouse) -> None:
    df = wh.query_df(
        "SELECT sku, REGEXP_CONTAINS(sku, r'^[A-Z]$') AS ok, "
        "COUNTIF(price > 5) AS n FROM data_company_1950.import_items GROUP BY sku"
    )
    assert df.to_dict("records") == [{"sku": "A", "ok": True, "n": 1}]


def test_write_and_read_output_table(wh: DuckDBWarehouse) -> None:
    assert wh.read_output_table("temp_holley_gnn", "recommendations") is None
    wh.load_table(_output(3), "temp_holley_gnn", "recommendations", SCHEMA)
    got = wh.read_output_table("temp_holley_gnn", "recommendations")
    pd.testing.assert_frame_equal(got, _output(3), check_dtype=False)
    wh.load_table(_output(5), "temp_holley_gnn", "recommendations", SCHEMA)
    assert len(wh.read_output_table("temp_holley_gnn", "recommendations")) == 5
    with duckdb.connect(str(wh.path), read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'temp_holley_gnn'"
            ).fetchall()
        ]
    assert tables == ["recommendations"]  # no staging table left behind


def test_failing_swap_leaves_previous_table_unchanged(
    wh: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh.load_table(_output(3), "temp_holley_gnn", "recommendations", SCHEMA)
    before = wh.read_output_table("temp_holley_gnn", "recommendations")
    real = warehouse_duckdb._swap_statements

    def replace_then_fail(target: str, staging: str) -> list[str]:
        # the real swap runs, then the transaction hits an error before COMMIT
        return [*real(target, staging), "SELECT * FROM no_such_schema.no_such_table"]

    monkeypatch.setattr(warehouse_duckdb, "_swap_statements", replace_then_fail)
    with pytest.raises(WarehouseError, match="previous table is unchanged"):
        wh.load_table(_output(7), "temp_holley_gnn", "recommendations", SCHEMA)
    after = wh.read_output_table("temp_holley_gnn", "recommendations")
    pd.testing.assert_frame_equal(after, before, check_exact=True)
    assert list(after.dtypes) == list(before.dtypes)


def test_rejected_output_leaves_previous_table_unchanged(wh: DuckDBWarehouse) -> None:
    wh.load_table(_output(2), "temp_holley_gnn", "recommendations", SCHEMA)
    before = wh.read_output_table("temp_holley_gnn", "recommendations")
    bad = pd.DataFrame([["a", "b"]], columns=["email_lower", "email_lower"])  # duplicate name
    with pytest.raises(WarehouseError, match="duplicate columns"):
        wh.load_table(bad, "temp_holley_gnn", "recommendations", SCHEMA)
    pd.testing.assert_frame_equal(
        wh.read_output_table("temp_holley_gnn", "recommendations"), before, check_exact=True
    )
    with pytest.raises(WarehouseError, match="identifier"):
        wh.load_table(_output(1), "temp; DROP", "recommendations", SCHEMA)


def test_synthetic_as_of_and_truth(tmp_path: Path, wh: DuckDBWarehouse) -> None:
    assert wh.synthetic_as_of() is None and wh.read_truth() is None
    truth = pd.DataFrame(
        {"vehicle_id": ["1969|CHEVROLET|CAMARO"], "part_type": ["Carb"], "affinity": [0.7]}
    )
    synth = DuckDBWarehouse(
        build_micro_warehouse(tmp_path / "s.duckdb", as_of="2026-03-01", truth=truth)
    )
    assert synth.synthetic_as_of() == dt.date(2026, 3, 1)
    pd.testing.assert_frame_equal(synth.read_truth(), truth)
    assert synth.describe() == {"kind": "duckdb", "path": str(synth.path)}


def test_materialize_and_replace_are_all_or_nothing(tmp_path: Path) -> None:
    """A statement that fails leaves the previous table whole; a copy replaces it in one go."""
    from holley_gnn_assets.config.settings import TimeWindows, load_config
    from holley_gnn_assets.warehouse.sql import sql_params

    wh = DuckDBWarehouse(build_micro_warehouse(tmp_path / "m.duckdb", {
        "import_items": [{"sku": "A", "PartType": "Carb", "price": 60.0,
                          "image_url": "https://x", "title": "t"}],
        "vehicle_product_fitment_data": [{"sku": "A", "year": "1969", "make": "Ford",
                                          "model": "Mustang"}],
    }))
    cfg = load_config()
    params = sql_params(cfg, TimeWindows.from_config(cfg, dt.date(2026, 3, 31)),
                        wh.dataset_refs())
    wh.materialize("baseline/scores.sql", "scores", params, "stage", "s")
    first = wh.read_output_table("stage", "s")
    assert first.to_dict("records") == [
        {"vehicle_id": "1969|FORD|MUSTANG", "email_lower": None, "sku": "A", "score": 0.0}]
    broken = {**params, "data": params["company"]}  # import_items is not in that schema
    with pytest.raises(WarehouseError, match="previous table is unchanged"):
        wh.materialize("baseline/scores.sql", "scores", broken, "stage", "s")
    pd.testing.assert_frame_equal(wh.read_output_table("stage", "s"), first)
    wh.replace_table(("stage", "s"), ("output", "copy"))
    pd.testing.assert_frame_equal(wh.read_output_table("output", "copy"), first)
