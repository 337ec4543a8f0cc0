"""The executor of the code location, chosen by the settings (``HOLLEY_GNN_EXECUTOR``).

``in_process`` (default), ``multiprocess``, or ``k8s`` (dagster-k8s ``k8s_job_executor``: one
pod per step; ``gnn_model`` carries the GPU pod tags).
"""

from __future__ import annotations

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

from holley_gnn_assets.settings import Settings


def executor_from_settings(settings: Settings) -> ExecutorDefinition:
    """The executor named by ``settings.executor`` (validated when the settings were built)."""
    if settings.executor == "multiprocess":
        return multiprocess_executor
    if settings.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return in_process_executor
