"""What every emulated tool shares: batch state machine, checked setpoints, alarms, the lab.

No OPC UA here: a tool is a plain object that the server (:mod:`.server`) advances in
accelerated process time and maps to nodes. Statuses are OPC UA status-code *names*
(``"BadOutOfRange"``) so that this layer stays free of asyncua and the server only translates.

Batch life cycle (both tools)::

    Idle/Complete/Aborted --Start--> first step ... last step --> Complete
    any running step --Hold--> Held --Resume--> the step it was held in
    any running step or Held --Abort--> Aborted
    interlock trip --> Aborted, machine OutOfService until Reset (cause cleared)

Setpoints are locked (``BadNotWritable``) from Start until Complete/Aborted: a recipe is fixed
for the batch it runs, which is what makes a lab result attributable to its setpoints. The one
exception is a furnace's hold time, changed only through its ``AdjustHold`` method while the
step is Holding (checked there, and read back on the setpoint).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from connectors.emulators.points import Point
from twin.config.schema import LabConfig, PlcEmulation
from twin.physics.composition import thickness_sigma_rel_o_bet
from twin.physics.metrology import measure_thickness_nm, sigma_nm

#: Machine states of OPC 40001-1 ``MachineryItemState``.
MACHINE_STATES: tuple[str, ...] = ("NotAvailable", "OutOfService", "NotExecuting", "Executing")
#: Alarm kinds every tool raises (one OPC UA event type each).
ALARM_KINDS: tuple[str, ...] = ("OverTemperature", "FlowDeviation", "InterlockTrip",
                                "HeartbeatLost")
ALARM_SEVERITY: dict[str, int] = {"OverTemperature": 800, "FlowDeviation": 500,
                                  "InterlockTrip": 900, "HeartbeatLost": 600}
#: Commands (OPC UA methods on BatchControl).
COMMANDS: tuple[str, ...] = ("Start", "Hold", "Resume", "Abort", "Reset")


@dataclass(frozen=True)
class AlarmChange:
    """An alarm became active or cleared (one OPC UA event)."""

    kind: str
    active: bool
    message: str
    severity: int


@dataclass(frozen=True)
class LabResult:
    """A lab measurement of a finished batch's oxide (what the metrology node serves)."""

    batch_id: str
    thickness_nm: float
    sigma_nm: float
    requested_s: float
    ready_s: float


@dataclass
class _LabJob:
    batch_id: str
    requested_s: float
    ready_s: float
    result: LabResult | None = None


@dataclass
class Batch:
    """The batch on the tool (or the last one)."""

    batch_id: str = ""
    recipe_id: str = ""
    start_s: float = 0.0
    end_s: float = 0.0


class ToolCore:
    """Tool-independent state: batch, setpoints, alarms, faults, lab queue.

    Subclasses (:class:`~connectors.emulators.furnace.FurnaceTool`,
    :class:`~connectors.emulators.sputter.SputterTool`) provide ``KIND``, ``RUN_STEPS``, the
    points, the local recipe and the process (:meth:`_process`, :meth:`_alarm_conditions`,
    :meth:`_interlock_cause`, :meth:`_finish`).

    Parameters
    ----------
    points : tuple of Point
        The tool's process values.
    local_recipe : dict
        Setpoints by point key that the tool runs without a supervisor (and starts with).
    plc : PlcEmulation
        Emulation settings (alarm bands, identification ...).
    lab : LabConfig
        The plant's lab: turnaround and noise of the metrology node.
    lab_rng : numpy.random.Generator
        Stream for the lab's measurement noise.
    """

    KIND: ClassVar[str] = "tool"
    RUN_STEPS: ClassVar[tuple[str, ...]] = ()
    STEPS: ClassVar[tuple[str, ...]] = ()
    FAULTS: ClassVar[tuple[str, ...]] = ()
    #: The tool offers ``BatchControl.AdjustHold`` (a furnace; see :meth:`adjust_hold`).
    ADJUSTABLE_HOLD: ClassVar[bool] = False
    #: Longest process step of one integration sub-step, s (the lags are exact; this keeps
    #: step transitions and alarm on-delays within a few seconds at any time factor).
    MAX_SUBSTEP_S: ClassVar[float] = 5.0

    def __init__(self, points: tuple[Point, ...], local_recipe: Mapping[str, Any],
                 plc: PlcEmulation, lab: LabConfig, lab_rng: np.random.Generator) -> None:
        self.points = points
        self.by_key: dict[str, Point] = {p.key: p for p in points}
        self.local_recipe = recipe_values(local_recipe)
        self.plc = plc
        self.lab = lab
        self.lab_rng = lab_rng
        self.t_s = 0.0
        self.step = "Idle"
        self.held_from = ""
        self.step_elapsed_s = 0.0
        self.batch = Batch()
        self.control_mode = "Remote"
        self.trip_reason = ""
        self.faults: set[str] = set()
        self.setpoints: dict[str, Any] = {k: v for k, v in self.local_recipe.items()
                                          if k in self.by_key}
        self.pv: dict[str, Any] = {}
        self.alarms: dict[str, bool] = dict.fromkeys(ALARM_KINDS, False)
        self.true_oxide_nm: dict[str, float] = {}
        #: Where each finished batch's true oxide is appended (``plc --truth-log``), or None.
        self.truth_log: Path | None = None
        # What the lab receives of each batch: the hidden charge (it analyses itself with the
        # lab's method and noise) or a plain true thickness (XPS noise is added).
        self.lab_samples: dict[str, Any] = {}
        self.lab_jobs: dict[str, _LabJob] = {}
        self._heartbeat_lost = False

    # -- state -----------------------------------------------------------------------------
    @property
    def batch_active(self) -> bool:
        """A batch is on the tool (running or held): setpoints are locked."""
        return self.step in self.RUN_STEPS or self.step == "Held"

    @property
    def machine_state(self) -> str:
        """OPC 40001-1 machine state derived from the step and interlocks."""
        if self.trip_reason:
            return "OutOfService"
        return "Executing" if self.batch_active else "NotExecuting"

    @property
    def batch_elapsed_s(self) -> float:
        if not self.batch.batch_id:
            return 0.0
        return (self.t_s if self.batch_active else self.batch.end_s) - self.batch.start_s

    # -- writes ----------------------------------------------------------------------------
    def check_setpoint(self, key: str, value: Any) -> str:
        """Status a write of ``value`` to setpoint ``key`` would get (``"Good"`` to accept)."""
        point = self.by_key.get(key)
        if point is None or point.sp_range is None:
            return "BadNotWritable"
        if self.batch_active:
            return "BadNotWritable"
        if point.kind == "Boolean":
            return "Good" if isinstance(value, bool) else "BadTypeMismatch"
        if isinstance(value, bool) or not isinstance(value, float):
            return "BadTypeMismatch"
        lo, hi = point.sp_range
        # NaN fails both comparisons, so it is out of range too.
        return "Good" if lo <= value <= hi else "BadOutOfRange"

    def write_setpoint(self, key: str, value: Any) -> str:
        """Apply one setpoint write if it passes :meth:`check_setpoint`; return the status."""
        status = self.check_setpoint(key, value)
        if status == "Good":
            self.setpoints[key] = value
        return status

    def write_batch_field(self, name: str, value: Any) -> str:
        """Write ``BatchId`` or ``RecipeId`` (strings, locked while a batch runs)."""
        if not isinstance(value, str):
            return "BadTypeMismatch"
        if self.batch_active:
            return "BadNotWritable"
        if len(value) > 128:
            return "BadOutOfRange"
        if name == "BatchId":
            self.batch.batch_id = value
        elif name == "RecipeId":
            self.batch.recipe_id = value
        else:
            return "BadNodeIdUnknown"
        return "Good"

    # -- commands --------------------------------------------------------------------------
    def command(self, name: str) -> tuple[str, str]:
        """Run a batch command; return ``(status name, message)``."""
        handler = {"Start": self._start, "Hold": self._hold, "Resume": self._resume,
                   "Abort": self._abort, "Reset": self._reset}.get(name)
        if handler is None:
            return "BadNotSupported", f"unknown command {name!r}"
        return handler()

    def adjust_hold(self, hold_min: float) -> tuple[str, str]:
        """Change the running step's total hold, min (tools with :attr:`ADJUSTABLE_HOLD`)."""
        return "BadNotSupported", f"AdjustHold: a {self.KIND} has no hold to adjust"

    def _start(self) -> tuple[str, str]:
        if self.trip_reason:
            return "BadInvalidState", f"interlock tripped ({self.trip_reason}): Reset first"
        if self.batch_active:
            return "BadInvalidState", f"batch {self.batch.batch_id!r} is running ({self.step})"
        bid = self.batch.batch_id
        if not bid:
            return "BadInvalidArgument", "write BatchId before Start"
        if bid in self.true_oxide_nm:
            return "BadInvalidArgument", f"batch {bid!r} has already run on this tool"
        problem = self._recipe_problem()
        if problem:
            return "BadOutOfRange", problem
        self.batch.start_s = self.t_s
        self.batch.end_s = self.t_s
        self._begin_batch()
        self._enter(self.RUN_STEPS[0])
        return "Good", f"batch {bid!r} started"

    def _hold(self) -> tuple[str, str]:
        if self.step not in self.RUN_STEPS:
            return "BadInvalidState", f"nothing to hold in {self.step}"
        self.held_from = self.step
        self._on_hold()
        self.step = "Held"
        return "Good", f"held in {self.held_from}"

    def _resume(self) -> tuple[str, str]:
        if self.step != "Held":
            return "BadInvalidState", f"not held ({self.step})"
        if self.trip_reason:
            return "BadInvalidState", f"interlock tripped ({self.trip_reason})"
        self.step = self.held_from
        return "Good", f"resumed in {self.step}"

    def _abort(self) -> tuple[str, str]:
        if not self.batch_active:
            return "BadInvalidState", f"no batch running ({self.step})"
        self._end_batch("Aborted")
        return "Good", f"batch {self.batch.batch_id!r} aborted"

    def _reset(self) -> tuple[str, str]:
        if not self.trip_reason:
            return "BadInvalidState", "no interlock to reset"
        cause = self._interlock_cause()
        if cause:
            return "BadInvalidState", f"interlock cause still present: {cause}"
        self.trip_reason = ""
        return "Good", "interlock reset"

    def _enter(self, step: str) -> None:
        self.step = step
        self.step_elapsed_s = 0.0

    def _end_batch(self, final: str) -> None:
        self.batch.end_s = self.t_s
        truth = self._finish()
        self.lab_samples[self.batch.batch_id] = truth
        self.true_oxide_nm[self.batch.batch_id] = float(getattr(truth, "mean_nm", truth))
        if self.truth_log is not None:
            # The emulator's own ground truth, for whoever validates a twin against it (the
            # twin itself never reads it: it gets the lab's result of this batch).
            entry = {"batch_id": self.batch.batch_id, "end_s": self.t_s, "final": final,
                     "true_mean_nm": self.true_oxide_nm[self.batch.batch_id],
                     **{k: float(getattr(truth, k)) for k in ("p5_nm", "p95_nm")
                        if hasattr(truth, k)}}
            with self.truth_log.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
        self._enter(final)

    # -- heartbeat and faults --------------------------------------------------------------
    @property
    def heartbeat_lost(self) -> bool:
        """The supervisor's heartbeat stopped (the server's watchdog decides, in wall time)."""
        return self._heartbeat_lost

    def set_heartbeat_lost(self, lost: bool) -> None:
        """Supervisor gone (``True``): run on the local recipe; back (``False``): remote."""
        self._heartbeat_lost = lost
        if lost:
            self.control_mode = "Local"
            self.setpoints.update({k: v for k, v in self.local_recipe.items()
                                   if k in self.by_key})
        else:
            self.control_mode = "Remote"

    def inject_fault(self, name: str) -> tuple[str, str]:
        """Training/test fault injection (the 40001-2 simulation idea, for alarms)."""
        if name not in self.FAULTS:
            return "BadInvalidArgument", f"unknown fault {name!r} (one of {', '.join(self.FAULTS)})"
        self.faults.add(name)
        return "Good", f"fault {name} injected"

    def clear_faults(self) -> tuple[str, str]:
        self.faults.clear()
        return "Good", "faults cleared"

    # -- time ------------------------------------------------------------------------------
    def advance(self, dt_s: float) -> tuple[list[AlarmChange], list[LabResult]]:
        """Advance the process by ``dt_s`` process seconds (in sub-steps); report changes."""
        changes: list[AlarmChange] = []
        results: list[LabResult] = []
        n = max(1, math.ceil(dt_s / self.MAX_SUBSTEP_S))
        for _ in range(n):
            h = dt_s / n
            self.t_s += h
            if self.step != "Held":
                self.step_elapsed_s += h
            self._process(h)
            changes.extend(self._update_alarms(h))
        results.extend(self._lab_results())
        return changes, results

    def _update_alarms(self, dt_s: float) -> list[AlarmChange]:
        conditions = self._alarm_conditions(dt_s)
        conditions["HeartbeatLost"] = ("supervisor heartbeat lost: running the local recipe"
                                       if self._heartbeat_lost else "")
        cause = self._interlock_cause()
        if cause and not self.trip_reason:
            self.trip_reason = cause
            if self.batch_active:
                self._end_batch("Aborted")
        conditions["InterlockTrip"] = (f"interlock trip: {self.trip_reason}"
                                       if self.trip_reason else "")
        out = []
        for kind in ALARM_KINDS:
            message = conditions.get(kind, "")
            active = bool(message)
            if active != self.alarms[kind]:
                self.alarms[kind] = active
                out.append(AlarmChange(kind, active, message or f"{kind} cleared",
                                       ALARM_SEVERITY[kind] if active else 100))
        return out

    # -- metrology -------------------------------------------------------------------------
    @property
    def lab_delay_s(self) -> float:
        """Lab turnaround plus measurement, process s (from the plant's ``[stations.lab]``)."""
        return (self.lab.turnaround_h + self.lab.measure_h) * 3600.0

    def request_measurement(self, batch_id: str) -> tuple[str, float]:
        """Send a finished batch to the lab; return (status, seconds until the result)."""
        if batch_id not in self.true_oxide_nm:
            return "BadNotFound", 0.0
        job = self.lab_jobs.get(batch_id)
        if job is None:
            job = _LabJob(batch_id, self.t_s, self.t_s + self.lab_delay_s)
            self.lab_jobs[batch_id] = job
        return "Good", max(0.0, job.ready_s - self.t_s)

    def measurement(self, batch_id: str) -> tuple[str, LabResult | None]:
        """The lab result of a batch: Good, or BadWaitingForInitialData / BadNotFound."""
        job = self.lab_jobs.get(batch_id)
        if job is None:
            return "BadNotFound", None
        if job.result is None:
            return "BadWaitingForInitialData", None
        return "Good", job.result

    def _lab_results(self) -> list[LabResult]:
        out = []
        for job in sorted(self.lab_jobs.values(), key=lambda j: j.ready_s):
            if job.result is None and job.ready_s <= self.t_s:
                sample = self.lab_samples[job.batch_id]
                noise = {"sigma_abs_nm": self.lab.noise_abs_nm, "sigma_rel": self.lab.noise_rel}
                if callable(getattr(sample, "analyse", None)):
                    got = sample.analyse(self.lab, self.lab_rng)
                    measured = float(got.thickness_nm)
                    sd = (measured * float(thickness_sigma_rel_o_bet(self.lab.oxygen_rsd,
                                                                     self.lab.bet_rsd))
                          if got.method == "o_bet" else float(sigma_nm(measured, **noise)))
                else:
                    measured = float(measure_thickness_nm(float(sample), self.lab_rng, **noise))
                    sd = float(sigma_nm(measured, **noise))
                job.result = LabResult(job.batch_id, measured, sd, job.requested_s, job.ready_s)
                out.append(job.result)
        return out

    # -- for subclasses --------------------------------------------------------------------
    def _recipe_problem(self) -> str:
        return ""

    def _begin_batch(self) -> None:
        raise NotImplementedError

    def _on_hold(self) -> None:
        return None

    def _process(self, dt_s: float) -> None:
        raise NotImplementedError

    def _alarm_conditions(self, dt_s: float) -> dict[str, str]:
        raise NotImplementedError

    def _interlock_cause(self) -> str:
        raise NotImplementedError

    def _finish(self) -> Any:
        """True oxide of the batch that just ended: a thickness, nm, or the hidden charge
        (hidden; only the lab sees it)."""
        raise NotImplementedError


class DeviationTimer:
    """How long a condition has held, in process seconds (alarms with an on-delay)."""

    def __init__(self) -> None:
        self.held_s: dict[str, float] = {}

    def update(self, name: str, condition: bool, dt_s: float) -> float:
        self.held_s[name] = self.held_s.get(name, 0.0) + dt_s if condition else 0.0
        return self.held_s[name]


def lag(value: float, target: float, dt_s: float, tau_s: float) -> float:
    """One exact step of a first-order lag (stable for any ``dt_s``)."""
    return target + (value - target) * math.exp(-dt_s / tau_s)


def flow_deviation(pv: float, sp: float, rel: float, floor: float) -> bool:
    """True when a flow is off its setpoint by more than ``rel`` of it (and ``floor``)."""
    return abs(pv - sp) > max(rel * abs(sp), floor)


def recipe_values(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a local recipe with floats as floats (TOML ints become floats)."""
    return {k: (float(v) if isinstance(v, int) and not isinstance(v, bool) else v)
            for k, v in recipe.items()}
