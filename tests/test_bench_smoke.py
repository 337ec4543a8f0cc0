"""``holley-gnn bench --scale tiny`` end to end: it runs the code location's full_retrain_job and
its publish_job and prints (and writes to bench.json) the time of every step of both."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from holley_gnn_assets.config.settings import load_config

pytestmark = pytest.mark.slow

ROW = re.compile(r"^\| (\S+) \| (\w+) \| ([0-9.]+) \| ([0-9.]+) \|$")


def _job_steps() -> set[str]:
    from holley_gnn_assets.definitions import defs

    return {node.name for job in ("full_retrain_job", "publish_job")
            for node in defs.resolve_job_def(job).nodes_in_topological_order}


def _bench(tmp_path, scale: str, overrides: dict) -> tuple:
    """``holley-gnn bench --scale scale`` in a fresh home with the config ``overrides``; asserts
    it exited 0 and returns (home, the finished process)."""
    config = tmp_path / "fast.yaml"
    config.write_text(yaml.safe_dump(load_config(overrides=overrides)))
    home = tmp_path / "home"
    env = {**os.environ, "HOLLEY_GNN_HOME": str(home), "HOLLEY_GNN_CONFIG": str(config)}
    env.pop("HOLLEY_GNN_WAREHOUSE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "holley_gnn_assets.commands.cli", "bench", "--scale", scale],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return home, proc


def test_bench_tiny_times_every_step_of_the_job(tmp_path):
    home, proc = _bench(tmp_path, "tiny", {"training": {"epochs": 3, "patience": 2},
                                           "eval": {"bootstrap_samples": 200}})
    out = proc.stdout

    printed = {m[1]: (m[2], float(m[3]), float(m[4]))
               for m in (ROW.match(line) for line in out.splitlines()) if m}
    assert set(printed) == _job_steps()  # every asset and check step of the jobs, nothing else
    assert all(status == "SUCCESS" and s > 0 and rss > 0 for status, s, rss in printed.values())

    bench = json.loads((home / "bench.json").read_text())
    assert bench["job"] == "full_retrain_job" and bench["success"] is True
    assert {r["step"]: (r["status"], r["seconds"], r["peak_rss_gb"])
            for r in bench["steps"]} == printed
    assert sum(r["seconds"] for r in bench["steps"]) <= bench["job_s"] + 1.0

    cmp_ = bench["output_vs_sql"]
    assert cmp_["gnn_output_s"] == printed["gnn_recommendations"][1]
    assert cmp_["sql_baseline_s"] == printed["sql_baseline_recommendations"][1]
    assert (f"GNN output assembly (gnn_recommendations) {cmp_['gnn_output_s']:.3f}s vs "
            f"SQL baseline (sql_baseline_recommendations) {cmp_['sql_baseline_s']:.3f}s") in out

    train = bench["training"]
    assert 1 <= train["epochs_run"] <= 3 and 0 < train["best_val_mrr"] <= 1
    assert (f"training: {train['epochs_run']} epochs (best {train['best_epoch']}), "
            f"best val MRR {train['best_val_mrr']:.4f}") in out
    cold = bench["eval"]["tiers"]["cold"]
    assert {"gnn", "sql"} <= set(cold["hit_rate@4"]) and cold["n_users"] > 0
    assert (f"Hit Rate@4 cold ({cold['n_users']} users): gnn {cold['hit_rate@4']['gnn']:.4f}, "
            f"sql {cold['hit_rate@4']['sql']:.4f}") in out
    assert f"process peak RSS {bench['peak_rss_gb']:.2f} GB" in out and bench["peak_rss_gb"] > 0

    # the job ran on the bench world only: nothing in the home that `holley-gnn run` reads
    world = home / "bench" / "tiny_seed0_signal1"
    assert (world / "warehouse.duckdb").exists() and (world / "eval_report.json").exists()
    assert not (home / "warehouse_demo.duckdb").exists() and not (home / "tables").exists()
    assert not (home / "artifacts").exists()
    assert "@" not in out.replace("@4", "")


@pytest.mark.parametrize("scale", ["broad_tiny", "big_basket_tiny"])
def test_bench_prints_score_rows_and_users_short_on_the_new_worlds(tmp_path, scale):
    """broad_tiny (300 products fit every vehicle) and big_basket_tiny: the bench prints each
    arm's score rows and users short of four; an own-node user has at most
    scale.user_candidates rows, and nobody is short because of the cut."""
    home, proc = _bench(tmp_path, scale, {"training": {"epochs": 2, "patience": 1},
                                          "eval": {"bootstrap_samples": 100},
                                          "scale": {"user_candidates": 40}})
    bounds = json.loads((home / "bench.json").read_text())["bounds"]
    gnn, sql = bounds["gnn"], bounds["sql"]
    assert gnn["user_score_rows"] > 0 and sql["user_score_rows"] == 0
    assert gnn["users_short_capped"] == 0 and sql["users_short_capped"] == 0
    assert bounds["co_purchase_pairs"] is not None and bounds["estimated_score_rows"] > 0
    for arm, a in (("gnn", gnn), ("sql", sql)):
        assert (f"{arm}: {a['score_rows']} score rows ({a['user_score_rows']} on own-node "
                f"users); users short of 4: {a['users_short_of_4']}, of them with candidates "
                f"cut 0") in proc.stdout
    if scale == "broad_tiny":
        assert gnn["users_capped"] > 0  # 300 candidates: the cut at 40 bites
