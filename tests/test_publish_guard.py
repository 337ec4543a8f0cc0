"""The output table and the champion alias as one guarded step (recommend/publish.py).

A real DuckDB warehouse and a real MLflow store: version 1 is published and promoted, then a
child process publishes version 2 and is killed (SIGKILL, ``HOLLEY_GNN_FAULT_AT``) between
each pair of publish operations; after the next start's reconcile, the alias names the
version whose rows the table holds. Also: a lost or unreadable store is refused naming its
file, a fresh home still promotes its first model, and a run's staging is its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from mlflow import MlflowClient

from holley_gnn_assets.config.settings import FAULT_POINTS, load_config
from holley_gnn_assets.recommend import publish
from holley_gnn_assets.storage.model_registry import ModelRegistry
from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS, OUTPUT_TYPES

CFG = load_config()
STAGING = CFG["output"]["staging_dataset"]
RUNS = {"1": "aaaaaaaaaaaa", "2": "bbbbbbbbbbbb"}


def _rows(version: str) -> pd.DataFrame:
    df = pd.DataFrame({c: [f"v{version}-{c}-{i}" for i in range(3)] for c in OUTPUT_COLUMNS})
    for col, kind in OUTPUT_TYPES.items():
        if kind == "float64":
            df[col] = float(version)
    return df


def _staged(version: str) -> dict:
    name = f"recs_gnn_{RUNS[version]}"
    return {"dataset": STAGING, "name": name, "table": f"{STAGING}.{name}", "rows": 3,
            "run": RUNS[version]}


def _registry(home: Path) -> ModelRegistry:
    uri = f"sqlite:///{home / 'mlflow.db'}"
    return ModelRegistry(MlflowClient(tracking_uri=uri, registry_uri=uri))


@pytest.fixture()
def world(tmp_path: Path) -> dict:
    """A warehouse with two runs' staged rows, a store with two versions, version 1 published
    and promoted."""
    home = tmp_path / "home"
    home.mkdir()
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    duckdb.connect(str(wh.path)).close()
    for version in RUNS:
        wh.load_table(_rows(version), STAGING, _staged(version)["name"], OUTPUT_TYPES)
    registry = _registry(home)
    client = registry.client
    exp = client.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    for version in RUNS:
        run = client.create_run(exp).info.run_id
        assert registry.register(run, f"run-{version}", {})["version"] == version
    publish.publish(wh, CFG, registry, _staged("1"), "1", True, "run-1")
    return {"home": home, "wh": wh, "registry": registry}


def _table_version(wh: DuckDBWarehouse) -> str:
    out = wh.read_output_table(CFG["output"]["dataset"], CFG["output"]["table"])
    versions = set(out["rec1_score"].astype(int).astype(str))
    assert len(versions) == 1, versions
    return versions.pop()


def _child(world: dict, call: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``call`` (on ``wh``, ``registry``, ``cfg``) in a new process, as the next start
    (or a run) would: its own MLflow store connection."""
    code = ("from pathlib import Path\n"
            "from holley_gnn_assets.recommend import publish\n"
            "from holley_gnn_assets.config.settings import load_config\n"
            "from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse\n"
            "from tests.test_publish_guard import _registry, _staged\n"
            f"wh = DuckDBWarehouse({str(world['wh'].path)!r}); cfg = load_config()\n"
            f"home = Path({str(world['home'])!r})\n"
            f"{call}\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.getcwd(), **(env or {})},
                          timeout=180)


@pytest.mark.slow
@pytest.mark.parametrize("point", FAULT_POINTS)
def test_killed_between_publish_operations_table_and_alias_agree_after_next_start(
        world: dict, point: str) -> None:
    killed = _child(world, "publish.publish(wh, cfg, _registry(home), _staged('2'), '2', True, "
                    "'run-2')",
                    {"HOLLEY_GNN_FAULT_AT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    wh, registry = world["wh"], world["registry"]
    changed = publish.reconcile(wh, CFG, lambda: registry, "mlflow.db")
    table = _table_version(wh)
    assert registry.champion()["version"] == table
    assert table == ("1" if point == "before_table" else "2")
    assert (changed is not None) == (point == "after_table")  # the D1 case: alias moved
    assert publish.reconcile(wh, CFG, lambda: registry, "mlflow.db") is None  # idempotent


def test_a_failed_log_write_leaves_the_table_as_it_was(world: dict) -> None:
    wh = world["wh"]
    with pytest.raises(Exception, match="replacing"):
        wh.replace_with_record((STAGING, _staged("2")["name"]),
                               (CFG["output"]["dataset"], CFG["output"]["table"]),
                               ["INSERT INTO no_such_schema.t VALUES (1)"])
    assert _table_version(wh) == "1"


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "half", "delete"])
def test_a_lost_store_is_refused_naming_it_not_read_as_a_first_run(world: dict,
                                                                   damage: str) -> None:
    db = world["home"] / "mlflow.db"
    if damage == "truncate":  # truncate -s 0 home/mlflow.db
        os.truncate(db, 0)
    elif damage == "half":  # "database disk image is malformed"
        os.truncate(db, db.stat().st_size // 2)
    else:
        db.unlink()
    start = _child(world, f"publish.reconcile(wh, cfg, lambda: _registry(home), {str(db)!r})")
    assert start.returncode == 1
    error = start.stderr.strip().splitlines()[-1]
    assert error.startswith("holley_gnn_assets.recommend.publish.RegistryLostError: the model "
                            f"registry at {db}"), error
    assert "version 1" in error


def test_a_fresh_home_promotes_its_first_model(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    duckdb.connect(str(wh.path)).close()
    # no publish log yet: nothing to reconcile, the first measured model may be promoted
    assert publish.reconcile(wh, CFG, lambda: _registry(tmp_path), "mlflow.db") is None


def test_only_finished_runs_staging_is_dropped(world: dict) -> None:
    wh = world["wh"]
    dropped = publish.drop_finished_staging(wh, CFG, {RUNS["2"]})
    assert dropped == [_staged("1")["name"]]
    assert wh.list_tables(STAGING) == [_staged("2")["name"]]


def test_each_run_publishes_only_what_it_staged(tmp_path: Path) -> None:
    """D2: a score run stages, a retrain stages after it on the same warehouse; the score run
    publishes its own rows, not the retrain's."""
    from holley_gnn_assets.config.settings import TimeWindows
    from holley_gnn_assets.recommend import apply_rules
    from holley_gnn_assets.warehouse.exports import run_exports
    from tests.micro_warehouse import build_micro_warehouse
    from tests.test_engine_agreement import AS_OF, _world, gnn_like_scores

    wh = DuckDBWarehouse(build_micro_warehouse(tmp_path / "w.duckdb", _world()))
    windows = TimeWindows.from_config(CFG, AS_OF)
    tables = run_exports(wh, CFG, windows)
    staged = {}
    for run, seed in (("aaaaaaaaaaaa", 0), ("bbbbbbbbbbbb", 1)):  # score run, then retrain
        apply_rules.write_scores(wh, CFG, "gnn", gnn_like_scores(tables, seed), run=run)
        staged[run] = apply_rules.build_recommendations(wh, CFG, windows, "gnn", AS_OF, run=run)
    mine, theirs = (apply_rules.read_recommendations(wh, staged[r]) for r in staged)
    assert staged["aaaaaaaaaaaa"]["table"] != staged["bbbbbbbbbbbb"]["table"]
    assert not mine.equals(theirs)
    publish.publish(wh, CFG, None, staged["aaaaaaaaaaaa"], "1", False, "score-run")
    out = wh.read_output_table(CFG["output"]["dataset"], CFG["output"]["table"])
    pd.testing.assert_frame_equal(
        out[OUTPUT_COLUMNS].sort_values("email_lower").reset_index(drop=True), mine)


def test_a_logged_rollback_is_kept_by_the_next_start(world: dict) -> None:
    wh, registry = world["wh"], world["registry"]
    publish.publish(wh, CFG, registry, _staged("2"), "2", True, "run-2")
    assert publish.rollback(wh, CFG, registry) == "1"
    assert publish.reconcile(wh, CFG, lambda: registry, "mlflow.db") is None
    assert registry.champion()["version"] == "1"
