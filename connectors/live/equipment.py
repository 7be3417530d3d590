"""OPC UA equipment: the second implementation of :class:`twin.equipment.base.Equipment`.

A station's SimPy process calls :meth:`OpcUaFurnace.execute` exactly as it calls the simulated
furnace; here the step is downloaded to the PLC (one confirmed write per setpoint), started,
followed through the PLC's step states, and the *actual* process-value trajectory is recorded
from the subscriptions. The SimPy side only waits on an event; all OPC UA I/O runs as asyncio
tasks through the gateway, and the result is handed back by succeeding that event (the
real-time bridge processes it on its next slice).

In-batch endpoint control: when the step carries a supervisor
(:class:`twin.equipment.base.StepSupervisor`), :class:`PlcSupervision` shows it, at each of its
checkpoints (elapsed simulation time since the step started), the record so far
(:meth:`Recorder.profile`) and the furnace's independent instruments (``monitor``:
``overtemp_c`` from ``overtemp_pv``, ``o2_analyser_atm`` from ``o2_analyser_pv``, on the
record's time grid, each when its tag is mapped). An action is sent to the PLC's
``adjust_hold`` method, the hold is read back from ``hold_time_sp``, and
:meth:`~twin.equipment.base.StepSupervisor.applied` gets that read-back (or None and the
reason). An action with a fault ends the hold and the step is reported ``aborted`` with it.

Outages: samples during a communication gap are unknown; the step's result carries the gap
(sim-time start, end) and status ``gap``, and a batch the PLC lost (restart) comes back
``aborted`` with its gap. Nothing is re-sent after a reconnect (the gateway refuses writes
while disconnected and never replays them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import simpy

from connectors.emulators.points import dew_point_to_ph2o_atm, ph2o_atm_to_dew_point
from connectors.opcua.errors import GatewayError
from connectors.opcua.gateway import Gateway
from connectors.opcua.records import Sample
from twin.control.endpoint import projected_hold_start_s
from twin.equipment.base import EndpointAction, StepRequest, StepResult, StepStatus
from twin.physics.oxidation_profile import Profile

log = logging.getLogger(__name__)

RUNNING_STEPS = frozenset({"Loading", "Heating", "Holding", "Cooling", "Held", "PumpDown",
                           "Deposit", "Oxidize", "Vent"})
TERMINAL_STEPS = frozenset({"Complete", "Aborted"})
#: Steps before a furnace's hold: a fault found there ends the hold as soon as it begins.
BEFORE_HOLD = frozenset({"", "Idle", "Loading", "Heating", "Held"})
#: Longest wall-clock wait between two looks at a running step, s.
POLL_S = 0.5
#: Monitor tags of a furnace -> the names the supervisor knows them by.
MONITOR_TAGS = {"overtemp_pv": "overtemp_c", "o2_analyser_pv": "o2_analyser_atm"}

#: ``observer(kind, path, batch_id, data)``: what the live session shows and publishes.
Observer = Callable[[str, str, str, Mapping[str, Any]], None]


@dataclass
class LiveLinks:
    """What the OPC UA equipment of one run shares: the gateway and the clocks."""

    gateway: Gateway
    sim_time_at: Callable[[float], float]  # gateway clock reading -> simulation time, s
    spawn: Callable[[Coroutine[Any, Any, None]], None]
    time_factor: float
    observer: Observer | None = None
    listeners: dict[str, list[Callable[[Sample], None]]] = field(default_factory=dict)

    def listen(self, path: str, fn: Callable[[Sample], None]) -> Callable[[], None]:
        """Call ``fn`` for every sample of the station ``path``; returns the unsubscribe."""
        self.listeners.setdefault(path, []).append(fn)
        return lambda: self.listeners[path].remove(fn)

    async def route(self) -> None:
        """Fan the gateway's samples out to the stations' listeners, and its PLC alarms to
        the observer (``alarm``), in one consumer task each."""
        await asyncio.gather(self._route_samples(), self._route_alarms())

    async def _route_samples(self) -> None:
        async for sample in self.gateway.updates():
            station = sample.signal.rsplit(".", 1)[0]
            for fn in list(self.listeners.get(station, ())):
                fn(sample)

    async def _route_alarms(self) -> None:
        # An alarm belongs to the station whose tags its endpoint serves (the endpoint's
        # name when it serves several or none).
        stations: dict[str, str] = {}
        for endpoint in self.gateway.endpoints:
            paths = {s.rsplit(".", 1)[0] for s in self.gateway.signals(endpoint)}
            stations[endpoint] = paths.pop() if len(paths) == 1 else endpoint
        async for alarm in self.gateway.alarms():
            self.notify("alarm", stations.get(alarm.endpoint, alarm.endpoint), "",
                        {"alarm": alarm, "sim_time_s": self.sim_time_at(alarm.received_ts)})

    def notify(self, kind: str, path: str, batch_id: str, data: Mapping[str, Any]) -> None:
        if self.observer is not None:
            self.observer(kind, path, batch_id, data)


class Recorder:
    """The actual process values of one batch on the simulation time axis."""

    def __init__(self, path: str, links: LiveLinks, zones: int,
                 signals: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.links = links
        # Other process values kept as they come (local tag name -> name with units).
        self.signals = dict(signals or {})
        self.samples: list[tuple[float, str, float]] = []
        self.zones = [math.nan] * zones
        self.po2_atm = math.nan
        self.ph2o_atm = math.nan
        self.step = ""
        #: When each step was entered (simulation time of its first sample).
        self.entered: dict[str, float] = {}
        self.rows: list[tuple[float, float, float, float]] = []
        self.gaps: list[list[float]] = []
        self.step_changed = asyncio.Event()
        self.seen_running = False
        self.had_outage = False

    def on_sample(self, s: Sample) -> None:
        t = self.links.sim_time_at(s.received_ts)
        name = s.signal.rsplit(".", 1)[1]
        if s.gap:
            if not self.gaps or not math.isnan(self.gaps[-1][1]):
                self.gaps.append([t, math.nan])
            self.had_outage = True
            return
        if self.gaps and math.isnan(self.gaps[-1][1]):
            self.gaps[-1][1] = t  # the first good value after the outage ends the gap
        if not s.ok or s.value is None:
            return
        if name == "step":
            self.step = str(s.value)
            self.entered.setdefault(self.step, t)
            self.seen_running |= self.step in RUNNING_STEPS
            self.step_changed.set()
            return
        if name in self.signals and self.step in RUNNING_STEPS:
            self.samples.append((t, self.signals[name], float(s.value)))  # type: ignore[arg-type]
            return
        if name.startswith("zone") and name.endswith("_temperature_pv"):
            self.zones[int(name[4:name.index("_")]) - 1] = float(s.value)  # type: ignore[arg-type]
        elif name == "po2_pv":
            self.po2_atm = float(s.value)  # type: ignore[arg-type]
        elif name == "dew_point_pv":
            self.ph2o_atm = dew_point_to_ph2o_atm(float(s.value))  # type: ignore[arg-type]
        else:
            return
        if self.step in RUNNING_STEPS and not any(map(math.isnan, self.zones)):
            row = (t, sum(self.zones) / len(self.zones), _finite(self.po2_atm),
                   _finite(self.ph2o_atm))
            if self.rows and t <= self.rows[-1][0]:
                self.rows[-1] = row
            else:
                self.rows.append(row)
            self.links.notify("pv", self.path, "", {"recorder": self})

    def profile(self, since_s: float | None = None) -> Profile | None:
        """The recorded trajectory (None with fewer than two samples); time from the first
        sample, or from ``since_s`` (simulation time, e.g. the step's start) when given."""
        if len(self.rows) < 2:
            return None
        t, temp, po2, ph2o = (np.array(c, dtype=float) for c in zip(*self.rows, strict=True))
        t0 = t[0] if since_s is None else min(float(since_s), float(t[0]))
        return Profile(time_s=t - t0, temperature_c=temp, po2_atm=po2, ph2o_atm=ph2o)

    def hold_start_s(self, since_s: float, sp: Mapping[str, float], load_s: float
                     ) -> float | None:
        """When the PLC's hold started (or will), s from ``since_s`` (the step's start):
        see :func:`twin.control.endpoint.projected_hold_start_s`."""
        if not self.rows or "hold_c" not in sp:
            return None
        entered = {k: v - since_s for k, v in self.entered.items()}
        t_now, temp = self.rows[-1][0] - since_s, self.rows[-1][1]
        return projected_hold_start_s(self.step, t_now, temp, entered, sp, load_s=load_s)

    def monitor(self, names: Iterable[str]) -> dict[str, np.ndarray] | None:
        """Instruments recorded as they come (by their recorded name), on the record's grid.

        Each value holds until the next (a PLC reports on change); record rows before an
        instrument's first sample take that first sample (both start within one sampling
        interval of Start). An instrument without any sample yet is left out; None when
        none has one or the record is too short for a profile.
        """
        if len(self.rows) < 2:
            return None
        t = np.array([r[0] for r in self.rows], dtype=float)
        out: dict[str, np.ndarray] = {}
        for key in names:
            got = sorted((ts, v) for ts, n, v in self.samples if n == key)
            if not got:
                continue
            ts = np.array([g[0] for g in got])
            vs = np.array([g[1] for g in got])
            idx = np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(vs) - 1)
            out[key] = vs[idx]
        return out or None

    def gap_pairs(self, end_s: float) -> tuple[tuple[float, float], ...]:
        return tuple((a, end_s if math.isnan(b) else b) for a, b in self.gaps)


class LiveLab:
    """Truth handle of a live batch: the lab result comes from the PLC's metrology node."""

    mean_nm = math.nan  # the twin never knows the truth of a live batch

    def __init__(self, path: str, batch_id: str, links: LiveLinks,
                 values: Mapping[str, float] | None = None) -> None:
        self.path = path
        self.batch_id = batch_id
        self.links = links
        self.values = dict(values or {})

    def __getitem__(self, key: str) -> float:
        # Dict-like access for the sputter station (film from the tool's monitor, cap unknown).
        return self.values.get(key, math.nan)

    def measure(self, env: simpy.Environment) -> Generator[simpy.Event, Any, float]:
        """Ask the lab (the PLC's metrology node) and wait for the result; NaN if none."""
        done = env.event()
        self.links.spawn(self._fetch(done))
        value = yield done
        self.links.notify("lab_taken", self.path, self.batch_id,
                          {"taken_s": float(env.now), "measured_nm": float(value)})
        return float(value)

    async def _fetch(self, done: simpy.Event) -> None:
        gw, sig = self.links.gateway, f"{self.path}."
        value = math.nan
        try:
            req = await gw.call(sig + "request_measurement", self.batch_id, check=False)
            if req.ok and req.outputs and req.outputs[0] == "Good":
                wait_s = float(req.outputs[1]) / self.links.time_factor
                await asyncio.sleep(max(wait_s, 0.0))
                for _ in range(200):
                    got = await gw.call(sig + "get_measurement", self.batch_id, check=False)
                    status = got.outputs[0] if got.outputs else got.status
                    if status == "Good":
                        value = float(got.outputs[1])
                        break
                    if status != "BadWaitingForInitialData":
                        break
                    await asyncio.sleep(0.05)
        except GatewayError as exc:
            log.warning("lab result of %s from %s not available: %s", self.batch_id,
                        self.path, exc)
        self.links.notify("lab", self.path, self.batch_id, {"measured_nm": value})
        if not done.triggered:
            done.succeed(value)


class OpcUaTool:
    """Common part of the OPC UA tools: write setpoints, start, follow the steps."""

    kind = "tool"
    #: Process values recorded as they come, besides the furnace profile (tag -> name).
    RECORDED: dict[str, str] = {}

    def __init__(self, path: str, links: LiveLinks, *, timeout_factor: float = 3.0) -> None:
        self.path = path
        self.links = links
        self.timeout_factor = timeout_factor
        signals = set(links.gateway.signals())
        self.has = {s.rsplit(".", 1)[1] for s in signals if s.startswith(path + ".")}
        self.zones = sum(1 for s in self.has if s.startswith("zone") and s.endswith("_sp"))

    def _sig(self, name: str) -> str:
        return f"{self.path}.{name}"

    def writes(self, step: StepRequest) -> list[tuple[str, Any]]:  # pragma: no cover
        raise NotImplementedError

    def expected_s(self, step: StepRequest) -> float:  # pragma: no cover
        raise NotImplementedError

    def values(self, rec: Recorder, step: StepRequest, duration_s: float) -> dict[str, float]:
        return {"duration_s": duration_s}

    def execute(self, env: simpy.Environment,
                step: StepRequest) -> Generator[simpy.Event, Any, StepResult]:
        """Run the step on the PLC; wait (in simulation time) for its result."""
        done = env.event()
        self.links.spawn(self._run(env, step, done))
        result: StepResult = yield done
        # The model takes the result now: the journal keeps it with this time, so that a
        # resumed twin replays it at the same moment instead of running the batch again.
        truth = result.truth
        self.links.notify("step_taken", self.path, step.batch_id,
                          {"result": result, "taken_s": float(env.now),
                           "truth_values": getattr(truth, "values", {})})
        return result

    def recover(self, env: simpy.Environment,
                result: StepResult) -> Generator[simpy.Event, Any, float]:
        """After an aborted step the PLC is ready again at once (its own state machine)."""
        yield env.timeout(0)
        return 0.0

    def maintain(self, env: simpy.Environment,
                 duration_s: float) -> Generator[simpy.Event, Any, float]:
        """Planned maintenance is the plant's calendar; the PLC just is not used meanwhile."""
        yield env.timeout(duration_s)
        return duration_s

    def endpoint_control(self, step: StepRequest, rec: Recorder, env: simpy.Environment,
                         start_s: float, setpoints: dict[str, float]) -> PlcSupervision | None:
        """In-batch endpoint control of this step (None: the tool has none, or no supervisor)."""
        return None

    async def _run(self, env: simpy.Environment, step: StepRequest, done: simpy.Event) -> None:
        start = float(env.now)
        rec = Recorder(self.path, self.links, max(self.zones, 1), self.RECORDED)
        unlisten = self.links.listen(self.path, rec.on_sample)
        fault, final = "", ""
        # The step's setpoints as they stand: a confirmed hold change updates this dict, which
        # the observer keeps (its in-progress prediction then runs on the hold the PLC has).
        setpoints = dict(step.setpoints)
        control = self.endpoint_control(step, rec, env, start, setpoints)

        def deadline_s() -> float:
            # An extended hold moves the deadline with it (never closer than planned).
            now = replace(step, setpoints={**step.setpoints, **setpoints}) \
                if control is not None else step
            return start + max(self.expected_s(step), self.expected_s(now)) * \
                self.timeout_factor + 600.0

        try:
            await self._download(step)
            await self.links.gateway.call(self._sig("start"))
            self.links.notify("started", self.path, step.batch_id,
                              {"setpoints": setpoints,
                               "context": dict(step.context), "recorder": rec,
                               "start_s": start})
            final = await self._follow(rec, env, deadline_s, control)
        except GatewayError as exc:
            fault = str(exc)
        except Exception as exc:  # keep the model alive whatever the tool does
            log.exception("live step of %s on %s failed", step.batch_id, self.path)
            fault = f"{type(exc).__name__}: {exc}"
        finally:
            unlisten()
        end = max(float(env.now), start)
        gaps = rec.gap_pairs(end)
        status: StepStatus = "ok"
        if control is not None and control.fault and not fault:
            # The twin ended the hold on a gross fault: the step did not run as planned.
            fault = control.fault
        if fault or final != "Complete":
            status = "aborted"
            fault = fault or (f"PLC ended in {final or 'an unknown state'}")
        elif gaps:
            status = "gap"
        prof = rec.profile()
        result = StepResult(self.path, step.batch_id, status, start, end, actual=prof,
                            values=self.values(rec, step, end - start), gaps=gaps, fault=fault,
                            truth=LiveLab(self.path, step.batch_id, self.links,
                                          self.truth_values(rec)), on_line=True)
        self.links.notify("finished", self.path, step.batch_id,
                          {"result": result, "recorder": rec})
        if not done.triggered:
            done.succeed(result)

    def truth_values(self, rec: Recorder) -> dict[str, float]:
        return {}

    async def _download(self, step: StepRequest) -> None:
        # One confirmed write per setpoint, in a fixed order; a refusal aborts the download
        # before Start (the PLC keeps its previous, complete recipe).
        try:
            for name, value in self.writes(step):
                if name in self.has:
                    await self.links.gateway.write(self._sig(name), value)
        except GatewayError as exc:
            if step.on_download is not None:
                step.on_download({}, str(exc))
            raise
        # Every write above was read back equal (the gateway raises otherwise): the tool
        # holds the step's setpoints.
        if step.on_download is not None:
            step.on_download(dict(step.setpoints), "")

    async def _follow(self, rec: Recorder, env: simpy.Environment,
                      deadline_s: Callable[[], float],
                      control: PlcSupervision | None = None) -> str:
        """Wait until the PLC reports Complete/Aborted (or lost the batch, or time ran out);
        meanwhile run the endpoint control's checkpoints as they fall due."""
        while True:
            if rec.step in TERMINAL_STEPS and rec.seen_running:
                return rec.step
            if rec.step == "Idle" and (rec.seen_running or rec.had_outage):
                # Idle after the batch ran, or after an outage: the PLC restarted and forgot
                # the batch (a stale Idle from before Start cannot follow an outage).
                return "Idle"
            wait_s = POLL_S
            if control is not None:
                await control.poll()
                wait_s = control.wait_s()
            if float(env.now) > deadline_s():
                return "timeout"
            rec.step_changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(rec.step_changed.wait(), timeout=wait_s)


class OpcUaFurnace(OpcUaTool):
    """Controlled-oxidation furnace PLC (setpoints of an ``oxidize`` step)."""

    kind = "furnace"
    RECORDED = {"gas_flow_pv": "gas_flow_slm", **MONITOR_TAGS}
    #: How long the PLC's step loads before it heats, s (half the station's load/unload
    #: time of the plant file; the live session sets it).
    load_s = 900.0

    def endpoint_control(self, step: StepRequest, rec: Recorder, env: simpy.Environment,
                         start_s: float, setpoints: dict[str, float]) -> PlcSupervision | None:
        if step.supervisor is None:
            return None
        return PlcSupervision(self, step, rec, env, start_s, setpoints)

    @property
    def monitor_names(self) -> tuple[str, ...]:
        """The independent instruments this furnace's tag map has (as the supervisor names
        them)."""
        return tuple(key for tag, key in MONITOR_TAGS.items() if tag in self.has)

    def writes(self, step: StepRequest) -> list[tuple[str, Any]]:
        sp = step.setpoints
        out: list[tuple[str, Any]] = [("batch_id", step.batch_id),
                                      ("recipe_id", step.recipe_id)]
        out += [(f"zone{i}_temperature_sp", float(sp["hold_c"]))
                for i in range(1, self.zones + 1)]
        out += [("ramp_rate_sp", float(sp["ramp_c_per_min"])),
                ("cool_rate_sp", float(sp["cool_c_per_min"])),
                ("hold_time_sp", float(sp["hold_min"])),
                ("po2_sp", float(sp["po2_atm"])),
                ("dew_point_sp", ph2o_atm_to_dew_point(float(sp.get("ph2o_atm", 0.0))))]
        if "gas_flow_slm" in sp:
            out.append(("gas_flow_sp", float(sp["gas_flow_slm"])))
        psd = step.context.get("psd")
        d50 = getattr(psd, "d50_um", None)
        if d50 is not None:
            out.append(("charge_d50_sp", float(d50)))
        if "mass_kg" in step.context:
            out.append(("charge_mass_sp", float(step.context["mass_kg"])))
        return out

    def expected_s(self, step: StepRequest) -> float:
        sp = step.setpoints
        heat = (sp["hold_c"] - sp.get("start_c", 25.0)) / max(sp["ramp_c_per_min"], 1e-3)
        cool = (sp["hold_c"] - 100.0) / max(sp["cool_c_per_min"], 1e-3)
        return 60.0 * (heat + sp["hold_min"] + cool) + 3600.0

    def values(self, rec: Recorder, step: StepRequest, duration_s: float) -> dict[str, float]:
        prof = rec.profile()
        hold_c = float(step.setpoints["hold_c"])
        if prof is None:
            return {"max_c": math.nan, "hold_c_mean": math.nan, "hold_band_min": 0.0,
                    "po2_atm_mean": math.nan, "ph2o_atm_mean": math.nan,
                    "duration_s": duration_s}
        temp = prof.temperature_c
        band = temp >= hold_c - 5.0
        dt = np.diff(prof.time_s, append=prof.time_s[-1])
        return {"max_c": float(temp.max()),
                "hold_c_mean": float(temp[band].mean()) if band.any() else math.nan,
                "hold_band_min": float(dt[band].sum()) / 60.0,
                "po2_atm_mean": float(prof.po2_atm.mean()),
                "ph2o_atm_mean": float(prof.ph2o_atm.mean()), "duration_s": duration_s,
                # The flow controller's reading while the step ran (the supply limit's input).
                "gas_flow_slm_mean": _time_mean(
                    [(t, v) for t, name, v in rec.samples if name == "gas_flow_slm"],
                    float(prof.time_s[-1]) + float(rec.rows[0][0]) if rec.rows else 0.0)}


class PlcSupervision:
    """A step's supervisor on the furnace PLC (see the module docstring).

    Parameters
    ----------
    tool : OpcUaFurnace
        The furnace the step runs on.
    step : StepRequest
        The step; its ``supervisor`` is not None.
    rec : Recorder
        The step's record (indicated values, the instruments as they come).
    env : simpy.Environment
        The model's clock: checkpoints are elapsed simulation time since ``start_s``.
    start_s : float
        Simulation time the step started, s.
    setpoints : dict
        The step's setpoints as they stand; ``hold_min`` follows the PLC's confirmed hold.
    """

    def __init__(self, tool: OpcUaFurnace, step: StepRequest, rec: Recorder,
                 env: simpy.Environment, start_s: float, setpoints: dict[str, float]) -> None:
        assert step.supervisor is not None
        self.tool = tool
        self.step = step
        self.supervisor = step.supervisor
        self.rec = rec
        self.env = env
        self.start_s = float(start_s)
        self.setpoints = setpoints
        self.fault = ""
        self.pending: EndpointAction | None = None
        self.next = 0
        try:
            cps = self.supervisor.checkpoints_s(dict(setpoints))
            self.checkpoints = tuple(sorted(float(c) for c in cps))
        except Exception:  # a supervisor bug must not stop the step: it runs as planned
            log.exception("%s: checkpoints of %s failed: step runs as planned", tool.path,
                          step.batch_id)
            self.checkpoints = ()

    @property
    def elapsed_s(self) -> float:
        """Simulation time since the step started, s."""
        return float(self.env.now) - self.start_s

    def wait_s(self) -> float:
        """Wall time until the next checkpoint is due, s (at most :data:`POLL_S`)."""
        if self.fault or self.next >= len(self.checkpoints):
            return POLL_S
        due_s = (self.checkpoints[self.next] - self.elapsed_s) / self.tool.links.time_factor
        # Not below a few ms: the model's clock moves in bridge slices, not continuously.
        return min(max(due_s, 0.005), POLL_S)

    async def poll(self) -> None:
        """Run what is due: a deferred fault once the hold began, the newest checkpoint."""
        if self.pending is not None and self.rec.step not in BEFORE_HOLD:
            action, self.pending = self.pending, None
            await self._apply(action)
        if self.fault:
            return  # a charge with a gross fault is held for the lab: nothing more to trim
        elapsed = self.elapsed_s
        due = self.next
        while self.next < len(self.checkpoints) and self.checkpoints[self.next] <= elapsed:
            self.next += 1
        if self.next > due:
            # Several checkpoints passed at once (a slow loop) see the same record: check once.
            await self._check(elapsed)

    async def _check(self, elapsed_s: float) -> None:
        path, bid = self.tool.path, self.step.batch_id
        seen = self.rec.profile(since_s=self.start_s)
        if seen is None:
            log.info("%s: endpoint check of %s at %.0f s skipped: no record yet", path, bid,
                     elapsed_s)
            return
        monitor = self.rec.monitor(self.tool.monitor_names)
        sp = dict(self.setpoints)
        # The PLC times its hold from reaching the hold temperature, not from the plan.
        start = self.rec.hold_start_s(self.start_s, sp, getattr(self.tool, "load_s", 0.0))
        if start is not None:
            sp["hold_start_s"] = start
        try:
            action = self.supervisor.check(seen, elapsed_s, sp, monitor)
        except Exception:  # a supervisor bug must not stop the step: it runs as planned
            log.exception("%s: endpoint check of %s at %.0f s failed: step runs as planned",
                          path, bid, elapsed_s)
            return
        if action is None:
            return
        if action.fault:
            self.fault = action.fault
            if self.rec.step in BEFORE_HOLD:
                # AdjustHold acts on a hold only: end it as soon as the PLC begins it.
                self.pending = action
                return
        await self._apply(action)

    async def _apply(self, action: EndpointAction) -> None:
        """AdjustHold on the PLC, read the hold back, tell the supervisor what it got."""
        tool, gw = self.tool, self.tool.links.gateway
        method, sp_tag = tool._sig("adjust_hold"), tool._sig("hold_time_sp")
        value = float(action.hold_min)
        confirmed: float | None = None
        error = ""
        try:
            if action.fault and "hold_time_pv" in tool.has:
                # End the hold now: ask for no more than the PLC has held (its own clock).
                held = await gw.read(tool._sig("hold_time_pv"))
                if held.ok and isinstance(held.value, float):
                    value = max(min(value, held.value), 0.0)
            if "adjust_hold" not in tool.has:
                error = f"{method}: not in the tag map, the PLC's hold cannot be changed"
            else:
                res = await gw.call(method, value, check=False)
                if not res.ok:
                    why = f" ({res.outputs[1]})" if len(res.outputs) > 1 and res.outputs[1] \
                        else ""
                    error = f"{method}({value:g} min) refused: {res.status}{why}"
                elif "hold_time_sp" not in tool.has:
                    error = f"{method}: accepted, but no {sp_tag} tag to read the hold back"
                else:
                    back = await gw.read(sp_tag)
                    if back.ok and isinstance(back.value, float) and math.isfinite(back.value):
                        confirmed = back.value
                        self.setpoints["hold_min"] = confirmed
                    else:
                        error = (f"{method}: accepted, but the read-back of {sp_tag} failed "
                                 f"({back.status})")
        except GatewayError as exc:
            error = f"{method}: {exc}"
        t_s = float(self.env.now)
        if error:
            log.warning("%s: endpoint action on %s not confirmed: %s", tool.path,
                        self.step.batch_id, error)
        try:
            self.supervisor.applied(action, confirmed, t_s, error)
        except Exception:
            log.exception("%s: supervisor of %s failed on the confirmed hold", tool.path,
                          self.step.batch_id)
        tool.links.notify("endpoint", tool.path, self.step.batch_id,
                          {"action": action, "confirmed_hold_min": confirmed, "error": error,
                           "t_s": t_s})


class OpcUaSputter(OpcUaTool):
    """Sputter-tool PLC (setpoints of a ``sputter`` step: deposit, then oxidize the cap)."""

    kind = "sputter"
    RECORDED = {"power_pv": "power_w", "pressure_pv": "pressure_mtorr", "ar_flow_pv": "ar_sccm",
                "o2_flow_pv": "o2_sccm", "substrate_temperature_pv": "substrate_temperature_c",
                "film_thickness_pv": "film_nm"}

    def __init__(self, path: str, links: LiveLinks, **kw: Any) -> None:
        super().__init__(path, links, **kw)
        self._film = math.nan
        self._unlisten = links.listen(path, self._watch)

    def _watch(self, s: Sample) -> None:
        if s.ok and s.signal.endswith(".film_thickness_pv") and s.value is not None:
            self._film = float(s.value)  # type: ignore[arg-type]

    def writes(self, step: StepRequest) -> list[tuple[str, Any]]:
        sp = step.setpoints
        names = {"power_w": "power_sp", "pressure_mtorr": "pressure_sp", "ar_sccm": "ar_flow_sp",
                 "o2_sccm": "o2_flow_sp", "substrate_temperature_c": "substrate_temperature_sp",
                 "deposit_min": "deposition_time_sp", "oxidize_min": "oxidation_time_sp"}
        out: list[tuple[str, Any]] = [("batch_id", step.batch_id),
                                      ("recipe_id", step.recipe_id)]
        out += [(tag, float(sp[key])) for key, tag in names.items() if key in sp]
        return out

    def expected_s(self, step: StepRequest) -> float:
        sp = step.setpoints
        return 60.0 * (sp["deposit_min"] + sp.get("oxidize_min", 0.0)) + 3600.0

    def values(self, rec: Recorder, step: StepRequest, duration_s: float) -> dict[str, float]:
        # What the tool's own controllers report; the cap is only known to the lab.
        sp = step.setpoints
        out = {k: float(v) for k, v in sp.items()}
        out["duration_s"] = duration_s
        return out

    def truth_values(self, rec: Recorder) -> dict[str, float]:
        # The film thickness is what the tool's thickness monitor read (a process value); the
        # oxide cap is never exposed and stays unknown until the lab measures it.
        return {"film_nm": self._film, "cap_nm": math.nan}


def _time_mean(samples: list[tuple[float, float]], end_s: float) -> float:
    """Time-weighted mean of a signal reported on change (each value holds until the next),
    from its first sample to ``end_s``; NaN without samples."""
    if not samples:
        return math.nan
    samples = sorted(samples)
    t = np.array([s[0] for s in samples] + [max(end_s, samples[-1][0])])
    v = np.array([s[1] for s in samples])
    dt = np.diff(t)
    return float((v * dt).sum() / dt.sum()) if dt.sum() > 0 else float(v[-1])


def _finite(x: float) -> float:
    return 0.0 if math.isnan(x) else x
