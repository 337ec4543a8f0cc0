"""Validation ranking (``training.validation.rank_metrics``) against a brute-force reference.

The reference scores every fitting product of a row one by one in float64 and counts ranks
with mid-rank ties; integer-valued embeddings make the dot products exact, so ties are real
and both sides must agree exactly, whatever the chunking.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from holley_gnn_assets.training.fitment import FitmentIndex
from holley_gnn_assets.training.validation import dot_scores, rank_metrics


def _fitment(fits: list[list[int]], n_products: int) -> FitmentIndex:
    fv = torch.tensor([v for v, ps in enumerate(fits) for _ in ps], dtype=torch.long)
    fp = torch.tensor([p for ps in fits for p in ps], dtype=torch.long)
    n_v = len(fits)
    dense = torch.zeros(n_v, n_products, dtype=torch.bool)
    dense[fv, fp] = True
    order = torch.argsort(fv * n_products + fp)
    ptr = torch.zeros(n_v + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(torch.bincount(fv, minlength=n_v), 0)
    return FitmentIndex(dense=dense, products=fp[order], ptr=ptr, num_products=n_products)


def _reference(score, query_of_row, query_vehicle, targets, fits) -> dict[str, float]:
    rr, hit = [], []
    for q, t in zip(query_of_row.tolist(), targets.tolist(), strict=True):
        v = query_vehicle[q].item() if q >= 0 else -1
        if v < 0 or t not in fits[v]:
            rr.append(0.0)
            hit.append(0.0)
            continue
        ts = score(q, t)
        scores = [score(q, p) for p in fits[v]]
        greater = sum(s > ts for s in scores)
        equal = sum(s == ts for s in scores) - 1
        rank = greater + 0.5 * equal
        rr.append(1.0 / (rank + 1.0))
        hit.append(float(rank < 10))
    return {"mrr": float(np.mean(rr)), "hr10": float(np.mean(hit))}


def _world(seed: int):
    rng = np.random.default_rng(seed)
    n_v, n_p, d = 7, 40, 6
    fits = [
        sorted(rng.choice(n_p, size=int(rng.integers(5, 30)), replace=False).tolist())
        for _ in range(n_v)
    ]
    fits[3] = []  # a vehicle that fits nothing
    products = torch.from_numpy(rng.integers(-2, 3, (n_p, d))).float()
    products[5] = products[6]  # identical products: exact ties
    return rng, fits, products, _fitment(fits, n_p)


@pytest.mark.parametrize("budget", [1 << 22, 50, 1])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_queries_match_reference(seed: int, budget: int) -> None:
    """Cold mode: one query per vehicle, many rows per query, some vehicles -1."""
    rng, fits, products, fit = _world(seed)
    n_v = len(fits)
    query = torch.from_numpy(rng.integers(-2, 3, (n_v, products.shape[1]))).float()
    rows_v = torch.from_numpy(rng.integers(-1, n_v, 300))
    # most targets fit their vehicle; some do not (they score 0)
    targets = torch.tensor(
        [
            int(rng.choice(fits[v]))
            if v >= 0 and fits[v] and rng.random() < 0.85
            else int(rng.integers(0, products.shape[0]))
            for v in rows_v.tolist()
        ]
    )
    vehicles = torch.arange(n_v)
    got = rank_metrics(dot_scores(query, products), rows_v, vehicles, targets, fit, budget)
    q64, p64 = query.double(), products.double()
    want = _reference(lambda q, p: float(q64[q] @ p64[p]), rows_v, vehicles, targets, fits)
    assert got == pytest.approx(want, abs=1e-12)
    assert 0 < want["mrr"] < 1  # the case has both hits and misses


@pytest.mark.parametrize("budget", [1 << 22, 30])
def test_per_row_queries_and_popularity_match_reference(budget: int) -> None:
    """Warm mode (one query per row) and a popularity score with many ties."""
    rng, fits, products, fit = _world(3)
    n = 200
    row_v = torch.from_numpy(rng.integers(-1, len(fits), n))
    targets = torch.tensor(
        [int(rng.choice(fits[v])) if v >= 0 and fits[v] else 0 for v in row_v.tolist()]
    )
    uz = torch.from_numpy(rng.integers(-2, 3, (n, products.shape[1]))).float()
    rows = torch.arange(n)
    got = rank_metrics(dot_scores(uz, products), rows, row_v, targets, fit, budget)
    u64, p64 = uz.double(), products.double()
    want = _reference(lambda q, p: float(u64[q] @ p64[p]), rows, row_v, targets, fits)
    assert got == pytest.approx(want, abs=1e-12)

    pop = torch.from_numpy(rng.integers(0, 4, products.shape[0])).float()  # heavy ties
    vehicles = torch.arange(len(fits))
    got = rank_metrics(
        lambda q, c: pop[c].expand(len(q), -1), row_v, vehicles, targets, fit, budget
    )
    want = _reference(lambda q, p: float(pop[p]), row_v, vehicles, targets, fits)
    assert got == pytest.approx(want, abs=1e-12)


def test_score_blocks_are_two_dimensional() -> None:
    """The scorer is asked for [queries, columns] blocks only, columns limited to candidates."""
    _, fits, products, fit = _world(4)
    query = torch.ones(len(fits), products.shape[1])
    shapes = []

    def score(q, c):
        shapes.append((len(q), len(c)))
        return query[q] @ products[c].T

    rows_v = torch.tensor([0, 0, 1, 2, 2, 2])
    targets = torch.tensor([fits[v][0] for v in rows_v.tolist()])
    rank_metrics(score, rows_v, torch.arange(len(fits)), targets, fit)
    union = len(set(fits[0]) | set(fits[1]) | set(fits[2]))
    assert shapes == [(3, union)]


def test_no_rows() -> None:
    _, fits, products, fit = _world(5)
    empty = torch.zeros(0, dtype=torch.long)
    got = rank_metrics(dot_scores(products, products), empty, torch.arange(7), empty, fit)
    assert got == {"mrr": 0.0, "hr10": 0.0}


def test_float_embeddings_match_float64_reference() -> None:
    """Trained-like float32 embeddings: the target's score must be the one its own candidate
    slot holds (the old ranking scored the target in a separate bmm whose rounding differed,
    which made a target 'greater than itself' in most rows and lowered val MRR by ~0.03)."""
    rng, fits, _, fit = _world(6)
    products = torch.nn.functional.normalize(
        torch.randn(40, 32, generator=torch.Generator().manual_seed(0)), dim=1
    )
    query = torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(7, 32))).float(), dim=1)
    rows_v = torch.from_numpy(rng.integers(0, 7, 400))
    rows_v[rows_v == 3] = 4
    targets = torch.tensor([int(rng.choice(fits[v])) for v in rows_v.tolist()])
    got = rank_metrics(dot_scores(query, products), rows_v, torch.arange(7), targets, fit)
    q64, p64 = query.double(), products.double()
    want = _reference(lambda q, p: float(q64[q] @ p64[p]), rows_v, torch.arange(7), targets, fits)
    assert got == pytest.approx(want, abs=1e-12)


def test_graph_without_fitment() -> None:
    """No fitment edges at all: every row is a miss, fitment negatives fall back to uniform."""
    fit = _fitment([[], []], 10)
    targets = torch.tensor([1, 2, 3])
    got = rank_metrics(
        dot_scores(torch.ones(2, 4), torch.ones(10, 4)),
        torch.tensor([0, 1, 0]),
        torch.arange(2),
        targets,
        fit,
    )
    assert got == {"mrr": 0.0, "hr10": 0.0}
    drawn = fit.sample(torch.tensor([0, 1, -1]), 5)
    assert drawn.shape == (3, 5) and bool(((drawn >= 0) & (drawn < 10)).all())
