"""``holley-gnn backfill``: score missed days, one ``score_job`` run per date, in-process.

Each date is its own partition (its as-of date): its cutoff and windows are computed by that
run's ``run_window``, so days scored late are scored as of their own date. The runs go to the
same Dagster instance as ``holley-gnn run`` (the UI shows them, per partition); the UI's own
partition backfill of ``score_job`` does the same through the daemon. A backfilled date is
scored and evaluated (its partitions: lists, ``eval_report``) but not published over a later
date's output (``publish_runs.newer_published``): the output table keeps the newest lists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from holley_gnn_assets.config.run_lock import RunLockedError, run_lock
from holley_gnn_assets.config.settings import get_settings
from holley_gnn_assets.defs.partitions import PartitionDateError, partition_key_of

BACKFILL_TAG = "holley-gnn/backfill"
"""Run tag: the backfill's date range (``<start>..<end>``) on each of its runs."""


@dataclass(frozen=True)
class BackfillRow:
    """One date of a backfill: its run, status, output rows and the cutoff it used."""

    date: str
    run_id: str
    success: bool
    rows: int | None
    cutoff: str | None
    error: str = ""

    def line(self) -> str:
        """The printed line: date, status, rows, cutoff, run (and the first error)."""
        rows = "-" if self.rows is None else f"{self.rows:,}"
        text = (f"{self.date}  {'SUCCESS' if self.success else 'FAILED':<7}  rows={rows:<8}  "
                f"cutoff={self.cutoff or '-'}  run={self.run_id[:8]}")
        return text + (f"  {self.error}" if self.error else "")


def backfill_dates(start: dt.date, end: dt.date) -> list[str]:
    """Partition keys ``start`` .. ``end`` (inclusive); PartitionDateError naming a bad one."""
    if end < start:
        raise PartitionDateError(f"--end {end} is before --start {start}")
    return [partition_key_of(start + dt.timedelta(days=i)) for i in range((end - start).days + 1)]


def backfill_row(date: str, result) -> BackfillRow:  # noqa: ANN001 (ExecuteInProcessResult)
    """A finished run's row: rows of ``gnn_recommendations``, cutoff of ``run_window``."""
    from holley_gnn_assets.commands.runner import summarize

    summary = summarize(result)
    assets = summary["assets"]
    rows = assets.get("gnn_recommendations", {}).get("dagster/row_count")
    cutoff = assets.get("run_window", {}).get("cutoff")
    errors = summary["step_errors"]
    error = next(iter(f"{step}: {text}" for step, text in errors.items()), "")
    return BackfillRow(date, summary["run_id"], bool(summary["success"]),
                       None if rows is None else int(rows), cutoff, error)


def run_backfill(start: dt.date, end: dt.date, job: str = "score_job") -> int:
    """Run ``job`` once per date ``start`` .. ``end`` (oldest first) under the home's run lock;
    print one line per date; exit 0 when every run succeeded."""
    from holley_gnn_assets.commands.runner import execute_job, local_instance, start_guard

    try:
        dates = backfill_dates(start, end)
    except PartitionDateError as exc:
        print(f"holley-gnn backfill: {exc}")
        return 2
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    locks = [settings.home]
    if settings.warehouse_kind == "duckdb" and settings.duckdb_path.is_file():
        locks.append(settings.duckdb_path)
    rows = []
    try:
        with run_lock(locks, f"backfill {job}"):
            instance = local_instance(settings)
            for message in start_guard(settings, instance):
                print(message)
            print(f"backfill {job}: {len(dates)} dates {dates[0]} .. {dates[-1]}", flush=True)
            for date in dates:
                result = execute_job(job, instance=instance, partition_key=date,
                                     tags={BACKFILL_TAG: f"{dates[0]}..{dates[-1]}"})
                rows.append(backfill_row(date, result))
                print(rows[-1].line(), flush=True)
    except RunLockedError as exc:
        print(f"holley-gnn backfill: {exc}")
        return 75  # EX_TEMPFAIL
    print(f"backfill {job}: {sum(r.success for r in rows)} of {len(rows)} dates succeeded")
    return 0 if all(r.success for r in rows) else 1
