"""The A/B assignment SQL through BigQueryWarehouse on the local BigQuery emulator: the same
buckets as the SHA-256 twin (and so as DuckDB, tests/test_ab_assignment.py)."""

from __future__ import annotations

import pandas as pd
import pytest
from test_ab_assignment import output_rows

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.recommend import ab_assignment as ab
from holley_gnn_assets.warehouse.schemas import OUTPUT_TYPES

pytest_plugins = ["emulators"]
pytestmark = pytest.mark.bigquery

EMAILS = [f"user{i:03d}@example.com" for i in range(200)] + ["josé.núñez@correo.es"]


def test_assignment_on_the_bigquery_emulator(bq_datasets, bq_warehouse) -> None:
    cfg = load_config(overrides={"output": {"dataset": bq_datasets.output},
                                 "ab_test": {"salt": "it's a salt"}})
    bq_warehouse.load_table(output_rows(EMAILS), bq_datasets.output,
                            cfg["output"]["table"], OUTPUT_TYPES)
    summary = ab.write_assignment(bq_warehouse, cfg)
    got = bq_warehouse.read_output_table(bq_datasets.output, "ab_assignment")
    got = got.sort_values("email_lower").reset_index(drop=True)
    assert summary["rows"] == len(got) == len(EMAILS)
    salt = cfg["ab_test"]["salt"]
    assert [int(b) for b in got["bucket"]] == [ab.bucket_of(e, salt) for e in got["email_lower"]]
    assert got["arm"].tolist() == [ab.arm_of(e, salt) for e in got["email_lower"]]
    assert isinstance(got, pd.DataFrame) and set(got["salt_id"]) == {ab.salt_id(salt)}
