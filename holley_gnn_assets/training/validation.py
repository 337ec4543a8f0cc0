"""Validation: rank each held-out product among the products that fit the user's vehicle.

The held-out edges (a fixed random ``val_fraction``, removed from message passing) are ranked
with the cold representation (``HeteroGAT.cold_user_repr`` of the vehicle: ``val_mrr``, the
early-stopping metric, and ``val_hr10``), with the user's own representation (``*_warm``), and
by popularity (order_count + 1: the SQL baseline) on the same edges. Ties count half (mid-rank);
a target that does not fit the vehicle scores 0 (it is never recommended).

Cost: scores come from ``[queries x dim] @ [dim x columns]`` matmuls, chunked, then gathered
per row (at most a ``[rows, candidates]`` score block): never a ``[rows, candidates, dim]``
tensor. Cold rows share their vehicle's query, so cold ranking needs one score row per vehicle.
Rows are processed in vehicle order and a chunk only scores the union of its vehicles'
candidates, so sparse fitment (300 of 25K products per vehicle) stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from holley_gnn_assets.graph.types import WEIGHTED_EDGE_TYPES
from holley_gnn_assets.model.hetero_gat import Block, HeteroGAT
from holley_gnn_assets.training.fitment import FitmentIndex
from holley_gnn_assets.training.runtime import check_finite
from holley_gnn_assets.training.sampler import TrainingSetup

# score_block(queries [q], products [c]) -> [q, c] scores of those products for those queries
ScoreBlock = Callable[[Tensor, Tensor], Tensor]
BUDGET = 1 << 22  # elements of one score block (16 MB of float32)


def dot_scores(query: Tensor, products: Tensor) -> ScoreBlock:
    """score_block for dot products ``query[q] . products[c]``."""
    return lambda q, c: query[q] @ products[c].T


def rank_metrics(
    score_block: ScoreBlock,
    query_of_row: Tensor,
    query_vehicle: Tensor,
    targets: Tensor,
    fitment: FitmentIndex,
    budget: int = BUDGET,
) -> dict[str, float]:
    """MRR and HR@10 of ``targets[i]`` among the products fitting ``query_vehicle[q]``, scored
    by query ``q = query_of_row[i]`` (rows may share a query: cold rows of one vehicle).

    A row with query -1, or whose query's vehicle is -1, counts as a miss (reciprocal rank 0).
    """
    n = len(targets)
    if n == 0:
        return {"mrr": 0.0, "hr10": 0.0}
    device = targets.device
    rr = torch.zeros(n, dtype=torch.float64, device=device)
    hit = torch.zeros(n, dtype=torch.float64, device=device)
    live = (query_of_row >= 0).nonzero().squeeze(1)
    # rows in (vehicle, query) order: a chunk of queries covers few vehicles' candidates
    qv = query_vehicle[query_of_row[live]].clamp_min(-1) + 1
    order = live[torch.argsort(qv * max(1, len(query_vehicle)) + query_of_row[live])]
    queries, counts = torch.unique_consecutive(query_of_row[order], return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    col_of = torch.full((fitment.num_products,), -1, dtype=torch.long, device=device)
    q_step = max(1, budget // max(1, fitment.num_products))
    for qlo in range(0, len(queries), q_step):
        qhi = min(len(queries), qlo + q_step)
        qs = queries[qlo:qhi]
        vq = query_vehicle[qs]
        # candidates per distinct vehicle of the chunk; columns: their union (ascending)
        uv, inv = torch.unique(vq, return_inverse=True)
        cand = fitment.candidates(uv)  # [vehicles, width], -1 padded
        cols = (fitment.dense[uv.clamp_min(0)] & (uv >= 0).unsqueeze(1)).any(0).nonzero()[:, 0]
        col_of[cols] = torch.arange(len(cols), device=device)
        cand_col = torch.where(cand >= 0, col_of[cand.clamp_min(0)], len(cols))
        scores = score_block(qs, cols)  # [nq, len(cols)]
        check_finite(scores, "validation scores")
        pad = torch.full((len(qs), 1), float("-inf"), dtype=scores.dtype, device=device)
        scores = torch.cat([scores, pad], dim=1)  # last column: padding, below every score
        cand_scores = scores.gather(1, cand_col[inv])  # [nq, width]
        rows = order[int(starts[qlo]) : int(starts[qhi - 1] + counts[qhi - 1])]
        local = torch.repeat_interleave(torch.arange(qhi - qlo, device=device), counts[qlo:qhi])
        # c: the [rows, width] candidate scores of a row chunk (a slice when one row per query)
        step = max(1, budget // cand.shape[1])
        for lo in range(0, len(rows), step):
            r, lq = rows[lo : lo + step], local[lo : lo + step]
            ok = fitment.fits(vq[lq], targets[r])  # then the target is one of the candidates
            t = scores[lq, torch.where(ok, col_of[targets[r]], len(cols))].unsqueeze(1)
            c = cand_scores[lq] if len(qs) < len(rows) else cand_scores[lo : lo + step]
            greater = (c > t).sum(1).double()
            equal = ((c == t).sum(1).double() - 1.0).clamp_min(0)
            rank = greater + 0.5 * equal
            rr[r] = torch.where(ok, 1.0 / (rank + 1.0), torch.zeros_like(rank))
            hit[r] = (ok & (rank < 10)).double()
        col_of[cols] = -1
    return {"mrr": float(rr.mean()), "hr10": float(hit.mean())}


def val_rows(st: TrainingSetup) -> tuple[Tensor, Tensor, Tensor]:
    """(user, product, the user's vehicle) of every held-out validation edge."""
    u = st.edge_user[st.val_idx]
    return u, st.edge_product[st.val_idx], st.user_vehicle[u]


@torch.no_grad()
def validation_forward(
    model: HeteroGAT, st: TrainingSetup
) -> tuple[dict[str, Tensor], Tensor, Tensor, Tensor]:
    """Full-graph forward on the validation message graph (eval mode): (node outputs, product
    representations, product vectors, cold representations, one row per vehicle)."""
    model.eval()
    msg = st.val_message
    block = Block(
        {et: v[0] for et, v in msg.items()}, {et: msg[et][1] for et in WEIGHTED_EDGE_TYPES}
    )
    h = model(st.data, [block] * len(model.convs), prop=st.val_propagation(model.propagation))
    pz = model.product_repr(h["product"])
    check_finite(pz, "product embeddings (validation)")
    pv = model.product_vectors(pz, st.data["product"].order_count)
    gz = model.cold_user_repr(h["vehicle"])  # one row per vehicle
    check_finite(gz, "cold group embeddings (validation)")
    return h, pz, pv, gz


@torch.no_grad()
def evaluate(model: HeteroGAT, st: TrainingSetup) -> dict[str, float]:
    """Full-graph forward on the validation message graph; cold- and warm-mode metrics."""
    h, pz, pv, gz = validation_forward(model, st)
    count = st.data["product"].order_count
    u, p, v = val_rows(st)
    vehicles = torch.arange(st.num_vehicles, device=st.device)
    cold = rank_metrics(dot_scores(model.query_vectors(gz), pv), v, vehicles, p, st.fitment)
    uz = model.user_repr(h["vehicle"][v], h["user"][u], st.user_tier[u])
    check_finite(uz, "warm user embeddings (validation)")
    rows = torch.arange(len(u), device=st.device)
    warm = rank_metrics(dot_scores(model.query_vectors(uz), pv), rows, v, p, st.fitment)
    # val loss: cold mode, fixed fitment negatives
    pos = model.logits(gz[v], pz[p], count[p])
    neg = model.logits(gz[v].unsqueeze(1), pz[st.val_neg], count[st.val_neg])
    val_loss = float(
        F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
        + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
    )
    return {
        "val_loss": val_loss,
        "val_mrr": cold["mrr"],
        "val_hr10": cold["hr10"],
        "val_mrr_warm": warm["mrr"],
        "val_hr10_warm": warm["hr10"],
    }


def popularity_baseline(st: TrainingSetup) -> dict[str, float]:
    """The same validation ranking with products ordered by order_count (the SQL baseline)."""
    u, p, v = val_rows(st)
    vehicles = torch.arange(st.num_vehicles, device=st.device)
    m = rank_metrics(lambda q, c: st.popularity[c].expand(len(q), -1), v, vehicles, p, st.fitment)
    fits = st.fitment.fits(v, p).float().mean().item() if len(u) else 0.0
    return {"pop_mrr": m["mrr"], "pop_hr10": m["hr10"], "val_edges": len(u), "val_fit_share": fits}
