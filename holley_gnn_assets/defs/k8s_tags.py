"""Per-step Kubernetes settings as Dagster op tags (``dagster-k8s/config``).

The ``k8s_job_executor`` reads ``op_tags["dagster-k8s/config"]`` of each asset and
merges it into that step's pod, then its own ``per_step_k8s_config`` of the step's op; job-level
tags never reach step pods (see field notes, "Dagster"). The CPU steps' tags are constants;
the GPU step's config depends on the settings (``k8s`` section, ``gpu_image``), so it is the
executor's ``per_step_k8s_config`` for ``gnn_model``, built with the executor from the settings
``build_defs`` receives (``defs/executor.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes.utils import parse_quantity

from holley_gnn_assets.config.schema import K8sConfig
from holley_gnn_assets.config.settings import ENV_GPU_IMAGE, Settings, get_settings
from holley_gnn_assets.config.validation import validate_section

K8S_CONFIG_TAG = "dagster-k8s/config"
TRAINING_PRIORITY_CLASS = "holley-gnn-training"
"""Name of the PriorityClass in ``k8s/base/priorityclass.yaml``."""
GPU_IMAGE_ENV = ENV_GPU_IMAGE
"""Env var naming the CUDA variant of the user-code image (set by k8s/helm/values.yaml)."""


def _k8s_and_image(source: Settings | Mapping[str, Any]) -> tuple[K8sConfig, str | None]:
    """The validated ``k8s`` section and the GPU image of a Settings object or a config dict.

    A config dict (the older call style) is validated here; its GPU image comes from the
    current settings (``HOLLEY_GNN_GPU_IMAGE``).
    """
    if isinstance(source, Settings):
        return source.config.k8s, source.gpu_image
    return validate_section(source, "k8s", K8sConfig), get_settings().gpu_image


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


def gpu_op_tags(settings: Settings | Mapping[str, Any],
                image: str | None = None) -> dict[str, Any]:
    """Op tags that put a step on a GPU node: GPU limit, node selector, tolerations, priority.

    Built from the settings' ``k8s`` section (gpu_resource, gpu_count, node_selector,
    tolerations, train_cpu, train_memory), validated when the settings were built. ``image``
    (default: the settings' ``gpu_image``, env ``HOLLEY_GNN_GPU_IMAGE``) swaps the step's
    container image for the CUDA build; unset, the step keeps the run's image.
    The k8s executor applies it to ``gnn_model`` (``defs/executor.py``, per_step_k8s_config).
    """
    k8s, default_image = _k8s_and_image(settings)
    gpu = {k8s.gpu_resource: str(k8s.gpu_count)}
    container: dict[str, Any] = {"resources": _resources(k8s.train_cpu, k8s.train_memory, gpu)}
    image = image if image is not None else default_image
    if image is not None:
        if not image.strip() or any(c.isspace() for c in image):
            raise ValueError(f"GPU image reference {image!r} is empty or contains whitespace")
        container["image"] = image
    return {
        K8S_CONFIG_TAG: {
            "container_config": container,
            "pod_spec_config": {
                "node_selector": dict(k8s.node_selector),
                "tolerations": [t.model_dump(exclude_none=True) for t in k8s.tolerations],
                "priority_class_name": TRAINING_PRIORITY_CLASS,
            },
        }
    }


def cpu_op_tags(cpu: str, memory: str) -> dict[str, Any]:
    """Op tags for a CPU-only step: CPU/memory requests and limits, no GPU, no GPU node.

    ``cpu``/``memory`` are Kubernetes quantities such as ``"4"`` and ``"8Gi"``.
    """
    resources = _resources(_quantity(cpu, "cpu"), _quantity(memory, "memory"))
    return {K8S_CONFIG_TAG: {"container_config": {"resources": resources}}}
