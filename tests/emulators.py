"""Pytest fixtures for the local BigQuery and GCS emulators (reusable by any test).

Load with ``pytest_plugins = ["emulators"]`` in ``tests/conftest.py`` (or import the fixtures).
The emulators are session-scoped subprocesses on free 127.0.0.1 ports, stopped by PID at the
end of the session even when tests fail. Environment variables and ``google.auth.default`` are
changed only inside ``emulator_environment`` (function scope) and restored afterwards.

- ``bq_emulator`` / ``gcs_emulator``: :class:`EmulatorProcess` (``url``, ``port``, ``pid``,
  ``extra["project"]`` / ``extra["bucket"]``, ``requests(method, path_suffix)``).
- ``emulator_environment``: BIGQUERY_EMULATOR_HOST, STORAGE_EMULATOR_HOST and anonymous ADC set,
  so dagster-gcp's ``BigQueryResource``/``GCSResource`` and default clients reach the emulators.
- ``bq_client`` / ``gcs_client``: clients bound to the emulators (no env needed).
- ``bq_datasets``: fresh, uniquely named company/data/output datasets, deleted afterwards.
- ``bq_warehouse``: a :class:`BigQueryWarehouse` over ``bq_datasets`` (Storage API off).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

# gcsfs >= 2026.10 probes each bucket's type over gRPC (Storage Control API) unless this is
# off; the emulator does not serve that API (60 s timeout per probe). Read at gcsfs import.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

from emulator_processes import (
    EmulatorProcess,
    bigquery_client,
    emulator_env,
    start_bigquery_emulator,
    start_gcs_emulator,
    storage_client,
)


@pytest.fixture(scope="session")
def bq_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """A running bqemulator (ephemeral) for the whole session."""
    pytest.importorskip("bqemulator", reason="bqemulator is in the [test] extra")
    emu = start_bigquery_emulator(tmp_path_factory.mktemp("bqemulator"))
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """A running gcp-storage-emulator (in memory, one default bucket) for the whole session."""
    pytest.importorskip("gcp_storage_emulator", reason="gcp-storage-emulator is in [test]")
    emu = start_gcs_emulator(tmp_path_factory.mktemp("gcs-emulator"))
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def emulator_environment(
    bq_emulator: EmulatorProcess, gcs_emulator: EmulatorProcess
) -> Iterator[dict[str, str]]:
    """Env + anonymous credentials pointing default Google clients at both emulators."""
    with emulator_env(bq_emulator, gcs_emulator):
        yield {
            "BIGQUERY_EMULATOR_HOST": bq_emulator.url,
            "STORAGE_EMULATOR_HOST": gcs_emulator.url,
            "project": bq_emulator.extra["project"],
            "bucket": gcs_emulator.extra["bucket"],
        }


@pytest.fixture
def bq_client(bq_emulator: EmulatorProcess):  # noqa: ANN201
    """A google-cloud-bigquery client bound to the emulator."""
    client = bigquery_client(bq_emulator)
    yield client
    client.close()


@pytest.fixture
def gcs_client(gcs_emulator: EmulatorProcess):  # noqa: ANN201
    """A google-cloud-storage client bound to the emulator."""
    return storage_client(gcs_emulator)


@dataclass(frozen=True)
class BQDatasets:
    """Dataset names of one test (unique per test, so tests never share tables)."""

    project: str
    company: str
    data: str
    output: str


@pytest.fixture
def bq_datasets(bq_emulator: EmulatorProcess, bq_client) -> Iterator[BQDatasets]:  # noqa: ANN001
    """Fresh company/data/output datasets in the emulator; deleted with their tables after."""
    tag = uuid.uuid4().hex[:8]
    names = BQDatasets(bq_emulator.extra["project"], f"company_{tag}", f"data_{tag}", f"out_{tag}")
    for ds in (names.company, names.data, names.output):
        bq_client.create_dataset(f"{names.project}.{ds}", timeout=30)
    try:
        yield names
    finally:
        for ds in (names.company, names.data, names.output):
            bq_client.delete_dataset(
                f"{names.project}.{ds}", delete_contents=True, not_found_ok=True, timeout=30
            )


@pytest.fixture
def bq_warehouse(bq_emulator: EmulatorProcess, bq_datasets: BQDatasets):  # noqa: ANN201
    """A BigQueryWarehouse over this test's datasets (short retry deadline, no Storage API)."""
    from holley_gnn_assets.warehouse.bigquery import BigQueryWarehouse

    wh = BigQueryWarehouse(
        lambda: bigquery_client(bq_emulator),
        project=bq_datasets.project,
        company_dataset=bq_datasets.company,
        data_dataset=bq_datasets.data,
        location="US",
        job_timeout_s=60,
        use_storage_api=False,
        retry_deadline_s=10,
    )
    try:
        yield wh
    finally:
        wh.close()
