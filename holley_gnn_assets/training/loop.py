"""Training loop (spec section 4), changed where the draft fails cold users.

Objective: link prediction with BCE on (positive, negative) user->product pairs. Positives are
weighted by ``training.positive_weight`` (default ``max_event_weight``: order 5 > cart 3 > view 1,
divided by its mean so the loss scale stays near 1; ``weight`` uses the decayed sum instead,
``none`` weighs all positives 1). Elsewhere: negatives (``negatives.py``), a step's sampled
computation graph (``sampler.py``), validation (``validation.py``), device/process (``runtime.py``).

Serving cold users (98% of recipients): every epoch a ``simulated_cold_share`` of the warm/hot
users with a vehicle lose all their edges in message passing and their supervision edges are
scored with ``HeteroGAT.cold_user_repr`` (vehicle + tier ``cold``), as a real cold user is
served; the other users' edges are split each epoch: a ``warm_supervision_share`` is supervised
in warm mode and hidden from message passing, the rest carry messages (no target-edge leakage).
Early stopping: on cold-mode validation MRR, after ``patience`` epochs without improvement.
With ``weight_average_decay`` set, an exponential moving average of the weights (one update
per epoch, ``torch.optim.swa_utils``) is what is validated and kept; training steps the raw ones.

Reproducibility: ``training.seed`` seeds torch and numpy; every epoch's randomness comes from
those two generators, whose states are checkpointed, so a resumed CPU run repeats an
uninterrupted one; with ``training.deterministic`` (CPU only) another process repeats it too.
No user->product edges at all raises ``NoInteractionsError`` (a ValueError):
a new tenant has nothing to learn from and should be served by the SQL baseline.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from holley_gnn_assets.config.schema import PipelineConfig
from holley_gnn_assets.config.validation import typed
from holley_gnn_assets.graph.builder import GraphBundle
from holley_gnn_assets.model.hetero_gat import GraphMeta, HeteroGAT
from holley_gnn_assets.training import checkpoints as ck
from holley_gnn_assets.training.early_stopping import EarlyStopping
from holley_gnn_assets.training.heap import release_freed_memory
from holley_gnn_assets.training.lift_weight import LiftChoice, choose_lift
from holley_gnn_assets.training.runtime import resolve_device, training_runtime
from holley_gnn_assets.training.sampler import NoInteractionsError, TrainingSetup
from holley_gnn_assets.training.validation import evaluate, popularity_baseline

__all__ = ["EarlyStopping", "NoInteractionsError", "TrainResult", "train"]

log = logging.getLogger(__name__)


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
    lift: LiftChoice = field(default_factory=LiftChoice)  # the look-alike lift's pool, weight
    prior_half_life: float = 0.0  # the prior count's half-life in days (0: all-time orders)


def _epoch(
    model: HeteroGAT,
    st: TrainingSetup,
    optimizers: list[torch.optim.Optimizer],
    rng: np.random.Generator,
    grad_clip: float,
    epoch: int,
) -> float:
    """One pass over this epoch's supervision edges; returns the mean training loss."""
    model.train()
    sup_idx, sup_cold, message = st.epoch_split(rng)
    n_sup = st.epoch_edges(len(sup_idx))  # already shuffled: a prefix is a random subset
    sup_idx, sup_cold = sup_idx[:n_sup], sup_cold[:n_sup]
    prop = st.propagation(model.propagation, message)
    count = st.data["product"].order_count
    total, n_seen = 0.0, 0
    bs = st.step_batch(len(sup_idx))
    for step, lo in enumerate(range(0, len(sup_idx), bs)):
        e, cold_b = sup_idx[lo : lo + bs], sup_cold[lo : lo + bs]
        users, pos = st.edge_user[e], st.edge_product[e]
        veh = st.user_vehicle[users]
        neg = st.negatives(veh, pos)
        warm_b = ~cold_b
        need = st.needed_nodes(users[warm_b], torch.cat([pos, neg.reshape(-1)]), veh)
        ids0, blocks, rows = st.sampled_blocks(len(model.convs), message, need)
        h = model(st.data, blocks, ids0, prop)
        vrow = rows["vehicle"][veh.clamp_min(0)]
        vh = torch.where((veh >= 0).unsqueeze(1), h["vehicle"][vrow.clamp_min(0)], 0.0)
        uz = vh.new_empty(len(users), model.embedding_dim)
        uz[cold_b] = model.cold_user_repr(vh[cold_b])
        own = h["user"][rows["user"][users[warm_b]]]
        uz[warm_b] = model.user_repr(vh[warm_b], own, st.user_tier[users[warm_b]])
        pz = model.product_repr(h["product"])
        pos_logit = model.logits(uz, pz[rows["product"][pos]], count[pos])
        neg_logit = model.logits(uz.unsqueeze(1), pz[rows["product"][neg]], count[neg])
        loss = pair_loss(st.loss, pos_logit, neg_logit, st.pos_weight[e])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"train loss is not finite at epoch {epoch} step {step}")
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        for opt in optimizers:
            opt.step()
        total += float(loss.detach()) * len(e)
        n_seen += len(e)
    return total / max(1, n_seen)


def weight_average(model: HeteroGAT, decay: float | None) -> AveragedModel | None:
    """An exponential moving average of the weights, updated once per epoch and the model that
    is validated and kept (``training.weight_average_decay``; None or 0: no average)."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(float(decay)), use_buffers=True)


def pair_loss(kind: str, pos_logit: Tensor, neg_logit: Tensor, weight: Tensor) -> Tensor:
    """``bce``: binary cross-entropy on each positive and negative; ``softmax``: cross-entropy
    of the positive against its own negatives (sampled softmax; the negatives are drawn
    uniformly among the products that fit the vehicle, the set evaluation ranks, so no
    proposal correction), both weighted per positive by ``weight``."""
    if kind == "bce":
        loss = F.binary_cross_entropy_with_logits(
            pos_logit, torch.ones_like(pos_logit), weight=weight
        )
        return loss + F.binary_cross_entropy_with_logits(neg_logit, torch.zeros_like(neg_logit))
    if kind == "softmax":
        logits = torch.cat([pos_logit.unsqueeze(1), neg_logit], dim=1)
        per_row = torch.logsumexp(logits, dim=1) - pos_logit
        return (per_row * weight).sum() / weight.sum().clamp_min(1e-9)
    raise ValueError(f"training.loss={kind!r}: expected bce or softmax")


def train(
    bundle: GraphBundle,
    cfg: PipelineConfig | Mapping[str, Any],
    checkpoint_dir: Path,
    device: str = "auto",
    on_epoch: Callable[[dict], None] | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train the HeteroGAT with early stopping on cold-mode validation MRR; see module doc.

    ``cfg``: the validated config (a mapping is validated first: a missing key is a
    SettingsError naming it). ``training.reuse_freed_memory`` and ``training.deterministic``
    hold for the run: ``runtime.training_runtime``.
    """
    config = typed(cfg, PipelineConfig)
    tr = config.training
    dev, note = resolve_device(device if device != "auto" else tr.device)
    with training_runtime(tr, dev):
        return _train(bundle, config, checkpoint_dir, dev, note, on_epoch, resume)


def _train(
    bundle: GraphBundle,
    cfg: PipelineConfig,
    checkpoint_dir: Path,
    dev: str,
    device_note: str | None,
    on_epoch: Callable[[dict], None] | None,
    resume: bool,
) -> TrainResult:
    t_start = time.perf_counter()
    tr = cfg.training
    notes = [device_note] if device_note else []
    torch.manual_seed(tr.seed)
    rng = np.random.default_rng(tr.seed)
    st = TrainingSetup(bundle, cfg, dev, rng)
    model = HeteroGAT(GraphMeta.from_data(bundle.data), cfg.model).to(dev)
    optimizers = [
        torch.optim.Adam(model.embedding_parameters(), lr=float(tr.lr_embedding)),
        torch.optim.Adam(model.other_parameters(), lr=float(tr.lr_gnn)),
    ]
    average = weight_average(model, tr.weight_average_decay)
    baseline = popularity_baseline(st)
    history: list[dict[str, float]] = []
    best_state: dict[str, Tensor] = copy.deepcopy(model.state_dict())
    stop = EarlyStopping(tr.patience)
    resumed_from: int | None = None
    state = ck.load_checkpoint(checkpoint_dir) if resume else None
    why = ck.mismatch(state, cfg, bundle.fingerprint) if state is not None else None
    if why:
        log.warning("train: checkpoint in %s refused: %s; starting fresh", checkpoint_dir, why)
        notes.append(f"checkpoint refused: {why}")
    elif state is not None:
        history, best_state = ck.restore(state, model, optimizers, stop, rng, dev, average)
        resumed_from = int(state["epoch"])
        log.info("train: resumed from epoch %d of %s", resumed_from, checkpoint_dir)

    log.info(
        "train: device=%s users=%d products=%d vehicles=%d edges=%d (val %d) negatives=%s "
        "popularity val MRR %.4f HR@10 %.4f",
        dev, st.num_users, st.num_products, st.num_vehicles, st.n_edges, len(st.val_idx),
        st.neg_counts, baseline["pop_mrr"], baseline["pop_hr10"],
    )  # fmt: skip
    for epoch in range((resumed_from or 0) + 1, tr.epochs + 1):
        if stop.stopped:
            break
        t0 = time.perf_counter()
        train_loss = _epoch(model, st, optimizers, rng, float(tr.grad_clip), epoch)
        release_freed_memory()  # the steps' freed heap: not kept beside validation's
        scored = model
        if average is not None:
            average.update_parameters(model)
            scored = average.module
        metrics = evaluate(scored, st)
        release_freed_memory()
        row = {"epoch": epoch, "train_loss": train_loss, **metrics}
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if stop.update(epoch, metrics["val_mrr"]):
            best_state = {k: v.detach().cpu().clone() for k, v in scored.state_dict().items()}
        log.info(
            "epoch %3d  train_loss %.4f  val_loss %.4f  val_mrr %.4f (warm %.4f, pop %.4f)  "
            "hr10 %.4f  %.1fs",
            epoch, train_loss, metrics["val_loss"], metrics["val_mrr"], metrics["val_mrr_warm"],
            baseline["pop_mrr"], metrics["val_hr10"], row["seconds"],
        )  # fmt: skip
        ck.save_checkpoint(
            ck.training_state(
                model, optimizers, epoch, history, best_state, stop, rng, dev, cfg, bundle, average
            ),
            checkpoint_dir,
        )
        if on_epoch is not None:
            on_epoch(dict(row))
    epochs_run = int(history[-1]["epoch"]) if history else 0

    model.load_state_dict(best_state)
    fallback = None
    if (cfg.recent.fallback_to_prior and model.prior_weight is not None
            and stop.best_mrr <= baseline["pop_mrr"]):
        # nothing learned over the prior on validation: serve the prior, not noise
        model.serve_prior()
        fallback = "prior"
        notes.append(f"best validation MRR {stop.best_mrr:.4f} <= the prior's "
                     f"{baseline['pop_mrr']:.4f}: the model serves the popularity prior")
    lift = choose_lift(model, st, list(cfg.model.lookalike_lift_weights),
                       list(cfg.model.lookalike_lift_neighbours))
    model = model.cpu().eval()
    wall = time.perf_counter() - t_start
    log.info(
        "train: %d epochs (best %d, val MRR %.4f vs popularity %.4f), early stop %s, %.1fs; "
        "look-alike lift weight %.2f (val MRR by weight: %s) over %d look-alikes (the count's "
        "val MRR by pool: %s)",
        epochs_run, stop.best_epoch, stop.best_mrr, baseline["pop_mrr"], stop.stopped, wall,
        lift.weight, {w: round(m, 4) for w, m in lift.val_mrr.items()}, lift.neighbours,
        {k: round(m, 4) for k, m in lift.count_val_mrr.items()},
    )  # fmt: skip
    return TrainResult(
        model=model,
        history=history,
        best_epoch=stop.best_epoch,
        best_val_mrr=stop.best_mrr,
        epochs_run=epochs_run,
        stopped_early=stop.stopped,
        wall_s=wall,
        device=dev,
        resumed_from_epoch=resumed_from,
        negatives={
            **{k: float(v) for k, v in tr.negatives.model_dump().items()},
            "negatives_per_positive": float(tr.negatives_per_positive),
        },
        notes=notes,
        baseline=baseline,
        lift=lift,
        fallback=fallback,
        prior_half_life=float(bundle.stats["prior_half_life_days"]),
    )
