"""The GNN-vs-SQL comparison per tier as a plot (an MLflow artifact shown in Dagster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_tiers(report: dict[str, Any], path: str | Path) -> Path:
    """Bar chart of HR@4 per tier per arm, and the GNN-SQL delta with its 95% CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    tiers = list(report["tiers"])
    arms = report["arms"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.6))
    width = 0.8 / max(len(arms), 1)
    x = np.arange(len(tiers))
    for i, arm in enumerate(arms):
        ax1.bar(
            x + i * width, [report["tiers"][t][arm]["hit_rate@4"] or 0.0 for t in tiers], width,
            label=arm
        )
    ax1.set_xticks(x + width * (len(arms) - 1) / 2, tiers)
    ax1.set_ylabel("Hit Rate@4")
    ax1.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.1))  # off the bars
    deltas, err_lo, err_hi = [], [], []
    for t in tiers:
        b = report["tiers"][t]
        d = b["delta_hit_rate@4"] if b["delta_hit_rate@4"] is not None else 0.0
        lo, hi = (d if v is None else v for v in b["bootstrap_ci95"])
        deltas.append(d)
        err_lo.append(max(d - lo, 0.0))
        err_hi.append(max(hi - d, 0.0))
    ax2.bar(x, deltas, color="tab:purple", yerr=[err_lo, err_hi], capsize=4)
    ax2.axhline(0, color="black", lw=0.8)
    ax2.set_xticks(x, tiers)
    method = report["interval_method"]
    ax2.set_ylabel(f"GNN - SQL Hit Rate@4 (95% CI, {method})")
    fig.suptitle(f"Decision (cold): {report.get('decision')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
