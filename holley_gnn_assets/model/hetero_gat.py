"""HeteroGAT recommender (spec section 2, "Model"), pure torch / PyG.

Inputs per node type (all projected to ``embedding_dim`` before message passing):
- user: tier embedding + linear(standardised log activity counts). There is NO per-user ID
  table: an untrained per-user row must never reach cold users or vehicles.
- product: MLP(part-type embedding (``part_type_dim``) + price, missing flag, log_popularity,
  fitment breadth) + a product ID embedding initialised to zero (it only moves where trained).
- vehicle: linear(log user_count, log product_count) + a vehicle ID embedding initialised to zero.

Message passing: ``layers`` x HeteroConv with one GATConv per edge type (``heads`` heads,
``hidden_dim`` = heads x (hidden_dim/heads) concatenated in the inner layers, ``embedding_dim``
= heads x (embedding_dim/heads) in the last), ``add_self_loops=False``, HeteroConv ``sum``
aggregation, plus ONE skip linear per node type and layer (bipartite GATConvs drop the
destination's own features; ``residual=True`` would cost a linear per edge type). Edge weights
enter the attention as 1-dim ``edge_attr`` on the weighted edge types. Layers can run on a
sampled, trimmed block (``Block.keep``): only the rows a batch needs are transformed. Explicit
in-channels: no lazy parameters (no warm-up forward is needed before the optimizers).
``forward(data, blocks=None, index=None)`` = ``encode(node_inputs(data, index), blocks)``: node
states after message passing (full graph when ``blocks`` is None).

Scoring: separate user and product towers with L2-normalised ``embedding_dim`` outputs; the score
is their dot product (logit = learned scale x dot). A user with an own node is
``user_repr = user_tower([vehicle_h, own_h, tier_emb(tier)])``; a user without one (cold, or
simulated-cold in training) is ``cold_user_repr = user_tower([vehicle_h, 0, tier_emb(cold)])``,
the ONE definition that training, validation and serving share: every cold user on one vehicle
has the same representation.

Popularity prior (``model.popularity_prior``): logit = scale x dot + w x log1p(order_count), w
learned (init 1): the towers learn a correction over SQL's ranking, and a model with nothing to
say ranks like SQL. Serving keeps a plain dot product: ``query_vectors`` = [user, 1] and
``product_vectors`` = [scale x product, w x log1p(order_count)]. ``model.product_bias`` adds a
learned b(product) to that column (zero at init).

Propagation (``model.propagation``, ``model/propagation.py``): LightGCN-style means (owners'
interactions, look-alike vehicles, fitting products, own interactions), each through one linear,
added to the layer-0 inputs. ``model.attention_fitment: false``: no fitment edges in attention.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, HeteroConv

from holley_gnn_assets.config.schema import ModelConfig
from holley_gnn_assets.config.validation import typed
from holley_gnn_assets.graph.types import (
    COLD,
    EDGE_TYPES,
    FITS,
    NODE_TYPES,
    REV_FITS,
    TIER_INDEX,
    WEIGHTED_EDGE_TYPES,
)
from holley_gnn_assets.model.chunked import layer_in_chunks
from holley_gnn_assets.model.propagation import Propagation, build_propagation, check_kinds


def attention_edge_types(model_cfg: ModelConfig | Mapping[str, Any]
                         ) -> tuple[tuple[str, str, str], ...]:
    """The edge types the attention layers run on: all, or all but fitment
    (``model.attention_fitment: false``; fitment then reaches the model through the
    ``fitment``/``pooled``/``neighbours`` propagation only, and the ~1M fitment edges leave
    every step)."""
    if typed(model_cfg, ModelConfig, "model").attention_fitment:
        return EDGE_TYPES
    return tuple(et for et in EDGE_TYPES if et not in (FITS, REV_FITS))


@dataclass
class Block:
    """Edges of one layer; ``keep``: per node type, the input rows whose outputs are needed."""

    edge_index: dict[tuple, Tensor]
    edge_attr: dict[tuple, Tensor]
    keep: dict[str, Tensor] | None = None



@dataclass(frozen=True)
class GraphMeta:
    """Sizes the model is built for (from a GraphBundle)."""

    num_products: int
    num_vehicles: int
    num_part_types: int
    user_features: int = 3
    product_features: int = 4
    vehicle_features: int = 2
    num_makes: int = 1
    num_make_models: int = 1
    num_year_buckets: int = 1

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
            **{f"num_{name}s": _n_codes(data["vehicle"], name)
               for name in ("make", "make_model", "year_bucket")},
        )


def _n_codes(store, name: str) -> int:
    codes = getattr(store, name, None)
    return int(codes.max().item()) + 1 if codes is not None and codes.numel() else 1


def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))


class HeteroGAT(nn.Module):
    """Encoder (HeteroConv of GATConv) + user/product projection towers.

    ``model_cfg``: the ``model`` config section (a mapping is validated into one first, so a
    missing key is a SettingsError naming it, never a model built on other values)."""

    def __init__(self, meta: GraphMeta, model_cfg: ModelConfig | Mapping[str, Any]) -> None:
        super().__init__()
        model_cfg = typed(model_cfg, ModelConfig, "model")
        d = model_cfg.embedding_dim
        hidden = model_cfg.hidden_dim
        heads = model_cfg.heads
        n_layers = model_cfg.layers
        pt_dim = model_cfg.part_type_dim
        self.dropout = float(model_cfg.dropout)
        if hidden % heads or d % heads:
            raise ValueError(
                f"model: hidden_dim={hidden} and embedding_dim={d} must be multiples of "
                f"heads={heads}"
            )
        if n_layers < 1:
            raise ValueError(f"model: layers={n_layers} must be >= 1")
        self.meta = meta
        self.embedding_dim = d
        use_ids = model_cfg.id_embeddings

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
        # year/make/model of the vehicle (``model.vehicle_attributes``): what a cold user's
        # vehicle shares with its siblings (same model other years, same make)
        self.vehicle_attr: nn.ModuleDict | None = None
        if model_cfg.vehicle_attributes:
            self.vehicle_attr = nn.ModuleDict({
                "make": nn.Embedding(meta.num_makes, d),
                "make_model": nn.Embedding(meta.num_make_models, d),
                "year_bucket": nn.Embedding(meta.num_year_buckets, d),
                "year": nn.Linear(1, d),
            })

        # message passing
        self.convs = nn.ModuleList()
        self.skips = nn.ModuleList()
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
                    residual=False,
                    edge_dim=1 if et in WEIGHTED_EDGE_TYPES else None,
                )
                for et in attention_edge_types(model_cfg)
            }
            self.convs.append(HeteroConv(convs, aggr="sum"))
            self.skips.append(nn.ModuleDict({nt: nn.Linear(n_in, n_out) for nt in NODE_TYPES}))
            n_in = n_out

        # towers
        self.tier_tower_emb = nn.Embedding(len(TIER_INDEX), 16)
        self.user_tower = _mlp(2 * d + 16, hidden, d)
        self.product_tower = _mlp(d, hidden, d)
        self.log_scale = nn.Parameter(
            torch.tensor(float(model_cfg.logit_scale_init)).log()
        )
        # popularity prior: logit += prior_weight * log1p(order_count); None when off
        self.prior_weight = (
            nn.Parameter(torch.tensor(1.0)) if model_cfg.popularity_prior else None
        )
        # learned product bias b(product_z) beside the prior (``model.product_bias``): corrects
        # a global count for how the product's buyers spread over vehicles; zero at init
        self.bias_head: nn.Linear | None = None
        if model_cfg.product_bias:
            if self.prior_weight is None:
                raise ValueError("model.product_bias needs model.popularity_prior: true")
            self.bias_head = nn.Linear(d, 1)
            nn.init.zeros_(self.bias_head.weight)
            nn.init.zeros_(self.bias_head.bias)
        # LightGCN-style mean propagation (``model.propagation``), one linear per kind
        self.propagation = check_kinds(list(model_cfg.propagation))
        self.pooled_neighbours = model_cfg.pooled_neighbours
        self.prop_lins = nn.ModuleDict({k: nn.Linear(d, d) for k in self.propagation})

    def embedding_parameters(self) -> list[nn.Parameter]:
        """Learned embedding tables (trained with the embedding learning rate)."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Embedding)]

    def other_parameters(self) -> list[nn.Parameter]:
        """Everything else: GNN layers, MLPs, towers (GNN learning rate)."""
        emb = {id(p) for p in self.embedding_parameters()}
        return [p for p in self.parameters() if id(p) not in emb]

    def node_inputs(
        self, data, index: dict[str, Tensor] | None = None, prop: Propagation | None = None
    ) -> dict[str, Tensor]:
        """Layer-0 node representations, for all nodes or the global ids in ``index``; with
        ``model.propagation``, plus the means over ``prop`` (the graph's own edges when None)."""
        x_user = self.tier_emb(_rows(data["user"].tier, index, "user")) + self.user_lin(
            _rows(data["user"].x, index, "user")
        )
        if not self.propagation:
            return {"user": x_user, "product": self._product_inputs(data, index),
                    "vehicle": self._vehicle_inputs(data, index)}
        # the mean operators read every product's (and vehicle's) input
        x_product = self._product_inputs(data, None)
        x_vehicle = self._vehicle_inputs(data, None)
        prop = prop if prop is not None else build_propagation(
            data, self.propagation, k=self.pooled_neighbours)
        vehicle_means = []
        for kind in self.propagation:
            mean = self.prop_lins[kind](
                prop.mean(kind, x_vehicle if kind == "neighbours" else x_product))
            if kind == "history":
                x_user = x_user + _rows(mean, index, "user")
            else:
                vehicle_means.append(mean)
        x_vehicle = sum(vehicle_means, x_vehicle)
        return {"user": x_user, "product": _rows(x_product, index, "product"),
                "vehicle": _rows(x_vehicle, index, "vehicle")}

    def _product_inputs(self, data, index: dict[str, Tensor] | None) -> Tensor:
        pin = torch.cat([self.part_type_emb(_rows(data["product"].part_type, index, "product")),
                         _rows(data["product"].x, index, "product")], dim=1)
        x = self.product_mlp(pin)
        if self.product_id_emb is not None:
            x = x + _rows(self.product_id_emb.weight, index, "product")
        return x

    def _vehicle_inputs(self, data, index: dict[str, Tensor] | None) -> Tensor:
        x = self.vehicle_lin(_rows(data["vehicle"].x, index, "vehicle"))
        if self.vehicle_id_emb is not None:
            x = x + _rows(self.vehicle_id_emb.weight, index, "vehicle")
        if self.vehicle_attr is not None:
            store = data["vehicle"]
            for name, layer in self.vehicle_attr.items():
                x = x + layer(_rows(getattr(store, name), index, "vehicle"))
        return x

    def encode(self, x_dict: dict[str, Tensor], blocks: list[Block]) -> dict[str, Tensor]:
        """Run the message-passing layers over one ``Block`` per layer (sampled or full).

        Layer l reads the rows of its input (``x_dict`` / the previous layer's output) and
        writes the rows ``block.keep`` selects (all rows when None). Each destination gets
        the sum over edge types of GATConv(x_src, x_dst) plus one skip linear of its own input.
        A full layer without autograd runs in chunks of destination rows (``model/chunked.py``).
        """
        h = x_dict
        for i, block in zip(range(len(self.convs)), blocks, strict=True):
            if block.keep is None and not torch.is_grad_enabled():  # model/chunked.py
                h = layer_in_chunks(lambda x, b, i=i: self._layer(i, x, b), h, block)
            else:
                h = self._layer(i, h, block)
        return h

    def _layer(self, i: int, h: dict[str, Tensor], block: Block) -> dict[str, Tensor]:
        if block.keep is None:
            h_dst = h
        else:
            h_dst = {k: v[block.keep[k]] if k in block.keep else v for k, v in h.items()}
        pairs = {et: (h[et[0]], h_dst[et[2]]) for et in block.edge_index}
        out = self.convs[i](pairs, block.edge_index, edge_attr_dict=block.edge_attr)
        out = {
            k: out[k] + self.skips[i][k](h_dst[k]) if k in out else self.skips[i][k](h_dst[k])
            for k in h_dst
        }
        if i < len(self.convs) - 1:
            out = {k: F.dropout(F.elu(v), self.dropout, self.training) for k, v in out.items()}
        return out

    def forward(
        self,
        data,
        blocks: list[Block] | None = None,
        index: dict[str, Tensor] | None = None,
        prop: Propagation | None = None,
    ) -> dict[str, Tensor]:
        """Node states after message passing: over ``blocks`` (one per layer; the full graph
        when None) from the layer-0 inputs of all nodes or of the global ids in ``index``
        (``prop``: the propagation operators of the message graph in use)."""
        if blocks is None:
            blocks = full_blocks(data, len(self.convs))
        return self.encode(self.node_inputs(data, index, prop), blocks)

    def user_repr(self, vehicle_h: Tensor, own_h: Tensor, tier: Tensor) -> Tensor:
        """L2-normalised representation of users with an own node (vehicle state, own state,
        tier); users without one go through ``cold_user_repr``."""
        return self._user_tower(vehicle_h, own_h, self.tier_tower_emb(tier))

    def cold_user_repr(self, vehicle_h: Tensor) -> Tensor:
        """L2-normalised representation of a user without an own node, from its vehicle's state
        alone: ``user_tower([vehicle_h, 0, tier_emb(cold)])`` (one row per ``vehicle_h`` row)."""
        cold = self.tier_tower_emb.weight[COLD].expand(len(vehicle_h), -1)
        return self._user_tower(vehicle_h, torch.zeros_like(vehicle_h), cold)

    def _user_tower(self, vehicle_h: Tensor, own_h: Tensor, tier_e: Tensor) -> Tensor:
        return F.normalize(self.user_tower(torch.cat([vehicle_h, own_h, tier_e], dim=1)), dim=1)

    def product_repr(self, product_h: Tensor) -> Tensor:
        """L2-normalised product representation."""
        return F.normalize(self.product_tower(product_h), dim=1)

    def logits(
        self, user_z: Tensor, product_z: Tensor, order_count: Tensor | None = None
    ) -> Tensor:
        """Row-wise scaled dot products (for BCE), plus the popularity prior of the products'
        ``order_count`` when ``model.popularity_prior`` is on."""
        out = self.log_scale.exp() * (user_z * product_z).sum(-1)
        if self.prior_weight is not None:
            if order_count is None:
                raise ValueError("HeteroGAT.logits: popularity_prior needs the order counts")
            out = out + self._prior(order_count, product_z)
        return out

    def _prior(self, order_count: Tensor, product_z: Tensor) -> Tensor:
        prior = self.prior_weight * torch.log1p(order_count.clamp_min(0))
        if self.bias_head is not None:
            prior = prior + self.bias_head(product_z).squeeze(-1)
        return prior

    def query_vectors(self, user_z: Tensor) -> Tensor:
        """Serving form of user representations: ``query . product_vectors = logit``."""
        if self.prior_weight is None:
            return user_z
        return torch.cat([user_z, torch.ones_like(user_z[:, :1])], dim=1)

    @torch.no_grad()
    def serve_prior(self) -> None:
        """Rank by the popularity prior alone (the fallback where validation never beat it):
        the dot product's scale ~0 (it only breaks ties), prior weight 1, no product bias."""
        if self.prior_weight is None:
            raise ValueError("serve_prior needs model.popularity_prior: true")
        self.log_scale.fill_(-30.0)
        self.prior_weight.fill_(1.0)
        if self.bias_head is not None:
            self.bias_head.weight.zero_()
            self.bias_head.bias.zero_()

    def product_vectors(self, product_z: Tensor, order_count: Tensor) -> Tensor:
        """Serving form of product representations: scaled, plus one prior column."""
        if self.prior_weight is None:
            return product_z
        prior = self._prior(order_count, product_z).unsqueeze(1)
        return torch.cat([self.log_scale.exp() * product_z, prior], dim=1)


def _rows(t: Tensor, index: dict[str, Tensor] | None, node_type: str) -> Tensor:
    """All rows of ``t``, or those of the global ids ``index[node_type]``."""
    return t if index is None else t[index[node_type]]


def full_blocks(data, n_layers: int) -> list[Block]:
    """All edges of the graph, every node kept, for each layer."""
    ei = {et: data[et].edge_index for et in EDGE_TYPES}
    ea = {et: data[et].edge_attr for et in WEIGHTED_EDGE_TYPES}
    return [Block(ei, ea) for _ in range(n_layers)]


@torch.no_grad()
def encode_full(model: HeteroGAT, data) -> dict[str, Tensor]:
    """No-grad forward over the full graph (eval mode is the caller's business)."""
    return model(data)
