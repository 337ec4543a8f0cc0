"""A seeded CPU training run repeats bit for bit in another process (training.deterministic).

Without torch's deterministic algorithms, multi-threaded float reductions made two processes
drift apart in the 7th digit of the loss within a few epochs on the demo world, and early
stopping then ended them at different epochs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from holley_gnn_assets.synth.generator import generate_warehouse

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs >= 2 threads to be at risk"),
]

SCRIPT = """
import json, sys, tempfile
from pathlib import Path
from holley_gnn_assets.config.settings import TimeWindows, load_config
from holley_gnn_assets.warehouse.exports import run_exports
from holley_gnn_assets.graph.builder import build_graph
from holley_gnn_assets.training.loop import train
from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
cfg = load_config(overrides={"training": {"epochs": 4, "device": "cpu"}})
wh = DuckDBWarehouse(sys.argv[1])
tables = run_exports(wh, cfg, TimeWindows.from_config(cfg, wh.synthetic_as_of()))
result = train(build_graph(tables, cfg), cfg, Path(tempfile.mkdtemp()), resume=False)
print(json.dumps([[h["train_loss"], h["val_loss"], h["val_mrr"]] for h in result.history]))
"""


def _history(path: Path) -> list:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], check=True,
                         capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_processes_train_identically(tmp_path: Path) -> None:
    path = tmp_path / "demo.duckdb"
    generate_warehouse(path, scale="demo", seed=0, signal=1.0, progress=False)
    first, second = _history(path), _history(path)
    assert len(first) == 4
    assert first == second
