"""``holley-gnn device-check``: the same model trained on each device with the same training
seeds, on one world, so one prepared run on a GPU machine shows whether GPU training is as good
as CPU training (issue: "GPU training no worse in quality than CPU on the same seed").

A seed is not one run on two devices: dropout, negatives and neighbour samples come from the
device's own random generator, and float reductions differ, so a GPU run and a CPU run of one
seed follow different sample streams (``training.deterministic`` is CPU-only). One seed per
device therefore compares two draws of the training noise; the check trains every seed on every
device and compares the devices paired by seed, with a t interval of the mean difference
(``scipy.stats``), beside the seed-to-seed spread on the first device.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scipy import stats

from holley_gnn_assets.commands.variants import run_variant

# key -> (table label, number format)
METRICS = {"best_val_mrr": ("best val MRR", ".4f"),
           "cold_gnn": ("cold Hit Rate@4 (GNN)", ".4f"), "train_s": ("training s", ".1f")}


class DeviceUnavailableError(RuntimeError):
    """A device the check was asked for does not exist on this machine."""


def check_device_names(devices: Sequence[str]) -> list[str]:
    """Validate the device list: cpu/cuda/cuda:N, no repeats, CUDA present when named."""
    import torch

    out = [d.lower() for d in devices]
    bad = [d for d in out if d != "cpu" and not (d == "cuda" or d.startswith("cuda:"))]
    if bad:
        raise ValueError(f"device-check: unknown device(s) {bad}; expected cpu, cuda or cuda:N")
    if len(set(out)) != len(out):
        raise ValueError(f"device-check: a device is named twice in {out}")
    if any(d.startswith("cuda") for d in out) and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "device-check: CUDA is not available on this machine (torch "
            f"{torch.__version__}, built for CUDA {torch.version.cuda}); run it on a GPU "
            "machine, or with --devices cpu for the CPU seed spread alone")
    return out


def run_device_check(world: Path, devices: Sequence[str], seeds: Sequence[int],
                     overrides: Mapping[str, Any] | None = None,
                     label: str = "") -> list[dict[str, Any]]:
    """One ``run_variant`` row per (seed, device), each tagged with ``device`` and ``seed``."""
    devices = check_device_names(devices)
    if not seeds:
        raise ValueError("device-check: no training seed given")
    base = dict(overrides or {})
    rows = []
    for seed in seeds:
        training = {**base.get("training", {}), "seed": int(seed)}
        for device in devices:
            row = run_variant(world, f"{device} seed {seed}", {**base, "training": training},
                              world_label=label or world.stem, device=device)
            rows.append({**row, "device": device, "seed": int(seed)})
    return rows


def _metric(row: Mapping[str, Any], key: str) -> float:
    if key == "cold_gnn":
        return float(row["tiers"]["cold"]["hit_rate@4"]["gnn"])
    return float(row[key])


def paired_difference(a: Sequence[float], b: Sequence[float],
                      alpha: float = 0.05) -> tuple[float, float, float]:
    """Mean of ``b - a`` (paired) and its two-sided t interval; (mean, nan, nan) for one pair."""
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(1 - alpha / 2, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(
        len(diffs))
    return mean, mean - half, mean + half


def device_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: one line per run, then per metric each device's mean (sd over seeds) and every
    other device's paired difference against the first device with its 95% interval."""
    lines = ["| device | seed | epochs (best) | best val MRR | cold HR@4 GNN | cold HR@4 SQL "
             "| GNN share | training s | s/epoch |", "|---|---:|---|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        cold = r["tiers"]["cold"]
        share = (cold.get("headroom_share") or {}).get("gnn") or {}
        share_s = "n/a" if share.get("share") is None else f"{100 * share['share']:.0f}%"
        lines.append(
            f"| {r['device']} | {r['seed']} | {r['epochs']} ({r['best_epoch']}) | "
            f"{r['best_val_mrr']:.4f} | {cold['hit_rate@4']['gnn']:.4f} | "
            f"{cold['hit_rate@4']['sql']:.4f} | {share_s} | {r['train_s']} | "
            f"{r['train_s'] / max(r['epochs'], 1):.2f} |")
    devices = list(dict.fromkeys(r["device"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    by = {(r["device"], r["seed"]): r for r in rows}
    head = ["metric"] + [f"{d} mean (sd)" for d in devices] + [
        f"{d} - {devices[0]} [95% CI]" for d in devices[1:]]
    lines += ["", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for key, (name, fmt) in METRICS.items():
        vals = {d: [_metric(by[d, s], key) for s in seeds if (d, s) in by] for d in devices}
        cells = [name]
        for d in devices:
            v = vals[d]
            sd = format(statistics.stdev(v), fmt) if len(v) > 1 else "n/a"
            cells.append(f"{format(statistics.fmean(v), fmt)} ({sd})")
        for d in devices[1:]:
            paired = [s for s in seeds if (devices[0], s) in by and (d, s) in by]
            mean, lo, hi = paired_difference([_metric(by[devices[0], s], key) for s in paired],
                                             [_metric(by[d, s], key) for s in paired])
            ci = "" if math.isnan(lo) else f" [{lo:+{fmt}}, {hi:+{fmt}}]"
            cells.append(f"{mean:+{fmt}}{ci}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
