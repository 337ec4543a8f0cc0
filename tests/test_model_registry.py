"""Promotion through the MLflow Model Registry (spec §10): versions, the champion alias,
refusal of a worse model, no promotion without a measurement, rollback, scoring follows the
alias. Runs on MLflow's real local SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from holley_gnn_assets.defs.resources import MlflowTracking
from holley_gnn_assets.storage.model_registry import ModelRegistry


def register_version(tracking: MlflowTracking, run_key: str, payload: str = "weights") -> dict:
    """A training run with a stand-in ``model/MLmodel`` artifact (the real MLflow model:
    tests/test_mlflow_model.py), registered as a version."""
    import tempfile

    run = tracking.start_run(f"train-{run_key}", tags={"stage": "train"})
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "MLmodel").write_text(payload)
        tracking.log_artifacts(run, tmp, "model")
    tracking.end_run(run)
    return tracking.registry().register(run, run_key, {"graph_key": f"g/{run_key}",
                                                       "config_hash": "abc"})


@pytest.fixture()
def tracking(tmp_path: Path) -> MlflowTracking:
    return MlflowTracking(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                          artifact_location=(tmp_path / "mlartifacts").as_uri())


def test_first_measured_model_becomes_champion(tracking: MlflowTracking, tmp_path: Path):
    reg = tracking.registry()
    assert reg.model_for_scoring() is None and reg.champion() is None
    v1 = register_version(tracking, "run-a", "weights-a")
    assert v1["version"] == "1" and v1["run_id"] == "run-a" and v1["config_hash"] == "abc"
    assert reg.model_for_scoring()["version"] == "1"  # the newest version before any promotion
    decision = reg.decide("1", 0.20, 0.01)
    assert decision.promoted and decision.reason == "first measured model"
    assert reg.champion() is None  # deciding moves nothing
    reg.promote("1")
    assert reg.champion()["version"] == "1" and reg.champion()["cold_hr4"] == 0.20
    # another process on the same store sees the alias; scoring downloads that version's model
    other = ModelRegistry(MlflowTracking(tracking_uri=tracking.tracking_uri).client())
    assert other.champion()["version"] == "1"
    assert other.uri(other.champion()) == "models:/holley-gnn-heterogat@champion"
    got = other.download(other.champion(), tmp_path / "dl")
    assert (got / "MLmodel").read_text() == "weights-a"
    assert got.parent == tmp_path / "dl"


def test_a_version_without_an_mlflow_model_is_named(tracking: MlflowTracking, tmp_path: Path):
    """A version registered the old way (a ``checkpoint/`` folder) cannot be scored: the error
    names the version and what to do."""
    run = tracking.start_run("train-old", tags={"stage": "train"})
    (tmp_path / "model.pt").write_text("weights")
    tracking.log_artifact(run, tmp_path / "model.pt", "checkpoint")
    tracking.end_run(run)
    reg = tracking.registry()
    old = reg.register(run, "run-old", {}, artifact_path="checkpoint")
    assert reg.uri(old) == "models:/holley-gnn-heterogat/1"
    with pytest.raises(FileNotFoundError, match="version 1 .* no MLflow model.*retrain"):
        reg.load(old, tmp_path / "dl")


def test_worse_model_is_refused_and_rollback_moves_the_alias_back(tracking: MlflowTracking):
    reg = tracking.registry()
    register_version(tracking, "run-a")
    reg.decide("1", 0.20, 0.01)
    reg.promote("1")
    register_version(tracking, "run-b")
    refused = reg.decide("2", 0.15, 0.01)
    assert not refused.promoted and "previous model stays" in refused.reason
    assert reg.champion()["version"] == "1" and reg.latest()["version"] == "2"
    register_version(tracking, "run-c")
    assert reg.decide("3", 0.195, 0.01).promoted  # within tolerance
    reg.promote("3")
    assert reg.champion()["version"] == "3" and reg.champion()["previous_champion"] == "1"
    assert reg.rollback()["version"] == "1"
    assert reg.champion()["version"] == "1"
    with pytest.raises(ValueError, match="no previous champion"):
        reg.rollback()


def test_no_measurement_means_no_promotion(tracking: MlflowTracking):
    reg = tracking.registry()
    register_version(tracking, "run-a")
    decision = reg.decide("1", None, 0.01)
    assert not decision.promoted and "nothing measured" in decision.reason
    assert reg.champion() is None
    assert "cold_hr4" in reg.latest() and reg.latest()["cold_hr4"] is None
