"""Count the test clicks per day in the warehouse and choose the run's test window.

One query (``test_click_days`` of ``sql/gnn/export_test_set.sql``, the same rows as the
exported ``test_clicks``) over the widest allowed window; the choice itself is
:func:`holley_gnn_assets.config.time_windows.choose_test_window`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from holley_gnn_assets.config.time_windows import TimeWindows, choose_test_window
from holley_gnn_assets.warehouse.base import Warehouse
from holley_gnn_assets.warehouse.sql import sql_params

CLICK_DAYS_SQL = ("gnn/export_test_set.sql", "test_click_days")


def click_counts_by_day(warehouse: Warehouse, cfg: Mapping[str, Any],
                        as_of: dt.date) -> dict[dt.date, int]:
    """Test clicks per UTC day in [as_of - time.max_test_window_days, as_of)."""
    widest = TimeWindows.from_config(cfg, as_of, int(cfg["time"]["max_test_window_days"]))
    path, name = CLICK_DAYS_SQL
    frame = warehouse.run_named(path, sql_params(cfg, widest, warehouse.dataset_refs()), [name])
    frame = frame[name]
    return {dt.date.fromisoformat(str(day)): int(n)
            for day, n in zip(frame["day"], frame["n_clicks"], strict=True)}


def adaptive_windows(warehouse: Warehouse, cfg: Mapping[str, Any],
                     as_of: dt.date) -> TimeWindows:
    """The run's windows: the test window grown until it holds ``eval.min_test_clicks``.

    The source contract is validated first, so a missing table is named as such.
    """
    warehouse.validate_contract()
    return choose_test_window(cfg, as_of, click_counts_by_day(warehouse, cfg, as_of))
