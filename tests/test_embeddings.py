"""Serving embeddings: groups per (vehicle, tier), own rows for graph users, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.graph.builder import build_graph, load_graph, save_graph
from holley_gnn_assets.model.hetero_gat import GraphMeta, HeteroGAT
from holley_gnn_assets.model.user_keys import save_keyed_graph, user_key, with_contract_user_ids
from holley_gnn_assets.recommend.embeddings import Embeddings, compute_embeddings
from tests.ml_fixtures import single_thread, untrained_world


@pytest.fixture(scope="module")
def emb_world():
    _, tables, bundle, model = untrained_world(n_users=500, seed=2)
    with single_thread():
        emb = compute_embeddings(model, bundle, tables["user_nodes"])
    return tables, bundle, emb


def test_index_covers_every_user_with_a_vehicle(emb_world) -> None:
    tables, bundle, emb = emb_world
    users = tables["user_nodes"]
    with_v = users[users["vehicle_id"].notna()]
    idx = emb.user_index
    assert sorted(idx["email_lower"]) == sorted(with_v["email_lower"])
    assert set(idx["source"]) == {"group", "user"}
    own = idx[idx["source"] == "user"]
    # own rows: exactly the graph users with a vehicle
    graph_with_v = set(bundle.user_ids) & set(with_v["email_lower"])
    assert set(own["email_lower"]) == graph_with_v
    # embedding_dim + the popularity prior's column
    assert emb.user_matrix.shape == (len(own), 129) and emb.product_matrix.shape[1] == 129
    assert sorted(own["row"]) == list(range(len(own)))
    # groups: one row per (vehicle, tier) of users without own edges, computed once per group
    grouped = idx[idx["source"] == "group"]
    n_groups = len(grouped[["vehicle_id", "tier"]].drop_duplicates())
    assert emb.group_matrix.shape == (n_groups, 129) == (len(emb.group_keys), 129)
    keys = emb.group_keys.iloc[grouped["row"].to_numpy()].reset_index(drop=True)
    assert (keys["vehicle_id"].to_numpy() == grouped["vehicle_id"].to_numpy()).all()
    assert (keys["tier"].to_numpy() == grouped["tier"].to_numpy()).all()


def test_rows_are_serving_vectors_and_products_ordered(emb_world) -> None:
    """With the popularity prior (the default): user/group rows are [unit vector, 1], product
    rows [scale x unit vector, prior weight x log1p(order_count)], so a dot product is the
    model's logit; products keep the graph's order."""
    _, bundle, emb = emb_world
    assert emb.product_ids == bundle.product_ids
    for m in (emb.product_matrix, emb.group_matrix, emb.user_matrix):
        assert m.dtype == np.float32
    for m in (emb.group_matrix, emb.user_matrix):
        assert np.allclose(np.linalg.norm(m[:, :-1], axis=1), 1.0, atol=1e-5)
        assert np.all(m[:, -1] == 1.0)
    norms = np.linalg.norm(emb.product_matrix[:, :-1], axis=1)
    assert np.allclose(norms, norms[0], atol=1e-3) and norms[0] > 1.0  # the learned scale
    prior = np.log1p(bundle.data["product"].order_count.numpy())  # weight 1 before training
    assert np.allclose(emb.product_matrix[:, -1], prior, atol=1e-5)


def test_save_load_roundtrip(emb_world, tmp_path) -> None:
    _, _, emb = emb_world
    emb.save(tmp_path)
    back = Embeddings.load(tmp_path)
    assert back.product_ids == emb.product_ids
    assert np.array_equal(back.group_matrix, emb.group_matrix)
    assert np.array_equal(back.user_matrix, emb.user_matrix)
    assert back.user_index.equals(emb.user_index)
    assert back.group_keys.equals(emb.group_keys)


def test_keyed_graph_mapped_back_scores_alike(tmp_path) -> None:
    """The MLflow model's graph (users by one-way key) mapped back through the users' contract
    keys gives exactly the embeddings of the pipeline's own graph (the embeddings step)."""
    _, tables, bundle, model = untrained_world(n_users=200, seed=3)
    save_graph(bundle, tmp_path / "graph.pt")
    keyed = load_graph(save_keyed_graph(tmp_path / "graph.pt", tmp_path / "keyed.pt"))
    assert keyed.user_ids == [user_key(u) for u in bundle.user_ids]
    assert not any("@" in u for u in keyed.user_ids) and keyed.fingerprint == bundle.fingerprint
    back = with_contract_user_ids(keyed, tables["user_nodes"]["email_lower"])
    with single_thread():
        emb = compute_embeddings(model, bundle, tables["user_nodes"])
        again = compute_embeddings(model, back, tables["user_nodes"])
    assert (emb.user_index["source"] == "user").sum() > 0
    assert again.user_index.equals(emb.user_index) and again.user_ids == emb.user_ids
    assert np.array_equal(again.user_matrix, emb.user_matrix)
    assert np.array_equal(again.group_matrix, emb.group_matrix)


def test_nan_is_named(emb_world) -> None:
    _, _, emb = emb_world
    bad = Embeddings(**{**emb.__dict__, "group_matrix": emb.group_matrix.copy()})
    bad.group_matrix[0, 0] = np.nan
    with pytest.raises(ValueError, match="group_matrix"):
        bad.check()


def test_unknown_vehicle_is_named(emb_world) -> None:
    tables, bundle, emb = emb_world
    users = tables["user_nodes"].copy()
    users["vehicle_id"] = users["vehicle_id"].astype(object)
    users.loc[users["vehicle_id"].notna().idxmax(), "vehicle_id"] = "1900|NOPE|NONE"
    model = HeteroGAT(GraphMeta.from_data(bundle.data), load_config()["model"])
    with pytest.raises(ValueError, match="1900|NOPE|NONE"):
        compute_embeddings(model, bundle, users)


def test_generator_world_end_to_end(tiny_signal_warehouse, tmp_path) -> None:
    """Synthetic warehouse -> exports -> graph -> 2 epochs -> embeddings for every user."""
    import duckdb

    from holley_gnn_assets.config.settings import TimeWindows
    from holley_gnn_assets.graph.builder import TABLES
    from holley_gnn_assets.training.loop import train
    from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
    from holley_gnn_assets.warehouse.exports import run_exports

    with duckdb.connect(str(tiny_signal_warehouse), read_only=True) as con:
        as_of = con.execute("SELECT as_of FROM synth_truth.world").fetchone()[0]
    as_of = as_of.date() if hasattr(as_of, "date") else as_of
    cfg = load_config(overrides={"training": {"epochs": 2}})
    exported = run_exports(
        DuckDBWarehouse(tiny_signal_warehouse), cfg, TimeWindows.from_config(cfg, as_of)
    )
    tables = {name: exported[name] for name in TABLES}  # test clicks never reach training
    with single_thread():
        bundle = build_graph(tables, cfg)
        result = train(bundle, cfg, tmp_path, device="cpu")
        emb = compute_embeddings(result.model, bundle, tables["user_nodes"])
    assert result.epochs_run == 2 and np.isfinite(result.best_val_mrr)
    users = tables["user_nodes"]
    assert len(emb.user_index) == int(users["vehicle_id"].notna().sum())
    assert len(emb.group_matrix) <= bundle.data["vehicle"].num_nodes * 3
