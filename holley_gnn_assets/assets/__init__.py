"""Dagster assets: a thin layer over holley_gnn_assets.core."""
