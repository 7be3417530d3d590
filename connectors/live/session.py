"""One live run: PLCs (emulated or real) → gateway → plant model in real time → twin server.

The same plant model as ``anode-twin simulate`` runs here; only the stations that have tags in
the tag map get OPC UA equipment, every other station stays simulated. The run:

1. starts the emulated PLCs (``emulate=True``: ``anode-twin plc`` subprocesses on free
   loopback ports, tag map from :mod:`connectors.emulators.tagmap`) or uses the site file's
   ``[endpoints]``/``[tags]`` (PLCs that already run);
2. connects the gateway (every tag checked against its node) and starts the twin's own
   OPC UA server;
3. fast-forwards the model, simulated, until the first step is asked of a live tool (the twin
   joins a line that already has work in progress), then advances it in step with the wall
   clock times ``time_factor`` for ``hours`` of simulated time;
4. writes the run folder: the ``simulate`` tables plus the PV trajectories, the gateway's
   gaps and events, and the controller's audit trail; stops what it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import signal
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import simpy

from connectors.emulators import tagmap
from connectors.live.equipment import (
    LiveLab,
    LiveLinks,
    OpcUaFurnace,
    OpcUaSputter,
    OpcUaTool,
    Recorder,
)
from connectors.live.launcher import EmulatorProcess, start_emulator
from connectors.live.replay import ReplayTool
from connectors.live.table import LiveTable
from connectors.net import free_port
from connectors.opcua.gateway import Gateway
from connectors.twin_server import ServerSecurity, TwinServer
from connectors.web.app import WebView
from connectors.web.auth import WebAuth
from connectors.web.server import WebOptions, WebServer, is_loopback
from connectors.web.sources import LiveSource, buffer_levels
from twin.config.load import validate_model
from twin.config.schema import PlantConfig
from twin.config.tags import Endpoint, Tag
from twin.control.audit import AuditRecord
from twin.control.endpoint import rest_of_step
from twin.control.plant_hooks import furnace_context
from twin.equipment.base import Equipment, StepResult
from twin.equipment.modelled import ModelTools
from twin.errors import UsageError
from twin.live.bridge import RealtimeBridge
from twin.plant.plant import EquipmentFactory, Plant
from twin.plant.run import SimulationResult, collect, unit_rows
from twin.store.export import export_run
from twin.store.journal import (
    JOURNAL_FILE,
    Journal,
    JournalAuditBuffer,
    last_time_s,
    open_journal,
    read_alarm,
    read_labs,
    read_meta,
    read_steps,
)
from twin.store.schema import SchemaError, unknown_columns

log = logging.getLogger(__name__)

#: Wall time between two journal syncs of the live state, s (audit records are committed one
#: by one as they happen, not by this clock).
JOURNAL_EVERY_S = 1.0

HOUR_S = 3600.0


@dataclass
class LiveOptions:
    """How a live run goes (command-line options of ``anode-twin run``)."""

    seed: int = 1
    time_factor: float = 2400.0
    hours: float = 24.0
    warmup_days: float = 2.0
    emulate: bool = True
    plant_file: Path | None = None
    overrides: tuple[str, ...] = ()
    site_dir: Path | None = None
    out: Path = Path("runs")
    server: bool = True
    quiet: bool = False
    truth: str | None = None  # the emulated PLCs' truth (passed on, never read here)
    #: Calibration to start from, by tool path (the twin's own record of an earlier run).
    calibration_start: dict[str, tuple[float, ...]] = field(default_factory=dict)
    #: Users, certificates and mode of the twin's own server (None: loopback, read-only).
    server_security: ServerSecurity | None = None
    #: Continue the run whose journal is in ``out`` (its twin was killed).
    resume: bool = False
    #: Seed offset of this line's emulated PLCs (kept so that a resumed run starts the same).
    emulator_offset: int | None = None


@dataclass
class LiveOutcome:
    """What a live run produced."""

    folder: Path
    result: SimulationResult
    gaps: list[dict[str, Any]]
    emulators: list[str]
    twin_url: str
    live_paths: list[str]
    interrupted: bool = False
    emulator_exit_codes: dict[str, int] = field(default_factory=dict)


def emulated_site(cfg: PlantConfig, urls: Mapping[str, str]) -> tuple[dict[str, Endpoint],
                                                                      dict[str, Tag]]:
    """Endpoints and tags for emulated tools (``urls``: tool name → endpoint URL)."""
    st, line = cfg.stations, cfg.plant.name
    endpoints: dict[str, Any] = {}
    tags: dict[str, Any] = {}
    for tool, url in urls.items():
        endpoints[tool] = tagmap.endpoint(url, tool)
        if tool.startswith("furnace"):
            assert st.oxidizer is not None
            local = tagmap.furnace_tags(tool, st.oxidizer.limits, st.oxidizer.plc.zones,
                                        st.oxidizer.capacity_kg)
            station = f"{line}.oxidizer{tool.removeprefix('furnace')}"
        else:
            assert st.sputter is not None
            local = tagmap.sputter_tags(tool, st.sputter.limits)
            station = f"{line}.sputter{tool.removeprefix('sputter')}"
        tags.update(tagmap.station_tags(station, tool, local))
    return ({k: validate_model(Endpoint, v, f"emulated endpoint {k}") for k, v in
             endpoints.items()},
            {k: validate_model(Tag, v, f"emulated tag {k}") for k, v in tags.items()})


def tools_to_emulate(cfg: PlantConfig) -> list[tuple[str, str]]:
    """(kind, tool name) of the PLCs ``run`` emulates: the line's first furnace/sputter tool.

    Further tools of the same station stay simulated, which shows the mixed mode a real site
    has during a roll-out.
    """
    out = []
    if cfg.stations.oxidizer is not None and cfg.stations.oxidizer.count > 0:
        out.append(("furnace", "furnace1"))
    if cfg.stations.sputter is not None and cfg.stations.sputter.count > 0:
        out.append(("sputter", "sputter1"))
    return out


class LiveSession:
    """The live twin of one plant for one run (see the module docstring)."""

    #: Least wall time between two in-progress predictions of one station, s (20/s).
    PREDICT_MIN_INTERVAL_S = 0.05

    def __init__(self, cfg: PlantConfig, opts: LiveOptions, *,
                 endpoints: Mapping[str, Endpoint] | None = None,
                 tags: Mapping[str, Tag] | None = None, handle_signals: bool = True) -> None:
        self.cfg = cfg
        self.handle_signals = handle_signals
        self.opts = opts
        self.endpoints = dict(endpoints if endpoints is not None else cfg.endpoints)
        self.tags = dict(tags if tags is not None else cfg.tags)
        # Computed once: the ledger scan asks for every unit, ten times a second.
        self._stations = tuple(sorted({s.rsplit(".", 1)[0] for s in self.tags}))
        self.env = simpy.Environment()
        self.bridge = RealtimeBridge(self.env, opts.time_factor, slice_s=0.02)
        self.table = LiveTable(quiet=opts.quiet)
        self.tasks: set[asyncio.Task[None]] = set()
        self.live = [False]  # shared by the stations' switches
        self.live_from = math.inf
        self.trajectories: list[pd.DataFrame] = []
        self.current: dict[str, dict[str, Any]] = {}
        self.published: dict[str, tuple[Any, ...]] = {}
        self.server: TwinServer | None = None
        self.twin_url = ""
        self.gateway: Gateway | None = None
        self.plant: Plant | None = None
        self._last_pred_wall: dict[str, float] = {}
        self._pred_due: dict[str, asyncio.Handle] = {}
        #: The run's system of record (RUN_DIR/journal.sqlite), opened when the run starts.
        self.journal: Journal | None = None
        #: A resumed run's journaled steps, lab results and last known time.
        self.replayed: tuple[dict[str, Any], dict[str, Any], float] | None = None
        #: What each live station's PLC reported when a resumed twin came back.
        self._plc_batches: dict[str, tuple[str, str]] = {}
        self._journaled_audit = 0
        #: Called with (station path, values) whenever the twin publishes station values
        #: (the web view's live source listens here).
        self.listeners: list[Callable[[str, Mapping[str, Any]], None]] = []

    # -- plumbing ------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A failed helper task must be seen, not swallowed by the event loop.
            exc = task.exception()
            log.error("live task %s failed: %r", task.get_coro(), exc, exc_info=exc)
            self.table.note(f"internal error: {exc!r}")

    def stations(self) -> list[str]:
        """Station paths with tags (live equipment), sorted."""
        return list(self._stations)

    def _equipment(self, links: LiveLinks) -> dict[str, EquipmentFactory]:
        out: dict[str, EquipmentFactory] = {}
        for path in self.stations():
            station = path.rsplit(".", 1)[1]
            tool: OpcUaTool
            if station.startswith("oxidizer"):
                tool = furnace = OpcUaFurnace(path, links)
                if self.cfg.stations.oxidizer is not None:
                    furnace.load_s = self.cfg.stations.oxidizer.load_unload_h * 1800.0
            elif station.startswith("sputter"):
                tool = OpcUaSputter(path, links)
            else:
                continue
            replay = None
            if self.replayed is not None:
                steps, labs, until = self.replayed
                replay = ReplayTool(tool, steps, labs, until,
                                    lambda p, b, v: LiveLab(p, b, links, v),
                                    plc_batch=self._plc_batches.get(path))
            out[path] = partial(_Switch, tool, live=self.live, replay=replay)
        return out

    # -- the run -------------------------------------------------------------------------
    async def run(self) -> tuple[SimulationResult, bool]:
        """Connect, run the model live for ``hours``, return its result and interrupted."""
        opts = self.opts
        gw = self.gateway = Gateway(self.endpoints, self.tags, clock=time.monotonic,
                                    base_dir=opts.site_dir)
        await gw.start()
        links = LiveLinks(gw, sim_time_at=self._sim_time_at, spawn=self.spawn,
                          time_factor=opts.time_factor, observer=self.observe)
        resumed_from = math.nan
        if opts.resume:
            db = open_journal(opts.out)
            try:
                meta = read_meta(db)
                self.replayed = (read_steps(db), read_labs(db), last_time_s(db))
                self._journaled_audit = int(db.execute(
                    "SELECT COUNT(*) FROM audit").fetchone()[0])
                resumed_from = float(meta.get("live_from", math.nan))
            finally:
                db.close()
            self._plc_batches = await self._ask_plcs(gw)
        equipment = self._equipment(links)
        warm_s = opts.warmup_days * 86400.0
        horizon = warm_s + opts.hours * HOUR_S
        # Stations no PLC reports, and the warm-up, run on the twin's own model (a live twin
        # holds no hidden truth); the loops learn only from batches that ran on the line.
        self.plant = Plant(self.cfg, opts.seed, horizon, tools=ModelTools(self.cfg), env=self.env,
                           equipment=equipment, learn_only_on_line=True,
                           calibration_start=opts.calibration_start)
        self._open_journal()
        if opts.server:
            await self._start_server(list(equipment))
        self.spawn(links.route())
        self.spawn(self._watch_ledger())
        self.spawn(self._keep_journal())
        interrupted = False
        loop = asyncio.get_running_loop()
        if self.handle_signals:
            _on_signals(loop, self.interrupt)
        try:
            # The line before the twin joins it: simulated, as fast as it goes.
            self.env.run(until=warm_s)
            self.live[0] = True
            live_from = self.live_from = float(self.env.now)
            if self.replayed is not None:
                # A resumed twin: what it had done live is replayed from the journal, as
                # fast as it goes, up to the last moment the journal knew.
                if math.isfinite(resumed_from):
                    live_from = self.live_from = resumed_from
                if self.replayed[2] > float(self.env.now):  # (killed during the warm-up:
                    self.env.run(until=self.replayed[2])     # nothing live to replay)
                self._take_due()  # what happened at that very moment too
                self._attach_journal_audit()
                self.table.note(f"resumed from the journal at {self.env.now / 3600.0:.2f} h "
                                f"({len(self.replayed[0])} live step(s) replayed, not rerun)")
            if self.journal is not None:
                self.journal.put_meta("live_from", live_from)
                self.sync_journal()
            self.table.header(self.cfg.plant.name, live_from, opts)
            if self.twin_url:
                self.table.note(f"twin OPC UA server (read-only): {self.twin_url}")
            end = live_from + opts.hours * HOUR_S
            await self.bridge.run(until_s=end)
            interrupted = self.env.now < end - 1e-6
            await asyncio.sleep(0.3)  # let the last samples and results land
            # What landed after the last slice (a lab answer the operator has already seen in
            # the table) is due at the end time: take it into the record without advancing
            # the clock, or the table would show a result the batch record lacks.
            self._take_due()
            await self._scan_ledger()
            self.keep_unfinished()
        finally:
            if self.handle_signals:
                _on_signals(loop, None)
            for handle in self._pred_due.values():
                handle.cancel()
            self._pred_due.clear()
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await gw.stop()
            if self.server is not None:
                await self.server.stop()
        result = collect(self.plant, float(self.env.now), opts.seed)
        return result, interrupted

    def _take_due(self, max_events: int = 10_000) -> None:
        """Process the model's events due now (none later; bounded against a zero-delay loop)."""
        env, now = self.env, float(self.env.now)
        for _ in range(max_events):
            if env.peek() > now:
                return
            env.step()

    def interrupt(self) -> None:
        """Stop the run after the current slice (Ctrl-C); what was recorded is kept."""
        self.table.note(f"{self.cfg.plant.name}: stopping, saving what was recorded so far")
        self.bridge.stop()

    def _sim_time_at(self, wall_t: float) -> float:
        return self.bridge.sim_time_at(wall_t)

    async def _start_server(self, live: list[str]) -> None:
        url = f"opc.tcp://127.0.0.1:{free_port()}/anode-twin"
        stations = sorted(set(live) | {f"{self.cfg.plant.name}.lab"})
        self.server = TwinServer(url, self.cfg.plant.name, stations,
                                 on_proposal=self._decide_proposal,
                                 security=self.opts.server_security, journal=self.journal,
                                 sim_clock=lambda: float(self.env.now),
                                 on_note=self.table.note)
        await self.server.start()
        self.twin_url = url

    async def _decide_proposal(self, proposal_id: str, accept: bool, who: str) -> str:
        return await self.decide_proposal(proposal_id, accept, who,
                                          channel="the twin's OPC UA server")

    async def decide_proposal(self, proposal_id: str, accept: bool, who: str, *,
                              channel: str) -> str:
        """An operator's decision on an advisory proposal (from the twin's OPC UA server or
        its web view: ``channel``).

        ``who`` is the deciding session's authenticated identity (user name or X.509 subject),
        which the server checked holds the operator role; never a name the client typed.
        """
        if self.plant is None or self.plant.ctx.control is None:
            return "BadInvalidState: no controller in this run"
        control = self.plant.ctx.control
        message = record_decision(control.sink, proposal_id, accept=accept, who=who,
                                  t_s=float(self.env.now), channel=channel)
        self.table.note(f"proposal {proposal_id}: {message}")
        return message

    async def acknowledge_alarm(self, alarm_id: int, who: str) -> str:
        """Record ``who`` (an authenticated identity holding the operator role) acknowledging
        an alarm: in the journal first, then on the twin's server."""
        if self.server is not None:
            got = await self.server.acknowledge(alarm_id, who)
            return got if isinstance(got, str) else f"{got.name}: alarm {alarm_id}"
        journal = self.journal
        if journal is None:
            return "BadNotImplemented: no journal in this run"
        row = read_alarm(journal.db, alarm_id)
        if row is None:
            return f"BadNotFound: no alarm {alarm_id}"
        if not journal.acknowledge_alarm(alarm_id, who, time.time()):
            return f"BadConditionBranchAlreadyAcked: alarm {alarm_id} was acknowledged"
        text = f"alarm {alarm_id} ({row['station'] or row['source']} {row['kind']}) " \
               f"acknowledged by {who}"
        self.table.note(text)
        return f"Good: {text}"

    # -- what the operator and SCADA see ---------------------------------------------------
    def observe(self, kind: str, path: str, batch_id: str, data: Mapping[str, Any]) -> None:
        """Called by the OPC UA equipment (in the event loop): show and publish."""
        now = float(self.env.now)
        if kind == "started":
            self.current[path] = {"batch_id": batch_id, **data}
            self.table.row(now, batch_id, path, "Start", action=self._action(batch_id))
            self._publish(path, {"BatchId": batch_id, "State": "Executing",
                                 "LastAction": self._action(batch_id) or "recipe as planned"})
        elif kind == "pv":
            self._predict_in_progress(path, data["recorder"])
        elif kind == "finished":
            res: StepResult = data["result"]
            self._trajectory(res.batch_id, res.path, data["recorder"], complete=True)
            state = {"ok": "Complete", "gap": "Complete (data gap)"}.get(res.status,
                                                                         "Aborted")
            self.table.row(now, batch_id, path, state,
                           note=res.fault or (f"gap {len(res.gaps)}x" if res.gaps else ""))
            self._publish(path, {"State": state})
            self.current.pop(path, None)
        elif kind == "step_taken":
            if self.journal is not None:
                self.journal.step(data["result"], data["taken_s"], data["truth_values"])
        elif kind == "lab_taken":
            if self.journal is not None:
                self.journal.lab(batch_id, path, data["taken_s"], data["measured_nm"])
        elif kind == "lab":
            value = float(data["measured_nm"])
            self.table.row(now, batch_id, path, "Lab", lab_nm=value)
            self._publish(path, {"LabThickness_nm": value})
            if self.server is not None:
                self.spawn(self.server.publish_batch(batch_id, {"LabThickness_nm": value}))
        elif kind == "alarm":
            # A PLC alarm (active or cleared): journaled, shown, published on the twin's
            # server for the operator to acknowledge there.
            alarm = data["alarm"]
            got = None
            if self.journal is not None:
                got = self.journal.alarm(
                    endpoint=alarm.endpoint, station=path, source=alarm.source,
                    kind=alarm.kind, message=alarm.message, severity=alarm.severity,
                    active=alarm.active, sim_time_s=data["sim_time_s"],
                    t=alarm.time.timestamp() if alarm.time is not None else time.time())
            self.table.alarm(now, path, alarm.kind, active=alarm.active,
                             severity=alarm.severity, message=alarm.message,
                             alarm_id=got[0] if got else None)
            if self.server is not None and got is not None:
                self.spawn(self.server.publish_alarm(got[0]))

    def _action(self, batch_id: str) -> str:
        assert self.plant is not None
        for unit in reversed(self.plant.ctx.ledger.units):
            if unit.id == batch_id:
                return str(unit.row.get("ctrl_state", ""))
        return ""

    def _predict_in_progress(self, path: str, recorder: Any) -> None:
        # Throttled by coalescing, not by dropping: a PV sample only asks for a prediction.
        # It runs once the whole notification has been routed (call_soon runs after the
        # router drained the queue), so it sees every value of that PLC scan, not just the
        # first one; within PREDICT_MIN_INTERVAL_S of the last one it is deferred to the end
        # of that window instead of being skipped, so the newest values are always published.
        if path in self._pred_due or path not in self.current:
            return
        loop = asyncio.get_running_loop()
        wait = (self._last_pred_wall.get(path, -math.inf) + self.PREDICT_MIN_INTERVAL_S
                - time.monotonic())
        self._pred_due[path] = (loop.call_later(wait, self._predict_now, path, recorder)
                                if wait > 0 else loop.call_soon(self._predict_now, path,
                                                                recorder))

    def _predict_now(self, path: str, recorder: Recorder) -> None:
        # The predicted FINAL thickness during the step: the actual record so far plus the
        # rest of the planned step, through the virtual-metrology model of this tool's loop
        # (mean, interval, reliability).
        self._pred_due.pop(path, None)
        cur = self.current.get(path)
        if cur is None or cur.get("recorder") is not recorder:
            return  # the step ended (or the next one started) meanwhile
        seen = recorder.profile()
        if seen is None or self.plant is None:
            return
        self._last_pred_wall[path] = time.monotonic()
        try:
            pred = self._final_prediction(path, cur, seen)
        except Exception as exc:  # a prediction problem must not stop the run
            if cur.get("warned") is None:
                cur["warned"] = True
                log.warning("in-progress prediction of %s on %s failed: %s",
                            cur.get("batch_id"), path, exc)
            return
        if pred is None:
            return
        self._publish(path, {"PredictedThickness_nm": pred.mean_nm,
                             "LowerBound_nm": pred.lower_nm, "UpperBound_nm": pred.upper_nm,
                             "Reliability": pred.reliability, "State": recorder.step,
                             "UpdatedAt_s": float(self.env.now)})

    def _final_prediction(self, path: str, cur: Mapping[str, Any], seen: Any) -> Any:
        assert self.plant is not None
        control = self.plant.ctx.control
        loop = control.loops.get(path) if control is not None else None
        ctx = cur.get("context") or {}
        sp = cur.get("setpoints") or {}
        if loop is None or "psd" not in ctx or "hold_min" not in sp:
            return None
        octx = furnace_context(ctx["psd"], ctx["material"], ctx["initial_nm"],
                               ctx.get("growth", {}))
        start = float(cur.get("start_s", self.env.now))
        # The rest of the plan starts from the newest sample (samples are placed on the
        # wall-clock axis, up to one bridge slice ahead of the model's clock). The PLC holds
        # from reaching the hold temperature, after its loading: not from the plan.
        rec = cur.get("recorder")
        hold0 = (rec.hold_start_s(float(rec.rows[0][0]), sp, self._load_s)
                 if rec is not None and rec.rows else None)
        rest = rest_of_step(seen, {**sp, "hold_start_s": hold0} if hold0 is not None else sp,
                            float(sp["hold_min"]))
        probe = StepResult(path, cur["batch_id"], "ok", start, float(self.env.now),
                           actual=rest)
        return loop.vm.predict(probe, octx)

    @property
    def _load_s(self) -> float:
        ox = self.cfg.stations.oxidizer
        return ox.load_unload_h * 1800.0 if ox is not None else 0.0

    def _publish(self, path: str, values: Mapping[str, Any]) -> None:
        if self.server is not None and path in self.server.stations:
            self.spawn(self.server.publish_station(path, values))
        for listener in self.listeners:
            listener(path, values)

    def _trajectory(self, batch_id: str, path: str, rec: Any, *, complete: bool) -> None:
        """Keep a batch's recorded actual values, long form (simulation time axis)."""
        rows: list[tuple[float, str, float]] = list(rec.samples)
        for t, temp, po2, ph2o in rec.rows:
            rows += [(t, "temperature_c", temp), (t, "po2_atm", po2), (t, "ph2o_atm", ph2o)]
        if not rows:
            return
        t, signal_names, values = zip(*rows, strict=True)
        df = pd.DataFrame({"batch_id": batch_id, "path": path, "time_s": t,
                           "signal": signal_names, "value": values, "complete": complete})
        self.trajectories.append(df)
        if self.journal is not None:
            self.journal.trajectory(df)

    async def _ask_plcs(self, gw: Gateway, wait_s: float = 5.0) -> dict[str, tuple[str, str]]:
        """Each live station's PLC: the batch it has and its step state (a resumed twin
        reconciles the batch it died during with them); stations that do not answer within
        ``wait_s`` are left out (the batch is then taken as lost)."""
        out: dict[str, tuple[str, str]] = {}
        deadline = time.monotonic() + wait_s
        for path in self.stations():
            while True:
                try:
                    bid = await gw.read(f"{path}.batch_id")
                    step = await gw.read(f"{path}.step")
                    out[path] = (str(bid.value or ""), str(getattr(step.value, "Text",
                                                                   step.value) or ""))
                    break
                except Exception:  # not connected yet, or no such tags
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
        return out

    # -- the journal ---------------------------------------------------------------------
    def _open_journal(self) -> None:
        """Open RUN_DIR/journal.sqlite and record what the run is (before anything runs)."""
        assert self.plant is not None
        opts = self.opts
        path = Path(opts.out) / JOURNAL_FILE
        if not opts.resume and path.exists():
            raise UsageError(f"{opts.out}: holds the journal of another run (continue it "
                             "with --resume, or choose another --out)")
        journal = self.journal = Journal(path)
        if opts.resume:
            journal.put_meta("resumed", [*self._resumes(journal), time.time()])
            return  # the audit is attached after the replay (_attach_journal_audit)
        # What the run is, in one transaction: a journal has all of it or none.
        journal.put_meta_many({
            "config": self.cfg.model_dump(mode="json"), "seed": opts.seed,
            "stations": self.stations(),
            "live": {"time_factor": opts.time_factor, "hours": opts.hours,
                     "emulated": opts.emulate, "warmup_days": opts.warmup_days,
                     "live_stations": self.stations()},
            "options": options_meta(opts)})
        self._attach_journal_audit()

    @staticmethod
    def _resumes(journal: Journal) -> list[float]:
        row = journal.db.execute("SELECT value FROM meta WHERE key='resumed'").fetchone()
        return list(json.loads(row[0])) if row else []

    def _attach_journal_audit(self) -> None:
        """From now on every audit record is committed to the journal before the loop acts
        on it (a resumed twin's replayed records that the journal has are not added again)."""
        assert self.plant is not None and self.journal is not None
        control = self.plant.ctx.control
        if control is None:
            return
        old = getattr(control.sink, "records", [])
        if len(old) < self._journaled_audit:
            self.table.note(f"the replay made {len(old)} audit record(s), the journal has "
                            f"{self._journaled_audit}: the model did not retrace the run "
                            "exactly")
        control.sink = JournalAuditBuffer(self.journal, old, journaled=self._journaled_audit)
        for loop in control.loops.values():
            loop.sink = control.sink

    def sync_journal(self, *, final: bool = False) -> None:
        """Append to the journal what changed: batch rows, states and events, the gateway's
        events, the running batches' records so far."""
        if self.journal is None or self.plant is None:
            return
        gw = self.gateway
        partial = {}
        if not final:
            for path, cur in self.current.items():
                rec = cur.get("recorder")
                if rec is None:
                    continue
                rows: list[tuple[float, str, float]] = list(rec.samples)
                for t, temp, po2, ph2o in rec.rows:
                    rows += [(t, "temperature_c", temp), (t, "po2_atm", po2),
                             (t, "ph2o_atm", ph2o)]
                partial[path] = (cur["batch_id"], rows)
        self.journal.sync(units=_schema_rows(unit_rows(self.plant)),
                          historian=self.plant.ctx.historian,
                          gateway_events=gw.event_log if gw else (),
                          gateway_total=gw.events_logged if gw else 0, partial=partial)
        # The line's buffers as they are now (the web view of a finished run shows the last).
        self.journal.put_meta("buffers", buffer_levels(self.plant))
        if gw is not None:
            self.journal.put_meta("gaps", [
                {"endpoint": g.endpoint, "start_monotonic_s": g.start,
                 "end_monotonic_s": g.end} for g in gw.gaps()])

    async def _keep_journal(self) -> None:
        while True:
            await asyncio.sleep(JOURNAL_EVERY_S)
            self.sync_journal()

    def keep_unfinished(self) -> None:
        """Keep the trajectories of batches still running when the run ends (or is stopped)."""
        for path, cur in list(self.current.items()):
            rec = cur.get("recorder")
            if rec is not None:
                self._trajectory(cur["batch_id"], path, rec, complete=False)

    async def _watch_ledger(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            await self._scan_ledger()

    async def _scan_ledger(self) -> None:
        """Show and publish what the model decided: predictions, dispositions."""
        if self.plant is None:
            return
        kinds = {"charge", "run"}
        for unit in self.plant.ctx.ledger.units[-200:]:
            row = unit.row
            if unit.kind not in kinds or "pred_oxide_mean_nm" not in row:
                continue
            path = str(row.get("path", ""))
            live = path in self._stations
            key = (row.get("pred_oxide_mean_nm"), row.get("disposition"),
                   row.get("measured_oxide_nm"))
            if self.published.get(unit.id) == key:
                continue
            first = unit.id not in self.published
            self.published[unit.id] = key
            lo = row.get("vm_lower_nm", math.nan)
            hi = row.get("vm_upper_nm", math.nan)
            # Batches made before the twin joined are in the run folder, not in the table.
            shown = float(row.get("end_s", 0.0)) >= self.live_from
            if not shown:
                pass
            elif first:
                self.table.row(float(self.env.now), unit.id, path, "Predicted",
                               pred=(row["pred_oxide_mean_nm"], lo, hi),
                               action=str(row.get("ctrl_state", "")), live=live)
            elif row.get("disposition") not in (None, "", "hold") or (
                    row.get("disposition") == "hold"
                    and math.isfinite(float(row.get("measured_oxide_nm", math.nan)))):
                # A batch still held after its lab result (a prediction the lab contradicted,
                # held for a retest) gets its line too, with the rule.
                held = row.get("disposition") == "hold"
                self.table.row(float(self.env.now), unit.id, path,
                               f"Held ({row.get('disposition_rule', '')})" if held
                               else str(row["disposition"]).capitalize(),
                               lab_nm=row.get("measured_oxide_nm", math.nan), live=live)
            if self.server is not None:
                values = {"BatchId": unit.id, "Station": path,
                          "PredictedThickness_nm": row["pred_oxide_mean_nm"],
                          "LowerBound_nm": lo, "UpperBound_nm": hi,
                          "LabThickness_nm": row.get("measured_oxide_nm", math.nan),
                          "Disposition": row.get("disposition", "")}
                await self.server.publish_batch(unit.id, values)
                running = self.current.get(path, {}).get("batch_id")
                # The station view shows the batch on the tool: an older batch's late news
                # (a lab result) goes to its batch entry only, never over the running one.
                if path in self.server.stations and running in (None, unit.id):
                    await self.server.publish_station(path, {
                        "BatchId": unit.id, "PredictedThickness_nm": row["pred_oxide_mean_nm"],
                        "LowerBound_nm": lo, "UpperBound_nm": hi,
                        "Reliability": row.get("vm_reliability", math.nan),
                        "ControllerState": row.get("ctrl_mode", "off"),
                        "LastAction": row.get("ctrl_state", "")})


class _Switch:
    """A station's equipment that is simulated until the twin goes live, then the PLC's.

    The twin joins a line that already has work in progress: the warm-up runs the model
    (simulated furnace included) to fill the line; every step that starts after
    :meth:`LiveSession.go_live` runs on the PLC. A simulated step in progress at the switch
    finishes simulated.
    """

    def __init__(self, tool: OpcUaTool, simulated: Equipment, live: list[bool],
                 replay: ReplayTool | None = None) -> None:
        self.tool = tool
        self.simulated = simulated
        self.path = tool.path
        self._live = live
        self._replay = replay  # a resumed twin's journal, replayed up to where it ended

    def _current(self) -> Any:
        return self.tool if self._live[0] else self.simulated

    def _for(self, env: simpy.Environment) -> Any:
        if (self._replay is not None and self._live[0]
                and float(env.now) < self._replay.until_s):
            return self._replay
        return self._current()

    @property
    def confirms_writes(self) -> bool:
        """A write to the live tool is confirmed by its read-back (the warm-up's is not)."""
        return self._live[0]

    def execute(self, env: simpy.Environment, step: Any) -> Any:
        return self._for(env).execute(env, step)

    def recover(self, env: simpy.Environment, result: StepResult) -> Any:
        return self._for(env).recover(env, result)

    def maintain(self, env: simpy.Environment, duration_s: float) -> Any:
        return self._for(env).maintain(env, duration_s)


def record_decision(sink: Any, proposal_id: str, *, accept: bool, who: str,
                    t_s: float, channel: str = "the twin's OPC UA server") -> str:
    """Record an operator decision on an open proposal in the run's audit sink.

    The control loop reads it when the batch starts (:meth:`ControlLoop.resolve`); a proposal
    that is unknown or already decided is refused with a reason.
    """
    records = getattr(sink, "records", [])
    prop = next((r for r in records if r.kind == "proposal" and r.proposal_id == proposal_id),
                None)
    if prop is None:
        return f"BadNotFound: no open proposal {proposal_id!r}"
    if prop.result == "advice":
        return (f"BadInvalidState: {proposal_id!r} is advice during the step (the twin does "
                "not act on a decision): trim the hold on the furnace's own HMI")
    if sink.decision(proposal_id) is not None or any(
            r.proposal_id == proposal_id and r.kind in ("expire", "write") for r in records):
        return f"BadInvalidState: proposal {proposal_id!r} is no longer open"
    result = "accepted" if accept else "rejected"
    sink.record(AuditRecord(kind="decision", loop=prop.loop, batch_id=prop.batch_id,
                            before=prop.before, after=prop.after,
                            reason=f"{result} through {channel}",
                            who=who, sim_time_s=t_s, proposal_id=proposal_id, result=result,
                            predicted_nm=prop.predicted_nm))
    return f"Good: {result} by {who}"


def _calibration(plant: Plant, path: str) -> Any:
    for m in plant.machines:
        if m.path == path:
            return getattr(m, "calibration", None)
    return None


def _on_signals(loop: asyncio.AbstractEventLoop, handler: Callable[[], None] | None) -> None:
    """Install (or with None remove) the SIGINT/SIGTERM handler of a live run."""
    with contextlib.suppress(NotImplementedError, RuntimeError):
        for sig in (signal.SIGINT, signal.SIGTERM):
            if handler is None:
                loop.remove_signal_handler(sig)
            else:
                loop.add_signal_handler(sig, handler)


async def run_live(cfg: PlantConfig, opts: LiveOptions) -> LiveOutcome:
    """Run the live twin of one plant once and write its run folder."""
    return (await run_lines([(cfg, opts)]))[0]


async def run_lines(lines: Sequence[tuple[PlantConfig, LiveOptions]], *,
                    web: WebOptions | None = None) -> list[LiveOutcome]:
    """Run the live twins of several lines side by side (one event loop, one Ctrl-C).

    Each line has its own PLCs (emulated ones are started here and stopped at the end), its
    own gateway, plant model, twin server and run folder. With ``web``, one web view serves
    every line's pages from this loop while they run.
    """
    emulators: list[list[EmulatorProcess]] = [[] for _ in lines]
    codes: dict[str, int] = {}
    sessions: list[LiveSession] = []
    loop = asyncio.get_running_loop()
    try:
        for i, (_, opts) in enumerate(lines):
            if opts.emulator_offset is None:
                opts.emulator_offset = 100 * i
        started = await asyncio.gather(*(_start_emulators(cfg, opts,
                                                          offset=opts.emulator_offset or 0)
                                         for cfg, opts in lines
                                         if opts.emulate), return_exceptions=True)
        it = iter(started)
        for i, (cfg, opts) in enumerate(lines):
            if not opts.emulate:
                sessions.append(LiveSession(cfg, opts, handle_signals=False))
                continue
            got = next(it)
            if isinstance(got, BaseException):
                raise got
            emulators[i] = got
            endpoints, tags = emulated_site(cfg, {e.name: e.url for e in got})
            sessions.append(LiveSession(cfg, opts, endpoints=endpoints, tags=tags,
                                        handle_signals=False))
        def interrupt_all() -> None:
            for s in sessions:
                s.interrupt()

        _on_signals(loop, interrupt_all)
        web_view = await _start_web(sessions, web) if web is not None else None
        try:
            results = await asyncio.gather(*(s.run() for s in sessions))
        finally:
            _on_signals(loop, None)
            if web_view is not None:
                await web_view.stop()
    finally:
        for group in emulators:
            for e in group:
                codes[e.name] = await asyncio.to_thread(e.stop)
    outcomes = []
    for i, (session, (result, interrupted)) in enumerate(zip(sessions, results,
                                                             strict=True)):
        opts = lines[i][1]
        names = [e.name for e in emulators[i]]
        folder = _write(session, result, opts, interrupted, names)
        gw = session.gateway
        gaps = [{"endpoint": g.endpoint, "start": g.start, "end": g.end}
                for g in (gw.gaps() if gw else ())]
        outcomes.append(LiveOutcome(folder, result, gaps, [e.url for e in emulators[i]],
                                    session.twin_url, session.stations(), interrupted,
                                    {n: codes[n] for n in names if n in codes}))
    return outcomes


async def _start_web(sessions: Sequence[LiveSession], web: WebOptions) -> WebServer:
    """The web view of the running lines (its address printed as ``web view: URL``)."""
    sources = [LiveSource(s) for s in sessions]
    view = WebView(sources, WebAuth(dict(web.accounts),
                                    anonymous_read=is_loopback(web.host)),
                   on_note=sessions[0].table.note if sessions else None)
    server = WebServer(view, web.host, web.port)
    await server.start()
    for src in sources:
        server.spawn(src.watch())
    print(f"web view: {server.url}", flush=True)
    return server


async def _start_emulators(cfg: PlantConfig, opts: LiveOptions, *,
                           offset: int = 0) -> list[EmulatorProcess]:
    from twin.config.load import DEFAULT_PLANT

    config = opts.plant_file or DEFAULT_PLANT
    jobs = [asyncio.to_thread(start_emulator, kind, name, config=config,
                              time_factor=opts.time_factor, seed=opts.seed + offset + i,
                              overrides=opts.overrides, truth=opts.truth)
            for i, (kind, name) in enumerate(tools_to_emulate(cfg))]
    started = await asyncio.gather(*jobs, return_exceptions=True)
    ok = [e for e in started if isinstance(e, EmulatorProcess)]
    bad = [e for e in started if isinstance(e, BaseException)]
    if bad:
        for e in ok:
            await asyncio.to_thread(e.stop)
        raise bad[0]
    return ok


def _schema_rows(rows: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The batch rows the journal keeps, each checked against the one batch record schema
    (a column it does not know is a developer's error, named here rather than at export)."""
    for row in rows:
        unknown = unknown_columns(row)
        if unknown:
            raise SchemaError(f"batch row {row.get('unit_id')}: column {unknown[0]!r} is not "
                              "in the batch record schema (twin/store/schema.py)")
        yield str(row["unit_id"]), row


def options_meta(opts: LiveOptions) -> dict[str, Any]:
    """What a resumed run needs of the options (kept in the journal)."""
    return {"seed": opts.seed, "time_factor": opts.time_factor, "hours": opts.hours,
            "warmup_days": opts.warmup_days, "emulate": opts.emulate,
            "plant_file": str(opts.plant_file) if opts.plant_file else None,
            "overrides": list(opts.overrides),
            "site_dir": str(opts.site_dir) if opts.site_dir else None, "truth": opts.truth,
            "calibration_start": {k: list(v) for k, v in opts.calibration_start.items()},
            "emulator_offset": opts.emulator_offset}


def resume_options(folder: Path, **kw: Any) -> tuple[PlantConfig, LiveOptions]:
    """The plant and options of the run whose journal is in ``folder`` (to resume it)."""
    db = open_journal(folder)
    try:
        meta = read_meta(db)
    finally:
        db.close()
    o = meta.get("options")
    if not isinstance(o, dict):
        raise UsageError(f"{folder}: the journal holds no run options (the twin was killed "
                         "as it started, before anything was recorded): start the run again")
    cfg = validate_model(PlantConfig, meta["config"], f"{folder}/{JOURNAL_FILE}")
    opts = LiveOptions(
        seed=int(o["seed"]), time_factor=float(o["time_factor"]), hours=float(o["hours"]),
        warmup_days=float(o["warmup_days"]), emulate=bool(o["emulate"]),
        plant_file=Path(o["plant_file"]) if o.get("plant_file") else None,
        overrides=tuple(o.get("overrides") or ()),
        site_dir=Path(o["site_dir"]) if o.get("site_dir") else None, out=folder,
        truth=o.get("truth"),
        calibration_start={k: tuple(v) for k, v in (o.get("calibration_start") or {}).items()},
        emulator_offset=o.get("emulator_offset"), resume=True, **kw)
    return cfg, opts


def _write(session: LiveSession, result: SimulationResult, opts: LiveOptions,
           interrupted: bool, emulators: list[str]) -> Path:
    """The run folder, exported from the journal (what a crashed run's export gives too)."""
    journal = session.journal
    assert journal is not None
    session.sync_journal(final=True)
    journal.put_meta("end_s", float(session.env.now))
    journal.put_meta("live_end", {"emulators": emulators, "twin_server": session.twin_url,
                                  "interrupted": interrupted,
                                  "gaps": _meta_gaps(session)})
    journal.close()
    session.journal = None
    return export_run(opts.out, summary=result.summary)


def _meta_gaps(session: LiveSession) -> list[dict[str, Any]]:
    gw = session.gateway
    return [{"endpoint": g.endpoint, "start_monotonic_s": g.start, "end_monotonic_s": g.end}
            for g in (gw.gaps() if gw else ())]
