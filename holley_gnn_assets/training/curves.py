"""Plots for people: training curves and the GNN-vs-SQL comparison (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_training_curves(history: Sequence[dict], path: str | Path) -> Path:
    """Train/val loss and validation MRR per epoch, saved as PNG."""
    path = Path(path)
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    ax1.plot(epochs, [h["val_loss"] for h in history], label="val loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("BCE")
    ax1.legend()
    ax2.plot(epochs, [h["val_mrr"] for h in history], color="tab:green", label="val MRR (cold)")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("MRR")
    ax2.legend()
    fig.suptitle("HeteroGAT training")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
