"""``holley-gnn device-check``: every seed trained on every device named, the devices compared
paired by seed; a device that is not there is a clear error before anything trains."""

from __future__ import annotations

import json

import pytest
import torch
from scipy import stats

from holley_gnn_assets.commands.cli import main
from holley_gnn_assets.commands.device_check import (
    check_device_names,
    device_table,
    paired_difference,
)


def test_device_check_trains_each_seed_and_prints_the_comparison(tiny_signal_warehouse, tmp_path,
                                                                 capsys) -> None:
    out = tmp_path / "rows.jsonl"
    assert main(["device-check", "--world", str(tiny_signal_warehouse), "--devices", "cpu",
                 "--seeds", "0", "1", "--set", "training.epochs=2", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["device"], r["seed"]) for r in rows] == [("cpu", 0), ("cpu", 1)]
    assert [r["overrides"]["training"] for r in rows] == [{"epochs": 2, "seed": 0},
                                                         {"epochs": 2, "seed": 1}]
    assert all(r["epochs"] <= 2 for r in rows)
    printed = capsys.readouterr().out
    assert "| cpu | 0 |" in printed and "| cpu | 1 |" in printed
    assert "| best val MRR | " in printed and "| cold Hit Rate@4 (GNN) | " in printed


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_without_cuda_stops_before_training(tiny_signal_warehouse, tmp_path) -> None:
    out = tmp_path / "rows.jsonl"
    with pytest.raises(SystemExit, match="CUDA is not available on this machine"):
        main(["device-check", "--world", str(tiny_signal_warehouse), "--out", str(out)])
    assert not out.exists()


def test_device_names_are_checked() -> None:
    assert check_device_names(["CPU"]) == ["cpu"]
    with pytest.raises(ValueError, match="unknown device"):
        check_device_names(["cpu", "tpu"])
    with pytest.raises(ValueError, match="named twice"):
        check_device_names(["cpu", "cpu"])


def test_paired_difference_is_scipys_paired_t_interval() -> None:
    cpu, gpu = [0.30, 0.28, 0.33, 0.31], [0.29, 0.29, 0.30, 0.32]
    mean, lo, hi = paired_difference(cpu, gpu)
    ci = stats.ttest_rel(gpu, cpu).confidence_interval(0.95)
    assert mean == pytest.approx(-0.005)
    assert (lo, hi) == pytest.approx((ci.low, ci.high))
    assert paired_difference([0.3], [0.2])[0] == pytest.approx(-0.1)


def test_table_compares_the_second_device_with_the_first_by_seed() -> None:
    def row(device: str, seed: int, mrr: float) -> dict:
        cold = {"n": 5, "hit_rate@4": {"gnn": mrr, "sql": 0.1},
                "headroom_share": {"gnn": {"share": 0.5}}}
        return {"device": device, "seed": seed, "epochs": 4, "best_epoch": 2,
                "best_val_mrr": mrr, "train_s": 8.0, "tiers": {"cold": cold}}
    rows = [row("cpu", 0, 0.30), row("cuda", 0, 0.20), row("cpu", 1, 0.32), row("cuda", 1, 0.24)]
    lines = device_table(rows).splitlines()
    assert lines[2] == "| cpu | 0 | 4 (2) | 0.3000 | 0.3000 | 0.1000 | 50% | 8.0 | 2.00 |"
    mrr = next(line for line in lines if line.startswith("| best val MRR"))
    assert "| 0.3100 (0.0141) | 0.2200 (0.0283) | -0.0900 [" in mrr
    assert "cuda - cpu [95% CI]" in lines[7]
