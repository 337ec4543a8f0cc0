"""``generate_warehouse``: a synthetic Holley-like DuckDB warehouse with planted ground truth.

The world (vehicles in engine-family x era groups, a catalogue with affinity clusters, fitment)
defines each vehicle's true preference over its fitting products,
``P(j | v) ~ p_j * exp(signal * A[group(v), cluster(j)])``. Every behaviour (views, carts,
orders, email clicks in and before the test window, outside customers' orders and bundles) is
drawn from it; ``synth_truth.vehicle_preference`` records it. ``signal = 0`` is the null world
where global popularity within fitment is (up to fitment breadth) the best ranking.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.synth import behaviour as bh
from holley_gnn_assets.synth.activity import epoch_timestamps, simulate_activity
from holley_gnn_assets.synth.catalogue_tables import catalogue_tables
from holley_gnn_assets.synth.scales import resolve_params
from holley_gnn_assets.synth.time_model import build_time_model
from holley_gnn_assets.synth.truth_tables import truth_tables
from holley_gnn_assets.synth.world import World, build_world
from holley_gnn_assets.synth.writer import (
    CONTRACT_TABLES,
    TRUTH_TABLES,
    atomic_duckdb,
    write_table,
)

DEFAULT_AS_OF = dt.date(2026, 11, 1)
_STREAMS = (
    "vehicles",
    "catalogue",
    "affinity",
    "users",
    "attributes",
    "activity",
    "treatments",
    "site",
    "orders",
    "items",
    "fitment",
    "time",  # last: the streams before it are the same as before it existed
)


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled, self.t0 = enabled, time.perf_counter()

    def __call__(self, stage: str, detail: str) -> None:
        if self.enabled:
            print(
                f"synth: {stage} {detail} ... {time.perf_counter() - self.t0:.1f}s",
                file=sys.stderr,
                flush=True,
            )


def _as_date(value: dt.date | str | None) -> dt.date:
    if value is None:
        return DEFAULT_AS_OF
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ValueError(f"as_of={value!r} is not a date in YYYY-MM-DD form") from exc


def generate_warehouse(
    path: str | Path,
    scale: str = "demo",
    seed: int = 0,
    signal: float = 1.0,
    as_of: dt.date | None = None,
    progress: bool = True,
    **overrides: Any,
) -> dict:
    """Write a synthetic warehouse (source contract + ``synth_truth``) to the DuckDB file ``path``.

    Deterministic per (scale, seed, signal, as_of, overrides). An existing file is replaced only
    once the new one is complete. Returns {"rows": {table: n}, "seconds", "as_of", ...}.
    """
    t0 = time.perf_counter()
    params = resolve_params(scale, overrides)
    try:
        signal = float(signal)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"signal={signal!r} must be a finite number >= 0") from exc
    if not math.isfinite(signal) or signal < 0:
        raise ValueError(f"signal={signal!r} must be a finite number >= 0")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    as_of_d = _as_date(as_of)
    cfg = load_config()
    days = int(cfg["time"]["test_window_days"])
    start = dt.date.fromisoformat(str(cfg["time"]["interaction_start"]))
    cutoff = as_of_d - dt.timedelta(days=days)
    if (cutoff - start).days < 60:
        raise ValueError(
            f"as_of={as_of_d} leaves under 60 days between interaction_start "
            f"{start} and the cutoff {cutoff}; pick a later as_of"
        )
    clock = bh.Clock.from_dates(start, cutoff, as_of_d)
    say = _Progress(progress)
    seq = np.random.SeedSequence([int(seed), 1950])
    rngs = {
        name: np.random.default_rng(s)
        for name, s in zip(_STREAMS, seq.spawn(len(_STREAMS)), strict=True)
    }

    world = build_world(params, cfg["rules"], float(signal), rngs)
    world.time = build_time_model(params, world.cat.cluster, world.cat.attract,
                                  int(params["n_clusters"]), clock.cutoff, clock.as_of,
                                  rngs["time"])
    say(
        "world",
        f"{world.veh.n:,} vehicles / {world.cat.n:,} products / {len(world.fit_v):,} fitment pairs",
    )
    users = bh.build_users(params, world, rngs["users"])
    say("users", f"{users.n:,}")
    tables: dict[str, pd.DataFrame] = {}
    attrs = _attributes(params, world, users, clock, rngs["attributes"])
    tables["company_1950.ingestion_unified_attributes_schema_incremental"] = attrs
    say("attributes", f"{len(attrs):,}")
    activity = simulate_activity(params, world, users, clock, rngs)
    tables.update(activity["tables"])
    say(
        "events",
        f"{len(tables['company_1950.ingestion_unified_schema_incremental']):,} site / "
        f"{len(tables['company_1950.treatment_interaction']):,} treatment / "
        f"{len(tables['data_company_1950.import_orders']):,} order lines",
    )
    tables.update(catalogue_tables(world, params, rngs["items"], rngs["fitment"]))
    truth = truth_tables(
        world,
        users,
        params,
        scale,
        int(seed),
        float(signal),
        as_of_d,
        cutoff,
        start,
        activity["n_test_clicks"],
        clock,
    )

    rows: dict[str, int] = {}
    with atomic_duckdb(path) as con:
        for name, cols in CONTRACT_TABLES.items():
            rows[name] = write_table(con, name, cols, tables[name])
        for name, cols in TRUTH_TABLES.items():
            rows[name] = write_table(con, name, cols, truth[name])
    seconds = time.perf_counter() - t0
    say("written", f"{sum(rows.values()):,} rows to {Path(path).name}")
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "as_of": as_of_d,
        "cutoff": cutoff,
        "scale": scale,
        "seed": int(seed),
        "signal": float(signal),
        "path": str(path),
        "n_test_clicks": activity["n_test_clicks"],
        "tiers": {t: int((users.tier == i).sum()) for i, t in enumerate(bh.TIERS)},
    }


def _attributes(
    params: dict, world: World, users: bh.Users, clock: bh.Clock, rng: np.random.Generator
) -> pd.DataFrame:
    df = bh.attributes_table(params, world, users, clock, rng)
    df["updated_at"] = epoch_timestamps(df["updated_at"].to_numpy())
    return df
