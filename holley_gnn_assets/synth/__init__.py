"""Synthetic Holley-like warehouse generator (DuckDB, source contract + ``synth_truth``)."""

from holley_gnn_assets.synth.generator import DEFAULT_AS_OF, generate_warehouse
from holley_gnn_assets.synth.scales import SCALES

__all__ = ["DEFAULT_AS_OF", "SCALES", "generate_warehouse"]
