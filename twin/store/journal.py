"""The live twin's journal: its system of record, an SQLite database in the run folder.

A live run appends what it sees and decides to ``RUN_DIR/journal.sqlite`` as it happens
(WAL mode, ``synchronous=FULL``: a committed record survives the process being killed and the
machine losing power): every audit record (proposals, decisions, setpoint writes, calibration
outcomes, holds), committed *before* the control loop returns to the code that acts on it;
the batch rows as they change; the historian's state intervals and events; PV trajectory
rows (chunks of a running batch, whole records of finished ones); the gateway's events and
gaps; the run's configuration, seed and options.

The run folder's tables are exported from the journal (:func:`export`): at the end of a run,
on Ctrl-C, and by ``anode-twin export RUN_DIR`` after a crash. A torn last write (the process
killed mid-commit) is not in the database: SQLite's WAL recovery rolls back to the last
committed transaction when the file is next opened.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.control.audit import AuditBuffer, AuditRecord
from twin.errors import UsageError

JOURNAL_FILE = "journal.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units(unit_id TEXT PRIMARY KEY, ord INTEGER NOT NULL,
                                 row TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS intervals(seq INTEGER PRIMARY KEY, path TEXT, state TEXT,
                                     start_s REAL, end_s REAL, batch_id TEXT);
CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, time_s REAL, path TEXT, event TEXT,
                                  batch_id TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS open_states(path TEXT PRIMARY KEY, ord INTEGER, state TEXT,
                                       since_s REAL, batch_id TEXT);
CREATE TABLE IF NOT EXISTS trajectory(seq INTEGER PRIMARY KEY, batch_id TEXT, path TEXT,
                                      time_s REAL, signal TEXT, value REAL,
                                      complete INTEGER);
CREATE TABLE IF NOT EXISTS partial(batch_id TEXT, path TEXT, time_s REAL, signal TEXT,
                                   value REAL);
CREATE TABLE IF NOT EXISTS gateway(seq INTEGER PRIMARY KEY, kind TEXT, endpoint TEXT,
                                   time REAL, detail TEXT);
CREATE TABLE IF NOT EXISTS steps(batch_id TEXT PRIMARY KEY, path TEXT, taken_s REAL,
                                 record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labs(batch_id TEXT PRIMARY KEY, path TEXT, taken_s REAL,
                                value REAL);
CREATE TABLE IF NOT EXISTS history(seq INTEGER PRIMARY KEY, node TEXT NOT NULL,
                                   source_time REAL NOT NULL, value REAL, text TEXT,
                                   sim_time_s REAL);
CREATE INDEX IF NOT EXISTS history_node_time ON history(node, source_time);
CREATE TABLE IF NOT EXISTS alarms(alarm_id INTEGER PRIMARY KEY, endpoint TEXT, station TEXT,
                                  source TEXT, kind TEXT, message TEXT, severity INTEGER,
                                  raised_at REAL, sim_time_s REAL, cleared_at REAL,
                                  clear_message TEXT, acknowledged_by TEXT,
                                  acknowledged_at REAL);
"""

#: Columns of the ``alarms`` table, in order (what :func:`read_alarms` returns).
ALARM_COLUMNS: tuple[str, ...] = (
    "alarm_id", "endpoint", "station", "source", "kind", "message", "severity", "raised_at",
    "sim_time_s", "cleared_at", "clear_message", "acknowledged_by", "acknowledged_at")



def _default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def dumps(value: Any) -> str:
    """JSON text of a record (numpy scalars as numbers; NaN kept as NaN)."""
    return json.dumps(value, default=_default, allow_nan=True)


class Journal:
    """Append-only journal of one live run (see the module notes).

    Parameters
    ----------
    path : str or Path
        The database file (``RUN_DIR/journal.sqlite``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit (isolation_level None): each statement outside an explicit transaction
        # is its own committed transaction; bulk syncs open one with BEGIN.
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        self._rows: dict[str, str] = {}
        self._n_iv = self._count("intervals")
        self._n_ev = self._count("events")
        self._n_gw = self._count("gateway")
        self._states: dict[str, tuple[Any, ...]] = {}

    def _count(self, table: str) -> int:
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def close(self) -> None:
        """Checkpoint the WAL into the database and close."""
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.db.close()

    # -- what happens ------------------------------------------------------------------------
    def put_meta(self, key: str, value: Any) -> None:
        """Set one metadata entry (JSON), committed."""
        self.put_meta_many({key: value})

    def put_meta_many(self, entries: Mapping[str, Any]) -> None:
        """Set metadata entries (JSON) in one committed transaction: all or none."""
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)",
                            [(k, dumps(v)) for k, v in entries.items()])
        self.db.execute("COMMIT")

    def audit(self, record: Mapping[str, Any]) -> None:
        """Append one audit record, committed (synchronously) before this returns."""
        self.db.execute("INSERT INTO audit(record) VALUES(?)", (dumps(dict(record)),))

    def sync(self, *, units: Iterable[tuple[str, Mapping[str, Any]]] = (),
             historian: Any = None, gateway_events: Sequence[Any] = (),
             gateway_total: int = 0, partial: Mapping[str, tuple[str, list[tuple[float, str,
                                                                                  float]]]]
             | None = None) -> None:
        """Append what changed since the last sync, in one transaction.

        Parameters
        ----------
        units : iterable of (unit_id, row)
            Every unit's current batch row, in creation order (only changed rows are written).
        historian : Historian, optional
            The plant's historian (new closed intervals and events are appended; the open
            states are kept as a snapshot).
        gateway_events : sequence
            The gateway's recent events (a bounded log) and ``gateway_total``: how many it has
            logged in all (the ones not yet journaled are its tail).
        partial : mapping, optional
            Per station: (batch_id, rows) of the batch running on it now (its record so far).
        """
        db = self.db
        db.execute("BEGIN")
        try:
            for uid, row in units:
                text = dumps(row)
                if self._rows.get(uid) == text:
                    continue
                # A new unit takes the next place in creation order; a known one (also one a
                # resumed twin's journal has) keeps its place and gets its new row.
                db.execute("INSERT INTO units(unit_id, ord, row) VALUES(?, (SELECT COUNT(*) "
                           "FROM units), ?) ON CONFLICT(unit_id) DO UPDATE SET row=excluded.row",
                           (uid, text))
                self._rows[uid] = text
            if historian is not None:
                self._sync_historian(historian)
            new = gateway_total - self._n_gw
            if new > 0:
                tail = list(gateway_events)[-new:] if new <= len(gateway_events) else \
                    list(gateway_events)
                db.executemany("INSERT INTO gateway(kind, endpoint, time, detail) "
                               "VALUES(?,?,?,?)", [(e.kind, e.endpoint, float(e.time),
                                                    str(e.detail)) for e in tail])
                self._n_gw = gateway_total
            if partial is not None:
                db.execute("DELETE FROM partial")
                db.executemany("INSERT INTO partial VALUES(?,?,?,?,?)",
                               [(bid, path, float(t), sig, float(v))
                                for path, (bid, rows) in partial.items()
                                for t, sig, v in rows])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _sync_historian(self, h: Any) -> None:
        db = self.db
        intervals = h.intervals_since(self._n_iv)
        if intervals:
            db.executemany("INSERT INTO intervals(path, state, start_s, end_s, batch_id) "
                           "VALUES(?,?,?,?,?)", intervals)
            self._n_iv += len(intervals)
        events = h.events_since(self._n_ev)
        if events:
            db.executemany("INSERT INTO events(time_s, path, event, batch_id, detail) "
                           "VALUES(?,?,?,?,?)", events)
            self._n_ev += len(events)
        for i, (path, state, since, batch) in enumerate(h.open_states()):
            snap = (i, state, since, batch)
            if self._states.get(path) != snap:
                db.execute("INSERT OR REPLACE INTO open_states VALUES(?,?,?,?,?)",
                           (path, *snap))
                self._states[path] = snap

    def step(self, result: Any, taken_s: float, truth_values: Mapping[str, float]) -> None:
        """A live step's result as the model took it at ``taken_s`` (what a resumed twin
        replays instead of running the batch again), committed."""
        prof = result.actual
        record = {
            "path": result.path, "status": result.status, "start_s": result.start_s,
            "end_s": result.end_s, "values": dict(result.values),
            "gaps": [list(g) for g in result.gaps], "fault": result.fault,
            "truth_values": dict(truth_values),
            "profile": None if prof is None else {
                "time_s": np.asarray(prof.time_s).tolist(),
                "temperature_c": np.asarray(prof.temperature_c).tolist(),
                "po2_atm": np.asarray(prof.po2_atm).tolist(),
                "ph2o_atm": np.asarray(prof.ph2o_atm).tolist()}}
        self.db.execute("INSERT OR REPLACE INTO steps VALUES(?,?,?,?)",
                        (result.batch_id, result.path, float(taken_s), dumps(record)))

    def lab(self, batch_id: str, path: str, taken_s: float, value: float) -> None:
        """A live batch's lab result as the model took it at ``taken_s``, committed."""
        self.db.execute("INSERT OR REPLACE INTO labs VALUES(?,?,?,?)",
                        (batch_id, path, float(taken_s), float(value)))

    def history(self, node: str, value: float | str, t: float,
                sim_time_s: float | None = None) -> None:
        """One value the twin's OPC UA server published (``node``: its NodeId's string
        identifier, ``t``: the value's server timestamp, unix s UTC), committed.

        Numbers go to ``value`` (NaN is stored as NULL), text to ``text``.
        """
        self.history_many([(node, value, t)], sim_time_s)

    def history_many(self, rows: Sequence[tuple[str, float | str, float]],
                     sim_time_s: float | None = None) -> None:
        """Several published values (node, value, t) in one committed transaction."""
        if not rows:
            return
        recs = [(node, None, str(v), float(t), sim_time_s) if isinstance(v, str) else
                (node, float(v) if math.isfinite(float(v)) else None, None, float(t),
                 sim_time_s) for node, v, t in rows]
        db = self.db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO history(node, value, text, source_time, sim_time_s) "
                           "VALUES(?,?,?,?,?)", recs)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def alarm(self, *, endpoint: str, station: str, source: str, kind: str, message: str,
              severity: int, active: bool, t: float, sim_time_s: float | None = None
              ) -> tuple[int, str] | None:
        """An alarm from a PLC became active or cleared (``t``: its source time, unix s UTC),
        committed.

        An activation is a new alarm (an older one of the same source and kind still open
        is closed: its clear was never seen, e.g. during a communication gap); a clear
        closes the open one. Returns (alarm id, "raised"/"cleared"), or None for a clear
        with no open alarm.
        """
        db = self.db
        db.execute("BEGIN")
        try:
            open_id = db.execute(
                "SELECT alarm_id FROM alarms WHERE endpoint=? AND source=? AND kind=? AND "
                "cleared_at IS NULL ORDER BY alarm_id DESC LIMIT 1",
                (endpoint, source, kind)).fetchone()
            if active:
                cur = db.execute(
                    "INSERT INTO alarms(endpoint, station, source, kind, message, severity, "
                    "raised_at, sim_time_s) VALUES(?,?,?,?,?,?,?,?)",
                    (endpoint, station, source, kind, message, int(severity), float(t),
                     sim_time_s))
                new_id = int(cur.lastrowid or 0)
                if open_id is not None:
                    db.execute("UPDATE alarms SET cleared_at=?, clear_message=? WHERE "
                               "alarm_id=?", (float(t), f"no clear seen; superseded by "
                                              f"alarm {new_id}", open_id[0]))
                out: tuple[int, str] | None = (new_id, "raised")
            elif open_id is not None:
                db.execute("UPDATE alarms SET cleared_at=?, clear_message=? WHERE alarm_id=?",
                           (float(t), message, open_id[0]))
                out = (int(open_id[0]), "cleared")
            else:
                out = None
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return out

    def acknowledge_alarm(self, alarm_id: int, who: str, t: float) -> bool:
        """Record who acknowledged an alarm and when (unix s UTC), committed; False if the
        alarm does not exist or was acknowledged already (the first acknowledgement stays)."""
        cur = self.db.execute("UPDATE alarms SET acknowledged_by=?, acknowledged_at=? WHERE "
                              "alarm_id=? AND acknowledged_by IS NULL",
                              (who, float(t), int(alarm_id)))
        return cur.rowcount == 1

    def trajectory(self, df: pd.DataFrame) -> None:
        """Append one batch's kept PV record (``_trajectory`` rows), committed."""
        if df.empty:
            return
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO trajectory(batch_id, path, time_s, signal, value, complete) "
            "VALUES(?,?,?,?,?,?)",
            zip(df["batch_id"].astype(str), df["path"].astype(str),
                df["time_s"].astype(float), df["signal"].astype(str),
                df["value"].astype(float), df["complete"].astype(bool).astype(int),
                strict=True))
        self.db.execute("COMMIT")


# -- reading it back -----------------------------------------------------------------------------
def open_journal(run_dir: str | Path) -> sqlite3.Connection:
    """The journal of a run folder, read-only (one-line error when there is none)."""
    path = Path(run_dir) / JOURNAL_FILE
    if not path.is_file():
        raise UsageError(f"{run_dir}: no {JOURNAL_FILE} (not a live run's folder, or the "
                         "twin was stopped before it started)")
    # Opened read-write so that SQLite can recover a WAL left by a killed writer.
    return sqlite3.connect(path)


def read_meta(db: sqlite3.Connection) -> dict[str, Any]:
    """Every metadata entry."""
    return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}


def read_audit_records(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """The audit records in the order they were committed."""
    return [json.loads(r) for (r,) in db.execute("SELECT record FROM audit ORDER BY seq")]


def read_units(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """The batch rows in unit creation order."""
    return [json.loads(r) for (r,) in db.execute("SELECT row FROM units ORDER BY ord")]


def read_historian(db: sqlite3.Connection, historian: Any) -> float:
    """Fill an empty Historian from the journal; return the last time it knew, s."""
    return float(historian.restore(
        db.execute("SELECT path, state, start_s, end_s, batch_id FROM intervals ORDER BY seq"),
        db.execute("SELECT time_s, path, event, batch_id, detail FROM events ORDER BY seq"),
        list(db.execute("SELECT path, state, since_s, batch_id FROM open_states "
                        "ORDER BY ord"))))


def read_trajectories(db: sqlite3.Connection, *, with_partial: bool) -> pd.DataFrame:
    """The kept PV records; with ``with_partial`` also the running batches' records so far
    (``complete`` False), for batches that have no kept record."""
    df = pd.read_sql_query("SELECT batch_id, path, time_s, signal, value, complete "
                           "FROM trajectory ORDER BY seq", db)
    df["complete"] = df["complete"].astype(bool)
    if with_partial:
        part = pd.read_sql_query("SELECT batch_id, path, time_s, signal, value FROM partial",
                                 db)
        part = part[~part["batch_id"].isin(df["batch_id"])]
        if len(part):
            part["complete"] = False
            df = pd.concat([df, part], ignore_index=True)
    return df.astype({"batch_id": str, "path": str, "time_s": float, "signal": str,
                      "value": float, "complete": bool})


def read_steps(db: sqlite3.Connection) -> dict[str, tuple[float, dict[str, Any]]]:
    """The journaled live steps: batch id -> (time the model took the result, record)."""
    return {bid: (float(t), json.loads(r)) for bid, t, r in
            db.execute("SELECT batch_id, taken_s, record FROM steps")}


def read_labs(db: sqlite3.Connection) -> dict[str, tuple[float, float]]:
    """The journaled lab results of live batches: batch id -> (time taken, value nm)."""
    return {bid: (float(t), float(v) if v is not None else math.nan) for bid, t, v in
            db.execute("SELECT batch_id, taken_s, value FROM labs")}


def last_time_s(db: sqlite3.Connection) -> float:
    """The latest process time anything in the journal happened at, s."""
    times = [db.execute(q).fetchone()[0] for q in (
        "SELECT MAX(time_s) FROM events", "SELECT MAX(since_s) FROM open_states",
        "SELECT MAX(taken_s) FROM steps", "SELECT MAX(taken_s) FROM labs")]
    audit = [json.loads(r).get("sim_time_s") for (r,) in
             db.execute("SELECT record FROM audit ORDER BY seq DESC LIMIT 50")]
    return max([float(t) for t in [*times, *audit] if t is not None] or [0.0])


def read_gateway(db: sqlite3.Connection) -> pd.DataFrame:
    """The gateway's events."""
    return pd.read_sql_query("SELECT kind, endpoint, time, detail FROM gateway ORDER BY seq",
                             db)


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                      (name,)).fetchone() is not None


def read_history(db: sqlite3.Connection, node: str, start: float | None, end: float | None,
                 limit: int = 0) -> list[tuple[float, float | str, float | None]]:
    """Published values of ``node``: (source time unix s, value, simulation time s).

    OPC UA ReadRaw semantics (bounds inclusive): ``start <= end``, or only ``start``: oldest
    first from ``start``; ``start > end``, or only ``end``: newest first from ``end`` back;
    neither: every value, oldest first. ``limit`` (0: no limit) caps the count. A number
    stored as NULL is NaN.
    """
    if not _has_table(db, "history"):
        return []
    where, args = ["node=?"], [node]
    descending = (start is not None and end is not None and start > end) or \
        (start is None and end is not None)
    lo, hi = (end, start) if start is not None and end is not None and start > end else \
        (start, end)
    if lo is not None:
        where.append("source_time>=?")
        args.append(lo)  # type: ignore[arg-type]
    if hi is not None:
        where.append("source_time<=?")
        args.append(hi)  # type: ignore[arg-type]
    order = "DESC" if descending else "ASC"
    sql = (f"SELECT source_time, value, text, sim_time_s FROM history WHERE "
           f"{' AND '.join(where)} ORDER BY source_time {order}, seq {order}")
    if limit > 0:
        sql += f" LIMIT {int(limit)}"
    return [(float(t), text if text is not None else (math.nan if v is None else float(v)),
             None if s is None else float(s)) for t, v, text, s in db.execute(sql, args)]


def read_alarms(db: sqlite3.Connection) -> pd.DataFrame:
    """The alarms (one row each, in the order they were raised; none in a journal older
    than the table)."""
    if not _has_table(db, "alarms"):
        return pd.DataFrame({c: [] for c in ALARM_COLUMNS})
    return pd.read_sql_query(f"SELECT {', '.join(ALARM_COLUMNS)} FROM alarms "
                             "ORDER BY alarm_id", db)


def read_alarm(db: sqlite3.Connection, alarm_id: int) -> dict[str, Any] | None:
    """One alarm's row (column -> value), or None."""
    row = db.execute(f"SELECT {', '.join(ALARM_COLUMNS)} FROM alarms WHERE alarm_id=?",
                     (int(alarm_id),)).fetchone()
    return None if row is None else dict(zip(ALARM_COLUMNS, row, strict=True))


def read_retained_alarms(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """The alarms an operator still has to see: active, or cleared but not acknowledged."""
    if not _has_table(db, "alarms"):
        return []
    return [dict(zip(ALARM_COLUMNS, row, strict=True)) for row in db.execute(
        f"SELECT {', '.join(ALARM_COLUMNS)} FROM alarms WHERE cleared_at IS NULL OR "
        "acknowledged_by IS NULL ORDER BY alarm_id")]


def finite(x: float) -> float | None:
    """JSON-friendly number (None for NaN)."""
    return x if math.isfinite(x) else None


class JournalAuditBuffer(AuditBuffer):
    """The control loops' audit sink in a live run: each record is kept in memory (the loops
    read decisions from it) and committed to the journal before :meth:`record` returns, so
    that a record is durable before the action it records is taken."""

    def __init__(self, journal: Journal, records: Sequence[AuditRecord] = (), *,
                 journaled: int = 0) -> None:
        super().__init__()
        self.journal = journal
        # What was recorded before the journal was attached (the first ``journaled`` of
        # them are in it already: a resumed twin's replay of what it had committed).
        for i, rec in enumerate(records):
            if i < journaled:
                AuditBuffer.record(self, rec)
            else:
                self.record(rec)

    def record(self, rec: AuditRecord) -> None:
        """Commit ``rec`` to the journal, then keep it."""
        entry = {"time_utc": dt.datetime.now(dt.timezone.utc).isoformat(
            timespec="milliseconds"), **asdict(rec)}
        entry["before"], entry["after"] = dict(rec.before), dict(rec.after)
        self.journal.audit(entry)
        super().record(rec)
