"""Per-step Kubernetes settings as Dagster op tags (``dagster-k8s/config``).

The ``k8s_job_executor`` reads ``op_tags["dagster-k8s/config"]`` of each asset and
merges it into that step's pod; job-level tags never reach step pods, so the GPU
request must live on the asset itself (see field notes, "Dagster").
"""

from __future__ import annotations

import os
from typing import Any

from kubernetes.utils import parse_quantity

K8S_CONFIG_TAG = "dagster-k8s/config"
TRAINING_PRIORITY_CLASS = "holley-gnn-training"
"""Name of the PriorityClass in ``k8s/base/priorityclass.yaml``."""
GPU_IMAGE_ENV = "HOLLEY_GNN_GPU_IMAGE"
"""Env var naming the CUDA variant of the user-code image (set by k8s/helm/values.yaml)."""

_REQUIRED_KEYS = (
    "gpu_resource",
    "gpu_count",
    "node_selector",
    "tolerations",
    "train_cpu",
    "train_memory",
)
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "toleration_seconds"}


def _k8s_section(cfg: dict[str, Any]) -> dict[str, Any]:
    """Return ``cfg["k8s"]`` after checking that every key the tags need is there."""
    section = cfg.get("k8s")
    if not isinstance(section, dict):
        raise ValueError("config section 'k8s' is missing or not a mapping (gnn_config.yaml)")
    missing = [key for key in _REQUIRED_KEYS if key not in section]
    if missing:
        raise ValueError(f"config section 'k8s' lacks keys {missing} (gnn_config.yaml)")
    count = section["gpu_count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"k8s.gpu_count={count!r} must be a positive integer")
    if not isinstance(section["node_selector"], dict):
        raise ValueError("k8s.node_selector must be a mapping of node label -> value")
    if not isinstance(section["tolerations"], list):
        raise ValueError("k8s.tolerations must be a list of toleration mappings")
    return section


def _toleration(raw: Any, index: int) -> dict[str, Any]:
    """Convert one YAML toleration into the snake_case form dagster-k8s expects."""
    if not isinstance(raw, dict):
        raise ValueError(f"k8s.tolerations[{index}] must be a mapping, got {raw!r}")
    out = {("toleration_seconds" if k == "tolerationSeconds" else k): v for k, v in raw.items()}
    unknown = set(out) - _TOLERATION_KEYS
    if unknown:
        raise ValueError(f"k8s.tolerations[{index}] has unknown keys {sorted(unknown)}")
    return out


def _quantity(value: Any, what: str) -> str:
    """Return ``value`` as a Kubernetes quantity string, or raise naming the setting."""
    text = str(value).strip()
    try:
        if not text or parse_quantity(text) <= 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"{what}={value!r} is not a positive Kubernetes quantity") from None
    return text


def _resources(cpu: str, memory: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Requests for CPU, memory and ``extra``; limits for memory and ``extra`` only.

    No CPU limit: CFS throttling would only slow the step down, while the memory limit
    equal to the request keeps the pod from being the first evicted under node pressure.
    """
    requests = {"cpu": cpu, "memory": memory, **(extra or {})}
    limits = {"memory": memory, **(extra or {})}
    return {"requests": requests, "limits": limits}


def gpu_op_tags(cfg: dict[str, Any], image: str | None = None) -> dict[str, Any]:
    """Op tags that put a step on a GPU node: GPU limit, node selector, tolerations, priority.

    Built from config section ``k8s`` (gpu_resource, gpu_count, node_selector,
    tolerations, train_cpu, train_memory). ``image`` (default: env ``HOLLEY_GNN_GPU_IMAGE``)
    swaps the step's container image for the CUDA build; unset, the step keeps the run's image.
    Use as ``@asset(op_tags=gpu_op_tags(cfg))``.
    """
    k8s = _k8s_section(cfg)
    gpu = {str(k8s["gpu_resource"]): str(k8s["gpu_count"])}
    cpu = _quantity(k8s["train_cpu"], "k8s.train_cpu")
    memory = _quantity(k8s["train_memory"], "k8s.train_memory")
    container: dict[str, Any] = {"resources": _resources(cpu, memory, gpu)}
    image = image if image is not None else os.environ.get(GPU_IMAGE_ENV, "").strip() or None
    if image is not None:
        if not image.strip() or any(c.isspace() for c in image):
            raise ValueError(f"GPU image reference {image!r} is empty or contains whitespace")
        container["image"] = image
    return {
        K8S_CONFIG_TAG: {
            "container_config": container,
            "pod_spec_config": {
                "node_selector": {str(k): str(v) for k, v in k8s["node_selector"].items()},
                "tolerations": [_toleration(t, i) for i, t in enumerate(k8s["tolerations"])],
                "priority_class_name": TRAINING_PRIORITY_CLASS,
            },
        }
    }


def cpu_op_tags(cfg: dict[str, Any], cpu: str, memory: str) -> dict[str, Any]:
    """Op tags for a CPU-only step: CPU/memory requests and limits, no GPU, no GPU node.

    ``cfg`` is accepted for symmetry with :func:`gpu_op_tags` (and future keys);
    ``cpu``/``memory`` are Kubernetes quantities such as ``"4"`` and ``"8Gi"``.
    """
    del cfg  # no CPU-step keys in the config yet
    resources = _resources(_quantity(cpu, "cpu"), _quantity(memory, "memory"))
    return {K8S_CONFIG_TAG: {"container_config": {"resources": resources}}}
