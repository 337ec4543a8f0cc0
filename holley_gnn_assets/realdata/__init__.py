"""Real (not generated) data converted into source-contract warehouses (Dagster-free)."""
