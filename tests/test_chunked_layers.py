"""No-grad full-graph layers in chunks of destination rows give the full layer's outputs."""

from __future__ import annotations

import torch

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.graph.builder import build_graph
from holley_gnn_assets.model import chunked
from holley_gnn_assets.model.hetero_gat import GraphMeta, HeteroGAT
from tests.ml_fixtures import make_tables


def test_chunked_full_graph_forward_equals_one_pass(monkeypatch) -> None:
    tables, _ = make_tables(n_users=400, seed=5, signal=3.0)
    data = build_graph(tables, {}).data
    torch.manual_seed(0)
    cfg = load_config(overrides={"model": {"embedding_dim": 16, "hidden_dim": 32}})["model"]
    model = HeteroGAT(GraphMeta.from_data(data), cfg).eval()
    calls: list[int] = []
    real = chunked.layer_in_chunks

    def counting(layer, h, block, rows=None):
        calls.append(1)
        return real(layer, h, block, rows)

    monkeypatch.setattr("holley_gnn_assets.model.hetero_gat.layer_in_chunks", counting)
    with torch.no_grad():
        monkeypatch.setattr(chunked, "FULL_GRAPH_ROWS", 10**9)
        whole = model(data)
        monkeypatch.setattr(chunked, "FULL_GRAPH_ROWS", 37)  # every type split, ragged last chunk
        parts = model(data)
    assert len(calls) == 2 * len(model.convs)
    assert whole.keys() == parts.keys()
    for k in whole:
        assert whole[k].shape == parts[k].shape
        torch.testing.assert_close(parts[k], whole[k], rtol=1e-5, atol=1e-5)
    with torch.enable_grad():  # training keeps the one-pass layer (autograd through it)
        calls.clear()
        model(data)
        assert calls == []
