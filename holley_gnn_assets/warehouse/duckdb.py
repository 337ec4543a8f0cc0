"""The embedded warehouse: one DuckDB file with the source-contract schemas.

Queries arrive in BigQuery dialect and run after sqlglot transpilation
(``sql_runner.to_duckdb``). Every call opens its own connection (read-only for reads) and
closes it, so a read never holds a lock across calls and the write path can open the file
read-write. Sessions use the UTC time zone (BigQuery timestamps are UTC).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from holley_gnn_assets.warehouse.base import (
    DUCKDB_DATASETS,
    ContractError,
    Warehouse,
    WarehouseError,
)
from holley_gnn_assets.warehouse.schemas import OUTPUT_TYPES
from holley_gnn_assets.warehouse.sql import load_sql, parse_sql_file, render, to_duckdb

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_TABLE_MISSING = re.compile(r"Table with name (\S+) does not exist")
_COLUMN_MISSING = re.compile(r'column "?([^"\s]+)"? not found', re.IGNORECASE)


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value or ""):
        raise ContractError(f"{what} {value!r} is not a plain identifier")
    return value


def _in_transaction(con: duckdb.DuckDBPyConnection, statements: list[str]) -> None:
    """Run ``statements`` in one transaction: all of them, or (rolled back) none."""
    con.execute("BEGIN TRANSACTION")
    try:
        for statement in statements:
            con.execute(statement)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


class DuckDBWarehouse(Warehouse):
    """A :class:`Warehouse` over a DuckDB database file."""

    def __init__(self, path: str | Path, threads: int | None = None,
                 memory_limit_gb: float | None = None) -> None:
        self.path = Path(path)
        self.threads = threads
        self.memory_limit_gb = memory_limit_gb  # above it DuckDB spills to its temp directory
        self._catalog: dict[tuple[str, str], list[str]] | None = None

    # connections -------------------------------------------------------------------------
    @contextmanager
    def _connect(self, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self.path.is_file():
            raise WarehouseError(
                f"DuckDB warehouse {self.path} does not exist; create one with "
                f"`holley-gnn synth --out {self.path}` or point HOLLEY_GNN_WAREHOUSE at a file"
            )
        config: dict[str, Any] = {}
        if self.threads:
            config["threads"] = int(self.threads)
        if self.memory_limit_gb:
            config["memory_limit"] = f"{int(self.memory_limit_gb * 1024)}MB"
        try:
            con = duckdb.connect(str(self.path), read_only=read_only, config=config)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open DuckDB warehouse {self.path}: {exc}") from exc
        try:
            try:
                con.execute("SET TimeZone = 'UTC'")
            except duckdb.Error:
                pass  # no ICU extension: DuckDB then treats TIMESTAMPTZ as UTC anyway
            yield con
        finally:
            con.close()

    # Warehouse API -----------------------------------------------------------------------
    def table_ref(self, role: str, table: str) -> str:
        """``company_1950.<table>`` or ``data_company_1950.<table>``."""
        if role not in DUCKDB_DATASETS:
            raise WarehouseError(f"unknown dataset role {role!r}; known: {sorted(DUCKDB_DATASETS)}")
        return f"{DUCKDB_DATASETS[role]}.{_check_name(table, 'table')}"

    def dataset_ref(self, role: str) -> str:
        """The local schema of a dataset role (``company_1950``/``data_company_1950``)."""
        if role not in DUCKDB_DATASETS:
            raise WarehouseError(f"unknown dataset role {role!r}; known: {sorted(DUCKDB_DATASETS)}")
        return DUCKDB_DATASETS[role]

    def dataset_refs(self) -> dict[str, str]:
        """Dataset refs of both roles, for ``sql_runner.sql_params``."""
        return {role: self.dataset_ref(role) for role in DUCKDB_DATASETS}

    def table_id(self, dataset: str, table: str) -> str:
        """``dataset.table`` in this file (a schema per dataset)."""
        return f"{_check_name(dataset, 'dataset')}.{_check_name(table, 'table')}"

    def ensure_dataset(self, dataset: str) -> None:
        """``CREATE SCHEMA IF NOT EXISTS``."""
        with self._connect(read_only=False) as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_check_name(dataset, 'dataset')}")

    def execute(self, sql: str) -> None:
        """Transpile one BigQuery-dialect statement and run it on a read-write connection."""
        with self._connect(read_only=False) as con:
            try:
                con.execute(to_duckdb(sql))
            except duckdb.Error as exc:
                raise _kind(exc)(_explain(exc, self.path)) from exc

    def materialize(
        self, relative_path: str, name: str, params: Mapping[str, Any], dataset: str, table: str
    ) -> None:
        """The base CTAS, with the shared CTEs computed once as TEMP tables of the session."""
        parsed = parse_sql_file(load_sql(relative_path))
        if name not in parsed.statements:
            raise WarehouseError(f"{relative_path} has no statement '-- name: {name}'")
        target = self.table_id(dataset, table)
        with self._connect(read_only=False) as con:
            try:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {dataset}")
                for cte in parsed.needs[name]:
                    body = to_duckdb(render(parsed.ctes[cte], params))
                    con.execute(f"CREATE TEMP TABLE {cte} AS {body}")
                body = to_duckdb(render(parsed.statements[name], params))
                con.execute(f"CREATE OR REPLACE TABLE {target} AS {body}")
            except duckdb.Error as exc:
                raise _kind(exc)(
                    f"building {target} from {relative_path}:{name} failed; the previous table "
                    f"is unchanged: {_explain(exc, self.path)}"
                ) from exc

    def query_df(self, sql: str) -> pd.DataFrame:
        """Transpile one BigQuery-dialect SELECT to DuckDB, run it, return the rows."""
        duck_sql = to_duckdb(sql)
        with self._connect() as con:
            try:
                # con.sql(...).df(): con.execute(...).df() stalled on the full-scale ranked list
                return con.sql(duck_sql).df()
            except duckdb.Error as exc:
                raise _kind(exc)(_explain(exc, self.path)) from exc

    def query_named(
        self, statements: Mapping[str, str], shared: Mapping[str, str]
    ) -> dict[str, pd.DataFrame]:
        """Run several BigQuery-dialect SELECTs in one session, ``shared`` CTEs computed once.

        Each shared CTE (name -> rendered body, in dependency order) becomes a TEMP table of
        the session; the statements then read it by name. Same SQL and same results as
        running each statement with the CTEs prepended, without recomputing them.
        """
        return self.query_named_per_key(shared, {"": ({}, statements)})[""]

    def query_named_per_key(
        self, shared: Mapping[str, str],
        per_key: Mapping[str, tuple[Mapping[str, str], Mapping[str, str]]],
    ) -> dict[str, dict[str, pd.DataFrame]]:
        """``query_named`` for several keys in one session: the ``shared`` CTEs become TEMP
        tables once; each key's own CTEs replace the previous key's before its statements."""
        out: dict[str, dict[str, pd.DataFrame]] = {}
        step = ""
        with self._connect() as con:
            try:
                for name, body in shared.items():
                    step = f"shared CTE {name}"
                    _check_name(name, "shared CTE")
                    con.execute(f"CREATE TEMP TABLE {name} AS {to_duckdb(body)}")
                for key, (ctes, statements) in per_key.items():
                    where = f" ({key})" if key else ""
                    for name, body in ctes.items():
                        step = f"CTE {name}{where}"
                        _check_name(name, "CTE")
                        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {to_duckdb(body)}")
                    out[key] = {}
                    for name, sql in statements.items():
                        step = f"statement {name}{where}"
                        out[key][name] = con.execute(to_duckdb(sql)).df()
            except duckdb.Error as exc:  # never a bare driver error: name what failed
                raise _kind(exc)(f"{step}: {_explain(exc, self.path)}") from exc
        return out

    def columns(self, role: str, table: str) -> list[str] | None:
        """Column names of a source table from the catalog, or None when it is missing."""
        self.table_ref(role, table)  # validates role and table name
        catalog = self._catalog if self._catalog is not None else self._read_catalog()
        return catalog.get((DUCKDB_DATASETS[role], table))

    def validate_contract(self) -> None:
        """The base check, reading the catalog once instead of once per table."""
        self._catalog = self._read_catalog()
        try:
            super().validate_contract()
        finally:
            self._catalog = None

    def _read_catalog(self) -> dict[tuple[str, str], list[str]]:
        """(schema, table) -> column names of the source-contract schemas."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                "WHERE database_name = current_database() AND schema_name IN (?, ?) "
                "ORDER BY schema_name, table_name, column_index",
                list(DUCKDB_DATASETS.values()),
            ).fetchall()
        out: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in rows:
            out.setdefault((schema, table), []).append(column)
        return out

    def load_table(
        self, df: pd.DataFrame, dataset: str, table: str, schema: Mapping[str, str] = OUTPUT_TYPES
    ) -> None:
        """Replace ``dataset.table`` atomically: stage, then swap in one transaction."""
        dataset = _check_name(dataset, "dataset")
        table = _check_name(table, "table")
        dupes = sorted({str(c) for c in df.columns if list(df.columns).count(c) > 1})
        if dupes:
            raise WarehouseError(f"rows for {dataset}.{table} have duplicate columns {dupes}")
        missing = [c for c in schema if c not in df.columns]
        if missing:
            raise WarehouseError(f"rows for {dataset}.{table} lack column(s) {missing}")
        staging = f"{dataset}._staging_{table}_{uuid.uuid4().hex[:8]}"
        with self._connect(read_only=False) as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {dataset}")
            con.register("_load_df", _arrow(df, schema, f"{dataset}.{table}"))
            try:
                select = _select_list(schema)
                con.execute(f"CREATE TABLE {staging} AS SELECT {select} FROM _load_df")
                _in_transaction(con, _swap_statements(f"{dataset}.{table}", staging))
            except duckdb.Error as exc:
                raise WarehouseError(
                    f"writing table {dataset}.{table} failed; the previous table is "
                    f"unchanged: {exc}"
                ) from exc
            finally:
                con.unregister("_load_df")
                con.execute(f"DROP TABLE IF EXISTS {staging}")

    def replace_with_record(
        self, source: tuple[str, str], target: tuple[str, str], record: list[str]
    ) -> None:
        """``CREATE OR REPLACE`` the target and run ``record`` in one DuckDB transaction."""
        src, dst = self.table_id(*source), self.table_id(*target)
        statements = [f"CREATE OR REPLACE TABLE {dst} AS SELECT * FROM {src}",
                      *[to_duckdb(r) for r in record]]
        with self._connect(read_only=False) as con:
            try:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {target[0]}")
                _in_transaction(con, statements)
            except duckdb.Error as exc:
                raise _kind(exc)(f"replacing {dst} from {src} failed; {dst} is unchanged: "
                                 f"{_explain(exc, self.path)}") from exc

    def list_tables(self, dataset: str) -> list[str]:
        """Tables of the schema ``dataset``."""
        with self._connect() as con:
            rows = con.execute("SELECT table_name FROM information_schema.tables "
                               "WHERE table_schema = ? ORDER BY table_name",
                               [_check_name(dataset, "dataset")]).fetchall()
        return [r[0] for r in rows]

    def read_output_table(self, dataset: str, table: str) -> pd.DataFrame | None:
        """The current output table, or None when it does not exist."""
        dataset = _check_name(dataset, "dataset")
        table = _check_name(table, "table")
        if not self._exists(dataset, table):
            return None
        with self._connect() as con:
            return con.execute(f"SELECT * FROM {dataset}.{table}").df()

    # synthetic-world extras --------------------------------------------------------------
    def synthetic_as_of(self) -> dt.date | None:
        """``synth_truth.world.as_of`` of a synthetic warehouse, else None."""
        if not self._exists("synth_truth", "world"):
            return None
        with self._connect() as con:
            row = con.execute("SELECT CAST(MAX(as_of) AS DATE) FROM synth_truth.world").fetchone()
        return row[0] if row and row[0] is not None else None

    def read_truth(self) -> pd.DataFrame | None:
        """``synth_truth.vehicle_preference`` of a synthetic warehouse, else None; with each
        product's ``demand``, ``cluster`` and ``time_factor`` (``synth_truth.products``) and
        each vehicle's ``group_id`` (``synth_truth.vehicles``) where those tables have them."""
        if not self._exists("synth_truth", "vehicle_preference"):
            return None
        with self._connect() as con:
            truth = con.execute("SELECT * FROM synth_truth.vehicle_preference").df()
            for table, key, wanted in (("products", "sku", ("demand", "cluster", "time_factor")),
                                       ("vehicles", "vehicle_id", ("group_id",))):
                if not self._exists("synth_truth", table):
                    continue
                extra = con.execute(f"SELECT * FROM synth_truth.{table}").df()
                cols = [c for c in wanted if c in extra.columns and c not in truth.columns]
                if cols and len(extra):
                    truth = truth.merge(extra[[key, *cols]], on=key, how="left")
            return truth

    def describe(self) -> Mapping[str, Any]:
        """Kind and file path (no secrets)."""
        return {"kind": "duckdb", "path": str(self.path)}

    def _exists(self, schema: str, table: str) -> bool:
        with self._connect() as con:
            n = con.execute(
                "SELECT COUNT(*) FROM information_schema.tables "
                "WHERE table_schema = ? AND table_name = ?",
                [schema, table],
            ).fetchone()[0]
        return bool(n)


_DUCK_TYPES = {"string": "VARCHAR", "float64": "DOUBLE"}


def _arrow(df: pd.DataFrame, schema: Mapping[str, str], target: str) -> pa.Table:
    """The schema's columns as Arrow arrays; a value of the wrong type is named."""
    arrays = {}
    for col, kind in schema.items():
        if kind not in _DUCK_TYPES:
            raise WarehouseError(f"{target}: column {col} has unsupported type {kind!r}")
        values = df[col]
        try:
            if kind == "float64":
                arrays[col] = pa.array(pd.to_numeric(values, errors="raise"), type=pa.float64())
            else:
                # from_pandas: NaN and None are nulls (no masked copy of the column first)
                arrays[col] = pa.array(values.astype(object), type=pa.string(), from_pandas=True)
        except (ValueError, TypeError, pa.ArrowException) as exc:
            raise WarehouseError(f"{target}: column {col} must be {kind}: {exc}") from exc
    return pa.table(arrays)


def _select_list(schema: Mapping[str, str]) -> str:
    """Typed columns to stage, in schema order."""
    return ", ".join(
        f'CAST("{c}" AS {_DUCK_TYPES[k]}) AS "{c}"' for c, k in schema.items()
    )


def _swap_statements(target: str, staging: str) -> list[str]:
    """The statements run inside the swap transaction (a seam for fault-injection tests): the
    staged table takes the target's name (a rename: the rows are not copied again)."""
    return [f"DROP TABLE IF EXISTS {target}",
            f"ALTER TABLE {staging} RENAME TO {target.rsplit('.', 1)[-1]}"]


def _kind(exc: duckdb.Error) -> type[WarehouseError]:
    """ContractError for a missing table or column (no retry fixes it), else WarehouseError."""
    if isinstance(exc, duckdb.CatalogException | duckdb.BinderException):
        return ContractError
    return WarehouseError


def _explain(exc: duckdb.Error, path: Path) -> str:
    """A WarehouseError message naming the missing table or column from a DuckDB error."""
    text = str(exc).splitlines()[0]
    table = _TABLE_MISSING.search(str(exc))
    column = _COLUMN_MISSING.search(str(exc))
    if table:
        return f"table {table.group(1)} is missing from warehouse {path}: {text}"
    if column:
        return f"column {column.group(1)!r} is missing in warehouse {path}: {text}"
    return f"query failed on warehouse {path}: {text}"
