"""graph: node/edge types and tiers (``types``), the graph builder (``builder``)."""
