"""A saved model reloads with the same weights, and refuses a graph it was not trained on."""

from __future__ import annotations

import pytest
import torch
from ml_fixtures import make_tables

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.graph.builder import build_graph
from holley_gnn_assets.model.hetero_gat import GraphMeta, HeteroGAT
from holley_gnn_assets.model.persistence import load_model, save_model


def test_round_trip_and_graph_mismatch(tmp_path):
    cfg = load_config()
    tables, _ = make_tables(n_users=300, seed=0)
    bundle = build_graph(tables, cfg)
    torch.manual_seed(0)
    model = HeteroGAT(GraphMeta.from_data(bundle.data), cfg["model"])
    path = save_model(tmp_path / "m" / "model.pt", model, cfg, bundle)
    loaded = load_model(path, bundle)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key

    other_tables, _ = make_tables(n_users=300, seed=1)
    other = build_graph(other_tables, cfg)
    assert other.fingerprint != bundle.fingerprint
    with pytest.raises(ValueError, match="trained on graph"):
        load_model(path, other)
