"""HeteroGAT recommender (spec section 2, "Model"), pure torch / PyG.

Inputs per node type (all projected to ``embedding_dim`` before message passing):
- user: tier embedding + linear(standardised log activity counts). There is NO per-user ID
  table: an untrained per-user row must never reach cold users or vehicles.
- product: MLP(part-type embedding (``part_type_dim``) + price, missing flag, log_popularity,
  fitment breadth) + a product ID embedding initialised to zero (it only moves where trained).
- vehicle: linear(log user_count, log product_count) + a vehicle ID embedding initialised to zero.

Message passing: ``layers`` x HeteroConv with one GATConv per edge type (``heads`` heads,
``hidden_dim`` = heads x (hidden_dim/heads) concatenated in the inner layers, ``embedding_dim``
= heads x (embedding_dim/heads) in the last), ``add_self_loops=False``, ``residual=True`` (a
GATConv on a bipartite edge type otherwise drops the destination's own features), edge weights
as 1-dim ``edge_attr`` on the weighted edge types. In-channels are explicit tuples, so there are
no lazy parameters (no warm-up forward is needed before building the optimizers).

Scoring: separate user and product towers with L2-normalised ``embedding_dim`` outputs; the score
is their dot product (logit = learned scale x dot). The user representation is
``user_tower([vehicle_h, own_h * has_own, tier_emb])``: a cold user (or a simulated-cold one)
has ``has_own = 0``, so every cold user on one vehicle shares one representation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, HeteroConv

from holley_gnn_assets.core.graph_builder import (
    CO_PURCHASED,
    EDGE_TYPES,
    INTERACTS,
    REV_INTERACTS,
    TIER_INDEX,
)

WEIGHTED_EDGE_TYPES = (INTERACTS, REV_INTERACTS, CO_PURCHASED)
COLD = TIER_INDEX["cold"]


@dataclass(frozen=True)
class GraphMeta:
    """Sizes the model is built for (from a GraphBundle)."""

    num_products: int
    num_vehicles: int
    num_part_types: int
    user_features: int = 3
    product_features: int = 4
    vehicle_features: int = 2

    @classmethod
    def from_data(cls, data) -> GraphMeta:
        """Read the sizes off a HeteroData built by ``graph_builder``."""
        return cls(
            num_products=int(data["product"].num_nodes),
            num_vehicles=int(data["vehicle"].num_nodes),
            num_part_types=int(data["product"].part_type.max().item()) + 1
            if data["product"].num_nodes
            else 1,
            user_features=int(data["user"].x.shape[1]),
            product_features=int(data["product"].x.shape[1]),
            vehicle_features=int(data["vehicle"].x.shape[1]),
        )


def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))


class HeteroGAT(nn.Module):
    """Encoder (HeteroConv of GATConv) + user/product projection towers."""

    def __init__(self, meta: GraphMeta, model_cfg: Mapping) -> None:
        super().__init__()
        d = int(model_cfg["embedding_dim"])
        hidden = int(model_cfg["hidden_dim"])
        heads = int(model_cfg["heads"])
        n_layers = int(model_cfg["layers"])
        pt_dim = int(model_cfg["part_type_dim"])
        self.dropout = float(model_cfg["dropout"])
        if hidden % heads or d % heads:
            raise ValueError(
                f"model: hidden_dim={hidden} and embedding_dim={d} must be multiples of heads={heads}"
            )
        if n_layers < 1:
            raise ValueError(f"model: layers={n_layers} must be >= 1")
        self.meta = meta
        self.embedding_dim = d
        use_ids = bool(model_cfg.get("id_embeddings", True))

        # input encoders
        self.tier_emb = nn.Embedding(len(TIER_INDEX), d)
        self.user_lin = nn.Linear(meta.user_features, d)
        self.part_type_emb = nn.Embedding(max(1, meta.num_part_types), pt_dim)
        self.product_mlp = _mlp(pt_dim + meta.product_features, d, d)
        self.vehicle_lin = nn.Linear(meta.vehicle_features, d)
        self.product_id_emb = nn.Embedding(meta.num_products, d) if use_ids else None
        self.vehicle_id_emb = nn.Embedding(meta.num_vehicles, d) if use_ids else None
        for emb in (self.product_id_emb, self.vehicle_id_emb):
            if emb is not None:
                nn.init.zeros_(emb.weight)

        # message passing
        self.convs = nn.ModuleList()
        n_in = d
        for layer in range(n_layers):
            last = layer == n_layers - 1
            n_out = d if last else hidden
            convs = {
                et: GATConv(
                    (n_in, n_in),
                    n_out // heads,
                    heads=heads,
                    concat=True,
                    dropout=self.dropout,
                    add_self_loops=False,
                    residual=True,
                    edge_dim=1 if et in WEIGHTED_EDGE_TYPES else None,
                )
                for et in EDGE_TYPES
            }
            self.convs.append(HeteroConv(convs, aggr="sum"))
            n_in = n_out

        # towers
        self.tier_tower_emb = nn.Embedding(len(TIER_INDEX), 16)
        self.user_tower = _mlp(2 * d + 16, hidden, d)
        self.product_tower = _mlp(d, hidden, d)
        self.log_scale = nn.Parameter(torch.tensor(float(model_cfg.get("logit_scale_init", 10.0))).log())

    def embedding_parameters(self) -> list[nn.Parameter]:
        """Learned embedding tables (trained with the embedding learning rate)."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Embedding)]

    def other_parameters(self) -> list[nn.Parameter]:
        """Everything else: GNN layers, MLPs, towers (GNN learning rate)."""
        emb = {id(p) for p in self.embedding_parameters()}
        return [p for p in self.parameters() if id(p) not in emb]

    def node_inputs(
        self, data, cold_users: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Layer-0 node representations. ``cold_users``: bool mask of users shown as cold."""
        tier = data["user"].tier
        ux = data["user"].x
        if cold_users is not None:
            tier = torch.where(cold_users, torch.full_like(tier, COLD), tier)
            ux = torch.where(cold_users.unsqueeze(1), self._cold_activity(data), ux)
        x_user = self.tier_emb(tier) + self.user_lin(ux)
        pin = torch.cat([self.part_type_emb(data["product"].part_type), data["product"].x], dim=1)
        x_product = self.product_mlp(pin)
        x_vehicle = self.vehicle_lin(data["vehicle"].x)
        if self.product_id_emb is not None:
            x_product = x_product + self.product_id_emb.weight
            x_vehicle = x_vehicle + self.vehicle_id_emb.weight
        return {"user": x_user, "product": x_product, "vehicle": x_vehicle}

    @staticmethod
    def _cold_activity(data) -> Tensor:
        """Standardised features of zero activity (what a cold user has)."""
        cold = data["user"].get("cold_x")
        if cold is None:
            return torch.zeros_like(data["user"].x[:1])
        return cold.view(1, -1)

    def encode(
        self,
        x_dict: dict[str, Tensor],
        edge_index_layers: list[dict[tuple, Tensor]],
        edge_attr_layers: list[dict[tuple, Tensor]],
    ) -> dict[str, Tensor]:
        """Run the message-passing layers; one edge dict per layer (sampled or full)."""
        h = x_dict
        for i, conv in enumerate(self.convs):
            h = conv(h, edge_index_layers[i], edge_attr_dict=edge_attr_layers[i])
            if i < len(self.convs) - 1:
                h = {k: F.dropout(F.elu(v), self.dropout, self.training) for k, v in h.items()}
        return h

    def user_repr(self, vehicle_h: Tensor, own_h: Tensor | None, tier: Tensor) -> Tensor:
        """L2-normalised user representation; ``own_h=None`` means no own part (cold)."""
        if own_h is None:
            own_h = torch.zeros_like(vehicle_h)
        z = self.user_tower(torch.cat([vehicle_h, own_h, self.tier_tower_emb(tier)], dim=1))
        return F.normalize(z, dim=1)

    def product_repr(self, product_h: Tensor) -> Tensor:
        """L2-normalised product representation."""
        return F.normalize(self.product_tower(product_h), dim=1)

    def logits(self, user_z: Tensor, product_z: Tensor) -> Tensor:
        """Row-wise scaled dot products (for BCE)."""
        return self.log_scale.exp() * (user_z * product_z).sum(-1)


def full_edges(data) -> tuple[dict[tuple, Tensor], dict[tuple, Tensor]]:
    """All edges of the graph as (edge_index_dict, edge_attr_dict)."""
    ei = {et: data[et].edge_index for et in EDGE_TYPES}
    ea = {et: data[et].edge_attr for et in WEIGHTED_EDGE_TYPES}
    return ei, ea


@torch.no_grad()
def encode_full(model: HeteroGAT, data) -> dict[str, Tensor]:
    """No-grad forward over the full graph (eval mode is the caller's business)."""
    ei, ea = full_edges(data)
    x = model.node_inputs(data)
    return model.encode(x, [ei] * len(model.convs), [ea] * len(model.convs))
