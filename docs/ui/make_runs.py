"""Make the runs that ``take_screenshots.py`` shows: normal runs on a world, then a blocked one.

Usage (a private home; the lead uses ``--scale demo``)::

    python docs/ui/make_runs.py --home /tmp/holley_ui --scale tiny [--runs 3] [--config fast.yaml]

Generates ``HOME/world.duckdb`` once (``holley-gnn synth``), runs ``holley-gnn run`` ``--runs``
times (each a pipeline run and its publish run), then corrupts a copy-restored warehouse the
way the e2e test does (most image URLs ``http://``), runs ``holley-gnn run --job score_job``,
which the ``users_with_recs`` gate blocks (exit 1), and restores the warehouse. Every command
and its exit code are printed; a normal run that fails stops the script.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

FAULT_SHARE_PCT = 98  # as tests/test_ui_e2e.py: few users keep a row with an https image


def holley(args: list[str], env: dict[str, str], expect: int | None = 0) -> int:
    """``holley-gnn ARGS`` (through ``python -m``); its exit code, checked against ``expect``."""
    cmd = [sys.executable, "-m", "holley_gnn_assets.commands.cli", *args]
    print("$ holley-gnn " + " ".join(args), flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    summary = proc.stdout.split("=== holley-gnn run summary ===")[-1]
    print(summary.strip()[:3000] if "run" in args else proc.stdout[-500:])
    print(f"-> exit {proc.returncode}", flush=True)
    if expect is not None and proc.returncode != expect:
        sys.exit(f"holley-gnn {' '.join(args)} exited {proc.returncode}, expected {expect}:\n"
                 + proc.stderr[-3000:])
    return proc.returncode


def corrupt_images(warehouse: Path, share_pct: int = FAULT_SHARE_PCT) -> None:
    """Most products' image URLs become ``http://`` (the rules drop those products)."""
    import duckdb

    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE data_company_1950.import_items SET image_url = replace(image_url, "
                    f"'https://', 'http://') WHERE hash(sku) % 100 < {int(share_pct)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True, type=Path, help="HOLLEY_GNN_HOME to fill")
    parser.add_argument("--scale", default="tiny", help="holley-gnn synth --scale")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--signal", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3, help="normal runs before the fault")
    parser.add_argument("--job", default="full_retrain_job",
                        choices=["full_retrain_job", "score_job"],
                        help="job of the normal runs after the first (a retrain)")
    parser.add_argument("--config", type=Path, help="HOLLEY_GNN_CONFIG for every run")
    args = parser.parse_args()

    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    world = home / "world.duckdb"
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(HOLLEY_GNN_HOME=str(home), HOLLEY_GNN_WAREHOUSE=str(world))
    if args.config:
        env["HOLLEY_GNN_CONFIG"] = str(args.config.resolve())
    if not world.exists():
        holley(["synth", "--scale", args.scale, "--seed", str(args.seed), "--signal",
                str(args.signal), "--out", str(world)], env)
    for i in range(args.runs):
        holley(["run", "--job", "full_retrain_job" if i == 0 else args.job], env)
    backup = world.with_suffix(".before_fault")
    shutil.copyfile(world, backup)
    try:
        corrupt_images(world)
        code = holley(["run", "--job", "score_job"], env, expect=None)
    finally:
        shutil.copyfile(backup, world)
        backup.unlink()
    if code == 0:
        print("the faulted run was not blocked: its screenshots will show no failed gate")
        return 1
    print(f"\nruns made in {home}; now: HOLLEY_GNN_HOME={home} HOLLEY_GNN_WAREHOUSE={world} "
          "python docs/ui/take_screenshots.py --out docs/ui")
    return 0


if __name__ == "__main__":
    sys.exit(main())
