"""The warehouse interface: one API over DuckDB (embedded default) and BigQuery (production).

SQL lives in ``sql/`` in BigQuery dialect. Both engines run the same files; DuckDB gets them
through sqlglot transpilation (see ``sql_runner``). Source tables follow
``shared/source_contract.md``; ``SOURCE_CONTRACT`` lists the required columns.
"""

from __future__ import annotations

import abc
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from holley_gnn_assets.warehouse.schemas import OUTPUT_TYPES
from holley_gnn_assets.warehouse.sql import (
    Ident,
    _strip_comments,
    load_sql,
    parse_sql_file,
    render,
    with_ctes,
)

# dataset role -> table -> required columns (extra columns are ignored)
SOURCE_CONTRACT: dict[str, dict[str, list[str]]] = {
    "company": {
        "ingestion_unified_attributes_schema_incremental": [
            "user_id", "email", "v1_year", "v1_make", "v1_model", "updated_at",
        ],
        "ingestion_unified_schema_incremental": ["user_id", "event_name", "sku", "event_timestamp"],
        "treatment_interaction": [
            "user_id", "treatment_id", "interaction_type", "sku", "interaction_timestamp",
        ],
    },
    "data": {
        "vehicle_product_fitment_data": ["sku", "year", "make", "model"],
        "import_items": ["sku", "PartType", "price", "image_url", "title"],
        "import_items_tags": ["sku", "tag"],
        "import_orders": ["order_id", "email", "sku", "quantity", "order_date", "unit_price"],
    },
}
# local (DuckDB) schema names for the two dataset roles
DUCKDB_DATASETS = {"company": "company_1950", "data": "data_company_1950"}


class WarehouseError(RuntimeError):
    """A warehouse problem with a message that names the table/column/file at fault."""


class ContractError(WarehouseError):
    """A missing source table or column, or a name that is not a plain identifier: the same on
    every retry (``failures.no_retry``)."""


class Warehouse(abc.ABC):
    """What the pipeline needs from a warehouse: read the source tables, run the SQL files,
    load score tables and build the output in place."""

    @abc.abstractmethod
    def table_ref(self, role: str, table: str) -> str:
        """Fully qualified BigQuery-dialect reference for a source table of a dataset role."""

    @abc.abstractmethod
    def dataset_refs(self) -> dict[str, str]:
        """Dataset qualifier per source role (``company``, ``data``) for ``sql_params``."""

    @abc.abstractmethod
    def table_id(self, dataset: str, table: str) -> str:
        """Dotted id of a table of the pipeline's own datasets (staging, output)."""

    @abc.abstractmethod
    def query_df(self, sql: str) -> pd.DataFrame:
        """Run one BigQuery-dialect SELECT and return its rows."""

    @abc.abstractmethod
    def execute(self, sql: str) -> None:
        """Run one BigQuery-dialect statement (DDL/DML) to completion."""

    @abc.abstractmethod
    def columns(self, role: str, table: str) -> list[str] | None:
        """Column names of a source table, or None when the table does not exist."""

    @abc.abstractmethod
    def ensure_dataset(self, dataset: str) -> None:
        """Create one of the pipeline's own datasets (a schema in DuckDB) when missing."""

    @abc.abstractmethod
    def load_table(
        self, df: pd.DataFrame, dataset: str, table: str, schema: Mapping[str, str] = OUTPUT_TYPES
    ) -> None:
        """Replace ``dataset.table`` with the rows of ``df`` (columns and types of ``schema``,
        ``string`` or ``float64``) atomically: all rows or nothing, a load job in BigQuery."""

    @abc.abstractmethod
    def read_output_table(self, dataset: str, table: str) -> pd.DataFrame | None:
        """The current table ``dataset.table``, or None when it does not exist."""

    def query_named(
        self, statements: Mapping[str, str], shared: Mapping[str, str]
    ) -> dict[str, pd.DataFrame]:
        """Run rendered SELECTs that use the rendered ``shared`` CTEs (name -> body, in
        dependency order). Default: each statement self-contained, the CTEs prepended."""
        return {
            name: self.query_df(with_ctes(sql, [(n, b) for n, b in shared.items()
                                                if _uses(sql, n, shared)]))
            for name, sql in statements.items()
        }

    def query_named_per_key(
        self, shared: Mapping[str, str],
        per_key: Mapping[str, tuple[Mapping[str, str], Mapping[str, str]]],
    ) -> dict[str, dict[str, pd.DataFrame]]:
        """For each key, run its rendered SELECTs (``per_key[key] = (ctes, statements)``) with
        the ``shared`` CTEs (alike for every key) and its own CTEs (both name -> body, in
        dependency order). Default: one ``query_named`` per key."""
        return {key: self.query_named(statements, {**shared, **ctes})
                for key, (ctes, statements) in per_key.items()}

    def run_named_per_key(
        self, relative_path: str, params: Mapping[str, Mapping[str, Any]], names: Iterable[str]
    ) -> dict[str, dict[str, pd.DataFrame]]:
        """Run named statements of a SQL file once per key of ``params`` (each key its own
        placeholders: an arm's score table, say). A CTE that renders alike for every key and
        uses no key's own CTE is computed once for all keys; the results are the same as one
        ``run_named`` per key."""
        parsed = parse_sql_file(load_sql(relative_path))
        names = list(names)
        for name in names:
            if name not in parsed.statements:
                raise WarehouseError(f"{relative_path} has no statement '-- name: {name}'")
        needed = [n for n in parsed.ctes if any(n in parsed.needs[name] for name in names)]
        code = {n: _strip_comments(parsed.ctes[n]) for n in needed}  # comments never differ
        rendered = {key: {n: render(code[n], p) for n in needed} for key, p in params.items()}
        shared: dict[str, str] = {}
        for i, n in enumerate(needed):  # file order: a CTE reads only the ones above it
            bodies = {cte[n] for cte in rendered.values()}
            own = [m for m in needed[:i] if m not in shared]
            if len(bodies) == 1 and not any(re.search(rf"\b{m}\b", code[n]) for m in own):
                shared[n] = bodies.pop()
        per_key = {
            key: ({n: body for n, body in rendered[key].items() if n not in shared},
                  {name: render(parsed.statements[name], p) for name in names})
            for key, p in params.items()}
        frames = self.query_named_per_key(shared, per_key)
        return {key: {name: frames[key][name].reset_index(drop=True) for name in names}
                for key in params}

    def run_named(
        self, relative_path: str, params: Mapping[str, Any], names: Iterable[str]
    ) -> dict[str, pd.DataFrame]:
        """Run named statements of a SQL file (with the shared CTEs they need)."""
        parsed = parse_sql_file(load_sql(relative_path))
        names = list(names)
        for name in names:
            if name not in parsed.statements:
                raise WarehouseError(f"{relative_path} has no statement '-- name: {name}'")
        needed = {cte for name in names for cte in parsed.needs[name]}
        shared = {n: render(b, params) for n, b in parsed.ctes.items() if n in needed}
        bodies = {name: render(parsed.statements[name], params) for name in names}
        frames = self.query_named(bodies, shared)
        return {name: frames[name].reset_index(drop=True) for name in names}

    def materialize(
        self, relative_path: str, name: str, params: Mapping[str, Any], dataset: str, table: str
    ) -> None:
        """``CREATE OR REPLACE TABLE dataset.table AS`` a named statement of a SQL file:
        readers see the previous table or the new one, never a half-written one."""
        parsed = parse_sql_file(load_sql(relative_path))
        if name not in parsed.statements:
            raise WarehouseError(f"{relative_path} has no statement '-- name: {name}'")
        self.ensure_dataset(dataset)
        target = Ident(self.table_id(dataset, table)).render()
        self.execute(f"CREATE OR REPLACE TABLE {target} AS\n{render(parsed.full(name), params)}")

    def replace_table(self, source: tuple[str, str], target: tuple[str, str]) -> None:
        """Replace table ``target`` (dataset, table) by a copy of ``source`` in one statement."""
        self.ensure_dataset(target[0])
        src = Ident(self.table_id(*source)).render()
        dst = Ident(self.table_id(*target)).render()
        self.execute(f"CREATE OR REPLACE TABLE {dst} AS SELECT * FROM {src}")

    def replace_with_record(
        self, source: tuple[str, str], target: tuple[str, str], record: list[str]
    ) -> None:
        """Replace ``target`` by a copy of ``source`` and run the ``record`` statements (DML on
        other tables, e.g. the publish log) as one unit: all of it or none of it.

        BigQuery: a multi-statement transaction (DML only, so the table is emptied and refilled
        inside it, after an empty copy of ``source`` created it when missing)."""
        self.ensure_dataset(target[0])
        src = Ident(self.table_id(*source)).render()
        dst = Ident(self.table_id(*target)).render()
        self.execute(f"CREATE TABLE IF NOT EXISTS {dst} AS SELECT * FROM {src} LIMIT 0")
        self.execute("\n".join([
            "BEGIN TRANSACTION;", f"DELETE FROM {dst} WHERE TRUE;",
            f"INSERT INTO {dst} SELECT * FROM {src};", *[f"{r};" for r in record],
            "COMMIT TRANSACTION;"]))

    def list_tables(self, dataset: str) -> list[str]:
        """Names of the tables of one of the pipeline's own datasets ([] when it is missing)."""
        raise NotImplementedError

    def drop_table(self, dataset: str, table: str) -> None:
        """``DROP TABLE IF EXISTS dataset.table``."""
        self.execute(f"DROP TABLE IF EXISTS {Ident(self.table_id(dataset, table)).render()}")

    def expire_table(self, dataset: str, table: str, hours: int) -> None:
        """Let the warehouse delete the table ``hours`` from now (BigQuery's table expiration);
        a no-op where the pipeline drops staging tables itself (DuckDB)."""
        return None

    def synthetic_as_of(self) -> dt.date | None:
        """The as-of date a synthetic warehouse records (``synth_truth.world``), else None."""
        return None

    def read_truth(self) -> pd.DataFrame | None:
        """The planted truth of a synthetic warehouse (``synth_truth.vehicle_preference``)."""
        return None

    def validate_contract(self) -> None:
        """Raise WarehouseError naming the first missing table or column of the source contract."""
        for role, tables in SOURCE_CONTRACT.items():
            for table, required in tables.items():
                cols = self.columns(role, table)
                if cols is None:
                    raise ContractError(
                        f"source table {self.table_ref(role, table)} is missing from the warehouse"
                    )
                have = {c.lower() for c in cols}
                for col in required:
                    if col.lower() not in have:
                        raise ContractError(
                            f"source table {self.table_ref(role, table)} has no column {col!r}"
                        )

    def describe(self) -> Mapping[str, Any]:
        """Short, secret-free description for metadata."""
        return {"kind": type(self).__name__}


def _uses(sql: str, cte: str, shared: Mapping[str, str]) -> bool:
    """Whether ``sql`` uses ``cte``, directly or through another shared CTE."""
    seen: set[str] = set()
    frontier = [sql]
    while frontier:
        text = frontier.pop()
        for name, body in shared.items():
            if name not in seen and re.search(rf"\b{name}\b", text):
                if name == cte:
                    return True
                seen.add(name)
                frontier.append(body)
    return False
