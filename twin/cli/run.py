"""``anode-twin run``: the live twin, on emulated PLCs by default or on a site's PLCs.

With no arguments it starts the emulated furnace and sputter-tool PLCs on free loopback ports,
runs the live twin of the default plant against them at an accelerated time factor, prints
the live table and writes the run folder. ``--site SITE.toml`` connects to PLCs that already
run, through the same code path. Ctrl-C stops cleanly and keeps what was recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import time
from pathlib import Path

from twin.config import DEFAULT_PLANT, load_plant
from twin.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the live twin against PLCs (emulated by default)",
                       description="Run the plant model live against OPC UA PLCs: emulated "
                                   "ones on loopback (default) or a site's (--site).")
    p.add_argument("file", nargs="?", default=None,
                   help="plant configuration (default plant_config/powder_line.toml)")
    p.add_argument("--site", default=None, metavar="SITE.toml",
                   help="plant file with [endpoints] and [tags] of PLCs that already run "
                        "(no emulators are started)")
    p.add_argument("--hours", type=float, default=24.0,
                   help="simulated hours to run live (default 24)")
    p.add_argument("--time-factor", type=float, default=2400.0,
                   help="simulated seconds per wall second (default 2400)")
    p.add_argument("--warmup-days", type=float, default=2.0,
                   help="simulated days run before the twin joins the line (default 2)")
    p.add_argument("--seed", type=int, default=1, help="run seed (default 1)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run folder (default runs/<timestamp>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration key (checked like the file); repeatable")
    p.add_argument("--no-server", action="store_true",
                   help="do not serve the twin's own OPC UA server")
    p.add_argument("--quiet", action="store_true", help="no live table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the live stack (asyncua) loads only for this command.
    from connectors.live.session import LiveOptions, run_live

    if not (math.isfinite(args.hours) and 0 < args.hours <= 24 * 365):
        raise UsageError(f"--hours must be in (0, 8760], got {args.hours:g}")
    if not (math.isfinite(args.time_factor) and 0 < args.time_factor <= 1e6):
        raise UsageError(f"--time-factor must be in (0, 1e6], got {args.time_factor:g}")
    if args.site and args.file:
        raise UsageError("give either a plant file or --site, not both")
    path = Path(args.site or args.file or DEFAULT_PLANT)
    cfg = load_plant(path, args.overrides)
    if args.site and not cfg.tags:
        raise UsageError(f"{path}: a site file needs [endpoints] and [tags]")
    out = Path(args.out) if args.out else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    if not (math.isfinite(args.warmup_days) and 0 <= args.warmup_days <= 365):
        raise UsageError(f"--warmup-days must be in [0, 365], got {args.warmup_days:g}")
    opts = LiveOptions(seed=args.seed, time_factor=args.time_factor, hours=args.hours,
                       warmup_days=args.warmup_days,
                       emulate=not args.site, plant_file=path,
                       overrides=tuple(args.overrides), site_dir=path.parent, out=out,
                       server=not args.no_server, quiet=args.quiet)
    # asyncua logs client notices (session timeout granted, no signing policy on a loopback
    # demo endpoint) as warnings; the gateway reports what matters itself.
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    outcome = asyncio.run(run_live(cfg, opts))
    s = outcome.result.summary
    state = "interrupted, saved" if outcome.interrupted else "done"
    print(f"{state}: {s['oxide_batches']} oxide batches, live stations "
          f"{', '.join(outcome.live_paths) or 'none'}; "
          f"{len(outcome.gaps)} communication gap(s)")
    if outcome.twin_url:
        print(f"twin OPC UA server was at {outcome.twin_url}")
    print(f"run folder: {outcome.folder}")
    return 130 if outcome.interrupted else 0
