"""Deployment helpers: Kubernetes op tags for the Dagster k8s_job_executor."""

from holley_gnn_assets.deploy.k8s_tags import cpu_op_tags, gpu_op_tags

__all__ = ["cpu_op_tags", "gpu_op_tags"]
