"""In-process simulated equipment (studies and tests).

Each class implements :class:`twin.equipment.base.Equipment`. Breakdowns come from a
:class:`~twin.plant.breakdowns.FailureClock` counted in operating time: a step that would run
past the next failure stops there and is reported ``aborted``; :meth:`recover` then waits for
the repair. Furnace and sputter tool run the hidden true process of :mod:`twin.equipment.truth`
and return what their PLC would report (indicated values), with the truth as an opaque handle
for the lab.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from twin.equipment.base import StepRequest, StepResult, StepStatus
from twin.equipment.truth import TrueFurnace, TrueSputter
from twin.physics.oxidation_profile import Profile
from twin.plant.breakdowns import FailureClock

#: Grid of the furnace's process-value record, s (coarse: the physics integrates between).
FURNACE_DT_S = 60.0


class SimulatedTool:
    """A tool whose step lasts the request's ``duration_s`` setpoint (melter, mill, coater).

    Parameters
    ----------
    path : str
        Dotted component path.
    clock : FailureClock
        Breakdowns of this tool.
    """

    def __init__(self, path: str, clock: FailureClock) -> None:
        self.path = path
        self.clock = clock

    def _run(self, env: simpy.Environment, step: StepRequest, duration_s: float
             ) -> Generator[simpy.Event, Any, tuple[float, float | None]]:
        start = env.now
        fail_at = self.clock.run(duration_s)
        yield env.timeout(duration_s if fail_at is None else fail_at)
        return start, fail_at

    def execute(self, env: simpy.Environment,
                step: StepRequest) -> Generator[simpy.Event, Any, StepResult]:
        """Run for ``setpoints['duration_s']``; report the actual values asked for."""
        duration = float(step.setpoints["duration_s"])
        start, fail_at = yield from self._run(env, step, duration)
        values = {k: float(v) for k, v in step.setpoints.items()}
        if fail_at is None:
            return StepResult(self.path, step.batch_id, "ok", start, env.now, values=values)
        values["completed_fraction"] = fail_at / duration if duration > 0 else 1.0
        return StepResult(self.path, step.batch_id, "aborted", start, env.now, values=values,
                          fault="breakdown")

    def recover(self, env: simpy.Environment,
                result: StepResult) -> Generator[simpy.Event, Any, float]:
        """Repair after a breakdown (log-normal repair time); return it, s."""
        repair = self.clock.repair_s()
        yield env.timeout(repair)
        return repair

    def maintain(self, env: simpy.Environment,
                 duration_s: float) -> Generator[simpy.Event, Any, float]:
        """Planned maintenance; return its duration, s."""
        yield env.timeout(duration_s)
        return duration_s


class SimulatedFurnace(SimulatedTool):
    """Controlled-oxidation furnace running the hidden true process.

    Setpoints of an ``oxidize`` step: ``start_c``, ``hold_c``, ``ramp_c_per_min``,
    ``hold_min``, ``cool_c_per_min``, ``po2_atm``, ``ph2o_atm``. Context: ``psd``,
    ``material``, ``initial_nm`` and the growth options (``orientation``, ``thin_model``,
    ``si_area_fraction``, ``copper``).

    Parameters
    ----------
    path : str
    clock : FailureClock
    true : TrueFurnace
        The hidden process.
    offset_sd_c : float
        Per-charge temperature-offset disturbance (controller and load), °C; seen by the PLC.
    oxide_fn : callable, optional
        ``(true_profile, context, t_s) -> OxideDistribution``; default
        :meth:`TrueFurnace.true_oxide`. The plant passes a cached, vectorised evaluator.
    """

    def __init__(self, path: str, clock: FailureClock, true: TrueFurnace, *,
                 offset_sd_c: float = 0.0,
                 oxide_fn: Callable[[Profile, dict[str, Any], float], Any] | None = None) -> None:
        super().__init__(path, clock)
        self.true = true
        self.offset_sd_c = offset_sd_c
        self.oxide_fn = oxide_fn
        self._profiles: dict[tuple[tuple[str, float], ...], Profile] = {}

    def setpoint_profile(self, sp: dict[str, float]) -> Profile:
        """The ramp-hold-cool setpoint profile of a step (cached per set of setpoints)."""
        key = tuple(sorted(sp.items()))
        prof = self._profiles.get(key)
        if prof is None:
            prof = self._profiles[key] = self._ramp_hold(sp)
        return prof

    @staticmethod
    def _ramp_hold(sp: dict[str, float]) -> Profile:
        return Profile.ramp_hold(start_c=sp["start_c"], hold_c=sp["hold_c"],
                                 ramp_c_per_min=sp["ramp_c_per_min"],
                                 hold_s=sp["hold_min"] * 60.0,
                                 cool_c_per_min=sp["cool_c_per_min"], po2_atm=sp["po2_atm"],
                                 ph2o_atm=sp.get("ph2o_atm", 0.0))

    def execute(self, env: simpy.Environment,
                step: StepRequest) -> Generator[simpy.Event, Any, StepResult]:
        """Run the profile; report the indicated record; keep the true oxide as truth."""
        sp = dict(step.setpoints)
        sp_prof = self.setpoint_profile(sp)
        t0 = float(env.now)
        offset = (float(self.true.rng.normal(0.0, self.offset_sd_c))
                  if self.offset_sd_c > 0 else 0.0)
        indicated, true = self.true.run_profile(sp_prof, FURNACE_DT_S, t0_s=t0,
                                                offset_c=offset)
        duration = sp_prof.duration_s
        start, fail_at = yield from self._run(env, step, duration)
        status: StepStatus = "ok"
        if fail_at is not None:
            indicated, true = _truncate(indicated, fail_at), _truncate(true, fail_at)
            status = "aborted"
        ctx = dict(step.context)
        truth = (self.oxide_fn(true, ctx, t0) if self.oxide_fn is not None else
                 self.true.true_oxide(true, _binned(ctx["psd"]), material=ctx["material"],
                                      initial_nm=ctx["initial_nm"], t_s=t0,
                                      **ctx.get("growth", {})))
        values = _profile_values(indicated, sp["hold_c"])
        if fail_at is not None:
            values["completed_fraction"] = fail_at / duration if duration > 0 else 1.0
        return StepResult(self.path, step.batch_id, status, start, env.now, actual=indicated,
                          values=values, fault="breakdown" if fail_at is not None else "",
                          truth=truth)


def _binned(psd: Any) -> Any:
    # A context may carry a lazily built distribution (anything with build()).
    return psd.build() if hasattr(psd, "build") else psd


def _truncate(p: Profile, t_end: float) -> Profile:
    """The profile up to ``t_end`` (interpolating the last knot)."""
    t_end = max(t_end, 1.0)
    keep = p.time_s < t_end
    t = np.append(p.time_s[keep], t_end)
    return Profile(t, *(np.append(a[keep], np.interp(t_end, p.time_s, a))
                        for a in (p.temperature_c, p.po2_atm, p.ph2o_atm)))


def _profile_values(p: Profile, hold_c: float) -> dict[str, float]:
    """Summary of an indicated record: peak, mean over the hold band, time in the band."""
    # Plain ufunc reductions: the same sums as ndarray.sum/mean without their Python layers.
    temp, t = p.temperature_c, p.time_s
    band = temp >= hold_c - 5.0
    dt = np.empty(t.size)
    np.subtract(t[1:], t[:-1], out=dt[:-1])
    dt[-1] = 0.0
    in_band = float(_sum(dt[band]))
    held = temp[band]
    return {
        "max_c": float(_max(temp)),
        "hold_c_mean": float(_sum(held) / held.size) if held.size else math.nan,
        "hold_band_min": in_band / 60.0,
        "po2_atm_mean": float(_sum(p.po2_atm) / p.po2_atm.size),
        "ph2o_atm_mean": float(_sum(p.ph2o_atm) / p.ph2o_atm.size),
        "duration_s": p.duration_s,
    }


_sum = np.add.reduce
_max = np.maximum.reduce


class SimulatedSputter(SimulatedTool):
    """Magnetron sputter tool running the hidden true deposition and cap rates.

    Setpoints of a ``sputter`` step: ``power_w``, ``pressure_mtorr``, ``ar_sccm``,
    ``o2_sccm``, ``deposit_min``, ``oxidize_min`` (and ``substrate_temperature_c``). The
    report carries what the tool's controllers read back (clipped setpoints: the O2 flow
    controller's bias is part of the hidden truth); the truth is the true film and cap.
    """

    def __init__(self, path: str, clock: FailureClock, true: TrueSputter) -> None:
        super().__init__(path, clock)
        self.true = true

    def execute(self, env: simpy.Environment,
                step: StepRequest) -> Generator[simpy.Event, Any, StepResult]:
        """Deposit then oxidize; an aborted run keeps the part it finished."""
        sp = dict(step.setpoints)
        duration = 60.0 * (sp["deposit_min"] + sp.get("oxidize_min", 0.0))
        t0 = float(env.now)
        start, fail_at = yield from self._run(env, step, duration)
        truth = self.true.run_recipe(sp, t0)
        frac = 1.0 if fail_at is None or duration <= 0 else fail_at / duration
        if fail_at is not None:
            # The part of the run that happened: film first, then the cap.
            dep_s = 60.0 * sp["deposit_min"]
            truth["film_nm"] *= min(1.0, fail_at / dep_s) if dep_s > 0 else 1.0
            cap_s = duration - dep_s
            truth["cap_nm"] *= max(0.0, (fail_at - dep_s) / cap_s) if cap_s > 0 else 0.0
        reported = {k: v for k, v in self.true.actual(sp).items()}
        reported["o2_sccm"] = min(max(sp.get("o2_sccm", 0.0), self.true.limits.o2_sccm[0]),
                                  self.true.limits.o2_sccm[1])
        reported["deposit_min"] = sp["deposit_min"] * (min(1.0, frac * duration /
                                                           (60.0 * sp["deposit_min"]))
                                                       if sp["deposit_min"] > 0 else 0.0)
        reported["oxidize_min"] = max(0.0, (frac * duration / 60.0) - sp["deposit_min"])
        reported["duration_s"] = env.now - start
        if fail_at is not None:
            reported["completed_fraction"] = frac
        if fail_at is None:
            return StepResult(self.path, step.batch_id, "ok", start, env.now,
                              values=reported, truth=truth)
        return StepResult(self.path, step.batch_id, "aborted", start, env.now,
                          values=reported, truth=truth, fault="breakdown")
