"""The look-alike lift's pool and weight, chosen on validation after training
(training/lift_weight.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.graph.lookalike_lift import interactions_with_vehicles, lookalike_lift
from holley_gnn_assets.training.lift_weight import LiftChoice, choose_lift, validation_lift
from holley_gnn_assets.training.sampler import TrainingSetup, held_out_users
from holley_gnn_assets.training.validation import evaluate
from tests.ml_fixtures import single_thread, untrained_world


@pytest.fixture(scope="module")
def setup():
    cfg, tables, bundle, model = untrained_world(n_users=500, seed=3)
    with single_thread():
        st = TrainingSetup(bundle, cfg, "cpu", np.random.default_rng(0))
    return tables, bundle, st, model


def test_the_validation_lift_counts_the_training_edges_only(setup) -> None:
    """validation_lift is lookalike_lift over the interactions minus the held-out edges, in
    graph codes; with the held-out edges counted it would differ on their pairs."""
    tables, bundle, st, _ = setup
    got = validation_lift(st)
    held = pd.DataFrame({"email_lower": np.asarray(bundle.user_ids, dtype=object)[
        st.edge_user[st.val_idx].numpy()],
        "sku": np.asarray(bundle.product_ids, dtype=object)[st.edge_product[st.val_idx].numpy()]})
    inter = interactions_with_vehicles(tables["user_product_edges"], tables["user_nodes"])
    train_only = inter.merge(held, how="left", indicator=True)
    train_only = train_only[train_only["_merge"] == "left_only"].drop(columns="_merge")
    pop = tables["product_nodes"].set_index("sku")["order_count"].astype(float)
    want = lookalike_lift(tables["product_vehicle_edges"], pop, train_only)
    v = pd.Index(bundle.vehicle_ids).get_indexer(want["vehicle_id"])
    p = pd.Index(bundle.product_ids).get_indexer(want["sku"])
    np.testing.assert_allclose(np.asarray(got[v, p]).ravel(), want["lift"], atol=1e-9)
    every = lookalike_lift(tables["product_vehicle_edges"], pop, inter)
    assert not np.allclose(every["lift"], want["lift"])
    # another pool: the same count over 5 look-alikes, a different lift
    five = lookalike_lift(tables["product_vehicle_edges"], pop, train_only, 5)
    np.testing.assert_allclose(np.asarray(validation_lift(st, 5)[v, p]).ravel(), five["lift"],
                               atol=1e-9)
    assert not np.allclose(five["lift"], want["lift"])


def test_the_weight_with_the_best_validation_mrr_wins(setup) -> None:
    """w = 0 ranks exactly as validation's cold ranking; the chosen weight has the best MRR;
    a grid of [0] (or none) is the GNN alone."""
    _, _, st, model = setup
    weights = [0.0, 0.5, 1.0, 4.0]
    choice = choose_lift(model, st, weights, [20])
    mrr = choice.val_mrr
    assert set(mrr) == set(weights) and choice.neighbours == 20
    assert mrr[0.0] == pytest.approx(evaluate(model, st)["val_mrr"])
    assert mrr[choice.weight] == max(mrr.values())
    assert len(set(round(m, 6) for m in mrr.values())) > 1  # the lift moves the ranking
    assert choose_lift(model, st, [0.0], [40, 20]) == LiftChoice(neighbours=40)
    assert choose_lift(model, st, [], []) == LiftChoice(neighbours=20)
    assert choice.metrics()["lookalike_lift_weight"] == choice.weight
    assert "| 4 |" in choice.markdown() and "chosen" in choice.markdown()


def test_the_pool_with_the_best_count_mrr_wins(setup) -> None:
    """The pool is chosen by the count alone (log n + lift over k look-alikes) on the held-out
    edges: its MRR is the one rank_metrics gives that score, and the best pool wins."""
    _, _, st, model = setup
    pools = [20, 2, 5]
    choice = choose_lift(model, st, [0.0, 1.0], pools)
    assert list(choice.count_val_mrr) == pools
    assert choice.count_val_mrr[choice.neighbours] == max(choice.count_val_mrr.values())
    assert len(set(round(m, 6) for m in choice.count_val_mrr.values())) > 1
    # the count's MRR for k = 2, ranked by hand: log n + lift among the vehicle's fitting
    # products, the held-out product's rank (ties counted half, as in rank_metrics)
    lift = validation_lift(st, 2).toarray()
    log_n = np.log(st.data["product"].order_count.double().numpy() + 0.5)
    fp, fv = (a.numpy() for a in st.data["product", "fits", "vehicle"].edge_index)
    fit = np.zeros_like(lift, dtype=bool)
    fit[fv, fp] = True
    u = st.edge_user[st.val_idx].numpy()
    targets = st.edge_product[st.val_idx].numpy()
    veh = st.user_vehicle[u].numpy()
    rr = []
    for v, t in zip(veh, targets, strict=True):
        if v < 0 or not fit[v, t]:
            rr.append(0.0)
            continue
        score = np.where(fit[v], log_n + lift[v], -np.inf)
        rank = (score > score[t]).sum() + 0.5 * ((score == score[t]).sum() - 1)
        rr.append(1.0 / (1.0 + rank))
    assert choice.count_val_mrr[2] == pytest.approx(float(np.mean(rr)), abs=1e-6)


def test_validation_holds_out_whole_users(setup) -> None:
    """validation_split users: every edge of the held-out users is a validation edge, none is
    trained on or passes messages, and their vehicle ownership is out of the validation graph
    and of every epoch's (cold, as the audience is); about val_fraction of the edges. The
    default (edges) holds out edges of users whose other edges stay."""
    _, bundle, edges_st, _ = setup
    assert edges_st.val_users is None
    users = edges_st.edge_user.numpy()
    held_edges = np.unique(users[edges_st.val_idx.numpy()])
    assert np.isin(users[edges_st.train_idx.numpy()], held_edges).any()
    cfg = load_config(overrides={"training": {"validation_split": "users"}})
    with single_thread():
        st = TrainingSetup(bundle, cfg, "cpu", np.random.default_rng(0))
    held = np.unique(users[st.val_idx.numpy()])
    assert st.val_users is not None and set(np.flatnonzero(st.val_users.numpy())) == set(held)
    assert set(np.flatnonzero(np.isin(users, held))) == set(st.val_idx.numpy())
    assert not np.isin(users[st.train_idx.numpy()], held).any()
    owners = st.val_message[("user", "owns", "vehicle")][0][0].numpy()
    assert not np.isin(owners, held).any() and len(owners)
    assert len(st.val_idx) >= round(0.1 * st.n_edges)
    rng = np.random.default_rng(0)
    split = st.epoch_split(rng)[2][("user", "owns", "vehicle")][0][0].numpy()
    assert not np.isin(split, held).any()


def test_held_out_users_takes_whole_users_and_leaves_training_edges() -> None:
    """Whole users until n_val edges; a user holding every candidate edge is skipped."""
    edge_user = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    cand = np.arange(10)
    for seed in range(5):
        got = held_out_users(edge_user, cand, 3, np.random.default_rng(seed))
        chosen = np.unique(edge_user[got])
        assert set(got) == set(np.flatnonzero(np.isin(edge_user, chosen)))
        assert 3 <= len(got) < 10
    assert len(held_out_users(np.zeros(4, dtype=int), np.arange(4), 2,
                              np.random.default_rng(0))) == 0
