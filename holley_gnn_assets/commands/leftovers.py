"""Files a killed run leaves behind, removed at the next start (``holley-gnn run``).

A run killed by the kernel (out of memory) or ``kill -9`` cannot clean up: DuckDB's spill
directory beside the warehouse (``<warehouse>.tmp``, its default ``temp_directory``; gigabytes
after a large sort) and the half-written ``*.tmp`` files of atomic writes under the home
(checkpoints, graph snapshots, tables) stay. The CLI removes them while it holds the run lock
on the home and the warehouse, so no live run is using them. DuckDB's ``.wal`` is never touched
(it holds committed work to replay).
"""

from __future__ import annotations

import shutil
from pathlib import Path


def duckdb_spill_dir(warehouse: Path) -> Path:
    """DuckDB's default spill directory for the database file ``warehouse``."""
    return warehouse.with_name(warehouse.name + ".tmp")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def remove_leftovers(home: Path, warehouse: Path | None) -> tuple[list[Path], int]:
    """Remove the spill directory of ``warehouse`` and ``*.tmp`` files under ``home`` (not the
    Dagster instance's folder); return what was removed and the bytes freed. Only call while
    holding the run lock of both."""
    found: list[Path] = []
    if warehouse is not None and duckdb_spill_dir(warehouse).is_dir():
        found.append(duckdb_spill_dir(warehouse))
    if home.is_dir():
        found += [p for p in home.rglob("*.tmp") if p.is_file()
                  and "dagster_home" not in p.relative_to(home).parts]
    freed = 0
    for path in found:
        freed += _size(path)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found, freed
