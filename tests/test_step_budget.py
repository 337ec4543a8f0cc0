"""A training step's size is bounded whatever the number of users: the step batch stops at
``training.max_step_batch`` and a larger epoch trains on a random subset of its edges."""

from __future__ import annotations

import numpy as np
import pytest

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.graph.builder import build_graph
from holley_gnn_assets.training import loop
from holley_gnn_assets.training.loop import train
from holley_gnn_assets.training.sampler import TrainingSetup
from tests.ml_fixtures import make_tables, single_thread

SMALL = {"model": {"embedding_dim": 16, "hidden_dim": 32}}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def bundle():
    tables, _ = make_tables(n_users=600, seed=3, signal=3.0)
    return build_graph(tables, {})


def _cfg(**training) -> dict:
    return load_config(overrides={**SMALL, "training": {"epochs": 2, **training}})


def test_step_plan_caps_batch_and_epoch(bundle) -> None:
    capped = TrainingSetup(bundle, _cfg(batch_size=16, max_steps_per_epoch=3, max_step_batch=40),
                           "cpu", np.random.default_rng(0))
    assert capped.step_batch(60) == 20  # grown to fit 3 steps, under the cap
    assert capped.step_batch(10_000) == 40  # not 3,334
    assert capped.epoch_edges(100) == 100
    assert capped.epoch_edges(10_000) == 120  # 3 steps x 40
    free = TrainingSetup(bundle, _cfg(batch_size=16, max_steps_per_epoch=3, max_step_batch=None),
                         "cpu", np.random.default_rng(0))
    assert free.step_batch(10_000) == 3334
    assert free.epoch_edges(10_000) == 10_000


def test_epochs_train_on_at_most_steps_x_cap(bundle, tmp_path, monkeypatch) -> None:
    seen: list[int] = []
    real = loop.pair_loss

    def counting(kind, pos_logit, neg_logit, weight):
        seen.append(len(pos_logit))
        return real(kind, pos_logit, neg_logit, weight)

    monkeypatch.setattr(loop, "pair_loss", counting)
    cfg = _cfg(batch_size=16, max_steps_per_epoch=3, max_step_batch=40)
    result = train(bundle, cfg, tmp_path, device="cpu", resume=False)
    assert result.epochs_run == 2
    assert len(seen) == 6  # 3 steps an epoch, each of the cap
    assert seen == [40] * 6
