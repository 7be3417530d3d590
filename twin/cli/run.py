"""``anode-twin run``: the live twin, on emulated PLCs by default or on a site's PLCs.

With no arguments it runs both shipped lines side by side: the default powder line
(``plant_config/powder_line.toml``, its oxidation furnace on an emulated furnace PLC) and the
thin-film line (``thin_film_line.toml``, its first sputter tool on an emulated sputter-tool PLC);
the PLCs are started on free loopback ports, the live table is printed and one run folder per
line is written (``OUT/line1``, ``OUT/line2``). With a plant file, only that line runs.
``--site SITE.toml`` connects to PLCs that already
run, through the same code path. Ctrl-C stops cleanly and keeps what was recorded.

The twin's own OPC UA server checks roles itself (users from ``--users FILE``: viewer,
operator, engineer; passwords as salted hashes). On loopback (no ``--site``) anonymous
sessions may read and browse but nobody without the operator role may accept or reject a
proposal; with ``--site`` it serves SignAndEncrypt only (Basic256Sha256 and
Aes256_Sha256_RsaPss), username and X.509 user tokens, no anonymous sessions, its certificate
and trusted client certificates in ``--server-pki`` (default ``./pki-twin``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from twin.config import CONFIG_DIR, DEFAULT_PLANT, load_plant
from twin.errors import UsageError

if TYPE_CHECKING:  # asyncua loads only for this command, not when the parser is built
    from connectors.twin_server import ServerSecurity
    from connectors.web.server import WebOptions


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the live twin against PLCs (emulated by default)",
                       description="Run the plant model live against OPC UA PLCs: emulated "
                                   "ones on loopback (default) or a site's (--site).")
    p.add_argument("file", nargs="?", default=None,
                   help="plant configuration (default: both shipped lines, powder_line.toml "
                        "and thin_film_line.toml, side by side)")
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
    p.add_argument("--truth", default=None, metavar="NAME|FILE",
                   help="the hidden process the emulated PLCs run (default nominal); the twin "
                        "never reads it")
    p.add_argument("--calibration-from", default=None, metavar="RUN_DIR",
                   help="start each tool's calibration where this earlier run of the twin "
                        "left it (default: the plant file's; never the simulated warm-up)")
    p.add_argument("--no-server", action="store_true",
                   help="do not serve the twin's own OPC UA server")
    p.add_argument("--users", default=None, metavar="FILE",
                   help="users of the twin's OPC UA server (TOML, [users.<name>] role = "
                        "viewer|operator|engineer and password_hash, password_env, "
                        "password_file or certificate); needed with --site")
    p.add_argument("--server-pki", default=None, metavar="DIR",
                   help="certificate directory of the twin's OPC UA server (own/, trusted/, "
                        "rejected/; default ./pki-twin with --site, none on loopback)")
    add_web_arguments(p, serve=True)
    p.add_argument("--quiet", action="store_true", help="no live table")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run whose twin was killed (its folder, or the folder "
                        "of its lines): same plant, seed and options from its journal; what "
                        "it did is replayed from the journal, nothing is run again")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the live stack (asyncua) loads only for this command.
    from connectors.live.session import LiveOptions, run_lines

    if args.resume:
        return _resume(args)
    if not (math.isfinite(args.hours) and 0 < args.hours <= 24 * 365):
        raise UsageError(f"--hours must be in (0, 8760], got {args.hours:g}")
    if not (math.isfinite(args.time_factor) and 0 < args.time_factor <= 1e6):
        raise UsageError(f"--time-factor must be in (0, 1e6], got {args.time_factor:g}")
    if not (math.isfinite(args.warmup_days) and 0 <= args.warmup_days <= 365):
        raise UsageError(f"--warmup-days must be in [0, 365], got {args.warmup_days:g}")
    if args.site and args.file:
        raise UsageError("give either a plant file or --site, not both")
    truth = None
    if args.truth is not None:
        if args.site:
            raise UsageError("--truth sets the emulated PLCs' hidden process; a --site has "
                             "real PLCs")
        from twin.hidden.config import load_truth, truth_path

        tpath = truth_path(args.truth)
        load_truth(tpath)  # a bad truth file stops here, with its one-line error
        truth = str(tpath.resolve())
    start: dict[str, tuple[float, ...]] = {}
    if args.calibration_from:
        from twin.control.plant_hooks import calibration_of_run

        start = calibration_of_run(args.calibration_from)
    out = Path(args.out) if args.out else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    paths = ([Path(args.site or args.file)] if (args.site or args.file)
             else [DEFAULT_PLANT, CONFIG_DIR / "thin_film_line.toml"])
    lines = []
    for path in paths:
        cfg = load_plant(path, args.overrides)
        if args.site and not cfg.tags:
            raise UsageError(f"{path}: a site file needs [endpoints] and [tags]")
        folder = out / cfg.plant.name if len(paths) > 1 else out
        lines.append((cfg, LiveOptions(
            seed=args.seed, time_factor=args.time_factor, hours=args.hours,
            warmup_days=args.warmup_days, emulate=not args.site, plant_file=path,
            overrides=tuple(args.overrides), site_dir=path.parent, out=folder,
            server=not args.no_server, quiet=args.quiet, truth=truth,
            calibration_start={k: v for k, v in start.items()
                               if k.split(".", 1)[0] == cfg.plant.name})))
    # After the plant files: a file that is no site file is the first thing to say.
    security = _server_security(args)
    for _, opts in lines:
        opts.server_security = security
    web = web_options(args)
    # asyncua logs client notices (session timeout granted, no signing policy on a loopback
    # demo endpoint) as warnings; the gateway reports what matters itself.
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    outcomes = asyncio.run(run_lines(lines, web=web))
    for outcome in outcomes:
        s = outcome.result.summary
        state = "interrupted, saved" if outcome.interrupted else "done"
        print(f"{s['plant']}: {state}: {s['oxide_batches']} oxide batches, live stations "
              f"{', '.join(outcome.live_paths) or 'none'}; "
              f"{len(outcome.gaps)} communication gap(s); run folder: {outcome.folder}")
    return 130 if any(o.interrupted for o in outcomes) else 0


def _resume(args: argparse.Namespace) -> int:
    """``--resume RUN_DIR``: each line folder with a journal continues where it was."""
    from connectors.live.session import resume_options, run_lines
    from twin.store.journal import JOURNAL_FILE

    root = Path(args.resume)
    folders = ([root] if (root / JOURNAL_FILE).is_file()
               else sorted(p.parent for p in root.glob(f"*/{JOURNAL_FILE}")))
    if not folders:
        raise UsageError(f"--resume {root}: no {JOURNAL_FILE} in it or in its line folders")
    security = _server_security(args)
    lines = [resume_options(f, server=not args.no_server, quiet=args.quiet,
                            server_security=security) for f in folders]
    web = web_options(args)
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    outcomes = asyncio.run(run_lines(lines, web=web))
    for outcome in outcomes:
        state = "interrupted, saved" if outcome.interrupted else "done"
        print(f"{outcome.result.summary['plant']}: resumed, {state}; run folder: "
              f"{outcome.folder}")
    return 130 if any(o.interrupted for o in outcomes) else 0


def _server_security(args: argparse.Namespace) -> ServerSecurity | None:
    """The twin server's :class:`ServerSecurity` (None without a server)."""
    if args.no_server:
        return None
    from connectors.security_common import load_accounts
    from connectors.twin_server import ServerSecurity

    if args.site and not args.users:
        raise UsageError("--site serves the twin's OPC UA server secured (SignAndEncrypt, "
                         "users only): give --users FILE, or --no-server")
    accounts = load_accounts(args.users, who="anode-twin run") if args.users else {}
    if args.site:
        return ServerSecurity(accounts, Path(args.server_pki or "pki-twin"), secure_only=True)
    return ServerSecurity(accounts, Path(args.server_pki) if args.server_pki else None)


def add_web_arguments(p: argparse.ArgumentParser, *, serve: bool) -> None:
    """``--web-host``, ``--web-port`` (and for ``run``: ``--no-web``)."""
    if serve:
        p.add_argument("--no-web", action="store_true", help="do not serve the web view")
    p.add_argument("--web-host", default="127.0.0.1", metavar="ADDR",
                   help="address the web view listens on (default 127.0.0.1, loopback; any "
                        "other address needs --users: every page then needs a login)")
    p.add_argument("--web-port", type=int, default=None, metavar="N",
                   help="port of the web view (default: a free one, printed as 'web view: "
                        "URL')")


def web_options(args: argparse.Namespace) -> WebOptions | None:
    """The web view's host, port and accounts (None with ``--no-web``)."""
    if getattr(args, "no_web", False):
        return None
    from connectors.security_common import load_accounts
    from connectors.web.server import WebOptions, is_loopback

    if args.web_port is not None and not 0 <= args.web_port <= 65535:
        raise UsageError(f"--web-port must be in [0, 65535], got {args.web_port}")
    if not is_loopback(args.web_host) and not args.users:
        raise UsageError(f"--web-host {args.web_host} is reachable from other machines: give "
                         "--users FILE (every page then needs a login)")
    accounts = load_accounts(args.users, who="anode-twin") if args.users else {}
    return WebOptions(args.web_host, args.web_port, accounts)
