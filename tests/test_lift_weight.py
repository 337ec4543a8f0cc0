"""The look-alike lift's weight, chosen on validation after training (training/lift_weight.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from holley_gnn_assets.graph.lookalike_lift import interactions_with_vehicles, lookalike_lift
from holley_gnn_assets.training.lift_weight import choose_lift_weight, validation_lift
from holley_gnn_assets.training.sampler import TrainingSetup
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


def test_the_weight_with_the_best_validation_mrr_wins(setup) -> None:
    """w = 0 ranks exactly as validation's cold ranking; the chosen weight has the best MRR;
    a grid of [0] (or none) is the GNN alone."""
    _, _, st, model = setup
    weights = [0.0, 0.5, 1.0, 4.0]
    best, mrr = choose_lift_weight(model, st, weights)
    assert set(mrr) == set(weights)
    assert mrr[0.0] == pytest.approx(evaluate(model, st)["val_mrr"])
    assert mrr[best] == max(mrr.values())
    assert len(set(round(m, 6) for m in mrr.values())) > 1  # the lift moves the ranking
    assert choose_lift_weight(model, st, [0.0]) == (0.0, {})
    assert choose_lift_weight(model, st, []) == (0.0, {})
