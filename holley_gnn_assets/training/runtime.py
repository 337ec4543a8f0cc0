"""Where and how training runs: device resolution, torch deterministic mode, the glibc heap
switch (``heap.reuse_freed_memory``), RNG state for checkpoints, finiteness checks."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor

from holley_gnn_assets.config.schema import TrainingConfig
from holley_gnn_assets.training.heap import reuse_freed_memory


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


@contextmanager
def deterministic(enabled: bool) -> Iterator[None]:
    """torch.use_deterministic_algorithms for the block (process-wide), then the old mode."""
    before = torch.are_deterministic_algorithms_enabled()
    if enabled:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


@contextmanager
def training_runtime(tr: TrainingConfig, device: str) -> Iterator[None]:
    """The process settings a training run holds (process-wide, restored afterwards).

    ``training.reuse_freed_memory`` keeps freed memory in the heap (``heap.py``:
    about half the epoch time on CPU, for a higher peak RSS). ``training.deterministic``
    (CPU only) runs torch's deterministic algorithms: without them two processes
    with the same seed drift apart from the first epoch (multi-threaded float reductions) and
    stop at different epochs.
    """
    with ExitStack() as stack:
        stack.enter_context(reuse_freed_memory(tr.reuse_freed_memory))
        stack.enter_context(deterministic(tr.deterministic and device == "cpu"))
        yield


def rng_state(rng: np.random.Generator, device: str) -> dict[str, Any]:
    """torch (and CUDA) and numpy generator states, for a checkpoint."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": rng.bit_generator.state}
    if device.startswith("cuda"):
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(rng: np.random.Generator, state: dict[str, Any], device: str) -> None:
    """Inverse of ``rng_state``."""
    torch.set_rng_state(state["torch"])
    rng.bit_generator.state = state["numpy"]
    if device.startswith("cuda") and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"])


def check_finite(t: Tensor, what: str) -> None:
    """Raise FloatingPointError naming ``what`` when ``t`` has NaN or inf values."""
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).sum())
        raise FloatingPointError(f"non-finite values in {what} ({bad} of {t.numel()})")
