"""``anode-twin serve RUN_DIR``: the web view of a finished run, read-only.

The same pages as the live twin's web view (line, last batch of each tool, batches with
their reports and certificates, proposals and the audit trail, alarms, calibration), from the
run folder (``batches.parquet`` and what lies beside it) or, for a run whose twin was killed
before it wrote its folder, from a temporary export of its journal. Nothing in RUN_DIR is
written; proposals cannot be decided nor alarms acknowledged. A folder of several lines
(``anode-twin run``'s default) or a study's run folders serve one line each. Runs until
Ctrl-C (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

from twin.cli.run import add_web_arguments, web_options


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="the web view of a finished run (read-only)",
                       description="Serve the web view's pages for a finished run folder "
                                   "(read-only), until Ctrl-C.")
    p.add_argument("run_dir", metavar="RUN_DIR",
                   help="run folder (of run or simulate), or a folder of line folders")
    p.add_argument("--users", default=None, metavar="FILE",
                   help="users (same file as the twin's OPC UA server); needed with a "
                        "non-loopback --web-host")
    add_web_arguments(p, serve=False)
    p.add_argument("--seconds", type=float, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    from connectors.web.app import WebView
    from connectors.web.auth import WebAuth
    from connectors.web.server import WebServer, is_loopback
    from connectors.web.sources import folder_sources

    opts = web_options(args)
    assert opts is not None
    sources = folder_sources(Path(args.run_dir))

    async def main() -> None:
        view = WebView(sources, WebAuth(dict(opts.accounts),
                                        anonymous_read=is_loopback(opts.host)))
        server = WebServer(view, opts.host, opts.port)
        await server.start()
        print(f"web view: {server.url}  ({', '.join(s.line for s in sources)}, read-only; "
              "Ctrl-C stops)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        try:
            if args.seconds is not None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.seconds)
            else:
                await stop.wait()
        finally:
            await server.stop()

    asyncio.run(main())
    return 0
