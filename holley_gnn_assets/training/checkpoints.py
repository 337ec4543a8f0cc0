"""Training checkpoints: atomic save, weights_only load, config/graph matching.

A checkpoint is a plain dict (tensors, numbers, strings, lists, dicts) so that it loads with
``torch.load(weights_only=True)``. It is written to a temporary file in the same directory and
moved into place with ``os.replace``, so a crash never leaves a half-written checkpoint.

Matching: ``config_hash`` covers every ``model`` value and every ``training`` value except the
ones that do not change the trajectory of an epoch (``epochs``: a run stopped by a small epoch
limit may be resumed with a larger one; ``device``). A mismatch is named (the differing config
keys, or the graph fingerprint) and the caller starts fresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from holley_gnn_assets.config.schema import PipelineConfig
from holley_gnn_assets.config.settings import flatten
from holley_gnn_assets.config.validation import typed
from holley_gnn_assets.training.runtime import rng_state, set_rng_state

if TYPE_CHECKING:
    from holley_gnn_assets.graph.builder import GraphBundle
    from holley_gnn_assets.training.early_stopping import EarlyStopping

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
NOT_HASHED = {"training.epochs", "training.device"}


def hashed_config(cfg: PipelineConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The flattened config values a checkpoint must agree on."""
    config = typed(cfg, PipelineConfig)
    sub = {"model": config.model.model_dump(mode="json"),
           "training": config.training.model_dump(mode="json")}
    return {k: v for k, v in flatten(sub).items() if k not in NOT_HASHED}


def config_hash(cfg: PipelineConfig | Mapping[str, Any]) -> str:
    """Stable hash of ``hashed_config``."""
    blob = json.dumps(hashed_config(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def checkpoint_path(checkpoint_dir: str | Path) -> Path:
    """Where the (single, latest) checkpoint of a directory lives."""
    return Path(checkpoint_dir) / CHECKPOINT_NAME


def save_checkpoint(state: dict[str, Any], checkpoint_dir: str | Path) -> Path:
    """Write ``state`` atomically (temp file + os.replace)."""
    path = checkpoint_path(checkpoint_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(checkpoint_dir: str | Path) -> dict[str, Any] | None:
    """The checkpoint of a directory, or None when there is none or it cannot be read."""
    path = checkpoint_path(checkpoint_dir)
    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # a corrupt file must not stop training: start fresh, say why
        log.warning("checkpoint %s could not be read (%s): starting fresh", path, exc)
        return None


def mismatch(state: dict[str, Any], cfg: PipelineConfig | Mapping[str, Any],
             fingerprint: str) -> str | None:
    """Why a checkpoint does not belong to this run (None when it does)."""
    if state.get("graph_fingerprint") != fingerprint:
        return (
            f"graph fingerprint differs (checkpoint {state.get('graph_fingerprint')}, "
            f"graph {fingerprint})"
        )
    if state.get("config_hash") != config_hash(cfg):
        old = state.get("config", {}) or {}
        new = hashed_config(cfg)
        keys = sorted(k for k in set(old) | set(new) if str(old.get(k)) != str(new.get(k)))
        detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:5])
        return f"config differs in {detail or 'hash only'}"
    return None


def training_state(
    model: torch.nn.Module,
    optimizers: list[torch.optim.Optimizer],
    epoch: int,
    history: list[dict[str, float]],
    best_state: dict[str, torch.Tensor],
    stop: EarlyStopping,
    rng: np.random.Generator,
    device: str,
    cfg: PipelineConfig | Mapping[str, Any],
    bundle: GraphBundle,
    average: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """The checkpoint of a training run after ``epoch`` (what ``restore`` reads back)."""
    extra = {} if average is None else {"average": average.state_dict()}
    return {
        **extra,
        "model": model.state_dict(),
        "optimizers": [o.state_dict() for o in optimizers],
        "epoch": epoch,
        "history": history,
        "best_state": best_state,
        "best_epoch": stop.best_epoch,
        "best_val_mrr": stop.best_mrr,
        "bad_epochs": stop.bad_epochs,
        "stopped_early": stop.stopped,
        "rng": rng_state(rng, device),
        "config_hash": config_hash(cfg),
        "config": hashed_config(cfg),
        "graph_fingerprint": bundle.fingerprint,
    }


def restore(
    state: dict[str, Any],
    model: torch.nn.Module,
    optimizers: list[torch.optim.Optimizer],
    stop: EarlyStopping,
    rng: np.random.Generator,
    device: str,
    average: torch.nn.Module | None = None,
) -> tuple[list[dict[str, float]], dict[str, torch.Tensor]]:
    """Load a matching checkpoint into the run (and its weight average, if any); returns
    (history, best weights)."""
    model.load_state_dict(state["model"])
    if average is not None:
        average.load_state_dict(state["average"])
    for opt, sd in zip(optimizers, state["optimizers"], strict=True):
        opt.load_state_dict(sd)
    stop.best_epoch, stop.best_mrr = int(state["best_epoch"]), float(state["best_val_mrr"])
    stop.bad_epochs, stop.stopped = int(state["bad_epochs"]), bool(state["stopped_early"])
    set_rng_state(rng, state["rng"], device)
    return list(state["history"]), state["best_state"]
