"""The run's time windows: as-of date T, cutoff C, test window [C, T), training before C.

The test window starts at ``time.test_window_days``. When it holds fewer test clicks than
``eval.min_test_clicks`` it grows by ``time.test_window_step_days`` (the cutoff moves back, so
training data ends earlier) up to ``time.max_test_window_days``, and the first window that
holds enough clicks is used. When even the widest one is too small the default window is kept
(a wider one would only cost training data) and the decision carries a small-sample flag (its
interval decides, ``evaluation.decision``).
:func:`choose_test_window` makes that choice from the clicks per day (pure, deterministic);
``warehouse/window_counts.py`` counts them in the warehouse. No environment or file reads here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FIXED_WINDOW_REASON = "fixed window of time.test_window_days (test clicks not counted)"


@dataclass(frozen=True)
class TimeWindows:
    """The as-of date T, cutoff C = T - test window days, and the derived windows.

    ``window_clicks``/``min_test_clicks``/``test_window_reason`` say how the test window was
    chosen (None/None/fixed when it was not counted: :meth:`from_config`).
    """

    as_of: dt.date
    cutoff: dt.date
    interaction_start: dt.date
    purchase_exclusion_days: int
    decay_half_life_days: float
    default_test_window_days: int | None = None
    window_clicks: int | None = None
    min_test_clicks: int | None = None
    test_window_reason: str = FIXED_WINDOW_REASON

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], as_of: dt.date,
                    window_days: int | None = None) -> TimeWindows:
        """The windows with a fixed test window: ``window_days`` or ``time.test_window_days``."""
        t = cfg["time"]
        default = int(t["test_window_days"])
        return cls(
            as_of=as_of,
            cutoff=as_of - dt.timedelta(days=default if window_days is None else window_days),
            interaction_start=dt.date.fromisoformat(str(t["interaction_start"])),
            purchase_exclusion_days=int(t["purchase_exclusion_days"]),
            decay_half_life_days=float(t["decay_half_life_days"]),
            default_test_window_days=default,
        )

    @property
    def test_window_days(self) -> int:
        """Days of the test window [cutoff, as_of)."""
        return (self.as_of - self.cutoff).days

    @property
    def enough_test_clicks(self) -> bool | None:
        """Whether the window holds ``eval.min_test_clicks``; None when it was not counted."""
        if self.window_clicks is None or self.min_test_clicks is None:
            return None
        return self.window_clicks >= self.min_test_clicks

    def window_summary(self) -> dict[str, Any]:
        """The test window as a JSON-ready dict (report, metadata, MLflow)."""
        return {
            "days": self.test_window_days,
            "default_days": self.default_test_window_days,
            "cutoff": self.cutoff.isoformat(),
            "as_of": self.as_of.isoformat(),
            "test_clicks": self.window_clicks,
            "min_test_clicks": self.min_test_clicks,
            "enough_test_clicks": self.enough_test_clicks,
            "reason": self.test_window_reason,
        }


def window_candidates(default_days: int, step_days: int, max_days: int) -> list[int]:
    """Test window lengths tried in order: default, default + step, ..., then the maximum."""
    if step_days <= 0:
        raise ValueError(f"time.test_window_step_days={step_days}: must be > 0")
    if max_days < default_days:
        raise ValueError(f"time.max_test_window_days={max_days}: must be >= "
                         f"time.test_window_days={default_days}")
    days = list(range(default_days, max_days + 1, step_days))
    return days if days[-1] == max_days else [*days, max_days]


def clicks_in_window(clicks_per_day: Mapping[dt.date, int], as_of: dt.date, days: int) -> int:
    """Test clicks with cutoff <= day < as_of, cutoff = as_of - ``days``."""
    cutoff = as_of - dt.timedelta(days=days)
    return sum(int(n) for day, n in clicks_per_day.items() if cutoff <= day < as_of)


def choose_test_window(cfg: Mapping[str, Any], as_of: dt.date,
                       clicks_per_day: Mapping[dt.date, int]) -> TimeWindows:
    """The windows whose test window is the first candidate holding ``eval.min_test_clicks``.

    ``clicks_per_day``: the test clicks (as exported) per UTC day, at least over the widest
    window. A candidate whose cutoff would not be after ``time.interaction_start`` is skipped
    (training would be empty). When no candidate holds enough clicks the default window is
    kept; :attr:`TimeWindows.enough_test_clicks` is then False and the reason says so.
    """
    t = cfg["time"]
    default = int(t["test_window_days"])
    need = int(cfg["eval"]["min_test_clicks"])
    start = dt.date.fromisoformat(str(t["interaction_start"]))
    every = window_candidates(default, int(t["test_window_step_days"]),
                              int(t["max_test_window_days"]))
    tried = [d for d in every if d == default or as_of - dt.timedelta(days=d) > start]
    counts = {d: clicks_in_window(clicks_per_day, as_of, d) for d in tried}
    chosen = next((d for d in tried if counts[d] >= need), None)
    first = f"default {default} d held {counts[default]:,} test clicks"
    if chosen == default:
        reason = f"{first} >= eval.min_test_clicks={need:,}"
    elif chosen is not None:
        reason = (f"{first} < eval.min_test_clicks={need:,}; grew to {chosen} d: "
                  f"{counts[chosen]:,} clicks")
    else:
        widest = tried[-1]
        capped = (f" (windows past time.interaction_start={start.isoformat()} skipped)"
                  if len(tried) < len(every) else "")
        # the window is chosen before the decision: say what the count means, not which
        # decision follows (0 clicks end in no_test_data; a few are judged by the interval)
        meaning = ("no test clicks to measure" if not counts[widest]
                   else "a small test set: the interval decides")
        reason = (f"{first} < eval.min_test_clicks={need:,}; even the maximum {widest} d "
                  f"holds {counts[widest]:,}{capped}: kept the default {default} d window "
                  f"({meaning})")
        chosen = default
    windows = TimeWindows.from_config(cfg, as_of, window_days=chosen)
    return dataclasses.replace(windows, window_clicks=counts[chosen], min_test_clicks=need,
                               test_window_reason=reason)
