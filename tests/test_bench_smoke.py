"""``holley-gnn bench --scale tiny`` end to end (the CI smoke test of the benchmark)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from holley_gnn_assets.settings import load_config

pytestmark = pytest.mark.slow

STAGES = ["synth", "export", "graph build", "training", "embeddings",
          "gnn scoring (output, all rules)", "sql baseline (output)",
          "evaluation (metrics, bootstrap, references, report)", "qa checks", "output write"]


def test_bench_tiny_prints_and_writes_every_stage(tmp_path):
    cfg = load_config(overrides={"training": {"epochs": 4, "patience": 2},
                                 "eval": {"bootstrap_samples": 200}})
    config = tmp_path / "fast.yaml"
    config.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "HOLLEY_GNN_HOME": str(tmp_path / "home"),
           "HOLLEY_GNN_CONFIG": str(config)}
    proc = subprocess.run(
        [sys.executable, "-m", "holley_gnn_assets.cli", "bench", "--scale", "tiny"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "GNN scoring / SQL baseline =" in proc.stdout
    assert "| stage | seconds | peak RSS (GB) |" in proc.stdout
    bench = json.loads((tmp_path / "home" / "bench.json").read_text())
    names = [row["stage"] for row in bench["stages"]]
    for stage in STAGES:
        assert stage in names
    assert all(row["seconds"] >= 0 and row["peak_rss_gb"] > 0 for row in bench["stages"])
    assert bench["end_to_end_s"] > 0 and bench["eval"]["n_test_clicks"] > 0
    assert "@" not in proc.stdout.replace("@4", "").replace("@10", "").replace("@20", "")
