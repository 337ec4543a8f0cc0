"""Dagster resources: warehouse, MLflow, artifact storage."""
