"""``anode-twin control``: operator decisions on advisory proposals, and the audit trail.

* ``anode-twin control list --run RUN_DIR`` – proposals and their state (open ones first);
* ``anode-twin control accept PROPOSAL_ID --run RUN_DIR --who NAME [--reason TEXT]``;
* ``anode-twin control reject PROPOSAL_ID --run RUN_DIR --who NAME [--reason TEXT]``;
* ``anode-twin control verify --run RUN_DIR`` – check the trail is intact (exit 1 if not).

A decision is appended to ``RUN_DIR/control_audit.jsonl``; the running loop applies an accepted
proposal when its batch starts. Exit codes: 0 ok, 1 trail not intact, 2 usage (unknown or
closed proposal, missing run directory, no name).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from twin.control.audit import AUDIT_FILE, decide, proposal_states, read_audit, verify_audit
from twin.errors import TwinError, UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``control`` command and its sub-commands."""
    p = sub.add_parser("control", help="accept or reject advisory proposals; audit trail")
    inner = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    for verb in ("accept", "reject"):
        q = inner.add_parser(verb, help=f"{verb} an open advisory proposal")
        q.add_argument("proposal_id", metavar="PROPOSAL_ID")
        q.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory")
        q.add_argument("--who", required=True, metavar="NAME", help="operator name")
        q.add_argument("--reason", default="", help="comment recorded with the decision")
        q.set_defaults(func=run_decide, accept=verb == "accept")
    q = inner.add_parser("list", help="list proposals and their state")
    q.add_argument("--run", required=True, metavar="RUN_DIR")
    q.add_argument("--all", action="store_true", help="also closed proposals")
    q.set_defaults(func=run_list)
    q = inner.add_parser("verify", help="check the audit trail is complete and unaltered")
    q.add_argument("--run", required=True, metavar="RUN_DIR")
    q.set_defaults(func=run_verify)
    p.set_defaults(func=lambda args: _no_action(p))


def _no_action(p: argparse.ArgumentParser) -> int:
    p.print_usage()
    return 2


def _trail(run: str) -> Path:
    d = Path(run)
    if not d.exists():
        raise UsageError(f"--run {run}: no such run directory")
    path = d / AUDIT_FILE if d.is_dir() else d
    if not path.exists():
        raise UsageError(f"{path}: no control audit trail in this run")
    return path


def run_decide(args: argparse.Namespace) -> int:
    """Record an accept/reject decision."""
    entry = decide(_trail(args.run), args.proposal_id, accept=args.accept, who=args.who,
                   reason=args.reason)
    print(f"{args.proposal_id}: {entry['result']} by {entry['who']} "
          f"(audit seq {entry['seq']}): {_changes(entry['before'], entry['after'])}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print proposals, open first."""
    states = proposal_states(read_audit(_trail(args.run)))
    rows = [v for v in states.values() if args.all or v["state"] == "open"]
    rows.sort(key=lambda v: (v["state"] != "open", v["seq"]))
    for v in rows:
        print(f"{v['proposal_id']}\t{v['state']}\t{_changes(v['before'], v['after'])}\t"
              f"{v['reason']}")
    if not rows:
        print("no open proposals" if not args.all else "no proposals")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Check the hash chain and record integrity."""
    path = _trail(args.run)
    problems = verify_audit(path)
    for line in problems:
        print(line)
    if problems:
        raise _Broken(f"{path}: {len(problems)} problem(s) in the audit trail")
    print(f"{path}: intact ({len(read_audit(path))} records)")
    return 0


class _Broken(TwinError):
    exit_code = 1


def _changes(before: dict[str, float], after: dict[str, float]) -> str:
    return ", ".join(f"{k} {before.get(k, float('nan')):.4g} -> {v:.4g}"
                     for k, v in after.items()) or "no change"
