"""``anode-twin passport RUN_DIR``: each released batch as an Asset Administration Shell.

Writes ``RUN_DIR/passport/<batch>.aasx`` and ``<batch>.aas.json`` (or ``--out DIR``) for every
released charge, roll, sputter run or sheet, built with the Eclipse BaSyx Python SDK: digital
nameplate, material composition, product carbon footprint (cradle-to-gate, per kg), quality
with the release decision, the certificate of analysis as handover documentation, and the
genealogy. A batch that is not released gets no passport (said on stderr; with ``--batch``
it is an error, exit 2).
"""

from __future__ import annotations

import argparse
import sys

from twin.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("passport", help="batch passports (Asset Administration Shell, AASX)",
                       description="Write an AASX package and AAS JSON per released batch.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder (of simulate or run)")
    p.add_argument("--batch", default=None, metavar="ID", help="only this batch")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where to write (default RUN_DIR/passport)")
    p.set_defaults(func=passport)


def passport(args: argparse.Namespace) -> int:
    from twin.passport import write_passports

    result = write_passports(args.run_dir, args.out, batch=args.batch)
    for _bid, why in result.skipped:
        print(f"anode-twin passport: {why}", file=sys.stderr)
    for p in result.passports:
        fp = p.footprint
        print(f"{p.batch_id}: {p.aasx} ({fp.per_unit:.3g} kg CO2e/{fp.declared_unit} "
              "cradle-to-gate, "
              f"{fp.energy_kwh:.3g} kWh of steps, {100 * fp.share_estimated():.0f} % on "
              "estimated factors)")
    if not result.passports:
        raise UsageError(f"{args.run_dir}: no released batch: no passport written")
    print(f"{len(result.passports)} passport(s) in {result.out_dir}; "
          f"{len(result.skipped)} batch(es) not released, left out")
    return 0
