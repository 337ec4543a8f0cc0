"""The registered model is an MLflow model (pyfunc flavour, signature, weights and graph snapshot
as artifacts): loaded by the ``champion`` alias in a fresh process it ranks products that fit
the vehicle, the same ranking as the pipeline's score table. Real MLflow SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.defs.resources import MlflowTracking
from holley_gnn_assets.graph.builder import build_graph, load_graph, save_graph
from holley_gnn_assets.graph.types import OWNS
from holley_gnn_assets.model.mlflow_model import ARTIFACT_PATH, save_recommender
from holley_gnn_assets.model.persistence import save_model
from holley_gnn_assets.model.user_keys import user_key
from holley_gnn_assets.recommend.embeddings import compute_embeddings
from holley_gnn_assets.recommend.gnn_scores import gnn_score_frame
from holley_gnn_assets.training.loop import train
from tests.email_scan import emails_in_artifacts, emails_in_file, emails_in_tracking
from tests.ml_fixtures import make_tables, single_thread

REPO = Path(__file__).resolve().parents[1]
FRESH_PROCESS = """
import json, sys
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model("models:/holley-gnn-heterogat@champion")
out = model.predict(pd.DataFrame({"vehicle_id": [sys.argv[1]]}), params={"k": 4})
print(json.dumps({"rows": out.to_dict("records"),
                  "inputs": model.metadata.get_input_schema().input_names()}))
"""


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory):
    """The tiny world trained briefly, logged as an MLflow model, registered, champion."""
    tmp = tmp_path_factory.mktemp("mlflow-model")
    cfg = load_config(overrides={"model": {"embedding_dim": 16, "hidden_dim": 32},
                                 "training": {"epochs": 2, "patience": 2, "batch_size": 256}})
    tables, _ = make_tables(n_users=300, seed=0)
    with single_thread():
        bundle = build_graph(tables, cfg)
        result = train(bundle, cfg, tmp / "ckpt", device="cpu")
    graph_file = tmp / "heterodata.pt"
    save_graph(bundle, graph_file)
    model_file = save_model(tmp / "model.pt", result.model, cfg, bundle)
    save_recommender(tmp / "model", model_file, graph_file, {"fingerprint": bundle.fingerprint})
    tracking = MlflowTracking(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}",
                              artifact_location=(tmp / "mlartifacts").as_uri())
    run = tracking.start_run("train-tiny", tags={"stage": "train"})
    tracking.log_artifacts(run, tmp / "model", ARTIFACT_PATH)
    tracking.end_run(run)
    registry = tracking.registry()
    version = registry.register(run, "run-tiny", {"fingerprint": bundle.fingerprint})
    registry.promote(version["version"])
    return tracking, tables, bundle, result.model, tmp


def _fitting(tables: dict[str, pd.DataFrame], vehicle: str) -> set[str]:
    fit = tables["product_vehicle_edges"]
    return set(fit.loc[fit["vehicle_id"] == vehicle, "sku"])


def _pipeline_ranking(scores: pd.DataFrame, k: int) -> list[str]:
    return list(scores.sort_values(["score", "sku"], ascending=[False, True])["sku"][:k])


@pytest.mark.slow
def test_champion_loads_by_alias_in_a_fresh_process(registered) -> None:
    tracking, tables, bundle, model, tmp = registered
    vehicle = bundle.vehicle_ids[3]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking.tracking_uri,
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", FRESH_PROCESS, vehicle], env=env, cwd=tmp,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["inputs"] == ["vehicle_id", "user_id"]
    rows = pd.DataFrame(got["rows"])
    assert list(rows["rank"]) == [1, 2, 3, 4] and (rows["vehicle_id"] == vehicle).all()
    assert set(rows["sku"]) <= _fitting(tables, vehicle)  # every product fits the vehicle
    assert (np.diff(rows["score"]) <= 0).all()
    # the same ranking as the pipeline's score table (vehicle rows) from the same weights
    with single_thread():
        emb = compute_embeddings(model, bundle, tables["user_nodes"])
    scores = gnn_score_frame(emb, tables["product_vehicle_edges"])
    vehicle_rows = scores[(scores["vehicle_id"] == vehicle) & scores["email_lower"].isna()]
    assert list(rows["sku"]) == _pipeline_ranking(vehicle_rows, 4)
    assert np.allclose(rows["score"], vehicle_rows["score"].nlargest(4), atol=1e-5)


@pytest.mark.slow
def test_registered_version_is_a_flavoured_model_with_a_signature(registered) -> None:
    tracking, tables, bundle, model, tmp = registered
    registry = tracking.registry()
    champion = registry.champion()
    assert registry.uri(champion) == "models:/holley-gnn-heterogat@champion"
    recommender = registry.load(champion, tmp / "download")
    folder = next((tmp / "download").rglob("MLmodel")).parent
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    assert "python_function" in mlmodel["flavors"]
    assert [c["name"] for c in json.loads(mlmodel["signature"]["outputs"])] == [
        "vehicle_id", "user_id", "rank", "sku", "score"]
    assert json.loads(mlmodel["signature"]["params"])[0]["name"] == "k"
    assert "@" not in (folder / "MLmodel").read_text()  # no email address in the model's record
    assert sorted(p.name for p in (folder / "artifacts").iterdir()) == ["heterodata.pt",
                                                                      "model.pt"]
    # a graph user ranks with their own representation, as the pipeline's user rows
    user = next(u for u in bundle.user_ids
                if tables["user_nodes"].set_index("email_lower").loc[u, "vehicle_id"]
                is not pd.NA)
    vehicle = tables["user_nodes"].set_index("email_lower").loc[user, "vehicle_id"]
    out = recommender.predict(None, pd.DataFrame({"vehicle_id": [vehicle], "user_id": [user]}),
                              {"k": 3})
    with single_thread():
        emb = compute_embeddings(model, bundle, tables["user_nodes"])
    scores = gnn_score_frame(emb, tables["product_vehicle_edges"])
    assert list(out["sku"]) == _pipeline_ranking(scores[scores["email_lower"] == user], 3)
    with pytest.raises(ValueError, match="not vehicles of the model's graph"):
        recommender.predict(None, pd.DataFrame({"vehicle_id": ["1900|NOPE|NONE"]}), None)
    empty = recommender.predict(None, pd.DataFrame({"vehicle_id": [None]}), None)
    assert empty.empty and list(empty.columns) == ["vehicle_id", "user_id", "rank", "sku",
                                                  "score"]


@pytest.mark.slow
def test_no_email_address_under_the_mlflow_store(registered) -> None:
    """The logged model names graph users by one-way keys (no email address in any file, param
    or tag); ``predict`` takes the contract's key and keys it the same way."""
    tracking, tables, bundle, model, tmp = registered
    found, n_files = emails_in_artifacts(tmp / "mlartifacts")
    assert n_files >= 4 and not found, found[:5]  # MLmodel, python_model.pkl, model.pt, graph
    assert not emails_in_file(tmp / "mlflow.db") and not emails_in_tracking(tracking.client())
    snapshot = next((tmp / "mlartifacts").rglob("heterodata.pt"))
    assert load_graph(snapshot).user_ids == [user_key(u) for u in bundle.user_ids]
    recommender = tracking.registry().load(tracking.registry().champion(), tmp / "keyed")
    # two epochs fall back to the popularity prior (dot products scaled by e^-30, so every
    # query ranks alike): unscale them so a user's own representation shows in the scores
    recommender.model.log_scale.data.fill_(0.0)
    u, v = (int(x) for x in bundle.data[OWNS].edge_index[:, 0])  # a graph user and vehicle
    user, vehicle = bundle.user_ids[u], bundle.vehicle_ids[v]
    own = recommender.predict(None, pd.DataFrame({"vehicle_id": [vehicle], "user_id": [user]}),
                              {"k": 4})
    cold = recommender.predict(None, pd.DataFrame({"vehicle_id": [vehicle]}), {"k": 4})
    stranger = recommender.predict(
        None, pd.DataFrame({"vehicle_id": [vehicle], "user_id": ["nobody@example.com"]}), {"k": 4})
    assert list(own["user_id"]) == [user] * 4  # the caller's key comes back as given
    assert not np.allclose(own["score"], cold["score"])  # found: the user's own representation
    assert np.allclose(stranger["score"], cold["score"])  # not a graph user: the vehicle's
