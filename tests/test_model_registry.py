"""Promotion keeps the better model (spec §10)."""

from __future__ import annotations

from holley_gnn_assets.storage.artifact_store import LocalArtifactStore
from holley_gnn_assets.storage.model_registry import ModelRegistry


def test_first_evaluated_model_is_promoted(tmp_path):
    reg = ModelRegistry(LocalArtifactStore(tmp_path))
    assert reg.model_for_scoring() is None
    reg.record_trained("run-a", {"graph_path": "g"})
    assert reg.model_for_scoring()["run_id"] == "run-a"  # latest before any evaluation
    decision = reg.consider("run-a", 0.20, 0.01, {})
    assert decision.promoted
    assert reg.promoted()["run_id"] == "run-a"
    assert reg.promoted()["model_key"] == "gnn/checkpoints/run-a/model.pt"
    # a second registry over the same store (another pod) sees the same promotion
    assert ModelRegistry(LocalArtifactStore(tmp_path)).promoted()["run_id"] == "run-a"


def test_worse_model_is_not_promoted_and_previous_stays(tmp_path):
    reg = ModelRegistry(LocalArtifactStore(tmp_path))
    reg.consider("run-a", 0.20, 0.01, {})
    reg.record_trained("run-b", {})
    decision = reg.consider("run-b", 0.15, 0.01, {})
    assert not decision.promoted
    assert "previous model stays" in decision.reason
    assert reg.promoted()["run_id"] == "run-a"
    assert reg.model_for_scoring()["run_id"] == "run-a"


def test_within_tolerance_is_promoted(tmp_path):
    reg = ModelRegistry(LocalArtifactStore(tmp_path))
    reg.consider("run-a", 0.20, 0.01, {})
    assert reg.consider("run-b", 0.195, 0.01, {}).promoted
    assert reg.promoted()["run_id"] == "run-b"


def test_no_evaluation_means_no_promotion(tmp_path):
    reg = ModelRegistry(LocalArtifactStore(tmp_path))
    decision = reg.consider("run-a", None, 0.01, {})
    assert not decision.promoted
    assert reg.promoted() is None
