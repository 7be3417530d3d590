"""``anode-twin study FILE.toml``: run a what-if study and print its summary table."""

from __future__ import annotations

import argparse
import os
import sys

from twin.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "study", help="run a what-if throughput study (scenarios x replications)",
        description="Run every scenario of a study file with common random numbers, print "
                    "the summary table and write Parquet, plots and an HTML report. A rerun "
                    "resumes: stored replications are not computed again.")
    p.add_argument("file", help="study file (TOML), e.g. plant_config/studies/add_mill.toml")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="local worker processes (default: the machine's cores; "
                            "1 runs serially)")
    where.add_argument("--dask", default=None, metavar="ADDR",
                       help="run on Dask: 'local' starts a LocalCluster, tcp://HOST:PORT "
                            "joins a running scheduler (needs the [dask] extra)")
    p.add_argument("--replications", type=int, default=None, metavar="N",
                   help="run exactly N replications per scenario (overrides the file)")
    p.add_argument("--days", type=float, default=None, metavar="D",
                   help="horizon of each replication, days (overrides the file)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="study folder (default: runs/studies/NAME)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from twin.studies.definition import load_study
    from twin.studies.driver import run_and_report
    from twin.studies.report import ranking_text, summary_frame, text_table
    from twin.studies.runner import Executor

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.dask is not None and args.dask != "local" and "://" not in args.dask:
        raise UsageError(f"--dask {args.dask!r}: expected 'local' or tcp://HOST:PORT")
    study = load_study(args.file, days=args.days, replications=args.replications)
    out = args.out or os.path.join("runs", "studies", study.name)
    executor: Executor = ("dask" if args.dask
                          else "serial" if args.workers == 1 else "processes")
    result, stats, files = run_and_report(
        study, out, executor=executor, workers=args.workers,
        dask_address=args.dask or "local", progress=not args.quiet)
    print(f"study {study.name}: {len(study.scenarios)} scenarios x {stats.replications} "
          f"replications of {study.days:g} days, warm-up {result.warmup_h / 24:.2f} d "
          f"({result.warmup_how}); {stats.computed} computed, {stats.reused} reused "
          f"in {stats.wall_s:.1f} s")
    print(text_table(summary_frame(study, result)))
    print("which change buys the most throughput (paired with the base, 95 % CI):")
    print(ranking_text(result))
    if stats.unmet:
        print(f"precision targets not met at max_replications: {'; '.join(stats.unmet)}",
              file=sys.stderr)
    print(f"report: {files['report']}")
    return 3 if stats.unmet else 0
