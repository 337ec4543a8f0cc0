"""``run_window``: the run's as-of date (its partition key) and time windows, computed once.

The first step of every pipeline run. The date is the partition key (fixed when the run was
created); the test window is grown here, once, from the warehouse's test clicks per day
(``warehouse/window_counts.py``). Every other step reads this value as its input, so rows
appended to the source tables during the run, or a clock that passes midnight, cannot give two
steps of one run two cutoffs.
"""

import datetime as dt

from dagster import AssetExecutionContext, Output, asset

from holley_gnn_assets.config.time_windows import TimeWindows
from holley_gnn_assets.defs.assets.exports import SOURCE_KEYS
from holley_gnn_assets.defs.executor import warehouse_retry_policy
from holley_gnn_assets.defs.partitions import DAILY, window_metadata
from holley_gnn_assets.defs.resources import PipelineSettings, WarehouseResource
from holley_gnn_assets.failures import no_retry
from holley_gnn_assets.warehouse.window_counts import adaptive_windows


@asset(group_name="run", partitions_def=DAILY, deps=SOURCE_KEYS,
       retry_policy=warehouse_retry_policy(), kinds={"python"},
       description="The run's as-of date (its daily partition key), cutoff and test window, "
                   "computed once per run; every step reads them from here.")
def run_window(context: AssetExecutionContext, pipeline: PipelineSettings,
               warehouse: WarehouseResource) -> Output[TimeWindows]:
    as_of = dt.date.fromisoformat(context.partition_key)
    with no_retry():  # a missing table fails once, at once
        windows = adaptive_windows(warehouse.get(), pipeline.cfg, as_of)
    context.log.info(f"run window: as_of={windows.as_of} cutoff={windows.cutoff} "
                     f"({windows.test_window_reason})")
    return Output(windows, metadata={
        **window_metadata(windows),
        "test_window_days": windows.test_window_days,
        "test_clicks": -1 if windows.window_clicks is None else windows.window_clicks,
        "test_window_reason": windows.test_window_reason,
    })
