"""One ``holley-gnn run`` at a time per home and per warehouse file.

An exclusive ``fcntl`` lock on ``<home>/run.lock`` and, for the embedded DuckDB warehouse, on
``<warehouse>.run.lock``: a second run fails at once with a message naming the holder (pid,
job, start time) instead of colliding in MLflow's store or on DuckDB's write lock. The kernel
drops the lock when the holder dies (even on ``kill -9``), so a crash never leaves a stale lock.
In production the Dagster run queue's concurrency limits do the same (k8s/helm/values.yaml).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path


class RunLockedError(RuntimeError):
    """Another run holds the lock; the message names it."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another holley-gnn run"
    return (f"holley-gnn run pid {info.get('pid')} ({info.get('job')}, started "
            f"{info.get('started')})")


@contextlib.contextmanager
def run_lock(paths: list[Path], job: str) -> Iterator[None]:
    """Hold exclusive locks on ``paths`` for the duration; RunLockedError if one is taken."""
    handles = []
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a+")  # noqa: SIM115 - kept open while the lock is held
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                fh.close()
                raise RunLockedError(
                    f"{_holder(path)} holds {path}: wait for it to finish (or stop it) and run "
                    "again"
                ) from exc
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps({"pid": os.getpid(), "job": job,
                                 "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}))
            fh.flush()
            handles.append(fh)
        yield
    finally:
        for fh in reversed(handles):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()
