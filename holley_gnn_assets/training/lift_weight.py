"""The weight of the look-alike count's lift in the GNN arm, chosen on validation.

After training, the held-out validation edges are ranked as in ``validation.evaluate`` (cold
mode, ``validation.validation_forward``: the vehicle's representation on the validation
message graph, among the products that
fit the vehicle) with score = the model's score + w x the look-alike lift
(``graph/lookalike_lift.py``) counted from the training edges only (the validation edges left
out, so a held-out interaction never counts for itself). Each w of
``model.lookalike_lift_weights`` is ranked; the one with the best MRR wins (ties: the smaller
w). Where the look-alikes mislead (per-vehicle preferences, no signal) validation picks 0 and
the arm is the GNN alone.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from holley_gnn_assets.graph.lookalike_lift import lift_codes
from holley_gnn_assets.graph.types import FITS
from holley_gnn_assets.model.hetero_gat import HeteroGAT
from holley_gnn_assets.training.sampler import TrainingSetup
from holley_gnn_assets.training.validation import rank_metrics, val_rows, validation_forward


def validation_lift(st: TrainingSetup) -> sp.csr_matrix:
    """[vehicles, products] lift at the fitting pairs, from the training edges' interactions
    (``st.train_idx``: every interaction edge but the validation ones)."""
    n_v, n_p = st.num_vehicles, st.num_products
    fp, fv = (a.cpu().numpy() for a in st.data[FITS].edge_index)
    pairs = np.unique(fv.astype(np.int64) * n_p + fp)
    fv, fp = pairs // n_p, pairs % n_p
    iv = st.user_vehicle[st.edge_user[st.train_idx]].cpu().numpy()
    ip = st.edge_product[st.train_idx].cpu().numpy()
    ok = iv >= 0
    n = st.data["product"].order_count.double().cpu().numpy() + 0.5
    lift = lift_codes(fv, fp, n_v, n_p, iv[ok], ip[ok], n)
    return sp.csr_matrix((lift, (fv, fp)), shape=(n_v, n_p))


@torch.no_grad()
def choose_lift_weight(
    model: HeteroGAT, st: TrainingSetup, weights: list[float]
) -> tuple[float, dict[float, float]]:
    """(chosen weight, validation MRR per weight); ``weights`` [] or [0]: (0.0, {})."""
    weights = sorted({float(w) for w in weights})
    if not any(weights):
        return 0.0, {}
    _, _, pv, gz = validation_forward(model, st)
    query = model.query_vectors(gz)
    lift = validation_lift(st)
    _, targets, vehicle = val_rows(st)
    vehicles = torch.arange(st.num_vehicles, device=st.device)

    def scorer(w: float):
        def score_block(q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            s = query[q] @ pv[c].T
            if w:
                part = lift[q.cpu().numpy()][:, c.cpu().numpy()].toarray()
                s = s + w * torch.from_numpy(part).to(s)
            return s
        return score_block

    mrr = {w: rank_metrics(scorer(w), vehicle, vehicles, targets, st.fitment)["mrr"]
           for w in weights}
    best = max(weights, key=lambda w: (mrr[w], -w))
    return best, mrr
