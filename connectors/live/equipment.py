"""OPC UA equipment: the second implementation of :class:`twin.equipment.base.Equipment`.

A station's SimPy process calls :meth:`OpcUaFurnace.execute` exactly as it calls the simulated
furnace; here the step is downloaded to the PLC (one confirmed write per setpoint), started,
followed through the PLC's step states, and the *actual* process-value trajectory is recorded
from the subscriptions. The SimPy side only waits on an event; all OPC UA I/O runs as asyncio
tasks through the gateway, and the result is handed back by succeeding that event (the
real-time bridge processes it on its next slice).

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
from collections.abc import Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from connectors.emulators.points import dew_point_to_ph2o_atm, ph2o_atm_to_dew_point
from connectors.opcua.errors import GatewayError
from connectors.opcua.gateway import Gateway
from connectors.opcua.records import Sample
from twin.equipment.base import StepRequest, StepResult, StepStatus
from twin.physics.oxidation_profile import Profile

log = logging.getLogger(__name__)

RUNNING_STEPS = frozenset({"Loading", "Heating", "Holding", "Cooling", "Held", "PumpDown",
                           "Deposit", "Oxidize", "Vent"})
TERMINAL_STEPS = frozenset({"Complete", "Aborted"})

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
        """Fan the gateway's samples out to the stations' listeners (one consumer task)."""
        async for sample in self.gateway.updates():
            station = sample.signal.rsplit(".", 1)[0]
            for fn in list(self.listeners.get(station, ())):
                fn(sample)

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

    def profile(self) -> Profile | None:
        """The recorded trajectory (None with fewer than two samples)."""
        if len(self.rows) < 2:
            return None
        t, temp, po2, ph2o = (np.array(c, dtype=float) for c in zip(*self.rows, strict=True))
        return Profile(time_s=t - t[0], temperature_c=temp, po2_atm=po2, ph2o_atm=ph2o)

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

    async def _run(self, env: simpy.Environment, step: StepRequest, done: simpy.Event) -> None:
        start = float(env.now)
        rec = Recorder(self.path, self.links, max(self.zones, 1), self.RECORDED)
        unlisten = self.links.listen(self.path, rec.on_sample)
        fault, final = "", ""
        try:
            await self._download(step)
            await self.links.gateway.call(self._sig("start"))
            self.links.notify("started", self.path, step.batch_id,
                              {"setpoints": dict(step.setpoints),
                               "context": dict(step.context), "recorder": rec,
                               "start_s": start})
            final = await self._follow(rec, env, start + self.expected_s(step) *
                                       self.timeout_factor + 600.0)
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
        for name, value in self.writes(step):
            if name in self.has:
                await self.links.gateway.write(self._sig(name), value)

    async def _follow(self, rec: Recorder, env: simpy.Environment, deadline_s: float) -> str:
        """Wait until the PLC reports Complete/Aborted (or lost the batch, or time ran out)."""
        while True:
            if rec.step in TERMINAL_STEPS and rec.seen_running:
                return rec.step
            if rec.step == "Idle" and (rec.seen_running or rec.had_outage):
                # Idle after the batch ran, or after an outage: the PLC restarted and forgot
                # the batch (a stale Idle from before Start cannot follow an outage).
                return "Idle"
            if float(env.now) > deadline_s:
                return "timeout"
            rec.step_changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(rec.step_changed.wait(), timeout=0.5)


class OpcUaFurnace(OpcUaTool):
    """Controlled-oxidation furnace PLC (setpoints of an ``oxidize`` step)."""

    kind = "furnace"
    RECORDED = {"gas_flow_pv": "gas_flow_slm"}

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
