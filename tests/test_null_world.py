"""In a null world (signal 0: popularity among fitting parts is optimal) the evaluation must
never call a clear win for the GNN, whatever the seed: the statistics must not invent effects."""

from __future__ import annotations

import pytest

from tests.world_eval import ENGAGED_BROAD, evaluate_tiny_world

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("seed", "synth"),
    [(0, {}), (1, {}), (2, {}), (0, ENGAGED_BROAD)],
    ids=["seed0", "seed1", "seed2", "seed0-engaged-broad"],
)
def test_null_world_is_never_a_clear_win(tmp_path, seed, synth):
    report = evaluate_tiny_world(tmp_path, seed, 0.0, **synth)
    assert report["n_test_clicks"] > 0
    assert report["tiers"]["cold"]["n_users"] > 80
    assert report["decision"] != "clear_win"
