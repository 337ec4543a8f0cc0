"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from holley_gnn_assets.evaluation.metrics import mean_metrics, per_user_metrics


def _ranked(lists: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(u, i + 1, s, 1.0 / (i + 1)) for u, skus in lists.items() for i, s in enumerate(skus)]
    return pd.DataFrame(rows, columns=["email_lower", "rank", "sku", "score"])


def test_known_values() -> None:
    skus = [f"S{i}" for i in range(1, 21)]
    ranked = _ranked({"a": skus, "b": skus, "c": skus})
    clicks = pd.DataFrame(
        {
            "email_lower": ["a", "b", "b", "b", "c", "d"],
            "sku": ["S3", "S6", "S12", "X", "S3", "S1"],  # d has no list; b clicked an unranked X
        }
    )
    m = per_user_metrics(ranked, clicks).set_index("email_lower")
    assert list(m.index) == ["a", "b", "c", "d"]
    a, b, d = m.loc["a"], m.loc["b"], m.loc["d"]
    assert a["hit_rate@4"] == 1.0 and a["mrr"] == pytest.approx(1 / 3)
    assert a["recall@10"] == 1.0 and a["ndcg@10"] == pytest.approx(1 / math.log2(4))
    assert b["hit_rate@4"] == 0.0
    assert b["recall@10"] == pytest.approx(1 / 3) and b["recall@20"] == pytest.approx(2 / 3)
    assert b["mrr"] == pytest.approx(1 / 6)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert b["ndcg@10"] == pytest.approx((1 / math.log2(7)) / idcg)
    assert (d == 0).all()
    means = mean_metrics(m.reset_index())
    assert means["hit_rate@4"] == pytest.approx(0.5)


def test_duplicate_clicks_count_once_and_empty() -> None:
    ranked = _ranked({"a": ["S1", "S2"]})
    clicks = pd.DataFrame({"email_lower": ["a", "a"], "sku": ["S2", "S2"]})
    m = per_user_metrics(ranked, clicks)
    assert m["recall@10"].tolist() == [1.0] and m["ndcg@10"].tolist() == [1 / math.log2(3)]
    empty = per_user_metrics(ranked, clicks.iloc[:0])
    assert empty.empty and mean_metrics(empty)["mrr"] is None  # not measured, never 0.0
    with pytest.raises(ValueError, match="clicks lacks"):
        per_user_metrics(ranked, pd.DataFrame({"email_lower": ["a"]}))
