"""Which products fit which vehicle, as the trainer needs it: a dense [V, P] mask, a CSR list
per vehicle (padded candidate lists for ranking) and uniform sampling among fitting products."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from holley_gnn_assets.graph.types import FITS


@dataclass
class FitmentIndex:
    """Fitment of a graph on one device; ``products[ptr[v]:ptr[v + 1]]`` fit vehicle ``v``."""

    dense: Tensor  # [V, P] bool (2K x 25K = 50 MB at full scale)
    products: Tensor  # fitting products, grouped by vehicle, ascending within a vehicle
    ptr: Tensor  # [V + 1]
    num_products: int

    @classmethod
    def from_data(cls, data, device: str) -> FitmentIndex:
        """Read the ``fits`` edges of a HeteroData (already on ``device``)."""
        n_v, n_p = int(data["vehicle"].num_nodes), int(data["product"].num_nodes)
        fv, fp = data[FITS].edge_index[1], data[FITS].edge_index[0]
        dense = torch.zeros(n_v, n_p, dtype=torch.bool, device=device)
        dense[fv, fp] = True
        order = torch.argsort(fv * n_p + fp)
        ptr = torch.zeros(n_v + 1, dtype=torch.long, device=device)
        ptr[1:] = torch.cumsum(torch.bincount(fv, minlength=n_v), 0)
        return cls(dense=dense, products=fp[order], ptr=ptr, num_products=n_p)

    def degree(self, vehicles: Tensor) -> Tensor:
        """Number of fitting products per row (0 for vehicle -1)."""
        v = vehicles.clamp_min(0)
        return torch.where(vehicles >= 0, self.ptr[v + 1] - self.ptr[v], 0)

    def fits(self, vehicles: Tensor, products: Tensor) -> Tensor:
        """Row-wise: does ``products[i]`` fit ``vehicles[i]`` (False for vehicle -1)."""
        return self.dense[vehicles.clamp_min(0), products] & (vehicles >= 0)

    def candidates(self, vehicles: Tensor) -> Tensor:
        """[n, max degree of these rows] fitting products per row, padded with -1."""
        deg = self.degree(vehicles)
        width = max(1, int(deg.max())) if len(deg) else 1
        ar = torch.arange(width, device=vehicles.device)
        if len(self.products) == 0:  # a graph without fitment edges
            return torch.full((len(vehicles), width), -1, dtype=torch.long, device=ar.device)
        pos = self.ptr[vehicles.clamp_min(0)].unsqueeze(1) + ar
        cand = self.products[pos.clamp_max(len(self.products) - 1)]
        return torch.where(ar < deg.unsqueeze(1), cand, -1)

    def sample(self, vehicles: Tensor, k: int, gen: torch.Generator | None = None) -> Tensor:
        """[n, k] products per row, uniform among the products fitting the row's vehicle
        (uniform among all products for vehicle -1 or a vehicle that fits nothing)."""
        device = self.products.device
        draw_on = "cpu" if gen is not None else device
        v = vehicles.clamp_min(0)
        lo, hi = self.ptr[v], self.ptr[v + 1]
        deg = (hi - lo).clamp_min(1)
        r = torch.rand((len(v), k), generator=gen, device=draw_on).to(device)
        pos = lo.unsqueeze(1) + (r * deg.unsqueeze(1)).long().clamp_max(deg.unsqueeze(1) - 1)
        fitting = (
            self.products if len(self.products) else torch.zeros(1, dtype=torch.long, device=device)
        )
        out = fitting[pos.clamp_max(max(0, len(self.products) - 1))]
        uniform = torch.randint(0, self.num_products, out.shape, generator=gen, device=draw_on).to(
            device
        )
        no_fit = ((vehicles < 0) | (hi == lo)).unsqueeze(1)
        return torch.where(no_fit, uniform, out)
