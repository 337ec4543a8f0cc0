"""``holley-gnn bench``: run the code location's ``full_retrain_job`` and, when it succeeded, its
``publish_job`` (the runs ``holley-gnn run`` executes) in process on a generated world, and
report what each step cost.

- The world is generated once per (scale, seed, signal) under
  ``HOLLEY_GNN_HOME/bench/<scale>_seed<N>_signal<S>/warehouse.duckdb`` (``--fresh`` rebuilds it).
- The job runs on a temporary (ephemeral) Dagster instance with five resources pointed at that
  folder: the DuckDB ``warehouse``, the ``io_manager`` (stored asset values), ``artifacts``,
  ``mlflow`` (its own SQLite store, so its model registry and champion alias) and
  ``pipeline.home`` (eval reports), so a bench never changes what ``holley-gnn run`` reads.
- Step times are the run's step start/end events (``instance.get_run_step_stats``); each step's
  peak RSS is the maximum of a 20 ms background sample of this process's RSS over the step's
  window; the process peak is ``ru_maxrss`` (it includes generating the world).
- Training figures come from the ``gnn_model`` materialization metadata, Hit Rate@4 per arm from
  the ``eval_report.json`` the ``eval_report`` step writes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from dagster import DagsterInstance, ExecuteInProcessResult

from holley_gnn_assets.config.settings import home_dir

GIB = 1024**3
JOB = "full_retrain_job"
# steps whose times are compared: the GNN arm's output assembly, the SQL baseline, the write
GNN_OUTPUT_STEP = "gnn_recommendations"
SQL_BASELINE_STEP = "sql_baseline_recommendations"
OUTPUT_WRITE_STEP = "recommendations_table"


class RssSampler:
    """Samples this process's RSS every ``interval`` seconds in a daemon thread."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append((time.time(), self._proc.memory_info().rss))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.time(), self._proc.memory_info().rss))

    def peak_between(self, start: float, end: float) -> int:
        """Peak sampled RSS (bytes) over [start, end], widened by one interval each side."""
        lo, hi = start - self.interval, end + self.interval
        inside = [rss for t, rss in self.samples if lo <= t <= hi]
        if inside:
            return max(inside)
        return min(self.samples, key=lambda s: abs(s[0] - start))[1] if self.samples else 0


def world_dir(scale: str, seed: int, signal: float) -> Path:
    """The bench folder of one generated world under the home."""
    path = home_dir() / "bench" / f"{scale}_seed{seed}_signal{signal:g}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_world(work: Path, scale: str, seed: int, signal: float, fresh: bool) -> dict[str, Any]:
    """Generate the world's warehouse unless a complete one is cached (or ``fresh``)."""
    from holley_gnn_assets.synth import generate_warehouse

    path = work / "warehouse.duckdb"
    if path.exists() and not fresh:
        return {"path": str(path), "reused": True, "seconds": 0.0}
    stats = generate_warehouse(path, scale=scale, seed=seed, signal=signal, progress=True)
    return {"path": str(path), "reused": False, "seconds": stats["seconds"]}


def bench_resources(work: Path) -> dict[str, Any]:
    """The code location's resources pointed at the bench world (see the module doc)."""
    from holley_gnn_assets.defs.io_managers import TablesIOManager
    from holley_gnn_assets.defs.resources import (
        ArtifactsResource,
        MlflowTracking,
        PipelineSettings,
        WarehouseResource,
    )

    for stale in ("tables", "artifacts", "mlartifacts"):  # every bench starts from scratch
        shutil.rmtree(work / stale, ignore_errors=True)
    (work / "mlflow.db").unlink(missing_ok=True)  # an empty model registry ...
    warehouse = WarehouseResource(kind="duckdb", duckdb_path=str(work / "warehouse.duckdb"))
    _drop_published(warehouse)  # ... so no output table or publish log of an earlier bench
    return {
        "warehouse": warehouse,
        "io_manager": TablesIOManager(base_path=str(work / "tables")),
        "artifacts": ArtifactsResource(location=str(work / "artifacts")),
        "pipeline": PipelineSettings(home=str(work)),
        "mlflow": MlflowTracking(tracking_uri=f"sqlite:///{work / 'mlflow.db'}",
                                 artifact_location=(work / "mlartifacts").as_uri()),
    }


def _drop_published(warehouse: Any) -> None:
    """Drop the bench world's output table and its publish log (written by an earlier bench,
    they name model versions of the registry the bench has just emptied)."""
    from holley_gnn_assets.config.settings import get_settings
    from holley_gnn_assets.recommend.publish import log_table

    cfg = get_settings().cfg
    wh = warehouse.get()
    for dataset, table in (log_table(cfg), (cfg["output"]["dataset"], cfg["output"]["table"])):
        wh.drop_table(dataset, table)


def run_job(work: Path, instance: DagsterInstance) -> list[ExecuteInProcessResult]:
    """Execute the code location's ``full_retrain_job`` in process with the bench resources,
    then (when it succeeded) its ``publish_job`` with the same resources."""
    from holley_gnn_assets.commands.runner import execute_publish
    from holley_gnn_assets.config.settings import get_settings
    from holley_gnn_assets.definitions import defs
    from holley_gnn_assets.defs.partitions import partition_key_of, run_date

    job_def = defs.resolve_job_def(JOB)
    resources = bench_resources(work)
    key = partition_key_of(run_date(get_settings(), warehouse=resources["warehouse"].get()))
    log_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    result = job_def.execute_in_process(run_config=log_config, instance=instance,
                                        resources=resources, raise_on_error=False,
                                        partition_key=key)
    if not result.success:  # the output write is its own run (defs/publish_runs.py)
        return [result]
    return [result, execute_publish(result.run_id, instance, defs, resources)]


def step_rows(instance: DagsterInstance, run_id: str, rss: RssSampler) -> list[dict[str, Any]]:
    """One row per step of the run, in start order: status, seconds, peak sampled RSS."""
    rows = []
    for st in instance.get_run_step_stats(run_id):
        start, end = st.start_time, st.end_time
        seconds = round(end - start, 3) if start is not None and end is not None else None
        peak = rss.peak_between(start, end) if seconds is not None else None
        rows.append({
            "step": st.step_key,
            "status": st.status.value if st.status else "NOT_STARTED",
            "seconds": seconds,
            "peak_rss_gb": None if peak is None else round(peak / GIB, 3),
            "_start": start or float("inf"),
        })
    rows.sort(key=lambda r: (r["_start"], r["step"]))
    for r in rows:
        del r["_start"]
    return rows


def training_figures(assets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Epochs, best validation MRR and epoch time from the gnn_model materialization."""
    meta = assets.get("gnn_model")
    if not meta:
        return {}
    epochs = int(meta.get("epochs_run", 0))
    wall = float(meta.get("wall_seconds", 0.0))
    return {"epochs_run": epochs, "best_epoch": meta.get("best_epoch"),
            "best_val_mrr": round(float(meta.get("best_val_mrr", 0.0)), 4),
            "stopped_early": meta.get("stopped_early"), "device": meta.get("device"),
            "train_wall_s": wall, "mean_epoch_s": round(wall / epochs, 2) if epochs else None}


ARM_STEPS = {"gnn": GNN_OUTPUT_STEP, "sql": SQL_BASELINE_STEP}
ARM_KEYS = ("score_rows", "user_score_rows", "users_short_of_4", "users_short_capped",
            "users_capped")


def scale_figures(assets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What grows with users x candidates: co-purchase edges, the estimate made before
    training, each arm's score rows and its users short of four (and of them, cut)."""
    graph = assets.get("heterodata", {})
    out: dict[str, Any] = {
        "co_purchase_pairs": assets.get("product_product_edges", {}).get("dagster/row_count"),
        "estimated_score_rows": graph.get("estimated_score_rows"),
        "estimated_score_gb": graph.get("estimated_score_gb")}
    for arm, step in ARM_STEPS.items():
        meta = assets.get(step, {})
        out[arm] = {k: meta.get(k) for k in ARM_KEYS}
    return out


def hit_rates(report_path: Path, since: float) -> dict[str, Any]:
    """Hit Rate@4 per arm and tier from the eval report this run wrote ({} when absent)."""
    if not report_path.exists() or report_path.stat().st_mtime < since:
        return {}
    report = json.loads(report_path.read_text())
    out: dict[str, Any] = {"decision": report.get("decision"), "tiers": {}}
    for tier, block in (report.get("tiers") or {}).items():
        arms = {arm: round(float(m["hit_rate@4"]), 4) for arm, m in block.items()
                if isinstance(m, dict) and m.get("hit_rate@4") is not None}
        out["tiers"][tier] = {"n_users": block.get("n_users"), "hit_rate@4": arms}
    return out


def output_comparison(steps: list[dict[str, Any]]) -> dict[str, float | None]:
    """The GNN arm's output assembly, the SQL baseline and the output write (seconds)."""
    by_key = {r["step"]: r["seconds"] for r in steps}
    gnn, sql = by_key.get(GNN_OUTPUT_STEP), by_key.get(SQL_BASELINE_STEP)
    return {"gnn_output_s": gnn, "sql_baseline_s": sql,
            "output_write_s": by_key.get(OUTPUT_WRITE_STEP),
            "gnn_over_sql": round(gnn / sql, 3) if gnn and sql else None}


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def step_table(steps: list[dict[str, Any]]) -> str:
    """The printed step table (markdown)."""
    lines = ["| step | status | seconds | peak RSS in step (GB) |", "|---|---|---:|---:|"]
    lines += [f"| {r['step']} | {r['status']} | {_fmt(r['seconds'], '.3f')} | "
              f"{_fmt(r['peak_rss_gb'], '.3f')} |" for r in steps]
    return "\n".join(lines)


def _print_summary(out: dict[str, Any]) -> None:
    print("\n" + step_table(out["steps"]))
    cmp_ = out["output_vs_sql"]
    print(f"\njob {JOB} run {out['run_id']}: {'SUCCESS' if out['success'] else 'FAILED'} "
          f"in {out['job_s']:.1f}s (world {out['world']['seconds']:.1f}s"
          f"{', cached' if out['world']['reused'] else ''}); process peak RSS "
          f"{out['peak_rss_gb']:.2f} GB, sampled during the job {out['job_peak_rss_gb']:.2f} GB; "
          f"cpu threads {os.cpu_count()}")
    print(f"GNN output assembly ({GNN_OUTPUT_STEP}) {_fmt(cmp_['gnn_output_s'], '.3f')}s vs "
          f"SQL baseline ({SQL_BASELINE_STEP}) {_fmt(cmp_['sql_baseline_s'], '.3f')}s = "
          f"{_fmt(cmp_['gnn_over_sql'], '.2f')}x; output write ({OUTPUT_WRITE_STEP}) "
          f"{_fmt(cmp_['output_write_s'], '.3f')}s")
    tr = out["training"]
    if tr:
        print(f"training: {tr['epochs_run']} epochs (best {tr['best_epoch']}), best val MRR "
              f"{tr['best_val_mrr']:.4f}, {tr['train_wall_s']:.1f}s, "
              f"{_fmt(tr['mean_epoch_s'], '.2f')}s/epoch on {tr['device']}")
    sc = out["bounds"]
    print(f"co-purchase pairs {sc['co_purchase_pairs']}; estimated score/rule rows "
          f"{sc['estimated_score_rows']} ({sc['estimated_score_gb']} GB)")
    for arm in ARM_STEPS:
        a = sc[arm]
        print(f"{arm}: {a['score_rows']} score rows ({a['user_score_rows']} on own-node users); "
              f"users short of 4: {a['users_short_of_4']}, of them with candidates cut "
              f"{a['users_short_capped']} (users cut {a['users_capped']})")
    ev = out["eval"]
    for tier, block in ev.get("tiers", {}).items():
        arms = ", ".join(f"{arm} {v:.4f}" for arm, v in block["hit_rate@4"].items())
        print(f"Hit Rate@4 {tier} ({block['n_users']} users): {arms}")
    if ev:
        print(f"decision: {ev.get('decision')}")
    if out["failed_steps"]:
        print("failed steps: " + ", ".join(out["failed_steps"]))


def run_bench(scale: str = "tiny", seed: int = 0, signal: float = 1.0,
              reuse: bool = True) -> int:
    """Generate (or reuse) the world, run the job, print the figures, write ``bench.json``."""
    from holley_gnn_assets.commands.runner import summarize_runs

    t_all = time.perf_counter()
    work = world_dir(scale, seed, signal)
    world = ensure_world(work, scale, seed, signal, fresh=not reuse)
    print(f"bench: {JOB} on {world['path']}", flush=True)
    started = time.time()
    with DagsterInstance.ephemeral() as instance, RssSampler() as rss:
        t_job = time.perf_counter()
        results = run_job(work, instance)
        job_s = time.perf_counter() - t_job
        steps = [row for r in results for row in step_rows(instance, r.run_id, rss)]
    result = results[0]
    summary = summarize_runs(results)
    out = {
        "scale": scale, "seed": seed, "signal": signal, "world": world, "job": JOB,
        "run_id": result.run_id, "publish_run_id": summary["publish_run_id"],
        "success": summary["success"],
        "failed_steps": summary["failed_steps"], "failed_checks": summary["failed_checks"],
        "steps": steps, "job_s": round(job_s, 2),
        "end_to_end_s": round(time.perf_counter() - t_all, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
        "job_peak_rss_gb": round(max((s for _, s in rss.samples), default=0) / GIB, 2),
        "output_vs_sql": output_comparison(steps),
        "training": training_figures(summary["assets"]),
        "bounds": scale_figures(summary["assets"]),
        "eval": hit_rates(work / "eval_report.json", started),
    }
    _print_summary(out)
    path = home_dir() / "bench.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    print(f"wrote {path}")
    return 0 if summary["success"] else 1
