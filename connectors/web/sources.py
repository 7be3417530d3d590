"""Where the web view's pages get their data: a live twin, or a finished run's folder.

Both give a *line view* (one JSON object per line: stations, buffers, PLCs, running batches,
batches, proposals, audit, alarms, calibration) built by the same functions of
:mod:`connectors.web.views`, and take the same two writes (decide a proposal, acknowledge an
alarm). A finished run is read-only: its writes are refused.

:class:`LiveSource` reads the running twin in its own event loop (no copies, no threads) and
pushes what changed to the open pages through the :class:`~connectors.web.hub.Hub`: an
in-progress prediction as soon as the twin publishes it (the same moment it goes to the twin's
OPC UA server), everything else from a scan every :data:`SCAN_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from connectors.web import views
from twin.config.schema import PlantConfig
from twin.errors import PhysicsError, TwinError, UsageError
from twin.physics.oxidation_profile import Profile

if TYPE_CHECKING:
    from connectors.live.session import LiveSession
    from connectors.web.hub import Hub

log = logging.getLogger(__name__)

#: Seconds between two scans of the live twin for changed batches, states, audit, alarms.
SCAN_S = 0.25
#: A live report is rebuilt from the journal when older than this, s.
REPORT_TTL_S = 20.0
#: Release-decision statuses of a write: HTTP status of each answer prefix.
STATUS = {"Good": 200, "BadNotFound": 404, "BadInvalidState": 409, "BadUserAccessDenied": 403,
          "BadNotImplemented": 501, "BadConditionBranchAlreadyAcked": 409}


class Source(Protocol):
    """One line's data for the web view."""

    line: str
    read_only: bool

    def snapshot(self) -> dict[str, Any]:
        """The whole line view."""
        ...

    async def decide(self, proposal_id: str, accept: bool, who: str) -> tuple[int, str]:
        """Accept or reject an open proposal as ``who`` (an authenticated user)."""
        ...

    async def acknowledge(self, alarm_id: int, who: str) -> tuple[int, str]:
        """Acknowledge an alarm as ``who``."""
        ...

    async def report(self, batch_id: str, kind: str) -> tuple[str, bytes] | None:
        """(media type, body) of a batch's release report (``report``) or certificate of
        analysis (``certificate``); None when there is none."""
        ...


def answer(message: str) -> tuple[int, str]:
    """HTTP status and text of a status-prefixed answer (``Good: ...``, ``BadNotFound: ...``)."""
    head = message.split(":", 1)[0].strip()
    return STATUS.get(head, 500), message


def line_facts(cfg: PlantConfig) -> dict[str, Any]:
    """The numbers every page of a line draws against."""
    c = cfg.control
    lo, hi = c.band
    return {"name": cfg.plant.name, "form": cfg.plant.form, "aim_nm": c.aim_nm,
            "band_nm": [lo, hi], "spec_nm": list(c.window_nm),
            "interval_level": c.interval_level, "mode": c.mode}


def _furnace_sp(start_s: float, sp: Mapping[str, Any]) -> dict[str, list[float]] | None:
    """The planned temperature of a furnace step (:meth:`Profile.ramp_hold`, ramp, hold,
    cool) on the simulation time axis from ``start_s``; None without usable setpoints."""
    try:
        prof = Profile.ramp_hold(
            start_c=float(sp["start_c"]), hold_c=float(sp["hold_c"]),
            ramp_c_per_min=float(sp["ramp_c_per_min"]), hold_s=float(sp["hold_min"]) * 60.0,
            cool_c_per_min=float(sp["cool_c_per_min"]), po2_atm=0.0, ph2o_atm=0.0)
    except (KeyError, TypeError, ValueError, PhysicsError):
        return None
    t = (start_s + prof.time_s).tolist()
    temp = prof.temperature_c.tolist()
    if not all(math.isfinite(x) for x in (*t, *temp)):
        return None
    return {"t_s": t, "temperature_c": temp}


def trend_of(rows: Sequence[tuple[float, float, float, float]],
             samples: Sequence[tuple[float, str, float]]) -> dict[str, dict[str, list[Any]]]:
    """Signals of a batch record: the furnace's (temperature, pO2, pH2O rows) and any other
    sampled signal, each ``{"t_s": [...], "v": [...]}`` thinned for a page."""
    out: dict[str, dict[str, list[Any]]] = {}
    if rows:
        t, temp, po2, ph2o = zip(*rows, strict=True)
        for name, series in (("temperature_c", temp), ("po2_atm", po2), ("ph2o_atm", ph2o)):
            tt, vv = views.thin(t, series)
            out[name] = {"t_s": tt, "v": vv}
    by: dict[str, tuple[list[float], list[float]]] = {}
    for ts, name, value in samples:
        tl, vl = by.setdefault(name, ([], []))
        tl.append(ts)
        vl.append(value)
    for name, (tl, vl) in by.items():
        tt, vv = views.thin(tl, vl)
        out[name] = {"t_s": tt, "v": vv}
    return out


def buffer_levels(plant: Any) -> list[dict[str, Any]]:
    """Fill of each buffer of a plant model (the live journal keeps the latest)."""
    return [{"path": b.path, "level": int(b.level), "capacity": b.capacity,
             "held": len(b.held)} for b in plant.buffers]


# -- a live twin -----------------------------------------------------------------------------
class LiveSource:
    """The running twin of one line (its :class:`~connectors.live.session.LiveSession`)."""

    read_only = False

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.line = session.cfg.plant.name
        self.facts = line_facts(session.cfg)
        self.hub: Hub | None = None
        self._batch_keys: dict[str, tuple[Any, ...]] = {}
        self._audit_n = 0
        self._alarm_key: tuple[Any, ...] = ()
        self._line_key: Any = None
        self._lab_n = -1
        #: In-progress predictions of the batch on each tool: (batch_id, [points]).
        self._predictions: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        #: How many record rows/samples of the running batch each tool has pushed.
        self._pushed: dict[str, tuple[str, int, int]] = {}
        self._reports: dict[tuple[str, str], tuple[float, tuple[str, bytes] | None]] = {}
        self._report_lock = asyncio.Lock()
        self._failed: set[type[BaseException]] = set()
        self._steps: dict[str, tuple[str, str]] = {}
        self._alarm_state: tuple[Any, ...] = ()
        self._alarm_rows: list[dict[str, Any]] = []
        session.listeners.append(self.on_station)

    def attach(self, hub: Hub) -> None:
        self.hub = hub

    # -- what changes --------------------------------------------------------------------
    def on_station(self, path: str, values: Mapping[str, Any]) -> None:
        """The twin published station values (the same moment as on its OPC UA server)."""
        cur = self.session.current.get(path)
        if cur is None:
            return
        bid = str(cur.get("batch_id", ""))
        point = None
        if "PredictedThickness_nm" in values:
            point = {"t_s": views.num(values.get("UpdatedAt_s", self.session.env.now)),
                     "mean_nm": views.num(values["PredictedThickness_nm"]),
                     "lower_nm": views.num(values.get("LowerBound_nm")),
                     "upper_nm": views.num(values.get("UpperBound_nm")),
                     "reliability": views.num(values.get("Reliability"))}
            held = self._predictions.get(path)
            if held is None or held[0] != bid:
                held = self._predictions[path] = (bid, [])
            held[1].append(point)
            del held[1][:-views.MAX_TREND_POINTS]
        if self.hub is None or not self.hub.subscribers:
            return
        rec = cur.get("recorder")
        new_rows: list[Any] = []
        new_samples: list[Any] = []
        if rec is not None:
            last = self._pushed.get(path)
            n_rows, n_samples = (last[1], last[2]) if last and last[0] == bid else (0, 0)
            new_rows = [list(r) for r in rec.rows[n_rows:]]
            new_samples = [list(s) for s in rec.samples[n_samples:]]
            self._pushed[path] = (bid, len(rec.rows), len(rec.samples))
        msg: dict[str, Any] = {
            "line": self.line, "path": path, "batch_id": bid, "prediction": point,
            "state": views.text(values.get("State", "")),
            "rows": _finite_rows(new_rows), "samples": _finite_rows(new_samples)}
        step = (bid, getattr(rec, "step", ""))
        if self._steps.get(path) != step:
            # The PLC's step changed: the planned profile follows when it began heating.
            self._steps[path] = step
            msg["sp_profile"] = self._sp_profile(cur)
        self.hub.publish("station", msg)

    def _sp_profile(self, cur: Mapping[str, Any]) -> dict[str, list[float]] | None:
        """The planned temperature of a running furnace step: the ramp from when the PLC
        began heating (before that, after the plant file's loading time)."""
        rec = cur.get("recorder")
        start = float(cur.get("start_s", math.nan))
        heat0 = getattr(rec, "entered", {}).get("Heating", start + self.session._load_s)
        return _furnace_sp(heat0, dict(cur.get("setpoints") or {}))

    async def watch(self) -> None:
        """Push what the scans find changed, until cancelled."""
        while True:
            await asyncio.sleep(SCAN_S)
            try:
                self.scan()
            except Exception as exc:  # a page problem must never stop the twin
                if type(exc) not in self._failed:  # said once per kind, not 4 times a second
                    self._failed.add(type(exc))
                    log.exception("web view of %s: scan failed", self.line)

    def scan(self) -> None:
        hub = self.hub
        plant = self.session.plant
        if hub is None or plant is None or not hub.subscribers:
            return
        batches = self._batches()
        changed = False
        for b in batches:
            key = views.batch_key(b)
            if self._batch_keys.get(b["unit_id"]) != key:
                self._batch_keys[b["unit_id"]] = key
                hub.publish("batch", {"line": self.line, "batch": b})
                changed = True
        if len(self._batch_keys) > 4 * views.MAX_ROWS:  # forget the oldest (bounded)
            keep = {b["unit_id"] for b in batches}
            self._batch_keys = {k: v for k, v in self._batch_keys.items() if k in keep}
        records = self._audit_records()
        if len(records) != self._audit_n:
            new = records[self._audit_n:] if len(records) > self._audit_n else records
            self._audit_n = len(records)
            audit = [views.audit_view(asdict(r), i) for i, r in
                     enumerate(records[-views.MAX_ROWS:],
                               start=max(0, len(records) - views.MAX_ROWS))]
            hub.publish("audit", {"line": self.line, "new": [
                views.audit_view(asdict(r), self._audit_n - len(new) + i)
                for i, r in enumerate(new[-views.MAX_ROWS:])],
                "proposals": views.open_proposals(audit)})
            changed = True
        alarms = self._alarms()
        key = tuple((a["alarm_id"], a["state"]) for a in alarms)
        if key != self._alarm_key:
            self._alarm_key = key
            hub.publish("alarms", {"line": self.line, "alarms": alarms})
        line = self._line()
        lkey = (line["stations"], line["buffers"], line["plcs"], line["live"])
        if lkey != self._line_key:
            self._line_key = lkey
            hub.publish("line", {"line": self.line, **line})
        labs = sum(1 for b in batches if b["lab_nm"] is not None)
        if changed and labs != self._lab_n:
            self._lab_n = labs
            hub.publish("calibration", {"line": self.line, "calibration": self._calibration(
                batches, self._audit_views(records))})

    # -- reading the twin ----------------------------------------------------------------
    def _batches(self) -> list[dict[str, Any]]:
        plant = self.session.plant
        if plant is None:
            return []
        stations, live_from = set(self.session.stations()), self.session.live_from
        # Whether a batch ran on the line, as the exported batch table says it
        # (:func:`twin.store.export.live_batches`): on a PLC's station, started after go-live.
        rows = ({**u.row, "unit_id": u.id, "unit_kind": u.kind, "alloy": u.alloy,
                 "live_equipment": u.row.get("path") in stations
                 and float(u.row.get("start_s", -math.inf)) >= live_from}
                for u in plant.ctx.ledger.units[-4 * views.MAX_ROWS:]
                if u.kind in views.RELEASE_KINDS)
        return views.release_rows(rows)

    def _audit_records(self) -> list[Any]:
        plant = self.session.plant
        control = plant.ctx.control if plant is not None else None
        return list(getattr(control.sink, "records", [])) if control is not None else []

    @staticmethod
    def _audit_views(records: Sequence[Any]) -> list[dict[str, Any]]:
        start = max(0, len(records) - 4 * views.MAX_ROWS)
        return [views.audit_view(asdict(r), i)
                for i, r in enumerate(records[start:], start=start)]

    def _alarms(self) -> list[dict[str, Any]]:
        journal = self.session.journal
        if journal is None:
            return []
        from twin.store.journal import read_alarms

        # The table is read again only when an alarm was raised, cleared or acknowledged.
        state = tuple(journal.db.execute(
            "SELECT COUNT(*), MAX(alarm_id), COUNT(cleared_at), COUNT(acknowledged_by) "
            "FROM alarms").fetchone())
        if state != self._alarm_state:
            self._alarm_state = state
            self._alarm_rows = views.alarm_list(_records(read_alarms(journal.db)))
        return self._alarm_rows

    def _line(self) -> dict[str, Any]:
        s = self.session
        plant = s.plant
        live = bool(s.live[0])
        plc_paths = set(s.stations())
        stations = []
        if plant is not None:
            for path, state, since, batch in plant.ctx.historian.open_states():
                endpoint = ""
                tag = s.tags.get(f"{path}.step")
                if tag is not None:
                    endpoint = tag.endpoint
                stations.append({"path": path, "kind": views.station_kind(path),
                                 "state": state, "since_s": views.num(since),
                                 "batch_id": batch,
                                 "source": "plc" if path in plc_paths and live else "simulated",
                                 "endpoint": endpoint})
            stations.sort(key=lambda st: views.flow_order(str(st["path"])))
        buffers = buffer_levels(plant) if plant is not None else []
        plcs = []
        gw = s.gateway
        for name, ep in s.endpoints.items():
            state = gw.state(name).value if gw is not None else "stopped"
            plcs.append({"endpoint": name, "url": ep.url, "state": state,
                         "connected": state == "connected",
                         "stations": sorted(p for p in plc_paths
                                            if getattr(s.tags.get(f"{p}.step"), "endpoint",
                                                       None) == name)})
        return {"stations": stations, "buffers": buffers, "plcs": plcs, "live": live,
                "plant_time_s": views.num(s.env.now),
                "live_from_s": views.num(s.live_from)}

    def _running(self) -> dict[str, Any]:
        out = {}
        for path, cur in self.session.current.items():
            rec = cur.get("recorder")
            bid = str(cur.get("batch_id", ""))
            start = float(cur.get("start_s", math.nan))
            preds = self._predictions.get(path)
            sp = dict(cur.get("setpoints") or {})
            out[path] = {
                "path": path, "batch_id": bid, "start_s": views.num(start),
                "setpoints": {k: views.num(v) for k, v in sp.items()
                              if isinstance(v, int | float)},
                "sp_profile": self._sp_profile(cur),
                "trend": trend_of(rec.rows, rec.samples) if rec is not None else {},
                "step": getattr(rec, "step", ""),
                "predictions": list(preds[1]) if preds and preds[0] == bid else [],
            }
        return out

    def _calibration(self, batches: list[dict[str, Any]],
                     audit: list[dict[str, Any]]) -> dict[str, Any]:
        return views.calibration_view(batches, audit, self.facts["interval_level"])

    def snapshot(self) -> dict[str, Any]:
        s = self.session
        if s.plant is None:
            return {**self.facts, "read_only": False, "status": "starting", "stations": [],
                    "buffers": [], "plcs": [], "running": {}, "batches": [], "audit": [],
                    "proposals": [], "alarms": [], "calibration": None, "live": False}
        batches = self._batches()
        records = self._audit_records()
        audit = self._audit_views(records)
        running = self._running()
        for path, r in running.items():
            r["actions"] = [a for a in audit if a["batch_id"] == r["batch_id"]
                            and a["loop"] == path]
        # The push cursors are left alone: pages already open must still get what changed
        # since the last scan; a new page drops what its snapshot already holds (by seq,
        # by batch id, by time).
        return {**self.facts, "read_only": False, "status": "live" if s.live[0] else "warm-up",
                "time_factor": s.opts.time_factor, **self._line(), "running": running,
                "batches": batches, "audit": audit[-views.MAX_ROWS:],
                "proposals": views.open_proposals(audit), "alarms": self._alarms(),
                "calibration": self._calibration(batches, audit)}

    # -- writes --------------------------------------------------------------------------
    async def decide(self, proposal_id: str, accept: bool, who: str) -> tuple[int, str]:
        message = await self.session.decide_proposal(proposal_id, accept, who,
                                                     channel="the web view")
        self.scan()
        return answer(message)

    async def acknowledge(self, alarm_id: int, who: str) -> tuple[int, str]:
        message = await self.session.acknowledge_alarm(alarm_id, who)
        self.scan()
        return answer(message)

    async def report(self, batch_id: str, kind: str) -> tuple[str, bytes] | None:
        """The batch's report from a copy of the journal as it is now (the run folder is
        written at the end of the run; the journal is the record until then)."""
        journal = self.session.journal
        if journal is None:
            return None
        now = time.monotonic()
        got = self._reports.get((batch_id, kind))
        if got is not None and now - got[0] < REPORT_TTL_S:
            return got[1]
        async with self._report_lock:
            result = await asyncio.to_thread(_report_from_journal, journal.path, batch_id,
                                             kind)
        self._reports[(batch_id, kind)] = (now, result)
        if len(self._reports) > 64:
            self._reports.pop(next(iter(self._reports)))
        return result


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's rows as dicts with string keys."""
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]


def _finite_rows(rows: list[list[Any]]) -> list[list[Any]]:
    return [[views.num(v) if isinstance(v, int | float) else v for v in r] for r in rows]


def _report_from_journal(journal: Path, batch_id: str, kind: str
                         ) -> tuple[str, bytes] | None:
    """A batch's report from a consistent copy of a live journal (in a worker thread)."""
    tmp = exported_copy(journal, "anode-twin-web-")
    try:
        return report_file(tmp, batch_id, kind)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def report_file(run_dir: Path, batch_id: str, kind: str) -> tuple[str, bytes] | None:
    """(media type, body) of one batch's release report or certificate, written into a
    temporary folder (the run folder is never written); None for no such release unit."""
    from twin.report import safe_name, write_reports

    out = Path(tempfile.mkdtemp(prefix="anode-twin-report-"))
    try:
        try:
            write_reports(run_dir, out, batch=batch_id)
        except TwinError:
            return None
        name = safe_name(batch_id)
        if kind == "certificate":
            return "application/json", (out / "batches" / f"{name}.coa.json").read_bytes()
        return "text/html; charset=utf-8", (out / "batches" / f"{name}.html").read_bytes()
    finally:
        shutil.rmtree(out, ignore_errors=True)


# -- a finished run --------------------------------------------------------------------------
class RunSource:
    """A finished (or crashed) run's folder, read once: the same pages, read-only."""

    read_only = True

    def __init__(self, run_dir: Path, view: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.view = view
        self.line = str(view["name"])
        self._reports: dict[tuple[str, str], tuple[str, bytes] | None] = {}

    def snapshot(self) -> dict[str, Any]:
        return self.view

    async def decide(self, proposal_id: str, accept: bool, who: str) -> tuple[int, str]:
        return 409, "BadInvalidState: a finished run is read-only"

    async def acknowledge(self, alarm_id: int, who: str) -> tuple[int, str]:
        return 409, "BadInvalidState: a finished run is read-only"

    async def report(self, batch_id: str, kind: str) -> tuple[str, bytes] | None:
        key = (batch_id, kind)
        if key not in self._reports:
            self._reports[key] = await asyncio.to_thread(report_file, self.run_dir,
                                                         batch_id, kind)
        return self._reports[key]


def run_view(run_dir: Path) -> dict[str, Any]:
    """The line view of a run folder (``batches.parquet`` and what lies beside it; a live
    run's prediction history and alarms from its journal, opened read-only)."""
    from twin.report.data import load_run

    run = load_run(run_dir)
    cfg = run.config
    if cfg is None:
        raise UsageError(f"{run_dir}: no readable plant configuration (config.json)")
    facts = line_facts(cfg)
    rows = _records(run.units)
    batches = views.release_rows(rows)
    audit = []
    if run.audit is not None:
        audit = [views.audit_view(r, i) for i, r in enumerate(_records(run.audit))]
    db = _read_only_journal(run_dir)
    try:
        alarms = _folder_alarms(run_dir, db)
        buffers = _journal_meta(db, "buffers") or []
        running = _last_batches(run, rows, db)
    finally:
        if db is not None:
            db.close()
    stations = []
    if run.states is not None and len(run.states):
        last = run.states.sort_values("start_s", kind="stable").groupby("path").tail(1)
        live_paths = set(run.meta.get("live", {}).get("live_stations", []) or [])
        for r in _records(last):
            path = str(r["path"])
            stations.append({"path": path, "kind": views.station_kind(path),
                             "state": r["state"], "since_s": views.num(r.get("start_s")),
                             "batch_id": views.text(r.get("batch_id")),
                             "source": "plc" if path in live_paths else "simulated",
                             "endpoint": ""})
        stations.sort(key=lambda st: views.flow_order(st["path"]))
    end_s = views.num(run.meta.get("days", math.nan) * 86400.0) if run.meta else None
    return {**facts, "read_only": True, "status": "finished", "stations": stations,
            "buffers": buffers, "plcs": [], "live": False, "plant_time_s": end_s,
            "live_from_s": None, "running": running, "batches": batches,
            "audit": audit[-views.MAX_ROWS:], "proposals": views.open_proposals(audit),
            "alarms": alarms, "calibration": views.calibration_view(
                batches, audit, facts["interval_level"]), "run_dir": str(run_dir)}


def _read_only_journal(run_dir: Path) -> sqlite3.Connection | None:
    path = run_dir / "journal.sqlite"
    if not path.is_file():
        return None
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None


def _journal_meta(db: sqlite3.Connection | None, key: str) -> Any:
    if db is None:
        return None
    with contextlib.suppress(sqlite3.Error, ValueError):
        row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None
    return None


def _folder_alarms(run_dir: Path, db: sqlite3.Connection | None) -> list[dict[str, Any]]:
    f = run_dir / "alarms.parquet"
    if f.is_file():
        return views.alarm_list(_records(pd.read_parquet(f)))
    if db is not None:
        from twin.store.journal import read_alarms

        return views.alarm_list(_records(read_alarms(db)))
    return []


def _last_batches(run: Any, rows: list[dict[str, Any]], db: sqlite3.Connection | None
                  ) -> dict[str, Any]:
    """The last release unit of each tool with a recorded trajectory, as the Running batch
    page shows it (a finished run has nothing running: its last batches instead)."""
    f = Path(run.run_dir) / "trajectories.parquet"
    traj = pd.read_parquet(f) if f.is_file() else None
    if traj is None or not len(traj) or "path" not in traj:
        return {}
    out: dict[str, Any] = {}
    by_id = {str(r.get("unit_id")): r for r in rows}
    for path, group in traj.groupby("path"):
        bid = str(group.sort_values("time_s")["batch_id"].iloc[-1])
        g = group[group["batch_id"] == bid].sort_values("time_s")
        row = by_id.get(bid, {})
        start = views.num(row.get("start_s"))
        if start is None:  # still running when the run ended: from its first sample
            start = views.num(g["time_s"].min())
        trend: dict[str, dict[str, list[Any]]] = {}
        for name, s in g.groupby("signal"):
            tt, vv = views.thin(s["time_s"].tolist(), s["value"].tolist())
            trend[str(name)] = {"t_s": tt, "v": vv}
        sp = {k.removeprefix("sp_"): row[k] for k in row if str(k).startswith("sp_")}
        # A batch made on a PLC: its step began with loading (the simulated furnace's did not).
        ox = run.config.stations.oxidizer if run.config is not None else None
        load_s = (ox.load_unload_h * 1800.0 if ox is not None and row.get("live_equipment")
                  is True else 0.0)
        preds = _history_predictions(db, str(path), start, views.num(row.get("end_s")))
        out[str(path)] = {"path": str(path), "batch_id": bid, "start_s": start,
                          "setpoints": {k: views.num(v) for k, v in sp.items()
                                        if views.num(v) is not None},
                          "sp_profile": _furnace_sp((start or 0.0) + load_s, {
                              "start_c": row.get("sp_start_c"), "hold_c": row.get("sp_hold_c"),
                              "ramp_c_per_min": row.get("sp_ramp_c_per_min"),
                              "cool_c_per_min": row.get("sp_cool_c_per_min"),
                              "hold_min": row.get("sp_hold_min")}),
                          "trend": trend, "step": "finished", "predictions": preds,
                          "actions": [a for a in (views.audit_view(r, i) for i, r in enumerate(
                              _records(run.audit) if run.audit is not None else []))
                              if a["batch_id"] == bid and a["loop"] == path]}
    return out


def _history_predictions(db: sqlite3.Connection | None, path: str, start: float | None,
                         end: float | None) -> list[dict[str, Any]]:
    """The in-progress predictions the twin published for a batch (its server's history)."""
    if db is None or start is None:
        return []
    from twin.store.journal import read_history

    def series(var: str) -> dict[float, float]:
        return {s: float(v) for _, v, s in read_history(db, f"{path}.{var}", None, None)
                if s is not None and isinstance(v, float) and start <= s <= (end or math.inf)}

    with contextlib.suppress(sqlite3.Error):
        mean, lo, hi = (series(v) for v in ("PredictedThickness_nm", "LowerBound_nm",
                                             "UpperBound_nm"))
        return [{"t_s": t, "mean_nm": views.num(m), "lower_nm": views.num(lo.get(t)),
                 "upper_nm": views.num(hi.get(t)), "reliability": None}
                for t, m in sorted(mean.items())][-views.MAX_TREND_POINTS:]
    return []


def folder_sources(root: Path) -> list[RunSource]:
    """One read-only source per run folder: ``root`` itself, or each line folder in it (the
    folder of a two-line ``anode-twin run``, or a study's runs). A live run's folder that
    was never exported (the twin was killed) is exported to a temporary copy first; the
    folder itself is never written."""
    if not root.is_dir():
        raise UsageError(f"{root}: no such run directory")
    folders = [root] if _is_run(root) else sorted(p for p in root.iterdir()
                                                   if p.is_dir() and _is_run(p))
    if not folders and (root / "replications").is_dir():
        raise UsageError(f"{root}: a study folder keeps each replication's KPIs, not its "
                         "batch records; serve a run folder (anode-twin simulate or run)")
    if not folders:
        raise UsageError(f"{root}: no run folder (batches.parquet or journal.sqlite) in it or "
                         "in its subfolders")
    out = []
    for f in folders:
        src = f
        if not (f / "batches.parquet").is_file():
            src = exported_copy(f / "journal.sqlite")
        out.append(RunSource(src, run_view(src)))
    return out


def _is_run(p: Path) -> bool:
    return (p / "batches.parquet").is_file() or (p / "journal.sqlite").is_file()


def exported_copy(journal: Path, prefix: str = "anode-twin-serve-") -> Path:
    """A temporary run folder exported from a consistent copy of ``journal`` (read through
    its own read-only connection: WAL lets it run beside a live twin's writes); the
    original folder is never written."""
    from twin.store.export import export_run

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    src = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp / "journal.sqlite")
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    export_run(tmp)
    return tmp
