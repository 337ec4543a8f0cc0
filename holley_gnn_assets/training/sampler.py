"""What training derives once from the graph (``TrainingSetup``) and the per-step computation
graph it samples with torch ops (no pyg-lib / torch-sparse).

Supervision: a fixed ``val_fraction`` of the user->product edges (users with a vehicle) is held
out for validation and removed from message passing: random edges
(``training.validation_split: edges``, the default: the user's other edges stay in the graph,
so the vehicle's owners include the held-out user) or every edge of a random set of users
(``users``: cold to the model, as the audience is; measured worse on full scale, docs/model.md).
The rest are split every epoch by the loop (simulated-cold users, warm supervision, message
edges).

Cost at full scale (field notes: a full-graph GAT step is 6-7 s even without cold users): each
step runs ONE encoder forward on a computation graph sampled in the manner of NeighborLoader:
starting from the nodes the batch needs (its users, their vehicles, positive and negative
products) and going back layer by layer, at most ``fanout[l]`` incoming edges per destination
node and edge type; each layer transforms only the rows it needs (``Block.keep``). An epoch has
at most ``max_steps_per_epoch`` steps: at full scale (~21K supervision edges an epoch) the step
batch grows from ``batch_size`` 1024 to ~3.5K, since a step's cost is mostly fixed (dense
transforms of ~25K product rows). A user gives at most ``supervision_per_user`` supervision
edges an epoch (redrawn each epoch), so an epoch follows users, not basket size
(docs/scale.md). The step batch stops at ``max_step_batch``: a larger epoch trains on a random
``max_steps_per_epoch x max_step_batch`` of its supervision edges (the rest stay out of message
passing that epoch), so a step's memory does not grow with the users. Validation and serving
use the full graph.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from holley_gnn_assets.config.schema import PipelineConfig
from holley_gnn_assets.config.validation import typed
from holley_gnn_assets.graph.builder import GraphBundle
from holley_gnn_assets.graph.types import (
    INTERACTS,
    OWNS,
    REV_INTERACTS,
    REV_OWNS,
    WEIGHTED_EDGE_TYPES,
)
from holley_gnn_assets.model.hetero_gat import Block, attention_edge_types
from holley_gnn_assets.model.propagation import (
    Propagation,
    build_propagation,
    fitment_neighbours,
)
from holley_gnn_assets.training.fitment import FitmentIndex
from holley_gnn_assets.training.negatives import NegativeSampler, negative_counts

MessageEdges = dict[tuple, tuple[Tensor, Tensor | None]]


class NoInteractionsError(ValueError):
    """The graph has no (or too few) user->product edges to train on."""


def sample_per_dst(dst: Tensor, num_dst: int, cap: int) -> Tensor:
    """Positions of at most ``cap`` random edges per destination (all when degree <= cap)."""
    n = dst.numel()
    if n == 0 or cap <= 0:
        return torch.zeros(0, dtype=torch.long, device=dst.device)
    # int64 keys (destination, random tie-breaker) sort ~3x faster than float keys on CPU
    key = dst * (1 << 20) + torch.randint(0, 1 << 20, (n,), device=dst.device)
    order = torch.argsort(key)
    d_sorted = dst[order]
    counts = torch.bincount(d_sorted, minlength=num_dst)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(n, device=dst.device) - starts[d_sorted]
    return order[rank < cap]


def held_out_users(
    edge_user: np.ndarray, cand: np.ndarray, n_val: int, rng: np.random.Generator
) -> np.ndarray:
    """Sorted positions of every edge (among ``cand``) of random users, taken until they hold
    at least ``n_val`` edges; at least one candidate edge stays out (a user whose edges would
    take all of them is skipped)."""
    users = rng.permutation(np.unique(edge_user[cand]))
    counts = np.bincount(edge_user[cand], minlength=int(edge_user.max(initial=-1)) + 1)
    total, chosen = 0, []
    for u in users:
        if total + counts[u] >= len(cand):
            continue
        chosen.append(u)
        total += counts[u]
        if total >= n_val:
            break
    return np.sort(cand[np.isin(edge_user[cand], np.asarray(chosen, dtype=edge_user.dtype))])


def _positive_weights(data, kind: str, n_edges: int, device: str) -> Tensor:
    if kind == "max_event_weight":
        w = data[INTERACTS].max_event_weight.float()
    elif kind == "weight":
        w = data[INTERACTS].edge_weight.float().clamp_min(0)
    elif kind == "none":
        w = torch.ones(n_edges, device=device)
    else:
        raise ValueError(
            f"training.positive_weight={kind!r}: expected max_event_weight|weight|none"
        )
    return w / w.mean().clamp_min(1e-9)


class TrainingSetup:
    """Everything derived once from the graph, the config and the seed (``cfg``: the validated
    config; a mapping is validated first, a missing key is a SettingsError naming it)."""

    def __init__(self, bundle: GraphBundle, cfg: PipelineConfig | Mapping[str, Any], device: str,
                 rng: np.random.Generator):
        config = typed(cfg, PipelineConfig)
        tr = config.training
        if bundle.num_interactions == 0:
            raise NoInteractionsError(
                "train: the graph has no user->product edges (user_product_edges is empty): "
                "there is nothing to learn from; serve the SQL popularity baseline for this tenant"
            )
        self.device = device
        self.data = bundle.data if device == "cpu" else bundle.data.clone().to(device)
        data = self.data  # the bundle stays on CPU
        ei = data[INTERACTS].edge_index
        self.n_edges = int(ei.shape[1])
        self.sizes = {nt: int(data[nt].num_nodes) for nt in ("user", "product", "vehicle")}
        self.num_users = self.sizes["user"]
        self.num_products = self.sizes["product"]
        self.num_vehicles = self.sizes["vehicle"]
        self.edge_user = ei[0]
        self.edge_product = ei[1]
        self.user_vehicle = data["user"].vehicle
        self.user_tier = data["user"].tier
        self.pos_weight = _positive_weights(
            data, tr.positive_weight, self.n_edges, device
        )

        # validation edges: val_fraction, among edges of users with a vehicle
        cand = np.flatnonzero((self.user_vehicle[self.edge_user] >= 0).cpu().numpy())
        n_val = int(round(tr.val_fraction * self.n_edges))
        n_val = max(1, min(n_val, len(cand) - 1)) if len(cand) > 1 else 0
        if n_val == 0:
            raise NoInteractionsError(
                "train: need >= 2 user->product edges from users with a vehicle to hold out a "
                f"validation set; graph has {len(cand)}"
            )
        split = tr.validation_split
        if split not in ("users", "edges"):
            raise ValueError(f"training.validation_split={split!r}: expected users|edges")
        edge_user = self.edge_user.cpu().numpy()
        val_idx = held_out_users(edge_user, cand, n_val, rng) \
            if split == "users" else np.zeros(0, dtype=np.int64)
        if not len(val_idx):  # edges, or one user holds every edge: random edges
            split = "edges"
            val_idx = np.sort(rng.choice(cand, size=n_val, replace=False))
        self.val_users: Tensor | None = None  # users whose every edge is held out
        if split == "users":
            held = np.zeros(self.num_users, dtype=bool)
            held[edge_user[val_idx]] = True
            self.val_users = torch.from_numpy(held).to(device)
        val_mask = np.zeros(self.n_edges, dtype=bool)
        val_mask[val_idx] = True
        self.val_idx = torch.from_numpy(val_idx).to(device)
        self.train_idx = torch.from_numpy(np.flatnonzero(~val_mask)).to(device)

        self.fitment = FitmentIndex.from_data(data, device)
        self.popularity = data["product"].order_count.float() + 1.0
        self.neg_counts = negative_counts(tr.negatives, tr.negatives_per_positive)
        self.negatives = NegativeSampler(self.neg_counts, self.fitment, self.popularity, device)
        self.fanout = list(tr.fanout)
        self.batch_size = tr.batch_size
        self.max_steps = tr.max_steps_per_epoch
        self.max_step_batch = tr.max_step_batch
        self.sup_per_user = tr.supervision_per_user
        self.cold_share = float(tr.simulated_cold_share)
        self.loss = tr.loss
        self.edge_types = attention_edge_types(config.model)
        self.pooled_neighbours = config.model.pooled_neighbours
        self.warm_sup_share = float(tr.warm_supervision_share)

        # fixed validation negatives for val_loss: uniform among fitting products
        gen = torch.Generator(device="cpu").manual_seed(tr.seed + 1)
        vv = self.user_vehicle[self.edge_user[self.val_idx]]
        self.val_neg = self.fitment.sample(vv, 4, gen=gen)

        # message edges for validation: everything but the validation edges (and the held-out
        # users' owns edges: they are cold)
        self.val_message = self.message_edges(self.train_idx, cold_users=self.val_users)
        self._val_prop: tuple[tuple[str, ...], Propagation] | None = None
        self._neighbours: Tensor | None = None

    def step_batch(self, n_sup: int) -> int:
        """Supervision edges per step: ``batch_size``, grown so an epoch has at most
        ``max_steps_per_epoch`` steps (null: no cap), but at most ``max_step_batch``."""
        if not self.max_steps:
            return self.batch_size
        grown = max(self.batch_size, math.ceil(n_sup / int(self.max_steps)))
        return min(grown, int(self.max_step_batch)) if self.max_step_batch else grown

    def epoch_edges(self, n_sup: int) -> int:
        """How many of an epoch's (shuffled) supervision edges it trains on: all, unless
        ``max_steps_per_epoch`` steps of ``max_step_batch`` hold fewer. A step's memory then
        follows ``max_step_batch x negatives_per_positive x embedding_dim`` whatever the
        number of users (broad_100k: ~113K supervision edges made 19K-edge steps, +1.2 GB)."""
        if not self.max_steps or not self.max_step_batch:
            return n_sup
        return min(n_sup, int(self.max_steps) * int(self.max_step_batch))

    def epoch_split(self, rng: np.random.Generator) -> tuple[Tensor, Tensor, MessageEdges]:
        """This epoch's supervision edges (shuffled), whether each is scored in cold mode, and
        the message edges: a ``simulated_cold_share`` of the users with a vehicle lose all their
        edges (cold supervision); of the others' edges a ``warm_supervision_share`` is
        supervised in warm mode; the rest carry messages."""
        dev = self.device
        has_v = (self.user_vehicle >= 0).cpu().numpy()
        cold_users = torch.from_numpy(has_v & (rng.random(self.num_users) < self.cold_share))
        cold_users = cold_users.to(dev)
        if self.val_users is not None:  # held-out users own no vehicle in any epoch's graph
            cold_users = cold_users | self.val_users
        is_cold_edge = cold_users[self.edge_user[self.train_idx]]
        warm_sup = torch.from_numpy(rng.random(len(self.train_idx)) < self.warm_sup_share)
        sup_mask = is_cold_edge | warm_sup.to(dev)
        sup_idx, sup_cold = self.train_idx[sup_mask], is_cold_edge[sup_mask]
        message = self.message_edges(self.train_idx[~sup_mask], cold_users)
        keep = self.capped_per_user(sup_idx)
        if keep is not None:
            sup_idx, sup_cold = sup_idx[keep], sup_cold[keep]
        perm = torch.from_numpy(rng.permutation(len(sup_idx))).to(dev)
        return sup_idx[perm], sup_cold[perm], message

    def capped_per_user(self, sup_idx: Tensor) -> Tensor | None:
        """Positions of at most ``supervision_per_user`` random edges per user among ``sup_idx``
        (None when no user exceeds it: nothing drawn, so an unbound cap changes no random state).
        The edges left out are neither supervised nor message edges this epoch."""
        if not self.sup_per_user or not len(sup_idx):
            return None
        users = self.edge_user[sup_idx]
        if int(torch.bincount(users).max()) <= self.sup_per_user:
            return None
        return torch.sort(sample_per_dst(users, self.num_users, self.sup_per_user)).values

    def propagation(self, kinds: tuple[str, ...], message: MessageEdges) -> Propagation:
        """The model's propagation operators over ``message`` (the epoch's message edges)."""
        if self._neighbours is None and {"pooled", "neighbours"} & set(kinds):
            self._neighbours = fitment_neighbours(self.data, self.pooled_neighbours)
        return build_propagation(
            self.data, kinds, message[INTERACTS], message[OWNS][0], self._neighbours
        )

    def val_propagation(self, kinds: tuple[str, ...]) -> Propagation:
        """The propagation operators of the validation message graph (built once)."""
        if self._val_prop is None or self._val_prop[0] != kinds:
            self._val_prop = (kinds, self.propagation(kinds, self.val_message))
        return self._val_prop[1]

    def needed_nodes(self, users: Tensor, products: Tensor, vehicles: Tensor) -> dict[str, Tensor]:
        """Bool masks per node type of the nodes a batch reads (vehicle -1 is skipped)."""
        need = {
            nt: torch.zeros(n, dtype=torch.bool, device=self.device) for nt, n in self.sizes.items()
        }
        need["user"][users] = True
        need["product"][products] = True
        need["vehicle"][vehicles[vehicles >= 0]] = True
        return need

    def message_edges(self, interaction_idx: Tensor, cold_users: Tensor | None) -> MessageEdges:
        """Message-passing edges: the given interaction edges, owns edges minus cold users."""
        data = self.data
        out: MessageEdges = {}
        ei = data[INTERACTS].edge_index[:, interaction_idx]
        ea = data[INTERACTS].edge_attr[interaction_idx]
        out[INTERACTS] = (ei, ea)
        out[REV_INTERACTS] = (ei.flip(0), ea)
        owns = data[OWNS].edge_index
        if cold_users is not None:
            owns = owns[:, ~cold_users[owns[0]]]
        out[OWNS] = (owns, None)
        out[REV_OWNS] = (owns.flip(0), None)
        for et in self.edge_types:
            if et not in out:
                out[et] = (data[et].edge_index, data[et].get("edge_attr"))
        return out

    def sampled_blocks(
        self, n_layers: int, message: MessageEdges, need: dict[str, Tensor]
    ) -> tuple[dict[str, Tensor], list[Block], dict[str, Tensor]]:
        """Sample a computation graph for the nodes in ``need`` (bool masks per node type).

        Returns (layer-0 global node ids per type, one trimmed Block per layer, and per type a
        global-id -> row map into the last layer's output).
        """
        sizes = self.sizes
        masks: list[dict[str, Tensor]] = [{} for _ in range(n_layers)] + [need]
        edges: list[dict[tuple, Tensor]] = [dict() for _ in range(n_layers)]
        attrs: list[dict[tuple, Tensor]] = [dict() for _ in range(n_layers)]
        for layer in reversed(range(n_layers)):
            cap = self.fanout[min(layer, len(self.fanout) - 1)]
            cur = masks[layer + 1]
            prev = {k: v.clone() for k, v in cur.items()}
            for et, (ei, ea) in message.items():
                src_t, _, dst_t = et
                sel = cur[dst_t][ei[1]].nonzero().squeeze(1)
                keep = sel[sample_per_dst(ei[1, sel], sizes[dst_t], cap)]
                edges[layer][et] = ei[:, keep]
                if et in WEIGHTED_EDGE_TYPES:
                    attrs[layer][et] = ea[keep]
                prev[src_t][ei[0, keep]] = True
            masks[layer] = prev
        ids = [{k: m.nonzero().squeeze(1) for k, m in mk.items()} for mk in masks]
        maps = []
        for layer_ids in ids:
            mp = {}
            for k, g in layer_ids.items():
                m = torch.full((sizes[k],), -1, dtype=torch.long, device=self.device)
                m[g] = torch.arange(len(g), device=self.device)
                mp[k] = m
            maps.append(mp)
        blocks = []
        for layer in range(n_layers):
            ei_local = {
                et: torch.stack([maps[layer][et[0]][e[0]], maps[layer + 1][et[2]][e[1]]])
                for et, e in edges[layer].items()
            }
            keep_rows = {k: maps[layer][k][ids[layer + 1][k]] for k in sizes}
            blocks.append(Block(ei_local, attrs[layer], keep_rows))
        return ids[0], blocks, maps[n_layers]
