"""``anode-twin export RUN_DIR``: a live run's folder, rebuilt from its journal."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="rebuild a live run's folder from its journal",
                       description="Write the tables, audit trail and run.json of a live "
                       "run folder from its journal (journal.sqlite): after the twin was "
                       "killed, what it had committed up to then.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder of `anode-twin run` (one line)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from twin.store.export import export_run  # imported late: keeps `--help` fast

    out = export_run(args.run_dir)
    print(f"run folder: {out}")
    return 0
