"""The ``anode-twin`` command line.

Thin by design: each sub-command module parses its arguments, loads configuration and calls one
library function. ``main(argv) -> int`` is what the console script and the tests call.

Each sub-command lives in its own module of this package and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func`` (``args -> int``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from twin import __version__
from twin.errors import TwinError

# Order is the order shown by ``--help``. Each name is a module of this package.
COMMANDS: tuple[str, ...] = (
    "run", "serve", "simulate", "oxide", "validate", "plc", "study", "report", "passport",
    "control", "export",
)


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="anode-twin",
        description="Digital twin of a Si/Sn-alloy anode plant with a nanometre oxide skin.",
    )
    parser.add_argument("--version", action="version", version=f"anode-twin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        importlib.import_module(f"twin.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code (0 ok, 1 runtime error, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except TwinError as exc:
        print(f"anode-twin {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"anode-twin {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
