"""One date per run: the pipeline's daily partitions, and the run's date fixed at creation.

Every asset of the pipeline is partitioned by :data:`DAILY`: a run is created for one partition
key, and that key is the run's as-of date T. ``holley-gnn run`` resolves the key once, when it
creates the run (:func:`run_date`); the weekly schedule and the daily sensor request runs for
their own date; a backfill creates one run per date. The time windows are computed once per run
by the ``run_window`` asset (``defs/assets/run_window.py``) and every step reads them from its
input (:func:`windows_of` checks they belong to the step's partition): no step reads the clock.
"""

from __future__ import annotations

import datetime as dt

from dagster import DailyPartitionsDefinition, Failure, PartitionsDefinition

from holley_gnn_assets.config.settings import Settings, get_settings
from holley_gnn_assets.config.time_windows import TimeWindows
from holley_gnn_assets.warehouse.base import Warehouse


def daily_partitions(settings: Settings) -> DailyPartitionsDefinition:
    """Daily partitions (UTC) from ``time.partition_start``, ``time.partition_end_offset_days``
    past the last complete day (1: today's date is a key)."""
    t = settings.config.time
    return DailyPartitionsDefinition(start_date=t.partition_start.isoformat(),
                                     end_offset=t.partition_end_offset_days)


DAILY = daily_partitions(get_settings())
"""The partitions of every pipeline asset (the key is the run's as-of date, YYYY-MM-DD)."""


class PartitionDateError(ValueError):
    """An as-of date that is not a key of the pipeline's partitions."""


def partition_key_of(day: dt.date, partitions: PartitionsDefinition | None = DAILY) -> str:
    """``day`` as a key of ``partitions`` (the pipeline's daily ones); ValueError naming the
    valid range (PartitionDateError) when it is not one."""
    key = day.isoformat()
    if partitions is None:
        raise PartitionDateError(f"as-of date {key}: the job has no partitions "
                                 "(expected the pipeline's daily ones)")
    keys = partitions.get_partition_keys()
    if key not in keys:
        first, last = (keys[0], keys[-1]) if keys else ("none", "none")
        raise PartitionDateError(
            f"as-of date {key} is not a partition of the pipeline (daily keys {first} .. {last}: "
            "time.partition_start and time.partition_end_offset_days set the range)")
    return key


def utc_today() -> dt.date:
    """Today's UTC date: the package's one clock for dates (run creation, the daily sensor)."""
    return dt.datetime.now(dt.UTC).date()


def run_date(settings: Settings, explicit: dt.date | None = None,
             warehouse: Warehouse | None = None) -> dt.date:
    """The as-of date of a run created now: ``explicit`` (``--as-of``), HOLLEY_GNN_AS_OF /
    ``time.as_of``, the synthetic date of ``warehouse`` (default: the settings' warehouse),
    else today (UTC). Called once, when the run is created; its steps read the partition key."""
    if explicit is not None:
        return explicit
    if settings.as_of is not None:
        return settings.as_of
    if warehouse is None:
        from holley_gnn_assets.defs.resources import WarehouseResource

        warehouse = WarehouseResource.from_settings(settings).get()
    return warehouse.synthetic_as_of() or utc_today()


def windows_of(context, run_window: TimeWindows) -> TimeWindows:  # noqa: ANN001 (any context)
    """The run's windows after checking they belong to this step's partition key (its as-of
    date); a Failure naming both dates when they differ."""
    key = (context.partition_key if context.has_partition_key
           else context.run.tags.get("dagster/partition"))
    if run_window.as_of.isoformat() != key:
        raise Failure(
            description=f"run_window has as_of={run_window.as_of.isoformat()} but this step runs "
                        f"for partition {key}: a step's windows must be its run's (materialize "
                        f"run_window for partition {key} in the same run)",
            allow_retries=False)
    return run_window


def window_metadata(windows: TimeWindows) -> dict[str, str]:
    """The as-of date and cutoff a step used (every step records them)."""
    return {"as_of": windows.as_of.isoformat(), "cutoff": windows.cutoff.isoformat()}
