"""training.loss: BCE on each pair, or the positive's softmax against its own negatives."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from holley_gnn_assets.training.loop import pair_loss


def test_softmax_is_the_weighted_cross_entropy_of_the_positive() -> None:
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(6, generator=g), torch.randn(6, 5, generator=g)
    w = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0, 1.0])
    ce = F.cross_entropy(torch.cat([pos[:, None], neg], 1), torch.zeros(6, dtype=torch.long),
                         reduction="none")
    assert torch.allclose(pair_loss("softmax", pos, neg, w), (ce * w).sum() / w.sum())
    # a positive far above its negatives costs nothing; one below them costs a lot
    assert pair_loss("softmax", torch.tensor([20.0]), torch.zeros(1, 5), torch.ones(1)) < 1e-6
    assert pair_loss("softmax", torch.tensor([-20.0]), torch.zeros(1, 5), torch.ones(1)) > 19


def test_bce_is_pairwise_and_unknown_loss_is_named() -> None:
    pos, neg, w = torch.tensor([2.0, -1.0]), torch.tensor([[0.5], [-3.0]]), torch.ones(2)
    want = F.binary_cross_entropy_with_logits(pos, torch.ones(2)) + \
        F.binary_cross_entropy_with_logits(neg, torch.zeros(2, 1))
    assert torch.allclose(pair_loss("bce", pos, neg, w), want)
    with pytest.raises(ValueError, match="training.loss='hinge'"):
        pair_loss("hinge", pos, neg, w)
