"""Synthetic Holley-like warehouse generator (DuckDB, source contract + ``synth_truth``).

Scales (``scales.SCALES``): sparse ``tiny``, ``demo``, ``full`` (a few percent of users with any
history) and dense ``dense``, ``dense_tiny`` (every product fits every vehicle, 90% of users
engaged with ~100 interactions each).
"""

from holley_gnn_assets.synth.generator import DEFAULT_AS_OF, generate_warehouse
from holley_gnn_assets.synth.scales import SCALES

__all__ = ["DEFAULT_AS_OF", "SCALES", "generate_warehouse"]
