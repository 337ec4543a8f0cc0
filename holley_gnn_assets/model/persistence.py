"""Saving and loading a trained HeteroGAT (weights + the config and graph it belongs to)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from holley_gnn_assets.graph.builder import GraphBundle
from holley_gnn_assets.model.hetero_gat import GraphMeta, HeteroGAT


def save_model(path: str | Path, model: HeteroGAT, cfg: dict, bundle: GraphBundle) -> Path:
    """Write the model atomically with its model config and graph fingerprint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "model_cfg": dict(cfg["model"]), "fingerprint": bundle.fingerprint}, tmp)
    os.replace(tmp, path)
    return path


def load_model(path: str | Path, bundle: GraphBundle) -> HeteroGAT:
    """Rebuild the model for ``bundle``; refuse weights trained on a different graph."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["fingerprint"] != bundle.fingerprint:
        raise ValueError(
            f"model {path} was trained on graph {state['fingerprint']}, "
            f"not on the given graph {bundle.fingerprint}"
        )
    model = HeteroGAT(GraphMeta.from_data(bundle.data), state["model_cfg"])
    model.load_state_dict(state["state_dict"])
    return model.eval()
