"""``anode-twin plc furnace|sputter``: run an emulated PLC (OPC UA server) until stopped.

Prints the endpoint URL on one line as soon as the server listens (``--port 0``: the port the
OS chose), then serves until SIGINT/SIGTERM and exits 0 after a clean shutdown.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from connectors.emulators import KINDS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plc", help="run an emulated furnace or sputter-tool PLC (OPC UA server)")
    p.add_argument("kind", choices=KINDS, help="which tool to emulate")
    p.add_argument("--name", help="tool name: endpoint path and NodeId root (default KIND1)")
    p.add_argument("--port", type=int,
                   help="TCP port (default from the plant file, 4841/4842; 0 = any free port)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default loopback)")
    p.add_argument("--time-factor", type=float, default=1.0,
                   help="process seconds per wall-clock second (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the hidden true process")
    p.add_argument("--config", help="plant file (default: the shipped line with this tool)")
    p.add_argument("--truth", default=None, metavar="NAME|FILE",
                   help="the hidden process the PLC runs: a shipped truth (nominal, "
                        "aged_furnace, other_kinetics) or a truth file; default nominal")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a plant-file key (checked like the file); repeatable")
    p.add_argument("--tick", type=float, default=0.1, dest="tick_s",
                   help="wall-clock update period of the process values, s (default 0.1)")
    p.add_argument("--secure", action="store_true",
                   help="Basic256Sha256 SignAndEncrypt only, username/password users")
    p.add_argument("--users", help="users file for --secure (TOML, [users.<name>] role and "
                   "password_env/password_file); default: ANODE_TWIN_*_PASSWORD variables")
    p.add_argument("--pki", help="certificate directory for --secure (own/, trusted/, "
                   "rejected/; default ./pki-<name>)")
    p.add_argument("--truth-log", metavar="FILE",
                   help="append each finished batch's true oxide here (JSON lines): the "
                        "emulator's ground truth, to validate a twin against")
    p.add_argument("--parent-pid", type=int, metavar="PID",
                   help="stop (as on SIGTERM) when process PID is no longer this PLC's parent; "
                        "set by anode-twin run, so its PLCs die with it")
    p.add_argument("--watch-stdin", action="store_true",
                   help="stop (as on SIGTERM) at end of file on standard input (a pipe from "
                        "the process that started this PLC)")
    p.add_argument("--pdeathsig", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # asyncua loads here, not when the command line is built (half a second for every other
    # command).
    from connectors.emulators.runner import ParentWatch, build_server, quiet_asyncua, serve
    from connectors.emulators.security import SecuritySettings, load_accounts

    quiet_asyncua()
    security = None
    if args.secure:
        name = args.name or f"{args.kind}1"
        security = SecuritySettings(Path(args.pki or f"pki-{name}"), load_accounts(args.users))
    server = build_server(args.kind, name=args.name, port=args.port,
                          time_factor=args.time_factor, seed=args.seed, config=args.config,
                          host=args.host, tick_s=args.tick_s, security=security,
                          overrides=args.overrides, truth=args.truth,
                          truth_log=args.truth_log)
    watch = ParentWatch(args.parent_pid, args.watch_stdin, args.pdeathsig)
    asyncio.run(serve(server, lambda url: print(url, flush=True), watch))
    return 0
