"""Early stopping on validation MRR (its own module: the loop and the checkpoints both use it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EarlyStopping:
    """Best validation MRR so far; ``stopped`` after ``patience`` epochs without improving it."""

    patience: int
    best_epoch: int = 0
    best_mrr: float = -1.0
    bad_epochs: int = 0
    stopped: bool = False

    def update(self, epoch: int, mrr: float) -> bool:
        """Record an epoch's MRR; returns whether it is a new best."""
        improved = mrr > self.best_mrr + 1e-12
        if improved:
            self.best_mrr, self.best_epoch, self.bad_epochs = mrr, epoch, 0
        else:
            self.bad_epochs += 1
        self.stopped = self.bad_epochs >= self.patience
        return improved
