"""Start/stop the local BigQuery and GCS emulators as subprocesses (test tooling).

Kept in tests/, not in the package: only the tests start emulators (``tests/emulators.py``
holds the pytest fixtures built on this module).

Both bind 127.0.0.1 on a free port, are polled for health with a bounded timeout, and are
stopped by PID (terminate, then kill). ``emulator_env`` points the Google clients (and dagster-gcp's
``BigQueryResource`` / ``GCSResource``) at them with anonymous credentials, restoring everything
on exit.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BQ_PROJECT = "test-project"
LAUNCHER = Path(__file__).resolve().with_name("bq_emulator_launcher.py")
GCS_BUCKET = "test-bucket"


class EmulatorError(RuntimeError):
    """An emulator did not start or answer in time."""


@dataclass
class EmulatorProcess:
    """A running emulator: its URL, port, process and log file."""

    name: str
    url: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        """Last lines of the emulator's log (for error messages)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def requests(self, method: str, path_suffix: str) -> int:
        """How many ``method`` requests to a path ending in ``path_suffix`` the log shows so far.

        bqemulator logs one JSON line per HTTP request (log level info).
        """
        count = 0
        for line in self.log_path.read_text(errors="replace").splitlines():
            if '"http.request"' in line and f'"method": "{method}"' in line:
                if re.search(rf'"path": "[^"]*{re.escape(path_suffix)}"', line):
                    count += 1
        return count

    def stop(self, grace_s: float = 5.0) -> None:
        """Terminate the process by PID, killing it if it does not exit within ``grace_s``."""
        stop_process(self.proc, grace_s)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """Terminate ``proc`` (by its PID), then kill it if it is still alive after ``grace_s``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace_s)


def _wait_healthy(emu: EmulatorProcess, health_url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if emu.proc.poll() is not None:
            raise EmulatorError(
                f"{emu.name} exited with code {emu.proc.returncode} before answering:\n"
                f"{emu.log_tail()}"
            )
        try:
            with urllib.request.urlopen(health_url, timeout=2.0) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    emu.stop()
    raise EmulatorError(
        f"{emu.name} did not answer {health_url} within {timeout_s:.0f} s ({last}):\n"
        f"{emu.log_tail()}"
    )


def _spawn(name: str, cmd: list[str], port: int, log_dir: Path) -> EmulatorProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{port}.log"
    with open(log_path, "wb") as log_fh:
        proc = subprocess.Popen(
            cmd,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # the log is read while it runs
        )
    return EmulatorProcess(name, f"http://127.0.0.1:{port}", port, proc, log_path)


def start_bigquery_emulator(
    log_dir: Path, project: str = BQ_PROJECT, timeout_s: float = 60.0, log_level: str = "info"
) -> EmulatorProcess:
    """Start bqemulator (through the workaround launcher) and wait until its REST API answers."""
    port = free_port()
    cmd = [
        sys.executable, str(LAUNCHER), "start",
        "--rest-host", "127.0.0.1", "--rest-port", str(port),
        "--grpc-host", "127.0.0.1", "--grpc-port", "0",
        "--ephemeral", "--project", project, "--log-level", log_level,
    ]  # fmt: skip
    emu = _spawn("bqemulator", cmd, port, log_dir)
    emu.extra["project"] = project
    _wait_healthy(emu, f"{emu.url}/bigquery/v2/projects/{project}/datasets", timeout_s)
    return emu


def start_gcs_emulator(
    log_dir: Path, bucket: str = GCS_BUCKET, timeout_s: float = 60.0
) -> EmulatorProcess:
    """Start gcp-storage-emulator in memory with ``bucket`` and wait until it answers."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "gcp_storage_emulator",
        "start", "--host", "127.0.0.1", "--port", str(port),
        "--in-memory", "--default-bucket", bucket,
    ]  # fmt: skip
    emu = _spawn("gcs-emulator", cmd, port, log_dir)
    emu.extra["bucket"] = bucket
    _wait_healthy(emu, f"{emu.url}/storage/v1/b/{bucket}", timeout_s)
    return emu


@contextlib.contextmanager
def running(starter, *args, **kwargs) -> Iterator[EmulatorProcess]:  # noqa: ANN001
    """Context manager around ``start_*_emulator``: always stops the process on exit."""
    emu = starter(*args, **kwargs)
    try:
        yield emu
    finally:
        emu.stop()


def anonymous_credentials_default(*_args: object, **_kwargs: object) -> tuple:
    """Stand-in for ``google.auth.default``: anonymous credentials, no project."""
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials(), None


@contextlib.contextmanager
def emulator_env(
    bq: EmulatorProcess | None = None, gcs: EmulatorProcess | None = None
) -> Iterator[None]:
    """Point Google clients at the emulators (env vars + anonymous ADC); restore on exit."""
    import google.auth

    saved_env = {k: os.environ.get(k) for k in ("BIGQUERY_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")}
    saved_default = google.auth.default
    try:
        if bq is not None:
            os.environ["BIGQUERY_EMULATOR_HOST"] = bq.url
        if gcs is not None:
            os.environ["STORAGE_EMULATOR_HOST"] = gcs.url
        google.auth.default = anonymous_credentials_default
        yield
    finally:
        google.auth.default = saved_default
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def bigquery_client(bq: EmulatorProcess, project: str | None = None):  # noqa: ANN201
    """A google-cloud-bigquery client talking to the emulator (anonymous credentials)."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=project or bq.extra["project"],
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=bq.url),
    )


def storage_client(gcs: EmulatorProcess, project: str = BQ_PROJECT):  # noqa: ANN201
    """A google-cloud-storage client talking to the emulator (anonymous credentials)."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=gcs.url),
    )


# DuckDB column type -> BigQuery type, for mirroring a DuckDB warehouse into the emulator
_DUCKDB_TO_BQ = {
    "VARCHAR": "STRING", "DOUBLE": "FLOAT64", "FLOAT": "FLOAT64", "BIGINT": "INT64",
    "INTEGER": "INT64", "SMALLINT": "INT64", "TINYINT": "INT64", "HUGEINT": "INT64",
    "BOOLEAN": "BOOL", "DATE": "DATE", "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP", "TIMESTAMP_NS": "TIMESTAMP",
}  # fmt: skip


def bigquery_type(duckdb_type: str) -> str:
    """BigQuery type of a DuckDB column type (DECIMAL becomes FLOAT64); raises on others."""
    name = duckdb_type.upper()
    if name.startswith("DECIMAL"):
        return "FLOAT64"
    if name not in _DUCKDB_TO_BQ:
        raise ValueError(f"no BigQuery type for DuckDB type {duckdb_type!r}")
    return _DUCKDB_TO_BQ[name]


def copy_duckdb_warehouse(
    duckdb_path: str | Path,
    client,  # noqa: ANN001 - google.cloud.bigquery.Client
    datasets: dict[str, str] | None = None,
    timeout_s: float = 120.0,
) -> dict[str, int]:
    """Load the source-contract tables of a DuckDB warehouse file into BigQuery datasets.

    ``datasets`` maps role (``company``/``data``) to the target dataset (created if needed);
    defaults to the DuckDB schema names. Every column is copied (extra columns included) with an
    explicit schema. Returns ``{dataset.table: rows}``.
    """
    import duckdb
    from google.cloud import bigquery

    from holley_gnn_assets.warehouse.base import DUCKDB_DATASETS, SOURCE_CONTRACT
    from holley_gnn_assets.warehouse.bigquery import quiet_pandas_gbq_notices

    datasets = dict(datasets or DUCKDB_DATASETS)
    loaded: dict[str, int] = {}
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        for role, tables in SOURCE_CONTRACT.items():
            target_ds = f"{client.project}.{datasets[role]}"
            client.create_dataset(target_ds, exists_ok=True, timeout=timeout_s)
            for table in tables:
                src = f"{DUCKDB_DATASETS[role]}.{table}"
                described = con.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                    [DUCKDB_DATASETS[role], table],
                ).fetchall()
                if not described:
                    continue  # a deliberately missing table stays missing
                schema = [bigquery.SchemaField(c, bigquery_type(t)) for c, t in described]
                frame = con.execute(f"SELECT * FROM {src}").df()
                for field_ in schema:
                    if field_.field_type == "TIMESTAMP":
                        col = pd_to_utc(frame[field_.name])
                        frame[field_.name] = col
                config = bigquery.LoadJobConfig(
                    schema=schema, write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE
                )
                with quiet_pandas_gbq_notices():
                    job = client.load_table_from_dataframe(
                        frame, f"{target_ds}.{table}", job_config=config
                    )
                job.result(timeout=timeout_s)
                loaded[f"{datasets[role]}.{table}"] = len(frame)
    finally:
        con.close()
    return loaded


def pd_to_utc(col):  # noqa: ANN001, ANN201 - pandas Series
    """Naive datetimes read as UTC (DuckDB TIMESTAMP has no zone; BigQuery TIMESTAMP is UTC)."""
    import pandas as pd

    col = pd.to_datetime(col)
    return col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")
