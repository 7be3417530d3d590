"""The live journal: records committed as they happen, a torn last write recovered to the
last committed record, and the run folder exported from it."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from twin.cli import main
from twin.control.audit import AuditRecord, verify_audit
from twin.store.journal import (
    JOURNAL_FILE,
    Journal,
    JournalAuditBuffer,
    open_journal,
    read_audit_records,
)


def _rec(i: int) -> AuditRecord:
    return AuditRecord(kind="write", loop="line1.oxidizer1", batch_id=f"C{i:06d}",
                       before={"hold_min": 150.0}, after={"hold_min": 150.0 + i},
                       reason="test", who="controller", sim_time_s=float(i), result="ok")


def test_an_audit_record_is_committed_before_record_returns(tmp_path: Path) -> None:
    j = Journal(tmp_path / JOURNAL_FILE)
    sink = JournalAuditBuffer(j)
    sink.record(_rec(1))
    # Another connection (another process would do the same) sees it at once.
    other = sqlite3.connect(tmp_path / JOURNAL_FILE)
    assert [r["batch_id"] for r in read_audit_records(other)] == ["C000001"]
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()
    assert sink.records == [_rec(1)]
    j.close()


def test_a_torn_last_write_is_recovered_to_the_last_committed_record(tmp_path: Path) -> None:
    j = Journal(tmp_path / "live" / JOURNAL_FILE)
    sink = JournalAuditBuffer(j)
    for i in range(3):
        sink.record(_rec(i))
    wal = tmp_path / "live" / f"{JOURNAL_FILE}-wal"
    before = wal.stat().st_size
    sink.record(_rec(3))
    after = wal.stat().st_size
    assert after > before
    # The process dies while the fourth commit is half on disk: copy the files as they are
    # (the writer still holds them, as a killed one would) and cut the WAL inside that commit.
    crash = tmp_path / "crash"
    crash.mkdir()
    for name in (JOURNAL_FILE, f"{JOURNAL_FILE}-wal"):
        shutil.copy(tmp_path / "live" / name, crash / name)
    with open(crash / f"{JOURNAL_FILE}-wal", "r+b") as fh:
        fh.truncate(before + (after - before) // 2)
    db = open_journal(crash)
    assert [r["batch_id"] for r in read_audit_records(db)] == [f"C{i:06d}" for i in range(3)]
    db.close()
    # Garbage after the last commit (a torn sector) is ignored the same way.
    for name in (JOURNAL_FILE, f"{JOURNAL_FILE}-wal"):
        shutil.copy(tmp_path / "live" / name, crash / name)
    with open(crash / f"{JOURNAL_FILE}-wal", "r+b") as fh:
        fh.seek(before + 100)
        fh.write(b"\xff" * 64)
    db = open_journal(crash)
    assert len(read_audit_records(db)) == 3
    db.close()
    j.close()


def test_sync_appends_only_what_changed(tmp_path: Path) -> None:
    j = Journal(tmp_path / JOURNAL_FILE)
    j.sync(units=[("A", {"unit_id": "A", "x": 1.0}), ("B", {"unit_id": "B", "x": 2.0})])
    j.sync(units=[("A", {"unit_id": "A", "x": 1.5}), ("B", {"unit_id": "B", "x": 2.0}),
                  ("C", {"unit_id": "C", "x": float("nan")})])
    rows = [r for (r,) in j.db.execute("SELECT unit_id FROM units ORDER BY ord")]
    assert rows == ["A", "B", "C"]
    j.close()
    # A reopened journal (a resumed twin) keeps the order and appends after it.
    j2 = Journal(tmp_path / JOURNAL_FILE)
    j2.sync(units=[("D", {"unit_id": "D"})])
    assert [r for (r,) in j2.db.execute("SELECT unit_id FROM units ORDER BY ord")] == \
        ["A", "B", "C", "D"]
    j2.close()


def test_export_of_a_folder_without_a_journal_is_one_line(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    assert main(["export", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "journal.sqlite" in err[0] and str(tmp_path) in err[0]


def test_exported_audit_trail_verifies(tmp_path: Path) -> None:
    """The export writes the journal's records as the hash-chained trail, with their own
    commit times."""
    from twin.store.export import _write_audit

    j = Journal(tmp_path / JOURNAL_FILE)
    sink = JournalAuditBuffer(j)
    for i in range(5):
        sink.record(_rec(i))
    entries = read_audit_records(j.db)
    _write_audit(tmp_path, entries)
    assert verify_audit(tmp_path) == []
    lines = pd.read_json(tmp_path / "control_audit.jsonl", lines=True)
    assert list(lines["time_utc"].astype(str).str[:19]) == [
        e["time_utc"][:19] for e in entries]
    j.close()
