"""Every asset can be materialized alone or with its upstream (in process and with the CLI).

The export multi-assets are subsettable: selecting one table runs only its statement and its
own blocking checks (evaluated on the DataFrame in memory, as check specs of the asset).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster import AssetKey, AssetSelection, DagsterInstance

from tests.conftest import pipeline_env, private_warehouse

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
KEY = "2026-11-01"  # the tiny world's as-of date: every run here is for that partition


@pytest.fixture(scope="module")
def world(tiny_signal_warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    """build_defs() on the tiny world with a private home, a short training budget."""
    from holley_gnn_assets.config.settings import load_config

    home = tmp_path_factory.mktemp("select_home")
    config = home / "fast.yaml"
    config.write_text(yaml.safe_dump(load_config(overrides={"training": {"epochs": 2,
                                                                         "patience": 1}})))
    warehouse = private_warehouse(home, tiny_signal_warehouse)
    env = {"HOLLEY_GNN_HOME": str(home), "HOLLEY_GNN_WAREHOUSE": str(warehouse),
           "HOLLEY_GNN_CONFIG": str(config)}  # also for the CLI subprocess below
    mp = pipeline_env(home, warehouse, config)
    from holley_gnn_assets.definitions import build_defs

    with DagsterInstance.ephemeral() as instance:
        out = {"defs": build_defs(), "home": home, "instance": instance, "env": env}
        assert _run(out, "run_window").success  # the run's windows, read by every step
        yield out
    mp.undo()


def _run(world, *keys: str):
    job = world["defs"].get_implicit_global_asset_job_def()
    return job.execute_in_process(asset_selection=[AssetKey(k) for k in keys],
                                  instance=world["instance"], raise_on_error=False,
                                  partition_key=KEY)


def _materialized(result) -> set[str]:
    return {ev.asset_key.to_user_string() for ev in result.get_asset_materialization_events()}


def _checks(result) -> dict[str, bool]:
    return {ev.check_name: ev.passed for ev in result.get_asset_check_evaluations()}


def test_one_export_table_alone(world):
    tables = world["home"] / "tables"
    result = _run(world, "user_nodes")
    assert result.success
    assert _materialized(result) == {"user_nodes"}
    assert _checks(result) == {"user_key_unique": True}  # only the selected table's check
    assert (tables / "user_nodes" / f"{KEY}.parquet").is_file()
    assert not (tables / "product_nodes").exists()  # its statement did not run
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert "input_quality" in meta and meta["dagster/row_count"].value > 0


def test_edge_table_alone_checks_against_stored_nodes(world):
    assert _run(world, "user_nodes", "product_nodes", "vehicle_nodes").success
    result = _run(world, "user_product_edges")
    assert result.success
    assert _materialized(result) == {"user_product_edges"}
    assert _checks(result) == {"user_product_endpoints": True,
                               "no_training_edge_after_cutoff": True}
    edges = pd.read_parquet(world["home"] / "tables" / "user_product_edges" / f"{KEY}.parquet")
    assert len(edges) > 0
    assert not (world["home"] / "tables" / "user_purchases").exists()


def test_embeddings_with_all_its_upstream(world):
    defs = world["defs"]
    graph = defs.get_repository_def().asset_graph
    upstream = AssetSelection.assets("embeddings").upstream().resolve(graph)  # *embeddings
    keys = {k for k in upstream if graph.get(k).is_materializable}
    assert AssetKey("heterodata") in keys and AssetKey("user_purchases") not in keys
    result = _run(world, *(k.to_user_string() for k in keys))
    assert result.success
    assert _materialized(result) == {k.to_user_string() for k in keys}
    assert "test_clicks" not in _materialized(result)  # not upstream of the embeddings
    assert all(_checks(result).values()) and "user_key_unique" in _checks(result)


def test_cli_materializes_one_asset(world, tmp_path):
    """The real `dagster asset materialize --select run_window,user_nodes --partition <date>`
    on the tiny world (a fresh home: the run's windows are materialized with the table)."""
    env = {**os.environ, **world["env"], "DAGSTER_HOME": str(tmp_path),
           "PYTHONPATH": str(ROOT), "HOLLEY_GNN_HOME": str(tmp_path / "home")}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    cli = [sys.executable, "-m", "dagster", "asset", "materialize",
           "-m", "holley_gnn_assets.definitions", "--select", "run_window,user_nodes",
           "--partition", KEY]
    done = subprocess.run(cli, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RUN_SUCCESS" in done.stderr + done.stdout
    assert (tmp_path / "home" / "tables" / "user_nodes" / f"{KEY}.parquet").is_file()
    assert not (tmp_path / "home" / "tables" / "product_nodes").exists()


def test_embeddings_with_its_parents(world):
    """``+embeddings``: the asset and its direct parents (their own inputs already stored)."""
    graph = world["defs"].get_repository_def().asset_graph
    parents = {k for k in graph.get(AssetKey("embeddings")).parent_keys
               if graph.get(k).is_materializable}
    assert AssetKey("gnn_model") in parents
    result = _run(world, "embeddings", *(k.to_user_string() for k in parents))
    assert result.success
    assert _materialized(result) == {"embeddings", *(k.to_user_string() for k in parents)}
