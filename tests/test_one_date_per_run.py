"""One date per run: a run's steps share one as-of date and cutoff, whatever happens mid-run.

Real Dagster runs on the tiny world (DuckDB warehouse, ephemeral instance): a test-only job
built from the pipeline's own assets (the run's window, the exports, the SQL arm and their
checks) with a hook that, right after ``run_window``, appends test clicks to the source table
(enough to change which test window the adaptive rule picks) and moves the clock past midnight.
Every step must still record the run's own as-of date and cutoff. A three-day backfill scores
three partitions at three dates.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    Failure,
    HookContext,
    build_asset_context,
    define_asset_job,
    success_hook,
)

from holley_gnn_assets.config.time_windows import TimeWindows
from holley_gnn_assets.defs import partitions
from holley_gnn_assets.warehouse.base import DUCKDB_DATASETS
from tests.conftest import pipeline_env, private_warehouse

WORLD_DATE = dt.date(2026, 11, 1)  # the tiny world's as-of date
PROBE = ["run_window", "user_nodes", "product_nodes", "vehicle_nodes", "product_order_days",
         "user_product_edges", "user_vehicle_edges", "product_vehicle_edges",
         "product_product_edges", "user_purchases", "test_clicks", "test_events",
         "sql_baseline_recommendations"]


class _Undated:
    """A warehouse that records no synthetic date (run_date then falls back to the clock)."""

    def synthetic_as_of(self) -> None:
        return None


def _tight_config(home: Path, warehouse: Path) -> tuple[Path, dict]:
    """The packaged config with eval.min_test_clicks one above the default window's clicks, so
    the run's window grows past the default; (path, config)."""
    from holley_gnn_assets.config.settings import load_config
    from holley_gnn_assets.config.time_windows import clicks_in_window
    from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
    from holley_gnn_assets.warehouse.window_counts import click_counts_by_day

    cfg = load_config()
    days = click_counts_by_day(DuckDBWarehouse(str(warehouse)), cfg, WORLD_DATE)
    default = clicks_in_window(days, WORLD_DATE, int(cfg["time"]["test_window_days"]))
    cfg = load_config(overrides={"eval": {"min_test_clicks": default + 1}})
    path = home / "tight.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, cfg


def _append_test_clicks(warehouse, as_of: dt.date, days: int) -> None:  # noqa: ANN001
    """Double the CLICKED rows of the default test window (a mid-run append to the source)."""
    table = f"{DUCKDB_DATASETS['company']}.treatment_interaction"
    start = as_of - dt.timedelta(days=days)
    warehouse.execute(
        f"INSERT INTO {table} SELECT * FROM {table} WHERE interaction_type = 'CLICKED' "
        f"AND interaction_timestamp >= TIMESTAMP '{start}' "
        f"AND interaction_timestamp < TIMESTAMP '{as_of}'")


@pytest.fixture
def world(tiny_signal_warehouse: Path, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    warehouse = private_warehouse(home, tiny_signal_warehouse)
    config, cfg = _tight_config(home, warehouse)
    mp = pipeline_env(home, warehouse, config)
    yield {"home": home, "warehouse": warehouse, "cfg": cfg, "mp": mp}
    mp.undo()


def test_a_run_keeps_one_cutoff_under_a_mid_run_append_and_a_clock_change(world):
    from holley_gnn_assets.config.settings import get_settings
    from holley_gnn_assets.definitions import build_defs
    from holley_gnn_assets.warehouse.window_counts import adaptive_windows

    mp, cfg = world["mp"], world["cfg"]
    default_days = int(cfg["time"]["test_window_days"])
    late_evening = dt.date(2026, 11, 1)
    mp.setattr(partitions, "utc_today", lambda: late_evening)
    key = partitions.partition_key_of(partitions.run_date(get_settings(), warehouse=_Undated()))
    assert key == WORLD_DATE.isoformat()  # the run is created "today", from the clock
    moved: list[str] = []

    @success_hook(required_resource_keys={"warehouse"})
    def meddle(context: HookContext) -> None:
        if context.step_key == "run_window":  # after the window, before every other step
            _append_test_clicks(context.resources.warehouse.get(), WORLD_DATE, default_days)
            mp.setattr(partitions, "utc_today", lambda: late_evening + dt.timedelta(days=1))
            moved.append(context.step_key)

    base = build_defs()
    job = define_asset_job("one_date_probe", selection=AssetSelection.assets(*PROBE),
                           hooks={meddle})
    defs = Definitions(assets=base.assets, asset_checks=base.asset_checks, jobs=[job],
                       resources=base.resources)
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("one_date_probe").execute_in_process(
            instance=instance, partition_key=key, raise_on_error=False)
    assert result.success, result.get_failed_step_keys()
    assert moved == ["run_window"]

    recorded = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        recorded[mat.asset_key.to_user_string()] = (mat.metadata["as_of"].value,
                                                    mat.metadata["cutoff"].value)
    assert set(recorded) == set(PROBE)
    assert len(set(recorded.values())) == 1, recorded  # one date and one cutoff, every step
    ((as_of, cutoff),) = set(recorded.values())
    assert as_of == key
    grown = dt.date.fromisoformat(cutoff)
    assert (WORLD_DATE - grown).days > default_days  # the window grew: too few clicks then

    # the append and the clock did change what a step would compute on its own now
    wh = base.resources["warehouse"].get()
    now = adaptive_windows(wh, cfg, WORLD_DATE)
    assert now.cutoff != grown and now.test_window_days == default_days
    assert partitions.run_date(get_settings(), warehouse=_Undated()) != WORLD_DATE


def test_a_window_of_another_date_is_refused():
    from holley_gnn_assets.config.settings import load_config

    windows = TimeWindows.from_config(load_config(), WORLD_DATE)
    context = build_asset_context(partition_key="2026-11-02")
    with pytest.raises(Failure, match=r"run_window has as_of=2026-11-01 but this step runs "
                                      r"for partition 2026-11-02"):
        partitions.windows_of(context, windows)
    assert partitions.windows_of(build_asset_context(partition_key="2026-11-01"),
                                 windows) is windows


def test_a_date_outside_the_partitions_is_named():
    with pytest.raises(partitions.PartitionDateError, match=r"2024-01-01 is not a partition .* "
                                                            r"time.partition_start"):
        partitions.partition_key_of(dt.date(2024, 1, 1))


@pytest.mark.slow
def test_a_three_day_backfill_scores_three_partitions_at_their_dates(
        tiny_signal_warehouse: Path, tmp_path: Path, capsys):
    """A retrain (a champion to score with), then ``holley-gnn backfill`` over three days."""
    from holley_gnn_assets.commands.cli import main
    from holley_gnn_assets.commands.runner import local_instance
    from holley_gnn_assets.config.settings import load_config

    home = tmp_path / "home"
    home.mkdir()
    warehouse = private_warehouse(home, tiny_signal_warehouse)
    config = home / "fast.yaml"
    config.write_text(yaml.safe_dump(load_config(overrides={"training": {"epochs": 2,
                                                                         "patience": 1}})))
    mp = pipeline_env(home, warehouse, config)
    try:
        assert main(["run"]) == 0
        capsys.readouterr()
        assert main(["backfill", "--start", "2026-10-30", "--end", "2026-11-01"]) == 0
        printed = capsys.readouterr().out
        instance = local_instance()
        runs = [r for r in instance.get_runs() if r.job_name == "score_job"]
        records = instance.fetch_materializations(AssetKey("run_window"), limit=10).records
        cutoffs = {}
        for record in reversed(records):  # oldest first: a date's latest run wins
            meta = record.asset_materialization.metadata
            cutoffs[record.partition_key] = meta["cutoff"].value
    finally:
        mp.undo()
    print(printed)
    lines = [line for line in printed.splitlines() if line[:4] == "2026"]
    assert [line[:10] for line in lines] == ["2026-10-30", "2026-10-31", "2026-11-01"]
    assert all("SUCCESS" in line for line in lines), printed
    assert sorted(r.tags["dagster/partition"] for r in runs) == [
        "2026-10-30", "2026-10-31", "2026-11-01"]
    assert len({cutoffs[line[:10]] for line in lines}) == 3, cutoffs  # each at its own cutoff
    for line in lines:
        assert f"cutoff={cutoffs[line[:10]]}" in line


def test_stored_partitions_are_kept_per_date_and_pruned(tmp_path: Path):
    """Each date is its own file; writing a date removes the asset's dates more than
    ``keep_partitions`` days older; the metadata path names the written file."""
    import pandas as pd
    from dagster import asset, materialize

    from holley_gnn_assets.defs.io_managers import TablesIOManager

    @asset(partitions_def=partitions.DAILY)
    def table(context):  # noqa: ANN001, ANN202 (a string annotation would not resolve here)
        return pd.DataFrame({"day": [context.partition_key]})

    io_manager = TablesIOManager(base_path=str(tmp_path / "tables"), keep_partitions=1)
    paths = []
    for key in ("2026-10-29", "2026-10-30", "2026-10-31"):
        result = materialize([table], resources={"io_manager": io_manager}, partition_key=key)
        (event,) = result.get_asset_materialization_events()
        paths.append(event.materialization.metadata["path"].value)
    folder = tmp_path / "tables" / "table"
    assert paths[-1] == str(folder / "2026-10-31.parquet")
    assert sorted(p.name for p in folder.iterdir()) == ["2026-10-30.parquet",
                                                         "2026-10-31.parquet"]
    assert pd.read_parquet(folder / "2026-10-30.parquet")["day"].tolist() == ["2026-10-30"]
