"""In-process simulated equipment: the generic tool and what every simulated tool shares.

:class:`SimulatedTool` implements :class:`twin.equipment.base.Equipment` for the stations whose
step is a duration (melter, mill, coater). Breakdowns come from a
:class:`~twin.plant.breakdowns.FailureClock` counted in operating time: a step that would run
past the next failure stops there and is reported ``aborted``; :meth:`recover` then waits for
the repair. The furnaces and sputter tools of a simulated run come from outside the model: the
hidden plant (:mod:`twin.hidden.equipment`) or the twin's own model of them
(:mod:`twin.equipment.modelled`).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from twin.equipment.base import StepRequest, StepResult
from twin.physics.oxidation_profile import Profile
from twin.plant.breakdowns import FailureClock

#: Grid of a simulated furnace's process-value record, s (coarse: the physics integrates
#: between).
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


def binned(psd: Any) -> Any:
    """A context's particle sizes as bins (a compact form is anything with ``build()``)."""
    return psd.build() if hasattr(psd, "build") else psd


def truncate(p: Profile, t_end: float) -> Profile:
    """The profile up to ``t_end`` (interpolating the last knot)."""
    t_end = max(t_end, 1.0)
    keep = p.time_s < t_end
    t = np.append(p.time_s[keep], t_end)
    return Profile(t, *(np.append(a[keep], np.interp(t_end, p.time_s, a))
                        for a in (p.temperature_c, p.po2_atm, p.ph2o_atm)))


def profile_values(p: Profile, hold_c: float) -> dict[str, float]:
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


def sputter_readback(sp: dict[str, float], limits: Any, fail_at: float | None,
                     elapsed_s: float) -> dict[str, float]:
    """What a sputter tool's controllers read back for a run of setpoints ``sp``.

    Setpoints clipped to the tool's ``limits``, the deposit and oxidize minutes actually run
    (film first, then the cap, cut at ``fail_at`` seconds by a breakdown) and the duration.
    """
    def clip(name: str, default: float = 0.0) -> float:
        lo, hi = getattr(limits, name)
        return min(max(float(sp.get(name, default)), lo), hi)

    out: dict[str, float] = {k: clip(k) for k in ("power_w", "pressure_mtorr", "ar_sccm",
                                                  "substrate_temperature_c") if k in sp}
    out["o2_sccm"] = clip("o2_sccm")
    dep_s = 60.0 * sp["deposit_min"]
    total_s = dep_s + 60.0 * sp.get("oxidize_min", 0.0)
    ran_s = total_s if fail_at is None else min(fail_at, total_s)
    out["deposit_min"] = min(ran_s, dep_s) / 60.0
    out["oxidize_min"] = max(0.0, ran_s - dep_s) / 60.0
    out["duration_s"] = elapsed_s
    if fail_at is not None:
        out["completed_fraction"] = ran_s / total_s if total_s > 0 else 1.0
    return out


def furnace_result(path: str, step: StepRequest, start: float, end: float, record: Profile,
                   fail_at: float | None, duration: float, truth: Any) -> StepResult:
    """What a simulated furnace reports for a step: its record and the summary of it, the
    flow controller's reading (a hidden bias of the real flow does not show), and for a step
    cut short by a breakdown how much of it ran."""
    sp = step.setpoints
    values = profile_values(record, sp["hold_c"])
    values["gas_flow_slm_mean"] = float(sp.get("gas_flow_slm", math.nan))
    if fail_at is None:
        return StepResult(path, step.batch_id, "ok", start, end, actual=record, values=values,
                          truth=truth)
    values["completed_fraction"] = fail_at / duration if duration > 0 else 1.0
    return StepResult(path, step.batch_id, "aborted", start, end, actual=record,
                      values=values, fault="breakdown", truth=truth)
