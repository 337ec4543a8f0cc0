"""Shared fixtures: a tiny synthetic world and an isolated HOLLEY_GNN_HOME per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

pytest_plugins = ["emulators"]  # BigQuery and GCS emulator fixtures (tests/emulators.py)


@pytest.fixture(scope="session")
def tiny_signal_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny world with strong planted vehicle affinity (signal 2)."""
    from holley_gnn_assets.synth.generator import generate_warehouse

    path = tmp_path_factory.mktemp("wh") / "tiny_signal2.duckdb"
    generate_warehouse(path, scale="tiny", seed=0, signal=2.0, progress=False)
    return path


def private_warehouse(home: Path, world: Path) -> Path:
    """A copy of ``world`` inside ``home``: a run publishes into its warehouse (the output table
    and its publish log), so tests that run the pipeline never share one with another home."""
    copy = home / "warehouse.duckdb"
    shutil.copyfile(world, copy)
    return copy


def pipeline_env(home: Path, warehouse: Path, config: Path | None = None) -> pytest.MonkeyPatch:
    """Settings pointed at an isolated home, warehouse and (optionally) config file, with no
    fixed as-of date and the home's own MLflow store; the caller undoes it when done."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HOLLEY_GNN_HOME", str(home))
    mp.setenv("HOLLEY_GNN_WAREHOUSE", str(warehouse))
    if config is not None:
        mp.setenv("HOLLEY_GNN_CONFIG", str(config))
    mp.delenv("HOLLEY_GNN_AS_OF", raising=False)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    return mp
