"""Parameter-free, LightGCN-style propagation next to the attention layers.

Sparse mean operators over the products' layer-0 representations (``HeteroGAT``'s product MLP
+ ID embedding; ``neighbours``: over the vehicles' own layer-0 inputs):

- ``fitment``: vehicle <- the products that fit it. Vehicles sharing fitment (one engine family,
  one era) get close inputs, so a vehicle with few owners borrows from its look-alikes.
- ``owners``: vehicle <- its owners' interactions (edge weights), the per-vehicle popularity
  the graph holds two hops away, as a vector the model can rank with.
- ``history``: user <- the user's own interactions (warm/hot users' lists).
- ``pooled``: vehicle <- its fitment look-alikes <- their owners' interactions (the
  vehicle-product-vehicle path, then two hops): the per-vehicle popularity of vehicles that
  share fitment, for the many vehicles with few owners of their own.
- ``neighbours``: vehicle <- its fitment look-alikes' own inputs (ID embedding, features).

Look-alikes: each vehicle's ``NEIGHBOURS`` most similar vehicles by cosine similarity of their
fitment rows (``graph/lookalikes.py``, computed once per graph; the vehicle itself included),
weighted by that similarity. ``fitment`` runs over every fitment edge in every step (~1M at
full scale) and costs the most; ``pooled``/``neighbours`` reach the same vehicles through a
``[V, NEIGHBOURS]`` operator.

Each operator is a row-normalised sparse ``[rows, products]`` (``[V, V]`` for the
look-alikes) matrix. ``owners``/``history`` come from the message edges in use: training builds
them from each epoch's message edges (so a supervised or simulated-cold user's edges never
reach its own inputs), validation from the validation message graph, serving from every edge.
A row with no edges is all zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from holley_gnn_assets.graph.lookalikes import NEIGHBOURS, fitment_lookalikes
from holley_gnn_assets.graph.types import FITS, INTERACTS, OWNS

KINDS = ("fitment", "owners", "history", "pooled", "neighbours")


@dataclass
class Propagation:
    """Row-normalised sparse operators (None when not configured)."""

    fitment: Tensor | None = None  # [V, P]
    owners: Tensor | None = None  # [V, P]
    history: Tensor | None = None  # [U, P]
    neighbours: Tensor | None = None  # [V, V], NEIGHBOURS per row (pooled, neighbours)

    def mean(self, kind: str, x: Tensor) -> Tensor:
        """``kind``'s mean of the product inputs ``x`` ([P, d]) per row."""
        if kind == "pooled":
            return torch.sparse.mm(self.neighbours, torch.sparse.mm(self.owners, x))
        return torch.sparse.mm(getattr(self, kind), x)


def _mean_operator(rows: Tensor, cols: Tensor, w: Tensor, n_rows: int, n_cols: int) -> Tensor:
    """Sparse ``[n_rows, n_cols]`` matrix with ``w`` summed per (row, col), each row divided by
    its weight sum + 1 (a mean shrunk toward 0, so a row with one light edge stays small)."""
    den = torch.zeros(n_rows, dtype=w.dtype, device=w.device).index_add_(0, rows, w) + 1.0
    vals = w / den[rows]
    m = torch.sparse_coo_tensor(
        torch.stack([rows, cols]), vals, (n_rows, n_cols), check_invariants=False
    )
    return m.coalesce()


def check_kinds(kinds: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validate ``model.propagation``; raises ValueError naming an unknown kind."""
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"model.propagation: unknown kind(s) {bad}; expected some of {KINDS}")
    return tuple(kinds)


def build_propagation(
    data,
    kinds: tuple[str, ...],
    interactions: tuple[Tensor, Tensor] | None = None,
    owns: Tensor | None = None,
    neighbours: Tensor | None = None,
    k: int = NEIGHBOURS,
) -> Propagation:
    """The operators ``kinds`` asks for, over ``interactions`` (edge_index [2, E] user->product,
    edge_attr [E, 1]) and ``owns`` (edge_index [2, E] user->vehicle); both default to the
    graph's own edges (serving). ``neighbours``: a cached ``fitment_neighbours(data, k)``."""
    out = Propagation()
    if not kinds:
        return out
    n_u, n_p = int(data["user"].num_nodes), int(data["product"].num_nodes)
    n_v = int(data["vehicle"].num_nodes)
    if "fitment" in kinds:
        fp, fv = data[FITS].edge_index
        out.fitment = _mean_operator(fv, fp, torch.ones(fp.numel(), device=fp.device), n_v, n_p)
    if "pooled" in kinds or "neighbours" in kinds:
        out.neighbours = neighbours if neighbours is not None else fitment_neighbours(data, k)
    if not {"owners", "history", "pooled"} & set(kinds):
        return out
    if interactions is None:
        interactions = (data[INTERACTS].edge_index, data[INTERACTS].edge_attr)
    if owns is None:
        owns = data[OWNS].edge_index
    ei, ea = interactions
    w = (ea.reshape(-1).float().clamp_min(0) if ea is not None
         else torch.ones(ei.shape[1], device=ei.device))
    if "history" in kinds:
        out.history = _mean_operator(ei[0], ei[1], w, n_u, n_p)
    if "owners" in kinds or "pooled" in kinds:
        vehicle_of = torch.full((n_u,), -1, dtype=torch.long, device=ei.device)
        vehicle_of[owns[0]] = owns[1]
        v = vehicle_of[ei[0]]
        keep = v >= 0
        out.owners = _mean_operator(v[keep], ei[1, keep], w[keep], n_v, n_p)
    return out


def fitment_neighbours(data, k: int = NEIGHBOURS) -> Tensor:
    """Row-normalised sparse ``[V, V]``: each vehicle's ``k`` fitment look-alikes
    (``graph.lookalikes.fitment_lookalikes``), weighted by their cosine similarity."""
    n_v, n_p = int(data["vehicle"].num_nodes), int(data["product"].num_nodes)
    fp, fv = data[FITS].edge_index.cpu().numpy()
    m = fitment_lookalikes(fv, fp, n_v, n_p, k)
    device = data[FITS].edge_index.device
    r, c, w = (torch.from_numpy(a).to(device) for a in (m.row, m.col, m.data))
    return _mean_operator(r.long(), c.long(), w.float(), n_v, n_v)
