"""Append-only audit trail of the control loops: proposals, decisions, writes, calibration.

Every proposal, operator decision, setpoint write (with its result), hold, outlier and mode
change is one JSON object on one line of ``RUN_DIR/control_audit.jsonl``:

``seq``, ``time_utc`` (wall clock of the write), ``sim_time_s``, ``kind``, ``loop`` (tool path),
``batch_id``, ``proposal_id``, ``before``, ``after``, ``reason``, ``who``, ``result`` and
``prev_sha256`` (hash of the previous line).

Why JSON lines and not Parquet through the store: an audit record must be durable the moment
it is made (a crash one second later must not lose a written setpoint), which needs an append
plus ``fsync`` per record; Parquet files are written whole. Crash safety:

* the file is only ever opened for appending; each record is one ``write`` of a whole line
  followed by ``fsync``; an exclusive ``flock`` serialises writers (the live twin and the
  ``anode-twin control accept`` command may append at the same time);
* a line cut short by a crash is never rewritten: the next writer starts a new line after it
  and :func:`verify_audit` reports it;
* each line carries the SHA-256 of the previous line, so a deleted or edited record breaks the
  chain and :func:`verify_audit` names the line.

The SimPy model never does I/O: its loops write to an :class:`AuditBuffer`, which the run
(outside the SimPy processes) drains into an :class:`AuditTrail` after each slice of
simulated time or at the end of the run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from twin.errors import UsageError

try:  # POSIX; elsewhere writers are not serialised (one writer at a time is then the rule)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

AUDIT_FILE = "control_audit.jsonl"
GENESIS = "0" * 64

Kind = Literal["proposal", "decision", "write", "expire", "calibration", "outlier", "hold",
               "mode", "abort"]
KINDS: frozenset[str] = frozenset(
    {"proposal", "decision", "write", "expire", "calibration", "outlier", "hold", "mode",
     "abort"})


@dataclass(frozen=True)
class AuditRecord:
    """One auditable event of a control loop.

    Attributes
    ----------
    kind : str
        ``proposal``, ``decision``, ``write``, ``expire``, ``calibration``, ``outlier``,
        ``hold`` or ``mode``.
    loop : str
        Dotted path of the tool the loop controls (``line1.oxidizer1``).
    batch_id : str
        Batch the record is about (``''`` when none).
    before, after : Mapping[str, Any]
        State before and after (setpoints with units in the names, calibration values ...).
    reason : str
        Why, in words a process engineer reads.
    who : str
        ``controller``, ``calibration`` or the operator's name.
    sim_time_s : float or None
        Simulation (or live process) time, s.
    proposal_id : str
        Proposal the record belongs to (``''`` when none).
    result : str
        Outcome: ``open``, ``advice`` (in-step advice, not for decision), ``accepted``,
        ``rejected``, ``ok``, ``failed: ...``, ``held`` ...
    predicted_nm : Mapping[str, float]
        A proposal's predicted thickness ``before`` and ``after`` the change, nm (what an
        operator weighs before accepting it); empty for other records.
    """

    kind: str
    loop: str
    batch_id: str = ""
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    who: str = "controller"
    sim_time_s: float | None = None
    proposal_id: str = ""
    result: str = ""
    predicted_nm: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"audit record kind must be one of {sorted(KINDS)}, "
                             f"got {self.kind!r}")
        if not self.who:
            raise ValueError("audit record needs 'who'")


class AuditSink(Protocol):
    """Where a control loop sends its records (a file, or a buffer inside SimPy)."""

    def record(self, rec: AuditRecord) -> None:
        """Keep one record."""
        ...

    def decision(self, proposal_id: str) -> AuditRecord | None:
        """The operator decision on ``proposal_id`` recorded so far, or None."""
        ...


class AuditBuffer:
    """In-memory sink for the SimPy model (no I/O inside SimPy processes).

    Records are kept in order until :meth:`drain_into` moves them to a file trail.
    """

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self._decisions: dict[str, AuditRecord] = {}

    def record(self, rec: AuditRecord) -> None:
        """Keep ``rec`` in memory."""
        self.records.append(rec)
        if rec.kind == "decision":
            self._decisions[rec.proposal_id] = rec

    def decision(self, proposal_id: str) -> AuditRecord | None:
        """Decision recorded in this buffer for ``proposal_id``, or None."""
        return self._decisions.get(proposal_id)

    def drain_into(self, trail: AuditTrail) -> int:
        """Append every buffered record to ``trail`` (in order) and empty the buffer."""
        n = len(self.records)
        trail.record_many(self.records)
        self.records.clear()
        return n


class AuditTrail:
    """Append-only JSON-lines audit file, fsync'ed per record, hash chained.

    Parameters
    ----------
    path : str or Path
        The audit file, or a run directory (then ``RUN_DIR/control_audit.jsonl``).
    clock : callable, optional
        Wall clock returning an aware :class:`datetime.datetime` (tests pass a fixed one).
    """

    def __init__(self, path: str | Path, *,
                 clock: Any = None) -> None:
        p = Path(path)
        self.path = p / AUDIT_FILE if p.is_dir() else p
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, rec: AuditRecord) -> dict[str, Any]:
        """Append ``rec`` durably; return the entry as written (with ``seq`` and hash)."""
        return self.record_many([rec])[0]

    def record_many(self, records: list[AuditRecord]) -> list[dict[str, Any]]:
        """Append ``records`` in order under one lock and one fsync; return the entries.

        The same entries, chain and file as appending them one by one (a simulated run's
        buffered records are written this way after the run; the live twin appends one at a
        time).
        """
        if not records:
            return []
        entries = []
        with self._locked() as fd:
            tail, ends_with_newline, size = _tail(fd)
            seq = int(tail["seq"]) + 1 if tail else 0
            prev = _sha(tail["_line"]) if tail else GENESIS
            lines = []
            for rec in records:
                entry = {"seq": seq, "time_utc": self._clock().isoformat(
                    timespec="milliseconds"), **asdict(rec), "prev_sha256": prev}
                entry["before"], entry["after"] = dict(rec.before), dict(rec.after)
                line = json.dumps(entry, sort_keys=True, default=_jsonable,
                                  separators=(",", ":"))
                entries.append(entry)
                lines.append(line)
                prev, seq = _sha(line), seq + 1
            data = ((b"" if ends_with_newline or size == 0 else b"\n")
                    + "\n".join(lines).encode() + b"\n")
            os.write(fd, data)
            os.fsync(fd)
        return entries

    def decision(self, proposal_id: str) -> AuditRecord | None:
        """Latest decision record on ``proposal_id`` in the file, or None."""
        found = None
        for e in read_audit(self.path):
            if e["kind"] == "decision" and e["proposal_id"] == proposal_id:
                found = e
        return _to_record(found) if found else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # closing releases the lock


def _jsonable(value: Any) -> Any:
    # numpy scalars and other number-likes in before/after.
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _sha(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()


def _tail(fd: int, chunk: int = 1 << 20) -> tuple[dict[str, Any] | None, bool, int]:
    """Last valid entry (with its raw ``_line``) in the last ``chunk`` bytes, whether the file
    ends in a newline, and its size.

    The last 64 KiB are read first (an entry is a few hundred bytes); the whole chunk only
    when they hold no valid entry.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return None, True, 0
    ends = os.pread(fd, 1, size - 1) == b"\n"
    for span in sorted({min(chunk, 1 << 16), chunk}):
        start = max(0, size - span)
        data = os.pread(fd, size - start, start).decode(errors="replace")
        lines = data.splitlines()
        if start > 0:
            lines = lines[1:]  # the first line read may be the end of a longer one
        for line in reversed(lines):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and "seq" in entry:
                entry["_line"] = line
                return entry, ends, size
        if start == 0:
            break
    return None, ends, size


def read_audit(path: str | Path) -> list[dict[str, Any]]:
    """All valid entries of an audit file (or run directory), in order.

    Lines that are not valid JSON (a write cut short by a crash) are skipped; use
    :func:`verify_audit` to have them reported.
    """
    p = Path(path)
    p = p / AUDIT_FILE if p.is_dir() else p
    if not p.exists():
        return []
    out = []
    with p.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and "seq" in entry:
                out.append(entry)
    return out


def verify_audit(path: str | Path) -> list[str]:
    """Problems of an audit file: partial lines, broken hash chain, seq gaps (empty: intact)."""
    p = Path(path)
    p = p / AUDIT_FILE if p.is_dir() else p
    problems: list[str] = []
    prev, seq = GENESIS, 0
    with p.open(encoding="utf-8", errors="replace") as fh:
        for n, raw in enumerate(fh, start=1):
            line = raw.rstrip("\n")
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                problems.append(f"{p}: line {n}: not a complete record (write cut short?)")
                continue
            if entry.get("prev_sha256") != prev:
                problems.append(f"{p}: line {n}: hash chain broken (a record before it was "
                                "changed or removed)")
            if entry.get("seq") != seq:
                problems.append(f"{p}: line {n}: seq {entry.get('seq')} where {seq} expected")
            prev, seq = _sha(line), int(entry.get("seq", seq)) + 1
    return problems


def _to_record(entry: Mapping[str, Any]) -> AuditRecord:
    names = AuditRecord.__dataclass_fields__
    return AuditRecord(**{k: v for k, v in entry.items() if k in names})


# --------------------------------------------------------------------------------------------
# Proposals (advisory mode)
# --------------------------------------------------------------------------------------------


def proposal_states(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """State of every proposal: its record plus ``state`` (open/accepted/rejected/expired/...).

    A proposal is ``open`` until an operator decides it or its batch starts without a decision
    (``expired``); an accepted proposal becomes ``written`` once the setpoints were written.
    Advice during a step (``advice``) is never open: the twin would not act on a decision.
    """
    states: dict[str, dict[str, Any]] = {}
    for e in entries:
        pid = e.get("proposal_id", "")
        if not pid:
            continue
        if e["kind"] == "proposal":
            # In-step advice (advisory endpoint control) is never open for a decision.
            states[pid] = {**e, "state": "advice" if e.get("result") == "advice" else "open"}
        elif pid in states:
            if e["kind"] == "decision":
                states[pid]["state"] = e["result"]
                states[pid]["decided_by"] = e["who"]
            elif e["kind"] == "expire" and states[pid]["state"] == "open":
                states[pid]["state"] = "expired"
            elif e["kind"] == "write":
                states[pid]["state"] = "written" if e["result"] == "ok" else "write failed"
    return states


def decide(run_dir: str | Path, proposal_id: str, *, accept: bool, who: str,
           reason: str = "", trail: AuditTrail | None = None) -> dict[str, Any]:
    """Record an operator's decision on an open proposal of a run.

    Parameters
    ----------
    run_dir : str or Path
        Run directory (or audit file) holding the proposal.
    proposal_id : str
        The proposal to decide.
    accept : bool
        True to accept (the loop writes the setpoints before the batch starts), False to reject.
    who : str
        Operator name (required).
    reason : str
        Optional comment.

    Returns
    -------
    dict
        The decision entry as written.

    Raises
    ------
    UsageError
        No audit trail, unknown proposal, or the proposal is not open any more.
    """
    p = Path(run_dir)
    path = p / AUDIT_FILE if p.is_dir() else p
    if not path.exists():
        raise UsageError(f"{path}: no control audit trail in this run")
    if not who.strip():
        raise UsageError("--who: the operator's name is required")
    states = proposal_states(read_audit(path))
    if proposal_id not in states:
        known = ", ".join(sorted(k for k, v in states.items() if v["state"] == "open")) or "none"
        raise UsageError(f"{path}: no proposal {proposal_id!r} (open proposals: {known})")
    prop = states[proposal_id]
    if prop["state"] != "open":
        raise UsageError(f"{path}: proposal {proposal_id!r} is {prop['state']}, not open")
    verdict = "accepted" if accept else "rejected"
    rec = AuditRecord(kind="decision", loop=prop["loop"], batch_id=prop["batch_id"],
                      before=prop["before"], after=prop["after"],
                      reason=reason or f"operator {verdict} the proposal", who=who.strip(),
                      sim_time_s=prop.get("sim_time_s"), proposal_id=proposal_id,
                      result=verdict)
    return (trail or AuditTrail(path)).record(rec)
