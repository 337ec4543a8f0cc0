"""BigQuery implementation of the Warehouse interface (production).

SQL files are BigQuery dialect and run here natively (no transpilation). Every job runs with a
server-side timeout (``job_timeout_ms``) and a client-side wait bound (``result(timeout=...)``).
Transient failures (HTTP 429/500/502/503/504, rate-limit and backend errors) are retried with
exponential backoff inside a bounded deadline; permanent ones (bad SQL, missing table, wrong
schema) fail at once as ``WarehouseError`` naming the table or statement at fault.

The client comes from a factory: anything returning a ``bigquery.Client`` or a context manager
yielding one, e.g. dagster-gcp's ``BigQueryResource.get_client`` (see ``from_resource``). No
credentials are handled here: the client finds them (ADC / workload identity).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pandas as pd
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from holley_gnn_assets.warehouse.base import ContractError, Warehouse, WarehouseError
from holley_gnn_assets.warehouse.bigquery_errors import (
    make_retry,
    not_found_name,
    quiet_pandas_gbq_notices,
    sql_head,
)
from holley_gnn_assets.warehouse.schemas import OUTPUT_TYPES

log = logging.getLogger(__name__)

def _field(name: str, kind: str) -> bigquery.SchemaField:
    """A NULLABLE field of a ``string``/``float64`` schema entry."""
    types = {"string": "STRING", "float64": "FLOAT64"}
    if kind not in types:
        raise WarehouseError(f"column {name} has unsupported type {kind!r}")
    return bigquery.SchemaField(name, types[kind], mode="NULLABLE")


# explicit schema of the recommendations table (spec §5, schemas.OUTPUT_TYPES)
OUTPUT_SCHEMA: list[bigquery.SchemaField] = [_field(c, k) for c, k in OUTPUT_TYPES.items()]


class BigQueryWarehouse(Warehouse):
    """Source tables in ``project.{company,data}_dataset``; output in ``output_project``."""

    def __init__(
        self,
        client_factory: Callable[[], Any] | None = None,
        *,
        project: str | None = None,
        company_dataset: str = "company_1950",
        data_dataset: str = "data_company_1950",
        output_project: str | None = None,
        location: str | None = "US",
        job_timeout_s: float = 600.0,
        use_storage_api: bool = True,
        retry_deadline_s: float = 300.0,
        retry_initial_s: float = 1.0,
    ) -> None:
        if client_factory is None:
            if not project:
                raise WarehouseError("BigQueryWarehouse needs a client_factory or a project")

            def client_factory() -> bigquery.Client:
                return bigquery.Client(project=project, location=location)

        self._client_factory = client_factory
        self._stack = contextlib.ExitStack()
        self._client: bigquery.Client | None = None
        self._project = project
        self.company_dataset = company_dataset
        self.data_dataset = data_dataset
        self._output_project = output_project
        self.location = location
        self.job_timeout_s = float(job_timeout_s)
        self.use_storage_api = bool(use_storage_api)
        storage_missing = importlib.util.find_spec("google.cloud.bigquery_storage") is None
        if self.use_storage_api and storage_missing:
            # google-cloud-bigquery would only warn and download through REST instead
            raise WarehouseError(
                "use_storage_api=True (HOLLEY_GNN_BQ_STORAGE_API) needs the package "
                "google-cloud-bigquery-storage, which is not installed"
            )
        # whole operations (a job, a metadata call) and single HTTP calls inside a job
        self.retry = make_retry(retry_deadline_s, initial_s=retry_initial_s)
        self.api_retry = make_retry(min(retry_deadline_s, 30.0), initial_s=retry_initial_s)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_resource(cls, resource: Any, **kwargs: Any) -> BigQueryWarehouse:
        """Build from dagster-gcp's ``BigQueryResource`` (its ``get_client`` context manager)."""
        kwargs.setdefault("project", getattr(resource, "project", None))
        kwargs.setdefault("location", getattr(resource, "location", None) or "US")
        return cls(resource.get_client, **kwargs)

    @classmethod
    def from_config(
        cls, cfg: dict, client_factory: Callable[[], Any] | None = None, **kwargs: Any
    ) -> BigQueryWarehouse:
        """Build from the ``warehouse.bigquery`` section of the (validated) pipeline config."""
        bq = cfg["warehouse"]["bigquery"]
        keys = ("project", "company_dataset", "data_dataset", "output_project", "location",
                "job_timeout_s", "use_storage_api")
        params: dict[str, Any] = {key: bq[key] for key in keys}
        params.update(kwargs)
        return cls(client_factory, **params)

    @property
    def client(self) -> bigquery.Client:
        """The BigQuery client, opened from the factory on first use and reused until close()."""
        if self._client is None:
            made = self._client_factory()
            client = self._stack.enter_context(made) if hasattr(made, "__enter__") else made
            if not isinstance(client, bigquery.Client):
                raise WarehouseError(
                    f"client_factory gave {type(client).__name__}, not a bigquery.Client"
                )
            self._client = client
        return self._client

    @property
    def project(self) -> str:
        """Project of the source datasets (the client's project when none was given)."""
        return self._project or self.client.project

    @property
    def output_project(self) -> str:
        """Project of the output dataset (defaults to the source project)."""
        return self._output_project or self.project

    def close(self) -> None:
        """Close the client (and the factory's context)."""
        self._client = None
        self._stack.close()

    def __enter__(self) -> BigQueryWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Warehouse API ------------------------------------------------------------------------

    def _dataset(self, role: str) -> str:
        datasets = {"company": self.company_dataset, "data": self.data_dataset}
        if role not in datasets:
            raise WarehouseError(f"unknown dataset role {role!r}; expected one of {list(datasets)}")
        return datasets[role]

    def dataset_ref(self, role: str) -> str:
        """``project.dataset`` of a dataset role (the ``{{ company }}``/``{{ data }}`` SQL refs)."""
        return f"{self.project}.{self._dataset(role)}"

    def dataset_refs(self) -> dict[str, str]:
        """Dataset refs of both roles, for ``sql_runner.sql_params``."""
        return {role: self.dataset_ref(role) for role in ("company", "data")}

    def source_table_id(self, role: str, table: str) -> str:
        """Unquoted ``project.dataset.table`` of a source table."""
        return f"{self.project}.{self._dataset(role)}.{table}"

    def table_ref(self, role: str, table: str) -> str:
        return f"`{self.source_table_id(role, table)}`"

    def table_id(self, dataset: str, table: str) -> str:
        """Unquoted ``output_project.dataset.table`` (staging and output datasets)."""
        return f"{self.output_project}.{dataset}.{table}"

    def _job_config(self, **kwargs: Any) -> bigquery.QueryJobConfig:
        return bigquery.QueryJobConfig(
            use_legacy_sql=False, job_timeout_ms=int(self.job_timeout_s * 1000), **kwargs
        )

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn Google API errors into WarehouseError naming ``what`` (and the missing table)."""
        try:
            yield
        except WarehouseError:
            raise
        except gexc.RetryError as exc:
            raise WarehouseError(
                f"BigQuery kept failing with transient errors and gave up ({what}): {exc.cause}"
            ) from exc
        except gexc.NotFound as exc:
            name = not_found_name(exc)
            head = f"table {name} not found" if name else "not found"
            raise ContractError(f"BigQuery: {head} ({what}): {exc.message}") from exc
        except gexc.GoogleAPICallError as exc:
            raise WarehouseError(f"BigQuery error ({what}): {exc.message}") from exc
        except TimeoutError as exc:  # concurrent.futures.TimeoutError is an alias in 3.11
            raise WarehouseError(
                f"BigQuery job did not finish within {self.job_timeout_s:.0f} s ({what})"
            ) from exc

    def _run_job(self, sql: str) -> bigquery.QueryJob:
        job = self.client.query(
            sql,
            job_config=self._job_config(),
            location=self.location,
            retry=self.api_retry,
            job_retry=None,  # the client's own job retry has a fixed 10-minute deadline
            timeout=60.0,
        )
        job.result(timeout=self.job_timeout_s, retry=self.api_retry, job_retry=None)
        return job

    def execute(self, sql: str) -> bigquery.QueryJob:
        """Run one statement (DDL/DML/SELECT) to completion and return its finished job.

        A job that fails transiently is resubmitted (new job id) until the retry deadline.
        """
        with self._errors(f"statement: {sql_head(sql)}"):
            return self.retry(self._run_job)(sql)

    def query_df(self, sql: str) -> pd.DataFrame:
        with self._errors(f"query: {sql_head(sql)}"):
            job = self.execute(sql)
            rows = job.result(timeout=self.job_timeout_s, retry=self.api_retry)
            with quiet_pandas_gbq_notices():
                df = rows.to_dataframe(create_bqstorage_client=self.use_storage_api)
        return _naive_utc(df)

    def columns(self, role: str, table: str) -> list[str] | None:
        table_id = self.source_table_id(role, table)
        try:
            with self._errors(f"get table {table_id}"):
                meta = self.client.get_table(table_id, retry=self.retry, timeout=60.0)
        except WarehouseError as exc:
            if isinstance(exc.__cause__, gexc.NotFound):
                return None
            raise
        return [field.name for field in meta.schema]

    def load_table(
        self, df: pd.DataFrame, dataset: str, table: str, schema: Mapping[str, str] = OUTPUT_TYPES
    ) -> None:
        """Stage the rows with a load job, then replace the table with one CREATE OR REPLACE."""
        target = self.table_id(dataset, table)
        missing = [c for c in schema if c not in df.columns]
        if missing:
            raise WarehouseError(f"rows for {target} lack columns {missing}")
        fields = [_field(name, kind) for name, kind in schema.items()]
        staging = self.table_id(dataset, f"_staging_{table}_{uuid.uuid4().hex[:12]}")
        load_config = bigquery.LoadJobConfig(
            schema=fields,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
        )
        self.ensure_dataset(dataset)
        try:
            with self._errors(f"load staging table for {target}"):
                frame = _typed_frame(df, fields, target)
                with quiet_pandas_gbq_notices():
                    job = self.client.load_table_from_dataframe(
                        frame,
                        staging,
                        job_config=load_config,
                        location=self.location,
                        timeout=120.0,
                    )
                job.result(timeout=self.job_timeout_s, retry=self.retry)
                self._expire_soon(staging)
            # the swap: one statement, so readers see either the old table or the new one
            self.execute(f"CREATE OR REPLACE TABLE `{target}` AS SELECT * FROM `{staging}`")
            log.info("wrote %d rows to %s", len(frame), target)
        finally:
            self._drop_quietly(staging)

    def ensure_dataset(self, dataset: str) -> None:
        """Create ``output_project.dataset`` (in ``location``) when it does not exist yet.

        A load job creates a missing table but not a missing dataset (the load then fails).
        """
        dataset_id = f"{self.output_project}.{dataset}"
        with self._errors(f"check output dataset {dataset_id}"):
            try:
                self.client.get_dataset(dataset_id, retry=self.retry, timeout=60.0)
                return
            except gexc.NotFound:
                pass
            ref = bigquery.Dataset(dataset_id)
            ref.location = self.location
            self.client.create_dataset(ref, exists_ok=True, retry=self.retry, timeout=60.0)
            log.info("created output dataset %s", dataset_id)

    def list_tables(self, dataset: str) -> list[str]:
        """Tables of ``output_project.dataset`` ([] when the dataset does not exist)."""
        dataset_id = f"{self.output_project}.{dataset}"
        try:
            with self._errors(f"list tables of {dataset_id}"):
                return sorted(t.table_id for t in self.client.list_tables(
                    dataset_id, retry=self.retry, timeout=60.0))
        except WarehouseError as exc:
            if isinstance(exc.__cause__, gexc.NotFound):
                return []
            raise

    def expire_table(self, dataset: str, table: str, hours: int) -> None:
        """Set the table's expiration ``hours`` from now (BigQuery deletes it then)."""
        table_id = self.table_id(dataset, table)
        with self._errors(f"set expiration of {table_id}"):
            ref = self.client.get_table(table_id, retry=self.retry, timeout=60.0)
            ref.expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
            self.client.update_table(ref, ["expires"], retry=self.retry, timeout=60.0)

    def read_output_table(self, dataset: str, table: str) -> pd.DataFrame | None:
        table_id = self.table_id(dataset, table)
        try:
            with self._errors(f"read {table_id}"):
                self.client.get_table(table_id, retry=self.retry, timeout=60.0)
        except WarehouseError as exc:
            if isinstance(exc.__cause__, gexc.NotFound):
                return None
            raise
        return self.query_df(f"SELECT * FROM `{table_id}`")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "project": self._project,
            "company_dataset": self.company_dataset,
            "data_dataset": self.data_dataset,
            "output_project": self._output_project,
            "location": self.location,
            "job_timeout_s": self.job_timeout_s,
            "use_storage_api": self.use_storage_api,
        }

    # -- helpers ------------------------------------------------------------------------------

    def _expire_soon(self, table_id: str) -> None:
        """Best effort: let a staging table that outlives a crash expire after a day."""
        try:
            meta = self.client.get_table(table_id, timeout=60.0)
            meta.expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
            self.client.update_table(meta, ["expires"], timeout=60.0)
        except gexc.GoogleAPICallError as exc:
            log.warning("could not set expiry on staging table %s: %s", table_id, exc.message)

    def _drop_quietly(self, table_id: str) -> None:
        try:
            self.client.delete_table(table_id, not_found_ok=True, retry=self.retry, timeout=60.0)
        except gexc.GoogleAPICallError as exc:
            log.warning("could not drop staging table %s: %s", table_id, exc.message)


def _typed_frame(
    df: pd.DataFrame, fields: list[bigquery.SchemaField], target: str
) -> pd.DataFrame:
    """The schema's columns in order, with a clear error for values of the wrong type."""
    out = pd.DataFrame(index=df.index)
    for field in fields:
        col = df[field.name]
        if field.field_type == "FLOAT64":
            numbers = pd.to_numeric(col, errors="coerce")
            bad = numbers.isna() & col.notna()
            if bad.any():
                raise WarehouseError(
                    f"output for {target}: column {field.name} must be FLOAT64; row "
                    f"{int(bad.to_numpy().argmax())} holds a {type(col[bad].iloc[0]).__name__}"
                )
            out[field.name] = numbers.astype("float64")
        else:
            bad = col.map(lambda v: v is not None and not pd.isna(v) and not isinstance(v, str))
            if bad.any():
                raise WarehouseError(
                    f"output for {target}: column {field.name} must be STRING; row "
                    f"{int(bad.to_numpy().argmax())} holds {type(col[bad].iloc[0]).__name__}"
                )
            out[field.name] = col.astype("object").where(col.notna(), None)
    return out.reset_index(drop=True)


def _naive_utc(df: pd.DataFrame) -> pd.DataFrame:
    """TIMESTAMP columns as naive UTC datetimes, the way DuckDB returns TIMESTAMP."""
    for name in df.columns:
        dtype = df[name].dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            df[name] = df[name].dt.tz_convert("UTC").dt.tz_localize(None)
    return df
