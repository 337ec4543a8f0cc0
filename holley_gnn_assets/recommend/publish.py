"""The output table and the ``champion`` alias, published as one guarded step.

The output table keeps the SQL pipeline's schema; beside it, ``<output.table>_publish_log``
(same dataset) records every publish: run, model version, staged table, row count, event and
time. Order of operations:

1. ``table_replaced``: the run's staged rows replace the output table **and** the log row is
   written in one warehouse transaction (both or neither);
2. the alias moves to that version (when the evaluation promoted it);
3. ``alias_moved`` is logged.

Whatever step a crash stops at, the last ``table_replaced`` row names the version whose rows
are in the table. :func:`reconcile` runs at every job start (the CLI before anything else, and
the first steps that read the registry: ``gnn_model``, ``embeddings``, and the output step
itself): when the alias names another version (or none) it moves the alias to the table's
version and logs ``alias_reconciled``. The log outlives the model store: a store that is empty,
missing or unreadable while the log says a model was published is refused naming its location
(:class:`RegistryLostError`), never read as a first run. Staging tables carry the run's id
(``recs_gnn_<run>``); :func:`drop_finished_staging` drops those of runs no longer in progress,
and in BigQuery they also expire (``output.staging_expiration_hours``).
"""

from __future__ import annotations

import logging
import os
import re
import signal
from collections.abc import Callable, Collection, Mapping
from typing import Any

from holley_gnn_assets.config.settings import get_settings
from holley_gnn_assets.failures import PermanentError
from holley_gnn_assets.storage.model_registry import ModelRegistry
from holley_gnn_assets.warehouse.base import Warehouse
from holley_gnn_assets.warehouse.sql import Ident

log = logging.getLogger(__name__)

TABLE_REPLACED, ALIAS_MOVED, ALIAS_RECONCILED = "table_replaced", "alias_moved", "alias_reconciled"
ROLLBACK = "rollback"
_SAFE = re.compile(r"^[A-Za-z0-9_.:\-]{0,200}$")
_STAGED = re.compile(r"^(?:scores|recs)_[a-z_]+?_([0-9a-f]{12})$")


class RegistryLostError(PermanentError):
    """The model store is missing, empty or unreadable although a model was published."""


class NoChampionError(PermanentError):
    """No promoted model: a scoring run writes nothing."""


def log_table(cfg: Mapping[str, Any]) -> tuple[str, str]:
    """(dataset, table) of the publish log: ``<output.table>_publish_log`` beside the output."""
    return str(cfg["output"]["dataset"]), f"{cfg['output']['table']}_publish_log"


def _lit(value: Any) -> str:
    text = str(value)
    if not _SAFE.match(text):
        raise ValueError(f"publish log value {text!r} is not a plain run id/version/table id")
    return f"'{text}'"


def _ref(warehouse: Warehouse, cfg: Mapping[str, Any]) -> str:
    return Ident(warehouse.table_id(*log_table(cfg))).render()


def ensure_log(warehouse: Warehouse, cfg: Mapping[str, Any]) -> None:
    """Create the publish log when missing."""
    warehouse.ensure_dataset(log_table(cfg)[0])
    warehouse.execute(
        f"CREATE TABLE IF NOT EXISTS {_ref(warehouse, cfg)} (run_id STRING, model_version "
        "STRING, staging_table STRING, row_count INT64, event STRING, published_at TIMESTAMP)")


def log_row(warehouse: Warehouse, cfg: Mapping[str, Any], run_id: str, version: str,
            staging_table: str, rows: int, event: str) -> str:
    """The INSERT of one publish-log row (BigQuery dialect)."""
    values = ", ".join([_lit(run_id), _lit(version), _lit(staging_table), str(int(rows)),
                        _lit(event), "CURRENT_TIMESTAMP()"])
    return (f"INSERT INTO {_ref(warehouse, cfg)} (run_id, model_version, staging_table, "
            f"row_count, event, published_at) VALUES ({values})")


def last_publish(warehouse: Warehouse, cfg: Mapping[str, Any],
                 events: tuple[str, ...] = (TABLE_REPLACED,)) -> dict[str, Any] | None:
    """The newest log row of one of ``events`` (default: the version whose rows the table
    holds), or None."""
    dataset, table = log_table(cfg)
    if table not in warehouse.list_tables(dataset):
        return None
    wanted = ", ".join(_lit(e) for e in events)
    rows = warehouse.query_df(
        f"SELECT run_id, model_version, staging_table, row_count, event, CAST(published_at AS "
        f"STRING) AS published_at FROM {_ref(warehouse, cfg)} WHERE event IN ({wanted}) "
        "ORDER BY published_at DESC LIMIT 1")
    return None if rows.empty else rows.iloc[0].to_dict()


def fault_point(name: str) -> None:
    """Tests: SIGKILL this process at ``name`` when HOLLEY_GNN_FAULT_AT says so."""
    if get_settings().fault_at == name:
        log.warning("HOLLEY_GNN_FAULT_AT=%s: killing the process", name)
        os.kill(os.getpid(), signal.SIGKILL)


def publish(warehouse: Warehouse, cfg: Mapping[str, Any], registry: ModelRegistry | None,
            staged: Mapping[str, Any], version: str, promote: bool, run_id: str) -> str | None:
    """Replace the output table with ``staged`` (logging ``version``) in one transaction, then
    move the alias to ``version`` when ``promote``; return the champion version moved to."""
    out = cfg["output"]
    ensure_log(warehouse, cfg)
    fault_point("before_table")
    warehouse.replace_with_record(
        (staged["dataset"], staged["name"]), (out["dataset"], out["table"]),
        [log_row(warehouse, cfg, run_id, version, staged["table"], staged["rows"],
                 TABLE_REPLACED)])
    fault_point("after_table")
    if not promote or registry is None:
        return None
    champion = registry.promote(version)["version"]
    fault_point("after_alias")
    warehouse.execute(log_row(warehouse, cfg, run_id, champion, staged["table"], staged["rows"],
                              ALIAS_MOVED))
    return champion


def _registry_state(open_registry: Callable[[], ModelRegistry], where: str,
                    published: Mapping[str, Any] | None
                    ) -> tuple[ModelRegistry, dict | None, set[str]]:
    """The registry, its champion and its version numbers, read strictly: a store that cannot
    be opened or read (a half-written SQLite file: "database disk image is malformed") is
    named, whether or not anything was published."""
    try:
        registry = open_registry()
        found = registry.client.search_model_versions(f"name = '{registry.name}'")
        versions = {str(mv.version) for mv in found}
        champion = registry.champion() if versions else None
    except Exception as exc:  # noqa: BLE001 - any store failure: sqlite, SQLAlchemy, HTTP
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        what = (f"model version {published['model_version']} was published on "
                f"{published['published_at']}" if published else "nothing was published yet")
        raise RegistryLostError(
            f"the model registry at {where} cannot be read ({type(exc).__name__}: {first}); "
            f"{what}: restore the store (or its backup) and run again") from exc
    return registry, champion, versions


def reconcile(warehouse: Warehouse, cfg: Mapping[str, Any],
              open_registry: Callable[[], ModelRegistry], where: str) -> str | None:
    """Make the alias name the version whose rows the output table holds (the last
    ``table_replaced`` row); return what was changed, or None. RegistryLostError when the store
    (at ``where``) cannot be read, or no longer has that version (missing, emptied, replaced)."""
    published = last_publish(warehouse, cfg, (TABLE_REPLACED, ROLLBACK))
    registry, champion, versions = _registry_state(open_registry, where, published)
    if published is None:
        return None  # nothing published yet: a first run may promote its first measured model
    # after a rollback the alias is the authority until the next run republishes the table
    version = str(published["model_version"])
    if version not in versions:
        raise RegistryLostError(
            f"the model registry at {where} has {len(versions)} version(s) of {registry.name} "
            f"and no version {version}, whose rows the output table holds (published "
            f"{published['published_at']} by run {published['run_id']}, logged in "
            f"{'.'.join(log_table(cfg))}): the store was lost, emptied or replaced; restore it "
            "and run again (this run would otherwise promote as if it were the first)")
    if champion is not None and champion["version"] == version:
        return None
    registry.promote(version)
    warehouse.execute(log_row(warehouse, cfg, str(published["run_id"]), version,
                              str(published["staging_table"]), int(published["row_count"]),
                              ALIAS_RECONCILED))
    before = champion["version"] if champion else "no version"
    message = (f"the output table holds model version {version}'s rows but the champion alias "
               f"named {before}: alias moved to {version} (a publish was interrupted)")
    log.warning(message)
    return message


def rollback(warehouse: Warehouse, cfg: Mapping[str, Any], registry: ModelRegistry,
             who: str = "operator") -> str:
    """Move the alias back to the version the champion replaced and log it (``rollback``), so
    the next start keeps it; the next run (``score_job``) republishes the table from it."""
    version = str(registry.rollback()["version"])
    ensure_log(warehouse, cfg)
    warehouse.execute(log_row(warehouse, cfg, who, version, "", 0, ROLLBACK))
    return version


def drop_finished_staging(warehouse: Warehouse, cfg: Mapping[str, Any],
                          in_progress: Collection[str]) -> list[str]:
    """Drop the run-named staging tables of every run whose suffix is not ``in_progress``."""
    dataset = str(cfg["output"]["staging_dataset"])
    dropped = []
    for table in warehouse.list_tables(dataset):
        match = _STAGED.match(table)
        if match and match.group(1) not in in_progress:
            warehouse.drop_table(dataset, table)
            dropped.append(table)
    return dropped
