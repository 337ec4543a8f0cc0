"""The entry points (holley-gnn run, backfill, bench, variant, device-check, ui) and the
runner behind them."""
