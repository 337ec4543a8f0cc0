"""Measure training at scale: graph build and training seconds, epochs, peak RSS, device.

``python -m holley_gnn_assets.training.bench --parquet DIR`` reads the seven graph input
tables (``<name>.parquet``) from DIR; ``--duckdb PATH --as-of YYYY-MM-DD`` exports them from a
DuckDB warehouse first (``core.exports.run_exports``).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from holley_gnn_assets.graph.builder import TABLES, build_graph
from holley_gnn_assets.training.loop import train


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far (GB; Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def benchmark_training(tables: dict[str, pd.DataFrame], cfg: dict) -> dict:
    """Build the graph and train once (fresh checkpoint dir); print and return the figures."""
    t0 = time.perf_counter()
    bundle = build_graph(tables, cfg)
    build_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as ckdir:
        result = train(
            bundle,
            cfg,
            Path(ckdir),
            device=str(cfg["training"].get("device", "auto")),
            resume=False,
        )
    best = result.history[result.best_epoch - 1] if result.best_epoch else {}
    out = {
        "graph_build_s": round(build_s, 2),
        "train_s": round(result.wall_s, 1),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "mean_epoch_s": round(
            sum(h["seconds"] for h in result.history) / max(1, len(result.history)), 2
        ),
        "best_val_mrr": round(result.best_val_mrr, 4),
        "best_val_hr10": round(float(best.get("val_hr10", 0.0)), 4),
        "popularity_val_mrr": round(result.baseline["pop_mrr"], 4),
        "popularity_val_hr10": round(result.baseline["pop_hr10"], 4),
        "peak_rss_gb": round(peak_rss_gb(), 2),
        "device": result.device,
        "graph": bundle.stats["nodes"],
        "interaction_edges": bundle.num_interactions,
    }
    print(json.dumps(out))
    return out


def main(argv: list[str] | None = None) -> None:
    """CLI entry point (see module doc)."""
    from holley_gnn_assets.settings import load_config

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parquet", type=Path)
    ap.add_argument("--duckdb", type=Path)
    ap.add_argument("--as-of")
    ap.add_argument("--config")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = load_config(args.config)
    if args.parquet:
        tables = {n: pd.read_parquet(args.parquet / f"{n}.parquet") for n in TABLES}
    elif args.duckdb:
        import datetime as dt

        from holley_gnn_assets.settings import TimeWindows
        from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
        from holley_gnn_assets.warehouse.exports import run_exports

        wh = DuckDBWarehouse(str(args.duckdb))
        as_of = dt.date.fromisoformat(args.as_of) if args.as_of else dt.date.today()
        tables = run_exports(wh, cfg, TimeWindows.from_config(cfg, as_of))
    else:
        ap.error("give --parquet DIR or --duckdb PATH")
    benchmark_training({n: tables[n] for n in TABLES}, cfg)


if __name__ == "__main__":
    main()
