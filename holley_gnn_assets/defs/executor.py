"""The executor of the code location and the steps' retry policies, from the settings.

``HOLLEY_GNN_EXECUTOR`` picks ``in_process`` (default), ``multiprocess``, or ``k8s``: the
dagster-k8s ``k8s_job_executor`` (one pod per step) configured so that every step's pod
requests ``k8s.step_cpu`` / ``k8s.step_memory`` (memory limit = request, no CPU limit);
an asset's own ``dagster-k8s/config`` op tag (exports, scoring) is deep-merged over that
default, and the executor's ``per_step_k8s_config`` (``gnn_model``: the GPU, its node and
image, from the settings' ``k8s`` section) over both.

Retry policies (``retries`` section): warehouse steps (exports, both arms, the output write)
and ``gnn_model`` (which resumes from its last checkpoint) retry with exponential backoff.
A failed blocking asset check is not retried: Dagster raises it outside the user-code
boundary, so a data problem fails the step once.
"""

from __future__ import annotations

from typing import Any

from dagster import (
    Backoff,
    ExecutorDefinition,
    RetryPolicy,
    in_process_executor,
    multiprocess_executor,
)

from holley_gnn_assets.config.settings import Settings, get_settings
from holley_gnn_assets.defs.k8s_tags import K8S_CONFIG_TAG, cpu_op_tags, gpu_op_tags


def step_k8s_config(settings: Settings) -> dict[str, Any]:
    """The ``step_k8s_config`` of the k8s executor: every step's default CPU/memory."""
    k8s = settings.config.k8s
    return cpu_op_tags(k8s.step_cpu, k8s.step_memory)[K8S_CONFIG_TAG]


GPU_STEPS = ("gnn_model",)
"""The ops whose pods get the GPU (``per_step_k8s_config``)."""


def per_step_k8s_config(settings: Settings) -> dict[str, Any]:
    """The ``per_step_k8s_config`` of the k8s executor: the GPU config of ``GPU_STEPS``."""
    gpu = gpu_op_tags(settings)[K8S_CONFIG_TAG]
    return {op: gpu for op in GPU_STEPS}


def k8s_executor_config(settings: Settings) -> dict[str, Any]:
    """Config of the ``k8s_job_executor``: step pod defaults, the GPU step's pod; step retries
    enabled."""
    return {"step_k8s_config": step_k8s_config(settings),
            "per_step_k8s_config": per_step_k8s_config(settings), "retries": {"enabled": {}}}


def executor_from_settings(settings: Settings) -> ExecutorDefinition:
    """The executor named by ``settings.executor`` (validated when the settings were built)."""
    if settings.executor == "multiprocess":
        return multiprocess_executor
    if settings.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(k8s_executor_config(settings), name="k8s")
    return in_process_executor


def _policy(max_retries: int, delay_s: float) -> RetryPolicy:
    return RetryPolicy(max_retries=max_retries, delay=delay_s, backoff=Backoff.EXPONENTIAL)


def warehouse_retry_policy(settings: Settings | None = None) -> RetryPolicy:
    """Retries of the warehouse steps (exports, both arms, output) on transient errors."""
    retries = (settings or get_settings()).config.retries
    return _policy(retries.warehouse_max_retries, retries.delay_s)


def training_retry_policy(settings: Settings | None = None) -> RetryPolicy:
    """Retries of ``gnn_model`` (a retry resumes from the last checkpoint)."""
    retries = (settings or get_settings()).config.retries
    return _policy(retries.training_max_retries, retries.delay_s)
