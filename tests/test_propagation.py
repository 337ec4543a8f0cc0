"""The popularity prior and the LightGCN-style propagation of HeteroGAT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.graph.builder import build_graph
from holley_gnn_assets.graph.types import FITS, INTERACTS, OWNS
from holley_gnn_assets.model.hetero_gat import GraphMeta, HeteroGAT, encode_full
from holley_gnn_assets.model.propagation import build_propagation, check_kinds
from tests.ml_fixtures import make_tables, single_thread


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with single_thread():
        yield


def _bundle(seed: int = 0):
    tables, _ = make_tables(n_users=300, seed=seed)
    return build_graph(tables, load_config())


def test_operators_are_row_means_of_the_given_edges() -> None:
    data = _bundle().data
    prop = build_propagation(data, ("fitment", "owners", "history"))
    fit = prop.fitment.to_dense()
    fp, fv = data[FITS].edge_index
    deg = torch.bincount(fv, minlength=data["vehicle"].num_nodes).float()
    # each fitting product weighs 1 / (degree + 1); a product that does not fit weighs 0
    assert torch.allclose(fit.sum(1), deg / (deg + 1))
    assert torch.all(fit[fv, fp] > 0) and int((fit > 0).sum()) == fp.numel()
    hist = prop.history.to_dense()
    ui, pi = data[INTERACTS].edge_index
    assert int((hist > 0).sum()) == len({(int(u), int(p)) for u, p in zip(ui, pi, strict=True)})
    assert torch.all(hist.sum(1) < 1.0)


def test_owners_leave_out_users_whose_ownership_is_hidden() -> None:
    """Training hides a simulated-cold user's owns edge: its interactions must not reach its
    vehicle's ``owners`` mean (no target leakage)."""
    data = _bundle().data
    owns = data[OWNS].edge_index
    ei, ea = data[INTERACTS].edge_index, data[INTERACTS].edge_attr
    user = int(ei[0, 0])
    vehicle = int(owns[1, owns[0] == user][0])
    full = build_propagation(data, ("owners",), (ei, ea), owns).owners.to_dense()
    hidden = build_propagation(data, ("owners",), (ei, ea), owns[:, owns[0] != user])
    others = ei[0] != user
    others_own = owns[:, owns[0] != user]
    expect = build_propagation(data, ("owners",), (ei[:, others], ea[others]), others_own)
    assert torch.allclose(hidden.owners.to_dense(), expect.owners.to_dense())
    assert not torch.allclose(full[vehicle], hidden.owners.to_dense()[vehicle])


def test_unknown_kind_is_named() -> None:
    with pytest.raises(ValueError, match="model.propagation.*'cousins'"):
        check_kinds(["fitment", "cousins"])


def test_prior_serving_vectors_reproduce_the_training_logit() -> None:
    bundle = _bundle()
    cfg = load_config(overrides={"model": {"popularity_prior": True,
                                           "propagation": ["fitment", "owners", "history"]}})
    torch.manual_seed(0)
    model = HeteroGAT(GraphMeta.from_data(bundle.data), cfg["model"]).eval()
    count = bundle.data["product"].order_count
    with torch.no_grad():
        h = encode_full(model, bundle.data)
        pz = model.product_repr(h["product"])
        gz = model.cold_user_repr(h["vehicle"])
        logits = model.logits(gz[:3].unsqueeze(1), pz.unsqueeze(0), count)
        served = model.query_vectors(gz[:3]) @ model.product_vectors(pz, count).T
    assert torch.allclose(logits, served, atol=1e-4)
    # the prior is a residual over popularity: with the learned part at zero, the ranking is
    # the order-count ranking
    with torch.no_grad():
        model.log_scale.fill_(-30.0)
        flat = model.query_vectors(gz[:1]) @ model.product_vectors(pz, count).T
    order = torch.argsort(flat[0], descending=True, stable=True)
    assert torch.all(count[order][:-1] >= count[order][1:])


def test_product_bias_enters_training_and_serving_alike() -> None:
    """model.product_bias: the learned b(product) is part of the training logit and of the
    served prior column; zero at init (the v2 ranking), and it needs the prior."""
    bundle = _bundle()
    cfg = load_config(overrides={"model": {"popularity_prior": True, "product_bias": True}})
    torch.manual_seed(0)
    model = HeteroGAT(GraphMeta.from_data(bundle.data), cfg["model"]).eval()
    count = bundle.data["product"].order_count
    with torch.no_grad():
        h = encode_full(model, bundle.data)
        pz, gz = model.product_repr(h["product"]), model.cold_user_repr(h["vehicle"])
        before = model.product_vectors(pz, count)[:, -1]
        assert torch.allclose(before, model.prior_weight * torch.log1p(count))
        model.bias_head.weight.normal_()
        logits = model.logits(gz[:3].unsqueeze(1), pz.unsqueeze(0), count)
        served = model.query_vectors(gz[:3]) @ model.product_vectors(pz, count).T
        after = model.product_vectors(pz, count)[:, -1]
    assert torch.allclose(logits, served, atol=1e-4)
    assert not torch.allclose(before, after)
    off = load_config(overrides={"model": {"popularity_prior": False, "product_bias": True}})
    with pytest.raises(ValueError, match="product_bias needs model.popularity_prior"):
        HeteroGAT(GraphMeta.from_data(bundle.data), off["model"])


def test_vehicle_attributes_are_inputs_shared_by_sibling_vehicles() -> None:
    """model.vehicle_attributes: vehicles of one make share its code and the model reads
    make, make|model, 5-year bucket and year; off, the inputs ignore them."""
    bundle = _bundle()
    v = bundle.data["vehicle"]
    assert v.make.shape == v.make_model.shape == v.year_bucket.shape == (v.num_nodes,)
    assert v.make_model.unique().numel() >= v.make.unique().numel()
    assert v.year.shape == (v.num_nodes, 1)
    meta = GraphMeta.from_data(bundle.data)
    on = load_config(overrides={"model": {"vehicle_attributes": True}})
    off = load_config(overrides={"model": {"vehicle_attributes": False}})
    torch.manual_seed(0)
    model = HeteroGAT(meta, on["model"]).eval()
    torch.manual_seed(0)
    plain = HeteroGAT(meta, off["model"]).eval()
    with torch.no_grad():
        base = model._vehicle_inputs(bundle.data, None)
        model.vehicle_attr["make"].weight.normal_()
        moved = model._vehicle_inputs(bundle.data, None)
        plain_in = plain._vehicle_inputs(bundle.data, None)
    same_make = v.make == v.make[0]
    delta = moved - base
    assert torch.allclose(delta[same_make], delta[0].expand_as(delta[same_make]), atol=1e-5)
    assert not torch.allclose(delta[~same_make][:1], delta[:1], atol=1e-5)
    assert plain.vehicle_attr is None and plain_in.shape == base.shape


def test_prior_needs_the_order_counts() -> None:
    bundle = _bundle()
    cfg = load_config(overrides={"model": {"popularity_prior": True}})
    model = HeteroGAT(GraphMeta.from_data(bundle.data), cfg["model"])
    z = torch.nn.functional.normalize(torch.randn(4, model.embedding_dim), dim=1)
    with pytest.raises(ValueError, match="popularity_prior needs the order counts"):
        model.logits(z, z)


def test_fitment_neighbours_are_the_vehicles_sharing_fitment() -> None:
    """Vehicles with the same fitment rows are each other's heaviest neighbours; a vehicle with
    no fitting product in common is never one."""
    from torch_geometric.data import HeteroData

    from holley_gnn_assets.model.propagation import fitment_neighbours

    data = HeteroData()
    data["vehicle"].num_nodes, data["product"].num_nodes = 4, 6
    # vehicles 0 and 1 fit products 0-2; vehicle 2 fits 0-1 and 3; vehicle 3 fits 4-5 only
    pairs = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 3), (3, 4),
             (3, 5)]
    data[FITS].edge_index = torch.tensor([[p for _, p in pairs], [v for v, _ in pairs]])
    s = fitment_neighbours(data, k=3).to_dense()
    assert s[0, 1] == s[0, 0] > s[0, 2] > 0
    assert s[0, 3] == 0 and s[3, 0] == 0 and s[3, 3] > 0
    assert torch.all(s.sum(1) < 1.0)


def test_a_vehicle_is_its_own_lookalike_even_among_identical_fitment_rows() -> None:
    """Six vehicles fit the same products: any 3 are a top 3, and each vehicle's own row is
    always one of them (its owners count in its own pooled count)."""
    from holley_gnn_assets.graph.lookalikes import fitment_lookalikes

    vehicle = np.repeat(np.arange(6), 2)
    product = np.tile([0, 1], 6)
    m = fitment_lookalikes(vehicle, product, 6, 2, k=3).tocsr()
    assert (m.getnnz(axis=1) == 3).all()
    np.testing.assert_allclose(m.diagonal(), 1.0)
    np.testing.assert_allclose(m.data, 1.0)


def test_without_attention_on_fitment_the_model_has_no_fitment_convs() -> None:
    from holley_gnn_assets.model.hetero_gat import attention_edge_types

    bundle = _bundle()
    cfg = load_config(overrides={"model": {"attention_fitment": False,
                                           "propagation": ["pooled", "neighbours"]}})
    model = HeteroGAT(GraphMeta.from_data(bundle.data), cfg["model"]).eval()
    assert FITS not in attention_edge_types(cfg["model"])
    assert all("fits" not in "".join(k) for k in model.convs[0].convs.keys())
    with torch.no_grad():
        h = encode_full(model, bundle.data)
    assert torch.isfinite(h["vehicle"]).all()


def test_pooled_neighbours_sets_the_lookalikes_of_training_and_serving(tmp_path) -> None:
    """``model.pooled_neighbours`` is the look-alike count of the pooled/neighbours means in
    serving (the model's own propagation) and survives a save/load; training's setup builds
    the same operator."""
    from holley_gnn_assets.model import persistence as model_io
    from holley_gnn_assets.training.sampler import TrainingSetup

    bundle = _bundle()
    n_v = int(bundle.data["vehicle"].num_nodes)
    cfg = load_config(overrides={"model": {"pooled_neighbours": 2}})
    torch.manual_seed(0)
    model = HeteroGAT(GraphMeta.from_data(bundle.data), cfg["model"])
    path = model_io.save_model(tmp_path / "m.pt", model, cfg, bundle)
    loaded = model_io.load_model(path, bundle)
    assert loaded.pooled_neighbours == 2
    serving = build_propagation(bundle.data, ("pooled",), k=loaded.pooled_neighbours)
    rows = serving.neighbours.to_dense()
    assert int((rows > 0).sum(1).max()) == 2 < n_v
    st = TrainingSetup(bundle, cfg, "cpu", np.random.default_rng(0))
    kinds = tuple(cfg["model"]["propagation"])
    assert torch.equal(st.val_propagation(kinds).neighbours.to_dense(), rows)
    # the model's own forward (no operator given) reads its pool, not the default 20
    loaded.eval()
    with torch.no_grad():
        own = loaded.node_inputs(bundle.data)["vehicle"]
        two = loaded.node_inputs(bundle.data, prop=build_propagation(
            bundle.data, kinds, k=2))["vehicle"]
        twenty = loaded.node_inputs(bundle.data, prop=build_propagation(
            bundle.data, kinds, k=20))["vehicle"]
    assert torch.equal(own, two) and not torch.allclose(own, twenty)
    default = HeteroGAT(GraphMeta.from_data(bundle.data), load_config()["model"])
    assert default.pooled_neighbours == 20
