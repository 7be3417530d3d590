"""``anode-twin report RUN_DIR [--batch ID] [--out DIR]``: batch release reports of a run."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="batch release reports (HTML, certificates of analysis)",
                       description="Assess every batch of a run folder against the product "
                       "specification and write per-batch HTML reports with JSON "
                       "certificates of analysis and a campaign summary (index.html).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder of simulate or run")
    p.add_argument("--batch", metavar="ID", help="only this batch (no campaign summary)")
    p.add_argument("--out", metavar="DIR", help="output folder (default RUN_DIR/report)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from twin.report import write_reports  # imported late: keeps `anode-twin --help` fast

    result = write_reports(args.run_dir, args.out, batch=args.batch)
    c = result.counts()
    n = len(result.assessments)
    where = result.index if result.index is not None else result.batch_pages[0]
    share = f"{c['released'] / n:.0%}" if n else "n/a"
    print(f"{n} batch(es): {c['released']} released, {c['held']} held, {c['rejected']} "
          f"rejected ({share} released); report: {where}")
    return 0
