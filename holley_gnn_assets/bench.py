"""``holley-gnn bench``: every stage timed with its peak RSS, on the same core code the assets call.

Peak RSS per stage is sampled by a background thread (psutil, every 20 ms) and includes what the
process already held; the process-wide peak (``ru_maxrss``) is printed too.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from holley_gnn_assets.settings import TimeWindows, home_dir, load_config

GIB = 1024**3


class StageTimer:
    """Collects (stage, seconds, peak RSS) rows."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._proc = psutil.Process()

    @contextlib.contextmanager
    def stage(self, name: str, **extra: Any) -> Iterator[dict[str, Any]]:
        """Time a block and sample its peak RSS."""
        peak = [self._proc.memory_info().rss]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.02):
                peak[0] = max(peak[0], self._proc.memory_info().rss)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        row: dict[str, Any] = {"stage": name, **extra}
        start = time.perf_counter()
        print(f"bench: {name} ...", flush=True)
        try:
            yield row
        finally:
            row["seconds"] = round(time.perf_counter() - start, 2)
            stop.set()
            thread.join()
            row["peak_rss_gb"] = round(max(peak[0], self._proc.memory_info().rss) / GIB, 2)
            self.rows.append(row)
            print(f"bench: {name} {row['seconds']:.1f}s peak {row['peak_rss_gb']:.2f} GB",
                  flush=True)


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| stage | seconds | peak RSS (GB) | notes |", "|---|---:|---:|---|"]
    for r in rows:
        notes = ", ".join(f"{k}={v}" for k, v in r.items()
                          if k not in {"stage", "seconds", "peak_rss_gb"})
        lines.append(f"| {r['stage']} | {r['seconds']:.1f} | {r['peak_rss_gb']:.2f} | {notes} |")
    return "\n".join(lines)


def run_bench(scale: str = "tiny", seed: int = 0, signal: float = 1.0, reuse: bool = True,
              overrides: dict[str, Any] | None = None) -> int:
    """Run every stage at ``scale``; print the table and write ``bench.json`` under the home."""
    from holley_gnn_assets.evaluation import report as evaluation
    from holley_gnn_assets.graph.builder import build_graph
    from holley_gnn_assets.model import persistence as model_io
    from holley_gnn_assets.quality import qa_gates as qa
    from holley_gnn_assets.recommend.embeddings import compute_embeddings
    from holley_gnn_assets.recommend.gnn_scores import score_gnn
    from holley_gnn_assets.recommend.sql_baseline import run_sql_baseline, sql_ranked_for_test_users
    from holley_gnn_assets.synth.generator import generate_warehouse
    from holley_gnn_assets.training.loop import train
    from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
    from holley_gnn_assets.warehouse.exports import export_file

    cfg = load_config(overrides=overrides)
    home = home_dir()
    work = home / "bench" / f"{scale}_seed{seed}_signal{signal:g}"
    work.mkdir(parents=True, exist_ok=True)
    wh_path = work / "warehouse.duckdb"
    timer = StageTimer()
    t_all = time.perf_counter()

    with timer.stage("synth", reused=bool(reuse and wh_path.exists())):
        if not (reuse and wh_path.exists()):
            generate_warehouse(wh_path, scale=scale, seed=seed, signal=signal, progress=True)
    wh = DuckDBWarehouse(str(wh_path))
    windows = TimeWindows.from_config(cfg, wh.synthetic_as_of())
    tables: dict[str, Any] = {}
    with timer.stage("export") as row:
        for sql_file in ("gnn/export_nodes.sql", "gnn/export_edges.sql",
                         "gnn/export_test_set.sql"):
            tables.update(export_file(wh, sql_file, cfg, windows))
        row["users"] = len(tables["user_nodes"])
        row["test_clicks"] = len(tables["test_clicks"])
    with timer.stage("graph build") as row:
        bundle = build_graph(tables, cfg)
        row["edges"] = int(sum(bundle.data[et].edge_index.shape[1]
                               for et in bundle.data.edge_types))
    with timer.stage("training") as row, tempfile.TemporaryDirectory() as ckpt:
        result = train(bundle, cfg, checkpoint_dir=Path(ckpt), device=cfg["training"]["device"],
                       resume=False)
        row.update(epochs=result.epochs_run, best_val_mrr=round(result.best_val_mrr, 4),
                   device=str(result.device))
    model_path = work / "model.pt"
    model_io.save_model(model_path, result.model, cfg, bundle)
    with timer.stage("embeddings"):
        emb = compute_embeddings(result.model, bundle, tables["user_nodes"])
    with timer.stage("gnn scoring (output, all rules)") as row:
        recs, _ = score_gnn(emb, tables, cfg, scoring_date=windows.as_of)
        row["users_with_recs"] = len(recs)
    gnn_s = timer.rows[-1]["seconds"]
    with timer.stage("sql baseline (output)") as row:
        sql_recs, _ = run_sql_baseline(wh, cfg, windows, scoring_date=windows.as_of,
                                       with_ranked=False)
        row["users_with_recs"] = len(sql_recs)
    sql_s = timer.rows[-1]["seconds"]
    eval_users = evaluation.test_window_users(tables["test_clicks"], tables["test_events"])
    with timer.stage("ranked lists at the cutoff (GNN, test users, depth 20)") as row:
        _, gnn_ranked = score_gnn(emb, tables, cfg, scoring_date=windows.cutoff,
                                  only_users=eval_users)
        row["users"] = int(gnn_ranked["email_lower"].nunique())
    with timer.stage("ranked lists at the cutoff (SQL, test users, depth 20)") as row:
        sql_ranked = sql_ranked_for_test_users(wh, cfg, windows, windows.cutoff)
        row["users"] = int(sql_ranked["email_lower"].nunique())
    with timer.stage("evaluation (metrics, bootstrap, references, report)") as row:
        report = evaluation.evaluate({"gnn": gnn_ranked, "sql": sql_ranked},
                                     tables["user_nodes"], tables["test_clicks"],
                                     tables["test_events"], cfg, wh.read_truth(), tables=tables,
                                     as_of=windows.as_of, cutoff=windows.cutoff)
        row["decision"] = report.get("decision")
    with timer.stage("qa checks") as row:
        results = qa.run_qa(recs, tables["product_nodes"], tables["user_purchases"],
                            tables["user_nodes"], cfg, windows.as_of)
        row["failed"] = sum(not r.passed for r in results)
    with timer.stage("output write"):
        wh.write_output_table(recs, cfg["output"]["dataset"], cfg["output"]["table"])
    total = round(time.perf_counter() - t_all, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    ratio = gnn_s / sql_s if sql_s else float("nan")
    print("\n" + _table(timer.rows))
    print(f"\nend to end: {total:.1f}s; process peak RSS {peak:.2f} GB; "
          f"GNN scoring / SQL baseline = {ratio:.2f}x ({gnn_s:.1f}s / {sql_s:.1f}s); "
          f"cpu threads {os.cpu_count()}")
    print("\n" + evaluation.report_markdown(report))
    out = {"scale": scale, "seed": seed, "signal": signal, "stages": timer.rows,
           "end_to_end_s": total, "peak_rss_gb": round(peak, 2),
           "gnn_over_sql_scoring": round(ratio, 3), "eval": report}
    (home / "bench.json").write_text(json.dumps(out, indent=2, default=str))
    print(f"wrote {home / 'bench.json'}")
    return 0
