"""Load, render, split and transpile the pipeline's SQL files (BigQuery dialect).

SQL files under ``sql/`` are written once, in BigQuery dialect. DuckDB runs the same text
after :func:`to_duckdb` (sqlglot). Conventions of a file:

- ``-- name: <table>`` starts a named statement; it runs until the next marker, and a
  trailing ``;`` is dropped. A file without markers is one statement named ``main``.
  Text before the first marker may hold comments only.
- ``-- cte: <name>`` starts a shared CTE (a SELECT). :func:`split_named` prepends to each
  statement the shared CTEs it uses (transitively, in file order), so each rule has one
  definition; the DuckDB warehouse instead materialises them once per file as TEMP tables
  (``DuckDBWarehouse.query_named``), same SQL, same results.
- ``-- include: <path below sql/>`` (by :func:`load_sql`) pastes another file in, e.g.
  ``gnn/_shared_ctes.sql`` (the user/vehicle/product rules shared by export and baseline).
- ``{{ placeholder }}`` is replaced by :func:`render` with a validated literal: dates become
  ``DATE '...'``, datetimes ``TIMESTAMP '... 00:00:00'`` (UTC), numbers plain numbers,
  strings quoted and escaped, lists of strings ``('a', 'b')`` (an empty list renders as an
  empty subquery so ``IN``/``NOT IN`` keep their meaning), :class:`Ident` a checked
  (optionally back-quoted) dotted identifier. Nothing else is accepted, so a value
  cannot inject SQL.
- ``-- test-params: {json}`` (header comment) gives values for placeholders that
  :func:`sql_params` does not provide, for the generic "every SQL file runs" test.
  JSON strings are strings; ``{"ident": "a.b"}``, ``{"date": "2025-01-01"}`` and
  ``{"timestamp": "2025-01-01"}`` give the typed values; ``{"table": "<name>"}`` names a
  pipeline table (an export table of ``core/schemas.py`` such as ``product_nodes``, or
  ``recommendations`` with ``OUTPUT_COLUMNS``) that the test writes into schema
  ``test_inputs`` of its micro warehouse, and renders as ``test_inputs.<name>``.
  ``-- test-skip: <reason>`` makes that test skip the file.

Constructs avoided because sqlglot (30.x) transpiles them wrongly to DuckDB or because
DuckDB means something else: ``''`` quote escapes inside strings (becomes ``'a' || 'b'``;
render escapes with a backslash instead), ``TIMESTAMP_DIFF(..., SECOND)`` (DuckDB counts
boundaries; use MICROSECOND), ``IN UNNEST([...])`` for config lists (rendered as tuples),
``LIKE`` for configurable prefixes (``_``/``%`` are wildcards; use ``STARTS_WITH``),
``COUNTIF`` over a possibly empty input outside GROUP BY (DuckDB's ``COUNT_IF`` gives NULL
where BigQuery gives 0; use ``COUNT(*) ... WHERE``), ``CONCAT`` with possibly NULL arguments
(DuckDB skips NULLs, BigQuery returns NULL), ``ARRAY_AGG(... ORDER BY ... LIMIT 1)[OFFSET(0)]``
for latest rows (the LIMIT is kept and DuckDB rejects it; use ROW_NUMBER). Window ``ORDER BY``
null ordering is spelled out (``NULLS LAST``); sqlglot keeps BigQuery's null order.
BigQuery ``TIMESTAMP`` maps to DuckDB ``TIMESTAMP`` holding UTC (not ``TIMESTAMPTZ``): the
DuckDB warehouse stores UTC as plain TIMESTAMP and its sessions run in UTC.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from holley_gnn_assets.config import settings as config_mod
from holley_gnn_assets.config.settings import TimeWindows

_MARKER = re.compile(r"^[ \t]*--[ \t]*(name|cte):[ \t]*(\S+)[ \t]*$", re.MULTILINE)
_INCLUDE = re.compile(r"^[ \t]*--[ \t]*include:[ \t]*(\S+)[ \t]*$", re.MULTILINE)
_LEADING_WITH = re.compile(r"^((?:[ \t]*--[^\n]*\n|\s)*)WITH\s+", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ANY_BRACES = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_IDENT_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_PROJECT_PART = re.compile(r"^[a-z][a-z0-9\-]{4,61}[a-z0-9]$")  # GCP project ids
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


TEST_INPUTS_DATASET = "test_inputs"  # where the generic SQL test puts {"table": ...} inputs


class SqlRenderError(ValueError):
    """A SQL file or a parameter value that cannot be rendered safely."""


@dataclass(frozen=True)
class Ident:
    """A dotted identifier (``dataset``, ``project.dataset`` or ``project.dataset.table``)."""

    value: str

    def render(self) -> str:
        """The identifier as SQL: plain parts bare, GCP project ids back-quoted."""
        parts = self.value.split(".")
        if not 1 <= len(parts) <= 3:
            raise SqlRenderError(f"identifier {self.value!r} must have 1 to 3 dotted parts")
        out = []
        for i, part in enumerate(parts):
            if _IDENT_PART.match(part):
                out.append(part)
            elif i == 0 and len(parts) > 1 and _PROJECT_PART.match(part):
                out.append(f"`{part}`")
            else:
                raise SqlRenderError(f"identifier part {part!r} of {self.value!r} is not allowed")
        return ".".join(out)


def literal(value: Any, name: str = "?") -> str:
    """Render one parameter value as a BigQuery SQL literal (validated, quoted, escaped)."""
    if isinstance(value, Ident):
        return value.render()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SqlRenderError(f"parameter {name}={value!r} is not a finite number")
        return repr(float(value))
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return exp.Literal.string(value).sql(dialect="bigquery")
    if isinstance(value, list | tuple):
        if not all(isinstance(v, str) for v in value):
            raise SqlRenderError(f"parameter {name} must be a list of strings, got {value!r}")
        if not value:
            return "(SELECT CAST(NULL AS STRING) LIMIT 0)"
        return "(" + ", ".join(literal(v, name) for v in value) + ")"
    raise SqlRenderError(f"parameter {name} has unsupported type {type(value).__name__}")


def render(sql_text: str, params: Mapping[str, Any]) -> str:
    """Replace every ``{{ name }}`` with the validated literal of ``params[name]``."""
    for raw in _ANY_BRACES.findall(sql_text):
        if not _PLACEHOLDER.fullmatch(raw):
            raise SqlRenderError(f"malformed placeholder {raw!r}")
    missing = sorted({m for m in _PLACEHOLDER.findall(sql_text) if m not in params})
    if missing:
        raise SqlRenderError(f"no value for placeholder(s) {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: literal(params[m.group(1)], m.group(1)), sql_text)


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))


def _sections(sql_text: str) -> list[tuple[str, str, str]]:
    """``(kind, name, body)`` for every ``-- name:``/``-- cte:`` section, in file order."""
    marks = list(_MARKER.finditer(sql_text))
    head = sql_text[: marks[0].start()] if marks else sql_text
    if marks and _strip_comments(head).strip():
        raise SqlRenderError("SQL before the first '-- name:' or '-- cte:' marker")
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for i, mark in enumerate(marks):
        kind, name = mark.group(1), mark.group(2)
        if not _TABLE_NAME.match(name):
            raise SqlRenderError(f"{kind} name {name!r} is not a plain identifier")
        if name in seen:
            raise SqlRenderError(f"{kind} name {name!r} appears twice")
        seen.add(name)
        end = marks[i + 1].start() if i + 1 < len(marks) else len(sql_text)
        body = sql_text[mark.end() : end].strip()
        body = body[:-1].rstrip() if body.endswith(";") else body
        if not _strip_comments(body).strip():
            raise SqlRenderError(f"{kind} {name!r} is empty")
        out.append((kind, name, body))
    return out


def with_ctes(body: str, ctes: list[tuple[str, str]]) -> str:
    """Prepend ``ctes`` to a statement's own WITH list (or give it one)."""
    if not ctes:
        return body
    defs = ",\n".join(f"{name} AS (\n{cte}\n)" for name, cte in ctes)
    m = _LEADING_WITH.match(body)
    if m:
        return f"{m.group(1)}WITH {defs},\n{body[m.end() :]}"
    return f"WITH {defs}\n{body}"


@dataclass(frozen=True)
class SqlFile:
    """A parsed SQL file: shared CTEs, named statement bodies and the CTEs each one needs."""

    ctes: dict[str, str]  # name -> body, in file order
    statements: dict[str, str]  # name -> body without the shared CTEs
    needs: dict[str, list[str]]  # statement -> shared CTEs it uses (transitively), file order

    def full(self, name: str) -> str:
        """The self-contained statement: its shared CTEs prepended to its own WITH list."""
        return with_ctes(self.statements[name], [(n, self.ctes[n]) for n in self.needs[name]])


def parse_sql_file(sql_text: str) -> SqlFile:
    """Parse ``-- cte:`` and ``-- name:`` sections (see :func:`split_named`)."""
    sections = _sections(sql_text)
    if not sections:
        body = sql_text.strip().rstrip(";").strip()
        statements = {"main": body} if _strip_comments(body).strip() else {}
        return SqlFile({}, statements, {n: [] for n in statements})
    ctes = {name: body for kind, name, body in sections if kind == "cte"}
    statements = {name: body for kind, name, body in sections if kind == "name"}
    needs: dict[str, list[str]] = {}
    for name, body in statements.items():
        needed: set[str] = set()
        frontier = [body]
        while frontier:
            text = _strip_comments(frontier.pop())
            for cte_name, cte_body in ctes.items():
                if cte_name not in needed and re.search(rf"\b{cte_name}\b", text):
                    needed.add(cte_name)
                    frontier.append(cte_body)
        needs[name] = [n for n in ctes if n in needed]
    return SqlFile(ctes, statements, needs)


def split_named(sql_text: str) -> dict[str, str]:
    """Split a file into ``{name: statement}`` on ``-- name: <table>`` lines.

    ``-- cte: <name>`` sections are shared CTEs: each statement gets, in file order, the
    ones it references (directly or through another CTE). A file without any marker is one
    statement named ``main``; a file with only ``-- cte:`` sections has no statements.
    """
    parsed = parse_sql_file(sql_text)
    return {name: parsed.full(name) for name in parsed.statements}


@functools.lru_cache(maxsize=256)
def to_duckdb(sql_bigquery: str) -> str:
    """Transpile one BigQuery-dialect statement to DuckDB SQL with sqlglot."""
    try:
        trees = [t for t in sqlglot.parse(sql_bigquery, read="bigquery") if t is not None]
    except sqlglot.errors.ParseError as exc:
        raise SqlRenderError(f"cannot parse SQL as BigQuery: {exc}") from exc
    if len(trees) != 1:
        raise SqlRenderError(f"expected one SQL statement, got {len(trees)}")
    tree = trees[0].transform(_naive_utc_timestamps)
    return tree.sql(dialect="duckdb")


def _naive_utc_timestamps(node: exp.Expression) -> exp.Expression:
    """BigQuery TIMESTAMP (an instant) -> DuckDB TIMESTAMP holding UTC, not TIMESTAMPTZ.

    The DuckDB warehouse stores UTC as plain TIMESTAMP and its sessions run in UTC, so this
    keeps the meaning while avoiding a per-row TIMESTAMP -> TIMESTAMPTZ conversion (ICU),
    and lets TIMESTAMP_NS columns compare with timestamp literals.
    """
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.TIMESTAMPTZ:
        return exp.DataType.build("TIMESTAMP")
    return node


def load_sql(relative_path: str | Path, _seen: tuple[Path, ...] = ()) -> str:
    """Read a SQL file below ``config.SQL_DIR`` (e.g. ``gnn/export_nodes.sql``).

    A line ``-- include: <path below SQL_DIR>`` is replaced by that file's text (recursively).
    """
    base = Path(config_mod.SQL_DIR).resolve()
    path = (base / relative_path).resolve()
    if base not in path.parents:
        raise SqlRenderError(f"SQL path {relative_path!s} is outside {base}")
    if not path.is_file():
        raise FileNotFoundError(f"SQL file {path} does not exist")
    if path in _seen:
        raise SqlRenderError(f"SQL include cycle through {path}")
    text = path.read_text()
    return _INCLUDE.sub(lambda m: load_sql(m.group(1), (*_seen, path)).rstrip() + "\n", text)


def header_directives(sql_text: str) -> dict[str, str]:
    """``-- key: value`` comment lines before the first statement (e.g. test-params)."""
    marks = list(_MARKER.finditer(sql_text))
    head = sql_text[: marks[0].start()] if marks else sql_text
    out: dict[str, str] = {}
    for line in head.splitlines():
        m = re.match(r"^\s*--\s*([a-z][a-z\-]*):\s*(.*)$", line)
        if m and m.group(1) != "name":
            out[m.group(1)] = m.group(2).strip()
    return out


def file_test_params(sql_text: str) -> dict[str, Any]:
    """Decode a file's ``-- test-params:`` JSON into typed placeholder values."""
    raw = header_directives(sql_text).get("test-params")
    if not raw:
        return {}
    decoded = json.loads(raw)

    def typed(v: Any) -> Any:
        if isinstance(v, dict) and len(v) == 1:
            ((kind, val),) = v.items()
            if kind == "ident":
                return Ident(str(val))
            if kind == "date":
                return dt.date.fromisoformat(val)
            if kind == "timestamp":
                return dt.datetime.fromisoformat(val)
            if kind == "table":
                return Ident(f"{TEST_INPUTS_DATASET}.{val}")
        return v

    return {k: typed(v) for k, v in decoded.items()}


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day)


def _str_list(values: Sequence[Any] | None, what: str) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise SqlRenderError(f"config {what} must be a list of strings, got {values!r}")
    return [v.strip().lower() for v in values]


def _num(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise SqlRenderError(f"config {what}={value!r} is not a number") from exc
    if not math.isfinite(out):
        raise SqlRenderError(f"config {what}={value!r} is not finite")
    return out


def sql_params(cfg: Mapping[str, Any], windows: TimeWindows, refs: Mapping[str, str]) -> dict:
    """Placeholder values for the SQL files from the config, the time windows and dataset refs.

    ``refs`` maps dataset role (``company``, ``data``) to its dataset qualifier, e.g.
    ``{"company": "company_1950", "data": "data_company_1950"}``. Timestamps are midnight
    UTC of the day; config lists are trimmed and lower-cased (the SQL compares lower-cased).
    """
    weights = cfg["event_weights"]
    rules = cfg["rules"]
    half_life = _num(windows.decay_half_life_days, "time.decay_half_life_days")
    if half_life <= 0:
        raise SqlRenderError("config time.decay_half_life_days must be > 0")
    min_users = int(cfg["co_purchase"]["min_users"])
    if min_users < 1:
        raise SqlRenderError("config co_purchase.min_users must be >= 1")
    regex = str(rules["variant_suffix_regex"])
    try:
        re.compile(regex)
    except re.error as exc:
        raise SqlRenderError(f"config rules.variant_suffix_regex={regex!r}: {exc}") from exc
    params: dict[str, Any] = {role: Ident(ref) for role, ref in refs.items()}
    params.update(
        as_of=_midnight(windows.as_of),
        cutoff=_midnight(windows.cutoff),
        interaction_start=_midnight(windows.interaction_start),
        purchase_start=_midnight(
            windows.cutoff - dt.timedelta(days=int(windows.purchase_exclusion_days))
        ),
        as_of_date=windows.as_of,
        cutoff_date=windows.cutoff,
        half_life_days=half_life,
        w_view=_num(weights["product_viewed"], "event_weights.product_viewed"),
        w_cart=_num(weights["added_to_cart"], "event_weights.added_to_cart"),
        w_order=_num(weights["order_placed"], "event_weights.order_placed"),
        w_click=_num(weights["email_click"], "event_weights.email_click"),
        min_users=min_users,
        max_neighbours=int(cfg["co_purchase"]["max_neighbours"]),
        weight_by_basket=bool(cfg["co_purchase"]["weight_by_basket"]),
        min_strength=float(cfg["co_purchase"]["min_strength"]),
        both_keep=cfg["co_purchase"]["neighbour_rule"] == "both",
        rank_by_strength=cfg["co_purchase"]["rank_by"] == "strength",
        candidate_depth=int(rules["candidate_depth"]),
        user_candidates=int(cfg["scale"]["user_candidates"]),
        min_price=_num(rules["min_price"], "rules.min_price"),
        image_prefix=str(rules["image_prefix"]),
        variant_regex=regex,
        excluded_tags=_str_list(rules["excluded_tags"], "rules.excluded_tags"),
        service_part_types=_str_list(rules["service_part_types"], "rules.service_part_types"),
        commodity_part_types=_str_list(
            rules["commodity_part_types"], "rules.commodity_part_types"
        ),
        max_per_part_type=int(rules["max_per_part_type"]),
        top_k=int(rules["top_k"]),
        rank_depth=int(rules["rank_depth"]),
    )
    return params
