"""The ``holley-gnn`` command: generate a warehouse, run the pipeline, benchmark it."""

from __future__ import annotations

import argparse
import datetime as dt
import sys


def _cmd_synth(args: argparse.Namespace) -> int:
    from holley_gnn_assets.synth.generator import generate_warehouse

    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else None
    stats = generate_warehouse(args.out, scale=args.scale, seed=args.seed, signal=args.signal,
                               as_of=as_of, progress=True)
    rows = stats.get("rows", stats)
    print(f"wrote {args.out} ({args.scale}, seed {args.seed}, signal {args.signal})")
    if isinstance(rows, dict):
        for table, n in rows.items():
            if isinstance(n, int):
                print(f"  {table:<55} {n:>12,}")
    return 0


def _cmd_movielens(args: argparse.Namespace) -> int:
    from holley_gnn_assets.realdata.movielens import build_movielens_warehouse

    try:
        stats = build_movielens_warehouse(args.source, args.out, cold_share=args.cold_share,
                                          seed=args.seed, split=args.split)
    except ValueError as exc:  # a bad source or argument: the message names it
        sys.exit(f"holley-gnn movielens: {exc}")
    print(f"wrote {args.out} (MovieLens, {stats['split']} split, as-of {stats['as_of']}, "
          f"cutoff {stats['cutoff']}): {stats['n_test_clicks']:,} test clicks of "
          f"{stats['n_test_users']:,} users, {stats['n_cold_test_users']:,} of them cold "
          f"({stats['n_held_out']:,} held out)")
    for table, n in stats["rows"].items():
        print(f"  {table:<55} {n:>12,}")
    return 0


def _ensure_warehouse() -> None:
    """On a fresh machine with no warehouse configured, generate the demo warehouse."""
    from holley_gnn_assets.config.settings import ENV_WAREHOUSE, get_settings

    settings = get_settings()
    if settings.warehouse_kind != "duckdb":
        return
    path = settings.duckdb_path
    if settings.duckdb_path_from_env:
        if not path.exists():
            sys.exit(f"{ENV_WAREHOUSE}={path} does not exist: create one with "
                     f"`holley-gnn synth --scale demo --out {path}` or point it at your warehouse")
        return
    if not path.exists():
        from holley_gnn_assets.synth.generator import generate_warehouse

        print(f"no warehouse configured: generating the demo warehouse at {path}", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        generate_warehouse(path, scale="demo", seed=0, signal=1.0, progress=True)


def _cmd_run(args: argparse.Namespace) -> int:
    _ensure_warehouse()
    from holley_gnn_assets.commands.runner import run_pipeline

    return run_pipeline(job=args.job, as_of=args.as_of)


def _cmd_backfill(args: argparse.Namespace) -> int:
    _ensure_warehouse()
    from holley_gnn_assets.commands.backfill import run_backfill

    return run_backfill(args.start, args.end)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from exc


def _cmd_ui(args: argparse.Namespace) -> int:
    from holley_gnn_assets.commands.ui import run_ui
    from holley_gnn_assets.config.settings import get_settings

    return run_ui(get_settings(), host=args.host, port=args.port)


def _cmd_bench(args: argparse.Namespace) -> int:
    from holley_gnn_assets.commands.bench import run_bench

    return run_bench(scale=args.scale, seed=args.seed, signal=args.signal, reuse=not args.fresh)


def _cmd_variant(args: argparse.Namespace) -> int:
    import json
    import logging
    from pathlib import Path

    from holley_gnn_assets.commands.variants import (
        parse_overrides,
        recent_table,
        run_variant,
        variant_table,
    )

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        overrides = parse_overrides(args.set)
    except ValueError as exc:
        sys.exit(f"holley-gnn variant: {exc}")
    world = Path(args.world)
    row = run_variant(world, args.name, overrides, world_label=args.label or world.stem)
    out = Path(args.out)
    with out.open("a") as fh:
        fh.write(json.dumps(row, default=str) + "\n")
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    print(variant_table(rows), end="")
    print()
    print(recent_table(rows), end="")
    return 0


def _cmd_device_check(args: argparse.Namespace) -> int:
    import json
    import logging
    from pathlib import Path

    from holley_gnn_assets.commands.device_check import (
        DeviceUnavailableError,
        device_table,
        run_device_check,
    )
    from holley_gnn_assets.commands.variants import parse_overrides

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    world = Path(args.world)
    if not world.exists():
        sys.exit(f"holley-gnn device-check: world {world} does not exist")
    try:
        rows = run_device_check(world, args.devices, args.seeds, parse_overrides(args.set),
                                label=args.label)
    except (ValueError, DeviceUnavailableError) as exc:
        sys.exit(str(exc))
    if args.out:
        with Path(args.out).open("a") as fh:
            fh.writelines(json.dumps(r, default=str) + "\n" for r in rows)
    print(device_table(rows), end="")
    return 0


def _cmd_coverage(args: argparse.Namespace) -> int:
    from holley_gnn_assets.evaluation import coverage
    from holley_gnn_assets.evaluation.intervals import METHODS

    methods = tuple(args.methods or METHODS)
    if "user" not in methods:
        methods = (*methods, "user")  # the width reference
    worlds = coverage.scenarios(args.users)
    results = []
    for i, world in enumerate(worlds):
        results += coverage.simulate(world, args.replicates, methods, n_boot=args.boot,
                                     seed=args.seed + 1000 * i, win_band=args.win_band)
    print(f"{args.replicates} test sets per world, {args.boot} resamples, seed {args.seed}; "
          "cell: coverage of the 95% interval (w: mean width, fw: share of null test sets "
          "called a win)\n")
    print(coverage.coverage_table(results, worlds))
    print(coverage.verdicts(results, worlds), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="holley-gnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    from holley_gnn_assets.synth.scales import SCALES

    p = sub.add_parser("synth", help="write a synthetic Holley-like DuckDB warehouse")
    p.add_argument("--scale", choices=list(SCALES), default="demo",
                   help="dense, dense_tiny: every product fits every vehicle, most users engaged; "
                        "dense_cold: the same with a 60%% cold audience")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--signal", type=float, default=1.0,
                   help="0 = null world (popularity is optimal); > 0 plants vehicle affinity")
    p.add_argument("--as-of", default=None, help="the world's as-of date (YYYY-MM-DD)")
    p.add_argument("--out", required=True, help="path of the .duckdb file to write")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("movielens", help="write MovieLens-100K as a warehouse (real data)")
    p.add_argument("--source", required=True,
                   help="the recbole wheel/zip, or a folder with ml-100k.{inter,item,user}")
    p.add_argument("--out", required=True, help="path of the .duckdb file to write")
    p.add_argument("--cold-share", type=float, default=0.2,
                   help="share of users with history and test clicks held out as cold")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=["temporal", "per_user"], default="temporal")
    p.set_defaults(func=_cmd_movielens)

    p = sub.add_parser("run", help="materialize the whole asset graph in-process")
    p.add_argument("--job", choices=["full_retrain_job", "score_job"], default="full_retrain_job")
    p.add_argument("--as-of", default=None, type=_date,
                   help="the run's as-of date = its partition key (default: HOLLEY_GNN_AS_OF / "
                        "time.as_of, else the synthetic warehouse's date, else today UTC)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("backfill", help="score missed days: one score_job run per date (its "
                                        "own partition and cutoff), in-process")
    p.add_argument("--start", required=True, type=_date, help="first as-of date (YYYY-MM-DD)")
    p.add_argument("--end", required=True, type=_date, help="last as-of date, inclusive")
    p.set_defaults(func=_cmd_backfill)

    p = sub.add_parser("ui", help="the Dagster UI (dagster dev) on the instance `holley-gnn run` "
                                  "records into; schedules and sensors run while it is up")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=_cmd_ui)

    p = sub.add_parser("bench", help="run full_retrain_job on a generated world; time every step")
    p.add_argument("--scale", choices=list(SCALES), default="tiny")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--signal", type=float, default=1.0)
    p.add_argument("--fresh", action="store_true", help="regenerate the warehouse")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("variant", help="train and evaluate one model variant on a world "
                                       "(full_retrain_job's assets up to eval_report); append "
                                       "its row and print the table")
    p.add_argument("--world", required=True, help="a warehouse file (synth or movielens)")
    p.add_argument("--name", required=True, help="the variant's name in the table")
    p.add_argument("--label", default="", help="the world's name in the table (default: file)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="config override, repeatable, e.g. model.vehicle_attributes=true")
    p.add_argument("--out", default="variants.jsonl", help="JSON-lines file of result rows")
    p.set_defaults(func=_cmd_variant)

    p = sub.add_parser("device-check", help="train the model on each device with the same "
                                            "seeds; compare quality and time, paired by seed")
    p.add_argument("--world", required=True, help="a warehouse file (synth or movielens)")
    p.add_argument("--devices", nargs="+", default=["cpu", "cuda"], help="default: cpu cuda")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                   help="training seeds, each run on every device (default: 0 1 2)")
    p.add_argument("--label", default="", help="the world's name in the rows (default: file)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="config override, repeatable (training.seed is set per run)")
    p.add_argument("--out", default="", help="also append the rows to this JSON-lines file")
    p.set_defaults(func=_cmd_device_check)

    from holley_gnn_assets.evaluation.intervals import METHODS

    p = sub.add_parser("coverage", help="simulate the interval methods' coverage of a known "
                                        "GNN - SQL delta; print a Markdown table")
    p.add_argument("--replicates", type=int, default=200, help="test sets per world")
    p.add_argument("--boot", type=int, default=999, help="resamples per bootstrap interval")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--users", type=int, default=400, help="cold users per test set")
    p.add_argument("--win-band", type=float, default=0.01,
                   help="a null test set is a false win when CI low > 0 and delta >= this")
    p.add_argument("--methods", nargs="+", choices=list(METHODS), default=None)
    p.set_defaults(func=_cmd_coverage)

    args = parser.parse_args(argv)
    from holley_gnn_assets.config.settings import SettingsError

    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:  # a bad variable or config key: its message names it
        sys.exit(f"holley-gnn: {exc}")


if __name__ == "__main__":
    sys.exit(main())
