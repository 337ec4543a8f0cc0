"""One ``holley-gnn run`` at a time per home and per warehouse file.

An exclusive ``flock`` on the home directory itself and on the embedded DuckDB warehouse file:
a second run fails at once with a message naming the holder (pid, job, start time) instead of
colliding in MLflow's store or on DuckDB's write lock. The kernel drops the lock when the holder
dies (even on ``kill -9``), so a crash never leaves a stale lock.

The lock is on what the run uses, not on a side file an operator may delete as stale (a lock
on a deleted file protects nothing: the next run creates a new file and locks that). After
``flock`` succeeds the locked descriptor's inode is compared with the path's, and the lock is
taken again when the path was replaced meanwhile. ``flock`` and DuckDB's own ``fcntl`` locks
are independent on Linux. The status file beside it (``<home>/run.lock``,
``<warehouse>.run.lock``) says whether it is held: ``"held": true`` with the holder's pid, job
and start, ``false`` with the release time once the run is done; deleting it unlocks nothing.
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

_ATTEMPTS = 20


class RunLockedError(RuntimeError):
    """Another run holds the lock; the message names it."""


def status_file(target: Path) -> Path:
    """The file that says who holds ``target``'s lock: ``<dir>/run.lock`` or ``<file>.run.lock``."""
    return target / "run.lock" if target.is_dir() else target.with_name(target.name + ".run.lock")


def _holder(target: Path) -> str:
    try:
        info = json.loads(status_file(target).read_text() or "{}")
    except (OSError, ValueError):
        return "another holley-gnn run"
    return (f"holley-gnn run pid {info.get('pid')} ({info.get('job')}, started "
            f"{info.get('started')})")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _same_file(fd: int, target: Path) -> bool:
    """Whether the locked descriptor is what ``target`` names now (not a deleted/replaced one)."""
    try:
        here = os.stat(target)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (here.st_ino, here.st_dev) == (mine.st_ino, mine.st_dev)


def _acquire(target: Path) -> int:
    """Lock ``target`` (a directory, or a file created when missing); RunLockedError if another
    process holds it."""
    for _ in range(_ATTEMPTS):
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDONLY if target.is_dir() else os.O_RDONLY | os.O_CREAT
        fd = os.open(target, flags, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise RunLockedError(
                f"{_holder(target)} holds {target}: wait for it to finish (or stop it) and run "
                "again") from exc
        if _same_file(fd, target):
            return fd
        os.close(fd)  # locked a file that was deleted or replaced meanwhile: lock the new one
    raise RunLockedError(f"{target} kept being replaced while locking it ({_ATTEMPTS} tries)")


def _write_status(target: Path, info: dict) -> None:
    with contextlib.suppress(OSError):
        status_file(target).write_text(json.dumps(info))


@contextlib.contextmanager
def run_lock(paths: list[Path], job: str) -> Iterator[None]:
    """Hold exclusive locks on ``paths`` (directories or files) for the duration;
    RunLockedError naming the holder if one is taken."""
    held: list[tuple[int, Path, dict]] = []
    try:
        for target in paths:
            fd = _acquire(Path(target))
            info = {"held": True, "pid": os.getpid(), "job": job, "started": _now()}
            held.append((fd, Path(target), info))
            _write_status(Path(target), info)
        yield
    finally:
        for fd, target, info in reversed(held):
            _write_status(target, {**info, "held": False, "released": _now()})
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
