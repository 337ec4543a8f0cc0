"""The look-alike count's pool and weight in the GNN arm, chosen on validation.

After training, the held-out validation edges are ranked as in ``validation.evaluate`` (cold
mode: one row per vehicle, among the products that fit it) with the look-alike lift
(``graph/lookalike_lift.py``) counted from the training edges only (the validation edges left
out, so a held-out interaction never counts for itself):

1. the pool: for each k of ``model.lookalike_lift_neighbours``, the count alone
   (log n + lift over k look-alikes, the ``lookalike_pop`` reference arm) ranks the edges; the
   k with the best MRR wins (ties: the one listed first). How many look-alikes to pool is a
   property of the data (how many vehicles' owners buy alike), not of the model; the default
   lists one pool (20): with several, the choice was noise at demo scale (docs/model.md);
2. the weight: score = the model's score (``validation.validation_forward``) + w x that lift;
   each w of ``model.lookalike_lift_weights`` is ranked, the best MRR wins (ties: the smaller
   w). Where the look-alikes mislead (per-vehicle preferences, no signal) validation picks 0
   and the arm is the GNN alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from holley_gnn_assets.graph.lookalike_lift import lift_codes
from holley_gnn_assets.graph.lookalikes import NEIGHBOURS
from holley_gnn_assets.graph.types import FITS
from holley_gnn_assets.model.hetero_gat import HeteroGAT
from holley_gnn_assets.training.sampler import TrainingSetup
from holley_gnn_assets.training.validation import rank_metrics, val_rows, validation_forward


@dataclass(frozen=True)
class LiftChoice:
    """What validation chose: the weight, the look-alike pool, and the MRRs behind them."""

    weight: float = 0.0
    neighbours: int = NEIGHBOURS
    val_mrr: dict[float, float] = field(default_factory=dict)  # weight -> MRR (chosen pool)
    count_val_mrr: dict[int, float] = field(default_factory=dict)  # k -> the count's MRR

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: the choice and every MRR behind it."""
        return {"lookalike_lift_weight": self.weight,
                "lookalike_lift_neighbours": float(self.neighbours),
                **{f"lift_val_mrr_w{w:g}": m for w, m in self.val_mrr.items()},
                **{f"lift_count_val_mrr_k{k}": m for k, m in self.count_val_mrr.items()}}

    def markdown(self) -> str:
        """The two choices as Markdown tables (Dagster metadata)."""
        if not self.val_mrr:
            return "GNN alone (no weights)"
        pools = "\n".join(f"| {k} | {m:.4f} |{' chosen' if k == self.neighbours else ''}"
                          for k, m in self.count_val_mrr.items())
        weights = "\n".join(f"| {w:g} | {m:.4f} |{' chosen' if w == self.weight else ''}"
                            for w, m in self.val_mrr.items())
        return (f"| look-alikes | the count's validation MRR |\n|---:|---:|\n{pools}\n\n"
                f"| weight | GNN + weight x lift, validation MRR |\n|---:|---:|\n{weights}")


def validation_lift(st: TrainingSetup, k: int = NEIGHBOURS) -> sp.csr_matrix:
    """[vehicles, products] lift over ``k`` look-alikes at the fitting pairs, from the
    training edges' interactions (``st.train_idx``: every interaction edge but the validation
    ones)."""
    n_v, n_p = st.num_vehicles, st.num_products
    fp, fv = (a.cpu().numpy() for a in st.data[FITS].edge_index)
    pairs = np.unique(fv.astype(np.int64) * n_p + fp)
    fv, fp = pairs // n_p, pairs % n_p
    iv = st.user_vehicle[st.edge_user[st.train_idx]].cpu().numpy()
    ip = st.edge_product[st.train_idx].cpu().numpy()
    ok = iv >= 0
    lift = lift_codes(fv, fp, n_v, n_p, iv[ok], ip[ok], _order_n(st), k)
    return sp.csr_matrix((lift, (fv, fp)), shape=(n_v, n_p))


def _order_n(st: TrainingSetup) -> np.ndarray:
    """n = order_count + 0.5 per product code (the count's popularity, module doc)."""
    return st.data["product"].order_count.double().cpu().numpy() + 0.5


def _lift_block(lift: sp.csr_matrix, q: torch.Tensor, c: torch.Tensor) -> np.ndarray:
    return lift[q.cpu().numpy()][:, c.cpu().numpy()].toarray()


@torch.no_grad()
def choose_lift(
    model: HeteroGAT, st: TrainingSetup, weights: list[float], neighbours: list[int]
) -> LiftChoice:
    """The pool and the weight (module doc); ``weights`` [] or [0]: the GNN alone, nothing
    ranked (the pool stays ``neighbours[0]``, or ``NEIGHBOURS`` when none is listed)."""
    weights = sorted({float(w) for w in weights})
    pools = list(dict.fromkeys(int(k) for k in neighbours)) or [NEIGHBOURS]
    if not any(weights):
        return LiftChoice(neighbours=pools[0])
    _, targets, vehicle = val_rows(st)
    vehicles = torch.arange(st.num_vehicles, device=st.device)
    log_n = np.log(_order_n(st))

    def rank(score_block) -> float:
        return rank_metrics(score_block, vehicle, vehicles, targets, st.fitment)["mrr"]

    lifts, count_mrr = {}, {}
    for k in pools:
        lifts[k] = validation_lift(st, k)
        count_mrr[k] = rank(lambda q, c, k=k: torch.from_numpy(
            log_n[c.cpu().numpy()][None, :] + _lift_block(lifts[k], q, c)).to(targets.device))
    pool = max(pools, key=lambda k: (count_mrr[k], -pools.index(k)))
    lift = lifts[pool]

    _, _, pv, gz = validation_forward(model, st)
    query = model.query_vectors(gz)

    def scorer(w: float):
        def score_block(q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            s = query[q] @ pv[c].T
            return s + w * torch.from_numpy(_lift_block(lift, q, c)).to(s) if w else s
        return score_block

    mrr = {w: rank(scorer(w)) for w in weights}
    best = max(weights, key=lambda w: (mrr[w], -w))
    return LiftChoice(weight=best, neighbours=pool, val_mrr=mrr, count_val_mrr=count_mrr)
