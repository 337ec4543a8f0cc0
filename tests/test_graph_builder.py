"""Graph construction: node/edge sets, features, persistence, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from holley_gnn_assets.graph.builder import build_graph, load_graph, save_graph
from holley_gnn_assets.graph.types import (
    CO_PURCHASED,
    EDGE_TYPES,
    FITS,
    INTERACTS,
    OWNS,
    REV_FITS,
)
from tests.ml_fixtures import make_tables


def hand_tables() -> dict[str, pd.DataFrame]:
    """3 users (2 with interactions), 3 products, 2 vehicles: known answers."""
    users = pd.DataFrame(
        {
            "email_lower": ["a@x", "b@x", "c@x"],
            "vehicle_id": ["1969|CHEVROLET|CAMARO", "1969|CHEVROLET|CAMARO", None],
            "year": ["1969", "1969", None],
            "make": ["CHEVROLET", "CHEVROLET", None],
            "model": ["CAMARO", "CAMARO", None],
            "tier": ["hot", "cold", "warm"],
            "n_views": [2, 0, 1],
            "n_carts": [1, 0, 0],
            "n_orders": [0, 0, 0],
        }
    )
    products = pd.DataFrame(
        {
            "sku": ["P1", "P2", "P3"],
            "base_sku": ["P1", "P2", "P3"],
            "part_type": ["Carb", "Carb", "Intake"],
            "title": ["t1", "t2", "t3"],
            "price": [100.0, None, 300.0],
            "image_url": ["https://i/1", "https://i/2", "https://i/3"],
            "is_refurbished": [False] * 3,
            "is_service": [False] * 3,
            "is_commodity": [False] * 3,
            "eligible": [True, False, True],
            "order_count": [10, 0, 3],
            "log_popularity": np.log1p([10.0, 0.0, 3.0]),
            "fitment_breadth": [2, 1, 1],
        }
    )
    vehicles = pd.DataFrame(
        {
            "vehicle_id": ["1969|CHEVROLET|CAMARO", "1970|FORD|MUSTANG"],
            "year": ["1969", "1970"],
            "make": ["CHEVROLET", "FORD"],
            "model": ["CAMARO", "MUSTANG"],
            "user_count": [2, 0],
            "product_count": [2, 2],
        }
    )
    up = pd.DataFrame(
        {
            "email_lower": ["a@x", "a@x", "c@x"],
            "sku": ["P1", "P3", "P1"],
            "weight": [4.0, 1.0, 1.0],
            "n_events": [2, 1, 1],
            "max_event_weight": [3.0, 1.0, 1.0],
            "last_ts": pd.to_datetime(["2026-01-01"] * 3),
        }
    )
    uv = pd.DataFrame(
        {
            "email_lower": ["a@x", "b@x"],
            "vehicle_id": ["1969|CHEVROLET|CAMARO"] * 2,
            "weight": [1.0, 1.0],
        }
    )
    pv = pd.DataFrame(
        {
            "sku": ["P1", "P1", "P2", "P3"],
            "vehicle_id": [
                "1969|CHEVROLET|CAMARO",
                "1970|FORD|MUSTANG",
                "1969|CHEVROLET|CAMARO",
                "1970|FORD|MUSTANG",
            ],
            "weight": [1.0] * 4,
        }
    )
    pp = pd.DataFrame({"sku_a": ["P1"], "sku_b": ["P3"], "n_users": [2], "weight": [np.log(2)]})
    return {
        "user_nodes": users,
        "product_nodes": products,
        "vehicle_nodes": vehicles,
        "user_product_edges": up,
        "user_vehicle_edges": uv,
        "product_vehicle_edges": pv,
        "product_product_edges": pp,
    }


def test_known_answer_nodes_and_edges() -> None:
    b = build_graph(hand_tables(), {})
    # only users with interaction edges are nodes; the cold user b@x is not
    assert b.user_ids == ["a@x", "c@x"]
    assert b.product_ids == ["P1", "P2", "P3"]
    d = b.data
    assert d["user"].num_nodes == 2 and d["product"].num_nodes == 3 and d["vehicle"].num_nodes == 2
    assert d[INTERACTS].edge_index.tolist() == [[0, 0, 1], [0, 2, 0]]
    # owns: only a@x (c@x has no vehicle, b@x is not a node)
    assert d[OWNS].edge_index.tolist() == [[0], [0]]
    assert d["user"].vehicle.tolist() == [0, -1]
    assert d[FITS].edge_index.shape[1] == 4
    assert d[REV_FITS].edge_index.tolist() == d[FITS].edge_index.flip(0).tolist()
    assert sorted(map(tuple, d[CO_PURCHASED].edge_index.T.tolist())) == [(0, 2), (2, 0)]
    assert set(d.edge_types) == set(EDGE_TYPES)
    # features: tier index, price missing flag, finite standardised values
    assert d["user"].tier.tolist() == [2, 1]
    assert d["product"].x[:, 1].tolist() == [0.0, 1.0, 0.0]
    assert d["product"].part_type.tolist() == [0, 0, 1]
    for nt in ("user", "product", "vehicle"):
        assert torch.isfinite(d[nt].x).all()
    assert b.stats["tier_counts_all_users"] == {"hot": 1, "cold": 1, "warm": 1}
    assert b.stats["edges"]["user__interacts__product"] == 3


def test_save_load_roundtrip(tmp_path) -> None:
    tables, _ = make_tables(n_users=300, seed=3)
    b = build_graph(tables, {})
    save_graph(b, tmp_path / "g.pt")
    b2 = load_graph(tmp_path / "g.pt")
    assert b2.fingerprint == b.fingerprint
    assert b2.user_ids == b.user_ids and b2.vehicle_ids == b.vehicle_ids
    for et in EDGE_TYPES:
        assert torch.equal(b2.data[et].edge_index, b.data[et].edge_index)
    assert torch.equal(b2.data["product"].x, b.data["product"].x)


def test_fingerprint_tracks_edges() -> None:
    tables = hand_tables()
    f1 = build_graph(tables, {}).fingerprint
    tables["user_product_edges"] = tables["user_product_edges"].iloc[:2]
    assert build_graph(tables, {}).fingerprint != f1


def test_missing_column_named() -> None:
    tables = hand_tables()
    tables["product_nodes"] = tables["product_nodes"].drop(columns=["price"])
    with pytest.raises(ValueError, match="product_nodes.*price"):
        build_graph(tables, {})


def test_unknown_endpoint_named() -> None:
    tables = hand_tables()
    tables["product_vehicle_edges"].loc[0, "sku"] = "NOPE"
    with pytest.raises(ValueError, match="product_vehicle_edges.*NOPE"):
        build_graph(tables, {})


def test_bad_tier_named() -> None:
    tables = hand_tables()
    tables["user_nodes"].loc[0, "tier"] = "lukewarm"
    with pytest.raises(ValueError, match="tier"):
        build_graph(tables, {})
