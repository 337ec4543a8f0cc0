"""evaluate(): report shape, known values, decision rule, empty test set, Markdown and plot."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from holley_gnn_assets.evaluation.report import decide, evaluate, plot_tiers, report_markdown
from holley_gnn_assets.settings import load_config
from tests.test_scoring import _world

EV = load_config()["eval"]


def _ranked(lists: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(u, i + 1, s, 10.0 - i) for u, skus in lists.items() for i, s in enumerate(skus)]
    return pd.DataFrame(rows, columns=["email_lower", "rank", "sku", "score"])


def _setup() -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    users = pd.DataFrame(
        {
            "email_lower": ["a", "b", "c", "d", "e", "f"],
            "vehicle_id": ["V1", "V1", "V2", "V2", "V3", None],
            "tier": ["cold", "cold", "cold", "warm", "hot", "cold"],
        }
    )
    top = ["S1", "S2", "S3", "S4", "S5"]
    gnn = _ranked({u: top for u in "abcde"})
    sql = _ranked({u: ["S9", "S8", "S7", "S6", "S1"] for u in "abcde"})
    clicks = pd.DataFrame(
        {
            "email_lower": ["a", "b", "c", "d", "e", "f", "zz"],
            "sku": ["S1", "S6", "S2", "S5", "S9", "S1", "S1"],
        }
    )
    events = pd.DataFrame(
        {"email_lower": ["a", "c"], "sku": ["S9", "S3"], "event_name": ["product_viewed"] * 2}
    )
    return {"gnn": gnn, "sql": sql}, users, clicks, events


def test_report_values_and_shape(tmp_path: Path) -> None:
    arms, users, clicks, events = _setup()
    cfg = load_config()
    rep = evaluate(
        arms, users, clicks, events, cfg, as_of=dt.date(2026, 3, 31), cutoff=dt.date(2026, 3, 1)
    )
    json.dumps(rep)  # serialisable
    assert rep["n_test_clicks"] == 7 and rep["n_test_users"] == 7
    assert rep["n_test_users_evaluated"] == 5 and rep["n_test_users_without_vehicle"] == 2
    cold = rep["tiers"]["cold"]
    assert cold["n_users"] == 3
    assert cold["gnn"]["hit_rate@4"] == pytest.approx(2 / 3)  # a, c
    assert cold["sql"]["hit_rate@4"] == pytest.approx(1 / 3)  # b (S6 at 4)
    assert cold["delta_hit_rate@4"] == pytest.approx(1 / 3)
    assert cold["mcnemar_p"] == pytest.approx(1.0)  # b=2, c=1
    assert rep["tiers"]["all"]["n_users"] == 5
    assert rep["tiers"]["hot"]["sql"]["hit_rate@4"] == 1.0
    assert rep["tiers"]["warm"]["gnn"]["mrr"] == pytest.approx(1 / 5)
    assert rep["decision"] in {"clear_win", "inconclusive"}
    assert any("min_test_clicks" in w for w in rep["warnings"])
    te = rep["test_events"]["tiers"]["cold"]
    assert te["gnn"]["hit_rate@4"] == pytest.approx(0.5) and te["sql"]["hit_rate@4"] == 0.5
    md = report_markdown(rep)
    assert "| cold | 3 |" in md and "Decision" in md and "site events" in md
    png = plot_tiers(rep, tmp_path / "tiers.png")
    assert png.stat().st_size > 1000


def test_empty_test_set() -> None:
    arms, users, clicks, events = _setup()
    rep = evaluate(arms, users, clicks.iloc[:0], events.iloc[:0], load_config())
    assert rep["decision"] == "no_test_data"
    assert any("empty test set" in w for w in rep["warnings"])
    assert rep["tiers"]["cold"]["n_users"] == 0
    assert rep["tiers"]["cold"]["gnn"]["hit_rate@4"] == 0.0
    assert rep["tiers"]["cold"]["bootstrap_ci95"] == [None, None]
    assert "no_test_data" in report_markdown(rep)
    with pytest.raises(ValueError, match="'sql'"):
        evaluate({"gnn": arms["gnn"]}, users, clicks, events, load_config())


@pytest.mark.parametrize(
    ("delta", "ci", "expected"),
    [
        (0.05, (0.01, 0.09), "clear_win"),
        (0.05, (-0.01, 0.09), "inconclusive"),
        (0.02, (0.001, 0.04), "marginal"),
        (0.0, (-0.015, 0.015), "neutral"),
        (0.0, (-0.05, 0.05), "inconclusive"),
        (-0.03, (-0.05, -0.01), "worse"),
        (-0.03, (-0.05, 0.01), "inconclusive"),
    ],
)
def test_decision_rule(delta: float, ci: tuple[float, float], expected: str) -> None:
    assert decide(delta, ci, 100, EV)[0] == expected
    assert decide(delta, ci, 0, EV)[0] == "no_test_data"


def test_reference_arms_and_oracle() -> None:
    emb, tables = _world(0)
    cfg = load_config()
    users = tables["user_nodes"].copy()
    rng = np.random.default_rng(3)
    with_v = users[users["vehicle_id"].notna()]
    clicks = pd.DataFrame(
        {
            "email_lower": with_v["email_lower"].sample(15, random_state=1),
            "sku": rng.choice(tables["product_nodes"]["sku"], 15),
        }
    )
    tables["user_product_edges"] = pd.DataFrame(
        {
            "email_lower": with_v["email_lower"].head(10).to_numpy(),
            "sku": tables["product_nodes"]["sku"].head(10).to_numpy(),
            "max_event_weight": [5.0, 3.0, 1.0] * 3 + [5.0],
        }
    )
    truth = tables["product_vehicle_edges"].assign(prob=lambda d: rng.random(len(d)))
    fake = _ranked({u: ["S01"] for u in with_v["email_lower"]})
    rep = evaluate(
        {"gnn": fake, "sql": fake},
        users,
        clicks,
        None,
        cfg,
        truth=truth,
        tables=tables,
        cutoff=dt.date(2026, 3, 1),
    )
    assert rep["references"] == ["global_pop", "oracle", "vehicle_pop"]
    allb = rep["tiers"]["all"]
    assert allb["n_users"] == 15
    for arm in ("global_pop", "vehicle_pop", "oracle"):
        assert 0.0 <= allb[arm]["hit_rate@4"] <= 1.0
    assert allb["delta_hit_rate@4"] == 0.0 and allb["bootstrap_ci95"] == [0.0, 0.0]


def test_vehicle_pop_shrinkage_known_order() -> None:
    """Carts/orders of a vehicle's users beat global popularity once they outweigh m * share."""
    from holley_gnn_assets.evaluation.report import reference_arms

    products = pd.DataFrame(
        {
            "sku": ["G", "L", "Z"],
            "part_type": ["a", "b", "c"],
            "price": 100.0,
            "image_url": "https://i",
            "is_refurbished": False,
            "order_count": [90, 10, 0],
        }
    )
    fit = pd.DataFrame({"sku": ["G", "L", "Z"] * 2, "vehicle_id": ["V1"] * 3 + ["V2"] * 3})
    users = pd.DataFrame(
        {"email_lower": ["a", "b", "c", "d"], "vehicle_id": ["V1", "V1", "V1", "V2"]}
    )
    upe = pd.DataFrame(
        {
            "email_lower": ["a", "b", "c"],
            "sku": ["L", "L", "Z"],
            "max_event_weight": [5.0, 3.0, 1.0],
        }
    )  # c's view does not count
    tables = {
        "product_nodes": products,
        "product_vehicle_edges": fit,
        "user_product_edges": upe,
        "user_purchases": pd.DataFrame({"email_lower": [], "sku": [], "last_order_ts": []}),
    }
    # m = 2: V1 scores G 2*0.9=1.8, L 2+2*0.1=2.2, Z 0 -> L, G, Z; V2 keeps global order
    cfg = load_config(overrides={"eval": {"vehicle_pop_shrinkage": 2.0}})
    ref = reference_arms(tables, users, cfg, dt.date(2026, 3, 1))
    lists = ref["vehicle_pop"].groupby("email_lower")["sku"].agg(list).to_dict()
    assert lists["a"] == ["L", "G", "Z"] and lists["d"] == ["G", "L", "Z"]
    cfg = load_config(overrides={"eval": {"vehicle_pop_shrinkage": 20.0}})  # 2 < 20*0.8
    ref = reference_arms(tables, users, cfg, dt.date(2026, 3, 1))
    assert ref["vehicle_pop"].query("email_lower == 'a'")["sku"].tolist() == ["G", "L", "Z"]
    assert ref["global_pop"].query("email_lower == 'a'")["sku"].tolist() == ["G", "L", "Z"]
