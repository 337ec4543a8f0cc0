"""Training loop (spec section 4), changed where the draft fails cold users.

Objective: link prediction with BCE on (positive, negative) user->product pairs. Positives are
weighted by ``training.positive_weight`` (default ``max_event_weight``: order 5 > cart 3 > view 1,
divided by its mean so the loss scale stays near 1; ``weight`` uses the decayed sum instead,
``none`` weighs all positives 1).

Serving cold users (98% of recipients):
- simulated-cold training: every epoch a ``simulated_cold_share`` of the warm/hot users with a
  vehicle lose all their edges in message passing and their supervision edges are scored with
  the cold representation (vehicle + tier ``cold``), as a real cold user is served;
- the other users' edges are split each epoch: a ``warm_supervision_share`` is supervised in
  warm mode and hidden from message passing, the rest carry messages (no target-edge leakage);
- validation (a fixed random ``val_fraction`` of the edges, removed from message passing) ranks
  each held-out product among the products that fit the user's vehicle using the cold
  representation (``val_mrr``, the early-stopping metric); warm-mode MRR and a popularity
  ranking on the same edges are reported next to it;
- negatives: shares of ``in_batch`` (other positives of the batch, i.e. popularity-biased),
  ``uniform`` (any product), ``popularity`` (proportional to order_count + 1) and ``fitment``
  (uniform among the products fitting the user's vehicle: the candidates cold users are ranked
  among), ``negatives_per_positive`` per positive.

Negatives, measured (cold-mode validation MRR / HR@10, popularity ranking on the same edges):
synthetic demo world (generator, signal 1, 1,000 graph users, 356 validation edges; popularity
0.244 / 0.449): fitment 0.267 / 0.461, fitment+uniform 0.262 / 0.447, uniform 0.220 / 0.413,
in_batch+uniform (spec draft) 0.125 / 0.264, uniform+popularity 0.119 / 0.225, in_batch
0.084 / 0.171, popularity 0.046 / 0.076. Planted-preference fixture (3,000 users; popularity
0.305 / 0.593, planted optimum ~0.42): fitment 0.422 / 0.769, uniform 0.352, uniform+popularity
0.355, in_batch 0.278, popularity 0.245. Hence the default: fitment only. ``lr_gnn`` 0.01 (spec
draft) stalled at 0.34 on the fixture where 0.001 reached 0.425.

Cost at full scale (field notes: a full-graph GAT step is 6-7 s even without cold users): each
step runs ONE encoder forward on a computation graph sampled with torch ops, in the manner of
NeighborLoader: starting from the nodes the batch needs (its users, their vehicles, positive and
negative products) and going back layer by layer, at most ``fanout[l]`` incoming edges per
destination node and edge type; each layer transforms only the rows it needs (``Block.keep``).
An epoch has at most ``max_steps_per_epoch`` steps: at full scale (~21K supervision edges an
epoch) the step batch grows from ``batch_size`` 1024 to ~2.7K, since a step's cost is mostly
fixed (dense transforms of ~25K product rows). Validation and serving use the full graph.

Reproducibility: ``training.seed`` seeds torch and numpy; every epoch's randomness comes from
those two generators, whose states are checkpointed, so a resumed CPU run repeats an
uninterrupted one; with ``training.deterministic`` (CPU only) another process repeats it too.
No user->product edges at all raises ``NoInteractionsError`` (a ValueError):
a new tenant has nothing to learn from and should be served by the SQL baseline.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from holley_gnn_assets.graph.builder import (
    EDGE_TYPES,
    FITS,
    INTERACTS,
    OWNS,
    REV_INTERACTS,
    REV_OWNS,
    TIER_INDEX,
    GraphBundle,
)
from holley_gnn_assets.model.hetero_gat import (
    WEIGHTED_EDGE_TYPES,
    Block,
    GraphMeta,
    HeteroGAT,
)
from holley_gnn_assets.training import checkpoints as ck
from holley_gnn_assets.training.heap import reuse_freed_memory

log = logging.getLogger(__name__)

COLD = TIER_INDEX["cold"]
NEGATIVE_KINDS = ("in_batch", "uniform", "popularity", "fitment")


class NoInteractionsError(ValueError):
    """The graph has no (or too few) user->product edges to train on."""


@dataclass
class TrainResult:
    """What ``train`` returns; ``model`` holds the best epoch's weights, in eval mode, on CPU."""

    model: HeteroGAT
    history: list[dict[str, float]]
    best_epoch: int
    best_val_mrr: float
    epochs_run: int
    stopped_early: bool
    wall_s: float
    device: str
    resumed_from_epoch: int | None
    negatives: dict[str, float]
    fallback: str | None = None
    notes: list[str] = field(default_factory=list)
    baseline: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------- helpers


def resolve_device(requested: str) -> tuple[str, str | None]:
    """'auto' -> cuda when available; 'cuda' without CUDA -> ('cpu', warning note)."""
    requested = (requested or "auto").lower()
    has_cuda = torch.cuda.is_available()
    if requested == "auto":
        return ("cuda" if has_cuda else "cpu"), None
    if requested.startswith("cuda"):
        if has_cuda:
            return requested, None
        note = "device 'cuda' was requested but CUDA is not available: trained on CPU"
        warnings.warn(note, RuntimeWarning, stacklevel=3)
        return "cpu", note
    if requested == "cpu":
        return "cpu", None
    raise ValueError(f"training.device={requested!r}: expected auto, cpu or cuda")


def negative_counts(shares: dict[str, float], k: int) -> dict[str, int]:
    """Split ``k`` negatives per positive by the (normalised) shares, largest remainder first."""
    unknown = set(shares) - set(NEGATIVE_KINDS)
    if unknown:
        raise ValueError(f"training.negatives: unknown kind(s) {sorted(unknown)}")
    vals = {n: max(0.0, float(shares.get(n, 0.0) or 0.0)) for n in NEGATIVE_KINDS}
    total = sum(vals.values())
    if total <= 0 or k < 1:
        raise ValueError(
            "training.negatives: shares must sum to > 0 and negatives_per_positive >= 1"
        )
    exact = {n: k * v / total for n, v in vals.items()}
    counts = {n: int(math.floor(x)) for n, x in exact.items()}
    for n in sorted(exact, key=lambda n: (-(exact[n] - counts[n]), NEGATIVE_KINDS.index(n))):
        if sum(counts.values()) >= k:
            break
        counts[n] += 1
    return counts


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


def _check_finite(t: Tensor, what: str) -> None:
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).sum())
        raise FloatingPointError(f"non-finite values in {what} ({bad} of {t.numel()})")


# ---------------------------------------------------------------------------- state


class _Setup:
    """Everything derived once from the graph, the config and the seed."""

    def __init__(self, bundle: GraphBundle, cfg: dict, device: str, rng: np.random.Generator):
        tr = cfg["training"]
        data = bundle.data
        self.device = device
        self.data = data if device == "cpu" else data.clone().to(device)  # bundle stays on CPU
        data = self.data
        ei = data[INTERACTS].edge_index
        self.n_edges = int(ei.shape[1])
        self.num_users = int(data["user"].num_nodes)
        self.num_products = int(data["product"].num_nodes)
        self.num_vehicles = int(data["vehicle"].num_nodes)
        self.edge_user = ei[0]
        self.edge_product = ei[1]
        self.user_vehicle = data["user"].vehicle
        self.user_tier = data["user"].tier

        pw = str(tr.get("positive_weight", "max_event_weight"))
        if pw == "max_event_weight":
            w = data[INTERACTS].max_event_weight.float()
        elif pw == "weight":
            w = data[INTERACTS].edge_weight.float().clamp_min(0)
        elif pw == "none":
            w = torch.ones(self.n_edges, device=device)
        else:
            raise ValueError(
                f"training.positive_weight={pw!r}: expected max_event_weight|weight|none"
            )
        self.pos_weight = w / w.mean().clamp_min(1e-9)

        # validation edges: random val_fraction, among edges of users with a vehicle
        has_v = (self.user_vehicle[self.edge_user] >= 0).cpu().numpy()
        cand = np.flatnonzero(has_v)
        n_val = int(round(float(tr["val_fraction"]) * self.n_edges))
        n_val = max(1, min(n_val, len(cand) - 1)) if len(cand) > 1 else 0
        if n_val == 0:
            raise NoInteractionsError(
                "train: need >= 2 user->product edges from users with a vehicle to hold out a "
                f"validation set; graph has {len(cand)}"
            )
        val_idx = np.sort(rng.choice(cand, size=n_val, replace=False))
        val_mask = np.zeros(self.n_edges, dtype=bool)
        val_mask[val_idx] = True
        self.val_idx = torch.from_numpy(val_idx).to(device)
        self.train_idx = torch.from_numpy(np.flatnonzero(~val_mask)).to(device)

        # fitment: dense [V, P] mask (2K x 25K = 50 MB at full scale) and CSR for negatives
        fv, fp = data[FITS].edge_index[1], data[FITS].edge_index[0]
        self.fit_dense = torch.zeros(
            self.num_vehicles, self.num_products, dtype=torch.bool, device=device
        )
        self.fit_dense[fv, fp] = True
        order = torch.argsort(fv * self.num_products + fp)
        self.fit_products = fp[order]
        self.fit_ptr = torch.zeros(self.num_vehicles + 1, dtype=torch.long, device=device)
        self.fit_ptr[1:] = torch.cumsum(torch.bincount(fv, minlength=self.num_vehicles), 0)
        self.popularity = data["product"].order_count.float() + 1.0

        self.neg_counts = negative_counts(dict(tr["negatives"]), int(tr["negatives_per_positive"]))
        self.fanout = [int(x) for x in tr.get("fanout", [10, 10])]
        self.batch_size = int(tr["batch_size"])
        self.max_steps = tr.get("max_steps_per_epoch")
        self.cold_share = float(tr.get("simulated_cold_share", 0.5))
        self.warm_sup_share = float(tr.get("warm_supervision_share", 0.3))

        # fixed validation negatives for val_loss: uniform among fitting products
        gen = torch.Generator(device="cpu").manual_seed(int(tr["seed"]) + 1)
        vv = self.user_vehicle[self.edge_user[self.val_idx]]
        self.val_neg = self._fitment_sample(vv, 4, gen=gen)

        # message edges for validation: everything but the validation edges
        self.val_message = self.message_edges(self.train_idx, cold_users=None)

    def step_batch(self, n_sup: int) -> int:
        """Supervision edges per step: ``batch_size``, grown so an epoch has at most
        ``max_steps_per_epoch`` steps (null: no cap)."""
        if not self.max_steps:
            return self.batch_size
        return max(self.batch_size, math.ceil(n_sup / int(self.max_steps)))

    # -- sampling helpers
    def _fitment_sample(
        self, vehicles: Tensor, k: int, gen: torch.Generator | None = None
    ) -> Tensor:
        """k products per row, uniform among the products fitting the row's vehicle."""
        v = vehicles.clamp_min(0)
        lo, hi = self.fit_ptr[v], self.fit_ptr[v + 1]
        deg = (hi - lo).clamp_min(1)
        r = torch.rand((len(v), k), generator=gen, device="cpu" if gen is not None else self.device)
        r = r.to(self.device)
        pos = lo.unsqueeze(1) + (r * deg.unsqueeze(1)).long().clamp_max(deg.unsqueeze(1) - 1)
        out = self.fit_products[pos.clamp_max(max(0, len(self.fit_products) - 1))]
        uniform = torch.randint(
            0,
            self.num_products,
            out.shape,
            generator=gen,
            device="cpu" if gen is not None else self.device,
        ).to(self.device)
        no_fit = ((vehicles < 0) | (hi == lo)).unsqueeze(1)
        return torch.where(no_fit, uniform, out)

    def negatives(self, users: Tensor, pos_products: Tensor) -> Tensor:
        """[B, K] negative products for a batch, by the configured mix."""
        b = len(users)
        cols = []
        c = self.neg_counts
        if c["in_batch"]:
            shift = torch.randint(1, max(2, b), (b, c["in_batch"]), device=self.device)
            idx = (torch.arange(b, device=self.device).unsqueeze(1) + shift) % b
            cols.append(pos_products[idx])
        if c["uniform"]:
            cols.append(torch.randint(0, self.num_products, (b, c["uniform"]), device=self.device))
        if c["popularity"]:
            draws = torch.multinomial(self.popularity, b * c["popularity"], replacement=True)
            cols.append(draws.view(b, c["popularity"]))
        if c["fitment"]:
            cols.append(self._fitment_sample(self.user_vehicle[users], c["fitment"]))
        return torch.cat(cols, dim=1)

    def message_edges(
        self, interaction_idx: Tensor, cold_users: Tensor | None
    ) -> dict[tuple, tuple[Tensor, Tensor | None]]:
        """Message-passing edges: the given interaction edges, owns edges minus cold users."""
        data = self.data
        out: dict[tuple, tuple[Tensor, Tensor | None]] = {}
        ei = data[INTERACTS].edge_index[:, interaction_idx]
        ea = data[INTERACTS].edge_attr[interaction_idx]
        out[INTERACTS] = (ei, ea)
        out[REV_INTERACTS] = (ei.flip(0), ea)
        owns = data[OWNS].edge_index
        if cold_users is not None:
            owns = owns[:, ~cold_users[owns[0]]]
        out[OWNS] = (owns, None)
        out[REV_OWNS] = (owns.flip(0), None)
        for et in EDGE_TYPES:
            if et not in out:
                out[et] = (data[et].edge_index, data[et].get("edge_attr"))
        return out

    def sampled_blocks(
        self,
        n_layers: int,
        message: dict[tuple, tuple[Tensor, Tensor | None]],
        need: dict[str, Tensor],
    ) -> tuple[dict[str, Tensor], list[Block], dict[str, Tensor]]:
        """Sample a computation graph for the nodes in ``need`` (bool masks per node type).

        Returns (layer-0 global node ids per type, one trimmed Block per layer, and per type a
        global-id -> row map into the last layer's output).
        """
        sizes = {"user": self.num_users, "product": self.num_products, "vehicle": self.num_vehicles}
        masks = [None] * (n_layers + 1)
        masks[n_layers] = need
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


# ---------------------------------------------------------------------------- evaluation


def _rank_metrics(
    score: Callable[[Tensor, Tensor], Tensor], st: _Setup, vehicles: Tensor, targets: Tensor
) -> dict[str, float]:
    """MRR and HR@10 of each target product among the products fitting its row's vehicle.

    ``score(rows, products)`` gives [len(rows), k] scores of ``products`` [len(rows), k] for the
    given rows. Only the fitting products are scored (padded CSR gather, chunked). Ties count
    half (mid-rank). A target that does not fit the vehicle scores 0 (it is never recommended).
    """
    n = len(targets)
    if n == 0:
        return {"mrr": 0.0, "hr10": 0.0}
    deg = st.fit_ptr[1:] - st.fit_ptr[:-1]
    max_deg = max(1, int(deg.max()))
    chunk = max(1, 2_000_000 // max_deg)
    rr = torch.zeros(n, dtype=torch.float64, device=st.device)
    hit = torch.zeros(n, dtype=torch.float64, device=st.device)
    ar = torch.arange(max_deg, device=st.device)
    for lo in range(0, n, chunk):
        rows = torch.arange(lo, min(n, lo + chunk), device=st.device)
        v = vehicles[rows].clamp_min(0)
        start, d = st.fit_ptr[v], deg[v]
        valid = (ar.unsqueeze(0) < d.unsqueeze(1)) & (vehicles[rows] >= 0).unsqueeze(1)
        pos = (start.unsqueeze(1) + ar.unsqueeze(0)).clamp_max(max(0, len(st.fit_products) - 1))
        cand = st.fit_products[pos]
        s = score(rows, cand)
        ts = score(rows, targets[rows].unsqueeze(1))
        greater = ((s > ts) & valid).sum(1).double()
        equal = ((s == ts) & valid).sum(1).double() - 1.0
        rank = greater + 0.5 * equal.clamp_min(0)
        ok = st.fit_dense[v, targets[rows]] & (vehicles[rows] >= 0)
        rr[rows] = torch.where(ok, 1.0 / (rank + 1.0), torch.zeros_like(rank))
        hit[rows] = (ok & (rank < 10)).double()
    return {"mrr": float(rr.mean()), "hr10": float(hit.mean())}


def _dot_scorer(query: Tensor, products: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    """score(rows, cand) = query[rows] . products[cand]."""

    def score(rows: Tensor, cand: Tensor) -> Tensor:
        return torch.bmm(products[cand], query[rows].unsqueeze(2)).squeeze(2)

    return score


@torch.no_grad()
def _evaluate(model: HeteroGAT, st: _Setup) -> dict[str, float]:
    """Full-graph forward on the validation message graph; cold- and warm-mode metrics."""
    model.eval()
    msg = st.val_message
    block = Block(
        {et: v[0] for et, v in msg.items()}, {et: msg[et][1] for et in WEIGHTED_EDGE_TYPES}
    )
    h = model.encode(model.node_inputs(st.data), [block] * len(model.convs))
    pz = model.product_repr(h["product"])
    _check_finite(pz, "product embeddings (validation)")
    cold_tier = torch.full((st.num_vehicles,), COLD, dtype=torch.long, device=st.device)
    gz = model.user_repr(h["vehicle"], None, cold_tier)
    _check_finite(gz, "cold group embeddings (validation)")
    u = st.edge_user[st.val_idx]
    p = st.edge_product[st.val_idx]
    v = st.user_vehicle[u]
    cold = _rank_metrics(_dot_scorer(gz[v], pz), st, v, p)
    uz = model.user_repr(h["vehicle"][v], h["user"][u], st.user_tier[u])
    _check_finite(uz, "warm user embeddings (validation)")
    warm = _rank_metrics(_dot_scorer(uz, pz), st, v, p)
    # val loss: cold mode, fixed fitment negatives
    pos = model.logits(gz[v], pz[p])
    neg = model.logits(gz[v].unsqueeze(1), pz[st.val_neg])
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


def popularity_baseline(st: _Setup) -> dict[str, float]:
    """The same validation ranking with products ordered by order_count (the SQL baseline)."""
    u = st.edge_user[st.val_idx]
    p = st.edge_product[st.val_idx]
    v = st.user_vehicle[u]
    m = _rank_metrics(lambda rows, cand: st.popularity[cand], st, v, p)
    fits = st.fit_dense[v, p].float().mean().item() if len(u) else 0.0
    return {"pop_mrr": m["mrr"], "pop_hr10": m["hr10"], "val_edges": len(u), "val_fit_share": fits}


# ---------------------------------------------------------------------------- training


def _rng_state(rng: np.random.Generator, device: str) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": rng.bit_generator.state}
    if device.startswith("cuda"):
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(rng: np.random.Generator, state: dict[str, Any], device: str) -> None:
    torch.set_rng_state(state["torch"])
    rng.bit_generator.state = state["numpy"]
    if device.startswith("cuda") and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"])


def _epoch(
    model: HeteroGAT,
    st: _Setup,
    optimizers: list[torch.optim.Optimizer],
    rng: np.random.Generator,
    grad_clip: float,
    epoch: int,
) -> float:
    """One pass over this epoch's supervision edges; returns the mean training loss."""
    model.train()
    dev = st.device
    # simulated-cold users (warm/hot users with a vehicle)
    has_v = (st.user_vehicle >= 0).cpu().numpy()
    cold_np = has_v & (rng.random(st.num_users) < st.cold_share)
    cold_users = torch.from_numpy(cold_np).to(dev)
    tr_u = st.edge_user[st.train_idx]
    is_cold_edge = cold_users[tr_u]
    warm_sup = torch.from_numpy(rng.random(len(st.train_idx)) < st.warm_sup_share).to(dev)
    sup_mask = is_cold_edge | warm_sup
    sup_idx = st.train_idx[sup_mask]
    sup_cold = is_cold_edge[sup_mask]
    message = st.message_edges(st.train_idx[~sup_mask], cold_users)
    perm = torch.from_numpy(rng.permutation(len(sup_idx))).to(dev)
    sup_idx, sup_cold = sup_idx[perm], sup_cold[perm]

    total, count = 0.0, 0
    bs = st.step_batch(len(sup_idx))
    for step, lo in enumerate(range(0, len(sup_idx), bs)):
        e = sup_idx[lo : lo + bs]
        cold_b = sup_cold[lo : lo + bs]
        users, pos = st.edge_user[e], st.edge_product[e]
        neg = st.negatives(users, pos)
        veh = st.user_vehicle[users]
        need = {
            "user": torch.zeros(st.num_users, dtype=torch.bool, device=dev),
            "product": torch.zeros(st.num_products, dtype=torch.bool, device=dev),
            "vehicle": torch.zeros(st.num_vehicles, dtype=torch.bool, device=dev),
        }
        need["user"][users[~cold_b]] = True
        need["product"][pos] = True
        need["product"][neg.reshape(-1)] = True
        need["vehicle"][veh[veh >= 0]] = True
        ids0, blocks, rows = st.sampled_blocks(len(model.convs), message, need)
        h = model.encode(model.node_inputs(st.data, ids0), blocks)

        vrow = rows["vehicle"][veh.clamp_min(0)]
        vh = torch.where((veh >= 0).unsqueeze(1), h["vehicle"][vrow.clamp_min(0)], 0.0)
        own = torch.zeros_like(vh)
        warm_b = ~cold_b
        own[warm_b] = h["user"][rows["user"][users[warm_b]]]
        tier = torch.where(cold_b, torch.full_like(users, COLD), st.user_tier[users])
        uz = model.user_repr(vh, own, tier)
        pz = model.product_repr(h["product"])
        pos_logit = model.logits(uz, pz[rows["product"][pos]])
        neg_logit = model.logits(uz.unsqueeze(1), pz[rows["product"][neg]])
        w = st.pos_weight[e]
        loss = (
            w
            * F.binary_cross_entropy_with_logits(
                pos_logit, torch.ones_like(pos_logit), reduction="none"
            )
        ).mean()
        loss = loss + F.binary_cross_entropy_with_logits(neg_logit, torch.zeros_like(neg_logit))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"train loss is not finite at epoch {epoch} step {step}")
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        for opt in optimizers:
            opt.step()
        total += float(loss.detach()) * len(e)
        count += len(e)
    return total / max(1, count)


def train(
    bundle: GraphBundle,
    cfg: dict,
    checkpoint_dir: Path,
    device: str = "auto",
    on_epoch: Callable[[dict], None] | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train the HeteroGAT with early stopping on cold-mode validation MRR; see module doc.

    ``training.reuse_freed_memory`` (default on) keeps freed memory in the heap meanwhile
    (``core/heap.py``: about half the epoch time on CPU, for a higher peak RSS).
    ``training.deterministic`` (default on) runs CPU training with torch's deterministic
    algorithms: without them two processes with the same seed drift apart from the first
    epoch (multi-threaded float reductions) and stop at different epochs.
    """
    tr = cfg["training"]
    dev, note = resolve_device(device if device != "auto" else str(tr.get("device", "auto")))
    with reuse_freed_memory(bool(tr.get("reuse_freed_memory", True))), _deterministic(
        bool(tr.get("deterministic", True)) and dev == "cpu"
    ):
        return _train(bundle, cfg, checkpoint_dir, dev, note, on_epoch, resume)


@contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    """torch.use_deterministic_algorithms for the block (process-wide), then the old mode."""
    before = torch.are_deterministic_algorithms_enabled()
    if enabled:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def _train(
    bundle: GraphBundle,
    cfg: dict,
    checkpoint_dir: Path,
    dev: str,
    device_note: str | None,
    on_epoch: Callable[[dict], None] | None,
    resume: bool,
) -> TrainResult:
    t_start = time.perf_counter()
    tr = cfg["training"]
    if bundle.num_interactions == 0:
        raise NoInteractionsError(
            "train: the graph has no user->product edges (user_product_edges is empty): there is "
            "nothing to learn from; serve the SQL popularity baseline for this tenant"
        )
    notes = [device_note] if device_note else []
    seed = int(tr["seed"])
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    st = _Setup(bundle, cfg, dev, rng)
    model = HeteroGAT(GraphMeta.from_data(bundle.data), cfg["model"]).to(dev)
    optimizers = [
        torch.optim.Adam(model.embedding_parameters(), lr=float(tr["lr_embedding"])),
        torch.optim.Adam(model.other_parameters(), lr=float(tr["lr_gnn"])),
    ]
    baseline = popularity_baseline(st)
    history: list[dict[str, float]] = []
    best_state: dict[str, Tensor] = copy.deepcopy(model.state_dict())
    best_epoch, best_mrr, bad_epochs, start_epoch = 0, -1.0, 0, 1
    stopped_early = False
    resumed_from: int | None = None
    patience = int(tr["patience"])
    max_epochs = int(tr["epochs"])

    state = ck.load_checkpoint(checkpoint_dir) if resume else None
    if state is not None:
        why = ck.mismatch(state, cfg, bundle.fingerprint)
        if why:
            log.warning("train: checkpoint in %s refused: %s; starting fresh", checkpoint_dir, why)
            notes.append(f"checkpoint refused: {why}")
        else:
            model.load_state_dict(state["model"])
            for opt, sd in zip(optimizers, state["optimizers"], strict=True):
                opt.load_state_dict(sd)
            history = list(state["history"])
            best_state = state["best_state"]
            best_epoch, best_mrr = int(state["best_epoch"]), float(state["best_val_mrr"])
            bad_epochs, stopped_early = int(state["bad_epochs"]), bool(state["stopped_early"])
            _set_rng_state(rng, state["rng"], dev)
            resumed_from = int(state["epoch"])
            start_epoch = resumed_from + 1
            log.info("train: resumed from epoch %d of %s", resumed_from, checkpoint_dir)

    log.info(
        "train: device=%s users=%d products=%d vehicles=%d edges=%d (val %d) negatives=%s "
        "popularity val MRR %.4f HR@10 %.4f",
        dev,
        st.num_users,
        st.num_products,
        st.num_vehicles,
        st.n_edges,
        len(st.val_idx),
        st.neg_counts,
        baseline["pop_mrr"],
        baseline["pop_hr10"],
    )
    epoch = start_epoch - 1
    for epoch in range(start_epoch, max_epochs + 1):
        if stopped_early:
            epoch -= 1
            break
        t0 = time.perf_counter()
        train_loss = _epoch(model, st, optimizers, rng, float(tr["grad_clip"]), epoch)
        metrics = _evaluate(model, st)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            **metrics,
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        if metrics["val_mrr"] > best_mrr + 1e-12:
            best_mrr, best_epoch, bad_epochs = metrics["val_mrr"], epoch, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        stopped_early = bad_epochs >= patience
        log.info(
            "epoch %3d  train_loss %.4f  val_loss %.4f  val_mrr %.4f (warm %.4f, pop %.4f)  "
            "hr10 %.4f  %.1fs",
            epoch,
            train_loss,
            metrics["val_loss"],
            metrics["val_mrr"],
            metrics["val_mrr_warm"],
            baseline["pop_mrr"],
            metrics["val_hr10"],
            row["seconds"],
        )
        ck.save_checkpoint(
            {
                "model": model.state_dict(),
                "optimizers": [o.state_dict() for o in optimizers],
                "epoch": epoch,
                "history": history,
                "best_state": best_state,
                "best_epoch": best_epoch,
                "best_val_mrr": best_mrr,
                "bad_epochs": bad_epochs,
                "stopped_early": stopped_early,
                "rng": _rng_state(rng, dev),
                "config_hash": ck.config_hash(cfg),
                "config": ck.hashed_config(cfg),
                "graph_fingerprint": bundle.fingerprint,
            },
            checkpoint_dir,
        )
        if on_epoch is not None:
            on_epoch(dict(row))
        if stopped_early:
            break
    epochs_run = history[-1]["epoch"] if history else 0

    model.load_state_dict(best_state)
    model = model.cpu().eval()
    wall = time.perf_counter() - t_start
    log.info(
        "train: %d epochs (best %d, val MRR %.4f vs popularity %.4f), early stop %s, %.1fs",
        epochs_run,
        best_epoch,
        best_mrr,
        baseline["pop_mrr"],
        stopped_early,
        wall,
    )
    return TrainResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        best_val_mrr=best_mrr,
        epochs_run=int(epochs_run),
        stopped_early=stopped_early,
        wall_s=wall,
        device=dev,
        resumed_from_epoch=resumed_from,
        negatives={
            **{k: float(v) for k, v in dict(tr["negatives"]).items()},
            "negatives_per_positive": float(tr["negatives_per_positive"]),
        },
        fallback=None,
        notes=notes,
        baseline=baseline,
    )
