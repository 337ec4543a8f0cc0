"""HeteroGAT: shapes, L2 norms, cold users sharing a vehicle, no per-user ID table."""

from __future__ import annotations

import pytest
import torch

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.graph.builder import build_graph
from holley_gnn_assets.graph.types import COLD
from holley_gnn_assets.model.hetero_gat import GraphMeta, HeteroGAT, encode_full, full_blocks
from tests.ml_fixtures import make_tables, single_thread


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with single_thread():
        yield


def _model(n_users: int = 300, seed: int = 0):
    cfg = load_config()
    tables, _ = make_tables(n_users=n_users, seed=seed)
    bundle = build_graph(tables, cfg)
    torch.manual_seed(0)
    return HeteroGAT(GraphMeta.from_data(bundle.data), cfg["model"]), bundle, cfg


def test_forward_shapes_and_norms() -> None:
    model, bundle, cfg = _model()
    model.eval()
    d = int(cfg["model"]["embedding_dim"])
    h = encode_full(model, bundle.data)
    for nt in ("user", "product", "vehicle"):
        assert h[nt].shape == (bundle.data[nt].num_nodes, d)
    with torch.no_grad():
        pz = model.product_repr(h["product"])
        v = bundle.data["user"].vehicle.clamp_min(0)
        uz = model.user_repr(h["vehicle"][v], h["user"], bundle.data["user"].tier)
    assert pz.shape == (bundle.data["product"].num_nodes, d)
    assert torch.allclose(pz.norm(dim=1), torch.ones(len(pz)), atol=1e-5)
    assert torch.allclose(uz.norm(dim=1), torch.ones(len(uz)), atol=1e-5)
    count = bundle.data["product"].order_count[: len(uz)]
    assert torch.isfinite(model.logits(uz, pz[: len(uz)], count)).all()


def test_cold_users_share_their_vehicle_representation() -> None:
    model, bundle, _ = _model()
    model.eval()
    h = encode_full(model, bundle.data)
    with torch.no_grad():
        same = model.cold_user_repr(h["vehicle"][torch.tensor([2, 2, 5])])
    assert torch.equal(same[0], same[1])
    assert not torch.allclose(same[0], same[2])


def test_no_per_user_parameters() -> None:
    small, _, _ = _model(n_users=200)
    large, _, _ = _model(n_users=2000)
    # same products/vehicles/part types -> same parameter count whatever the number of users
    assert sum(p.numel() for p in small.parameters()) == sum(p.numel() for p in large.parameters())
    emb = {id(p) for p in small.embedding_parameters()}
    other = {id(p) for p in small.other_parameters()}
    assert emb and other and not emb & other
    assert len(emb) + len(other) == len(list(small.parameters()))


def test_untrained_id_embeddings_are_zero() -> None:
    model, _, _ = _model()
    assert torch.count_nonzero(model.product_id_emb.weight) == 0
    assert torch.count_nonzero(model.vehicle_id_emb.weight) == 0


def test_forward_is_inputs_then_message_passing() -> None:
    model, bundle, _ = _model()
    model.eval()
    with torch.no_grad():
        h = model(bundle.data)
        blocks = full_blocks(bundle.data, len(model.convs))
        manual = model.encode(model.node_inputs(bundle.data), blocks)
        subset = {nt: torch.arange(int(bundle.data[nt].num_nodes)) for nt in h}
        indexed = model(bundle.data, blocks, subset)
    for nt in ("user", "product", "vehicle"):
        assert torch.equal(h[nt], manual[nt])
        assert torch.equal(h[nt], indexed[nt])


def test_cold_user_repr_is_the_tower_on_vehicle_zero_and_cold_tier() -> None:
    model, bundle, _ = _model()
    model.eval()
    with torch.no_grad():
        vh = encode_full(model, bundle.data)["vehicle"]
        cold = torch.full((len(vh),), COLD, dtype=torch.long)
        x = torch.cat([vh, torch.zeros_like(vh), model.tier_tower_emb(cold)], dim=1)
        expected = torch.nn.functional.normalize(model.user_tower(x), dim=1)
        got = model.cold_user_repr(vh)
    assert torch.allclose(got, expected, atol=1e-6)
    # an own state changes a user's representation; the cold one ignores it by construction
    with torch.no_grad():
        warm = model.user_repr(vh, torch.ones_like(vh), cold)
    assert not torch.allclose(got, warm)
