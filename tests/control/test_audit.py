"""Audit trail: append-only, durable, hash chained, concurrent writers, proposal decisions."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest

from twin.control.audit import (
    AUDIT_FILE,
    AuditBuffer,
    AuditRecord,
    AuditTrail,
    decide,
    proposal_states,
    read_audit,
    verify_audit,
)
from twin.errors import UsageError


def proposal(pid: str = "line1.oxidizer1/OX1") -> AuditRecord:
    return AuditRecord(kind="proposal", loop="line1.oxidizer1", batch_id="OX1",
                       before={"hold_min": 30.0}, after={"hold_min": 20.0},
                       reason="predicted 15 nm above aim", proposal_id=pid, result="open",
                       sim_time_s=100.0)


def test_records_append_in_order_and_chain(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path)
    for i in range(5):
        trail.record(AuditRecord(kind="calibration", loop="l", batch_id=f"B{i}",
                                 reason="x", who="calibration"))
    entries = read_audit(tmp_path)
    assert [e["seq"] for e in entries] == list(range(5))
    assert [e["batch_id"] for e in entries] == [f"B{i}" for i in range(5)]
    assert all(e["time_utc"] and e["who"] for e in entries)
    assert verify_audit(tmp_path) == []


def test_earlier_lines_never_change(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path)
    trail.record(proposal())
    first = (tmp_path / AUDIT_FILE).read_bytes()
    trail.record(AuditRecord(kind="expire", loop="l", proposal_id="line1.oxidizer1/OX1"))
    assert (tmp_path / AUDIT_FILE).read_bytes().startswith(first)


def test_tampering_is_detected(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path)
    for i in range(3):
        trail.record(AuditRecord(kind="hold", loop="l", batch_id=f"B{i}", reason="gap"))
    path = tmp_path / AUDIT_FILE
    lines = path.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["reason"] = "nothing to see"
    lines[1] = json.dumps(edited, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")
    problems = verify_audit(path)
    assert any("line 3" in p and "hash chain" in p for p in problems)
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")  # a record removed
    assert verify_audit(path)


def test_crash_mid_write_loses_nothing_before_and_is_reported(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path)
    trail.record(proposal())
    path = tmp_path / AUDIT_FILE
    with path.open("a") as fh:  # a writer killed in the middle of a line
        fh.write('{"seq": 1, "kind": "wri')
    trail.record(AuditRecord(kind="write", loop="l", result="ok"))
    entries = read_audit(path)
    assert [e["kind"] for e in entries] == ["proposal", "write"]
    problems = verify_audit(path)
    assert len(problems) == 1 and "line 2" in problems[0] and "cut short" in problems[0]


def _writer(path: str, tag: str) -> None:
    trail = AuditTrail(path)
    for i in range(25):
        trail.record(AuditRecord(kind="calibration", loop=tag, batch_id=str(i)))


def test_concurrent_writers_in_two_processes(tmp_path: Path) -> None:
    procs = [mp.get_context("spawn").Process(target=_writer, args=(str(tmp_path), t))
             for t in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    entries = read_audit(tmp_path)
    assert len(entries) == 50
    assert [e["seq"] for e in entries] == list(range(50))
    assert verify_audit(tmp_path) == []


def test_decide_open_proposal_once(tmp_path: Path) -> None:
    AuditTrail(tmp_path).record(proposal())
    entry = decide(tmp_path, "line1.oxidizer1/OX1", accept=True, who="Ana")
    assert entry["result"] == "accepted" and entry["who"] == "Ana"
    assert entry["after"] == {"hold_min": 20.0}
    assert proposal_states(read_audit(tmp_path))["line1.oxidizer1/OX1"]["state"] == "accepted"
    with pytest.raises(UsageError, match="is accepted, not open"):
        decide(tmp_path, "line1.oxidizer1/OX1", accept=False, who="Bo")
    with pytest.raises(UsageError, match="no proposal 'nope'"):
        decide(tmp_path, "nope", accept=True, who="Bo")
    with pytest.raises(UsageError, match="name is required"):
        decide(tmp_path, "line1.oxidizer1/OX1", accept=True, who=" ")


def test_buffer_drains_in_order(tmp_path: Path) -> None:
    buf = AuditBuffer()
    buf.record(proposal())
    buf.record(AuditRecord(kind="decision", loop="l", proposal_id="line1.oxidizer1/OX1",
                           result="rejected", who="Ana"))
    got = buf.decision("line1.oxidizer1/OX1")
    assert got is not None and got.who == "Ana"
    assert buf.drain_into(AuditTrail(tmp_path)) == 2 and not buf.records
    assert [e["kind"] for e in read_audit(tmp_path)] == ["proposal", "decision"]


def test_record_needs_known_kind_and_who() -> None:
    with pytest.raises(ValueError, match="kind"):
        AuditRecord(kind="gossip", loop="l")
    with pytest.raises(ValueError, match="who"):
        AuditRecord(kind="write", loop="l", who="")


def test_a_drained_buffer_writes_what_appending_one_by_one_writes(tmp_path: Path) -> None:
    """One lock and one fsync for a simulated run's records: the same bytes, chain and seq
    as appending them one at a time (also after earlier entries and a torn last line)."""
    import datetime as dt

    fixed = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    recs = [AuditRecord(kind="calibration", loop="l", batch_id=f"B{i}", reason="x" * (i * 300),
                        who="calibration", after={"measured_nm": 10.0 + i}) for i in range(40)]
    one, many = tmp_path / "one", tmp_path / "many"
    for d in (one, many):
        d.mkdir()
        head = AuditTrail(d, clock=lambda: fixed)
        head.record(proposal())
        with (d / AUDIT_FILE).open("a") as fh:
            fh.write('{"seq": 1, "torn')  # a write cut short by a crash
    a = AuditTrail(one, clock=lambda: fixed)
    for r in recs:
        a.record(r)
    buf = AuditBuffer()
    for r in recs:
        buf.record(r)
    assert buf.drain_into(AuditTrail(many, clock=lambda: fixed)) == 40 and not buf.records
    assert (one / AUDIT_FILE).read_bytes() == (many / AUDIT_FILE).read_bytes()
    entries = read_audit(many)
    assert [e["seq"] for e in entries] == list(range(41))
    assert verify_audit(many) == [f"{many / AUDIT_FILE}: line 2: not a complete record "
                                  "(write cut short?)"]
