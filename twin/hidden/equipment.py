"""The hidden plant's furnaces and sputter tools as equipment a plant model runs on.

Each class implements :class:`twin.equipment.base.Equipment` on top of the generic
:class:`~twin.equipment.simulated.SimulatedTool` (durations, breakdowns, repairs). They run the
hidden true process and return what their PLC would report (indicated values, read-back
setpoints), with the truth as an opaque handle that only the lab reads.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import replace
from typing import Any

import numpy as np
import simpy

from twin.equipment.base import StepRequest, StepResult
from twin.equipment.simulated import (
    FURNACE_DT_S,
    SimulatedTool,
    furnace_result,
    sputter_readback,
    truncate,
)
from twin.hidden.charge import ChargeOxidation, Recipe, TrueRun, truncate_run
from twin.hidden.config import FurnaceEvent, Material, Sensors
from twin.hidden.furnace import TrueFurnace
from twin.hidden.material import StorageRoom, charge_truth, lot_readings, true_lot
from twin.hidden.sputter import TrueSputter
from twin.physics.oxidation_profile import Profile
from twin.plant.breakdowns import FailureClock


class SimulatedFurnace(SimulatedTool):
    """Controlled-oxidation furnace running the hidden true process.

    Setpoints of an ``oxidize`` step: ``start_c``, ``hold_c``, ``ramp_c_per_min``,
    ``hold_min``, ``cool_c_per_min``, ``po2_atm``, ``ph2o_atm``, ``gas_flow_slm``. Context:
    ``lots`` (true lot, mass, time milled of each), ``previous`` (a reworked charge's last
    pass), ``material`` and ``growth['si_area_fraction']``; the twin's own view of the charge
    (``psd``, ``initial_nm`` ...) is not read.

    Parameters
    ----------
    path : str
    clock : FailureClock
    true : TrueFurnace
        The furnace's thermocouples, gas and tube.
    oxidation : ChargeOxidation
        The charges' physics.
    storage : StorageRoom
        Where the lots waited (the native oxide they grew there).
    offset_sd_c : float
        Per-charge temperature-offset disturbance (controller and load), °C; seen by the PLC.
    """

    def __init__(self, path: str, clock: FailureClock, true: TrueFurnace,
                 oxidation: ChargeOxidation, storage: StorageRoom, *,
                 offset_sd_c: float = 0.0) -> None:
        super().__init__(path, clock)
        self.true = true
        self.oxidation = oxidation
        self.storage = storage
        self.offset_sd_c = offset_sd_c
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
        """Run the profile; report the indicated record; keep the true charge as truth.

        With a supervisor (the twin's in-batch endpoint control) the step stops at each of
        its checkpoints, shows it the record so far and the independent instruments, and
        continues on the hold it asks for (inside the furnace's hold limits): the record up
        to the checkpoint stays what the twin saw, the rest is the furnace on the new plan.
        """
        sp = dict(step.setpoints)
        t0 = float(env.now)
        offset = (float(self.true.rng.normal(0.0, self.offset_sd_c))
                  if self.offset_sd_c > 0 else 0.0)
        fault = self.true.take_fault(t0)
        # The noise stream as it is before the record is drawn: a new plan redraws the record
        # from the same state, so that it starts as the one the twin has seen.
        noise_state = self.true.rng.bit_generator.state
        indicated, run = self._record(sp, t0, offset, fault)
        duration = self.setpoint_profile(sp).duration_s
        sup = step.supervisor
        start = float(env.now)
        elapsed, fail_at, why = 0.0, None, ""
        for cp in sup.checkpoints_s(sp) if sup is not None else ():
            if not elapsed < cp < duration:
                continue
            cut = self.clock.run(cp - elapsed)
            if cut is not None:
                fail_at = elapsed + cut
                break
            yield env.timeout(cp - elapsed)
            elapsed = cp
            assert sup is not None
            seen = truncate(indicated, cp)
            action = sup.check(seen, cp, sp, self.monitor(truncate_run(run, cp), seen))
            if action is None:
                continue
            held_min = max(0.0, cp - _ramp_s(sp)) / 60.0
            lo, hi = self.true.limits.hold_min
            new_hold = max(min(max(action.hold_min, lo), hi), held_min)
            sp["hold_min"] = new_hold
            self.true.rng.bit_generator.state = noise_state
            later, later_run = self._record(sp, t0, offset, fault)
            indicated = splice(indicated, later, cp)
            run = splice_run(run, later_run, cp)
            duration = self.setpoint_profile(sp).duration_s
            sup.applied(action, new_hold, float(env.now))
            if action.fault:
                why = action.fault
        if fail_at is None:
            cut = self.clock.run(duration - elapsed)
            fail_at = None if cut is None else elapsed + cut
        yield env.timeout((duration if fail_at is None else fail_at) - elapsed)
        ctx = step.context
        charge = charge_truth(ctx["lots"], t0, self.storage,
                              phase_fraction=float(ctx.get("growth", {}).get(
                                  "si_area_fraction", 1.0)),
                              material=str(ctx.get("material", "Si")),
                              previous=ctx.get("previous"))
        recipe = Recipe(sp["start_c"], sp["hold_c"], sp["ramp_c_per_min"], sp["hold_min"],
                        sp["cool_c_per_min"], sp["po2_atm"], sp.get("ph2o_atm", 0.0))
        if fail_at is not None:
            indicated, run = truncate(indicated, fail_at), truncate_run(run, fail_at)
            truth = self.oxidation.of_cut_run(run, charge)
        elif fault is not None:
            truth = self.oxidation.of_cut_run(run, charge)  # a one-off run: solved exactly
        else:
            truth = self.oxidation.of_run(recipe, run, charge)
        res = furnace_result(self.path, StepRequest(step.batch_id, step.recipe_id, step.kind,
                                                    sp, step.context), start, env.now,
                             indicated, fail_at, duration, truth)
        if why and fail_at is None:
            # The twin ended the hold on a gross fault: the step did not run as planned.
            res = replace(res, status="aborted", fault=why)
        return res

    def _record(self, sp: dict[str, float], t0: float, offset: float,
                fault: FurnaceEvent | None) -> tuple[Profile, TrueRun]:
        """The furnace's record and true run of one plan, with a gross fault if it has one."""
        indicated, run = self.true.run_profile(self.setpoint_profile(sp), FURNACE_DT_S,
                                               t0_s=t0, offset_c=offset,
                                               flow_slm=float(sp.get("gas_flow_slm", 0.0)))
        if fault is None:
            return indicated, run
        if fault.kind == "thermocouple_failure":
            # The control thermocouple reads low: the PLC heats the wall that much hotter.
            run = replace(run, wall_c=run.wall_c + fault.size, offset_c=run.offset_c + fault.size)
        elif fault.kind == "wrong_gas":
            run = replace(run, o2_mol_s=run.total_mol_s * max(fault.size, 0.0))
        elif fault.kind == "humidifier_stuck":
            share = max(fault.size, 0.0)
            run = replace(run, h2o_mol_s=run.h2o_mol_s * share,
                          h2o_share=run.h2o_share * share)
            indicated = Profile(indicated.time_s, indicated.temperature_c, indicated.po2_atm,
                                indicated.ph2o_atm * share)
        return indicated, run

    @staticmethod
    def monitor(run: TrueRun, seen: Profile) -> dict[str, np.ndarray]:
        """The furnace's independent instruments on the record's grid: the over-temperature
        thermocouple (the zones' true wall: it does not share the control thermocouple's
        fault) and the exhaust O2 analyser (the O2 share really flowing)."""
        t = seen.time_s
        wall = np.interp(t, run.time_s, run.wall_c.mean(axis=0))
        share = np.interp(t, run.time_s, run.o2_mol_s / np.maximum(run.total_mol_s, 1e-30))
        return {"overtemp_c": wall, "o2_analyser_atm": share}


def _ramp_s(sp: dict[str, float]) -> float:
    """Seconds from the start of a step to the start of its hold."""
    return abs(sp["hold_c"] - sp["start_c"]) / sp["ramp_c_per_min"] * 60.0


def splice(before: Profile, after: Profile, t_s: float) -> Profile:
    """``before`` up to ``t_s``, then ``after`` from there (a plan changed at ``t_s``)."""
    head = truncate(before, t_s)
    keep = after.time_s > t_s + 1e-9
    return Profile(np.append(head.time_s, after.time_s[keep]),
                   *(np.append(a, b[keep]) for a, b in
                     ((head.temperature_c, after.temperature_c), (head.po2_atm, after.po2_atm),
                      (head.ph2o_atm, after.ph2o_atm))))


def splice_run(before: TrueRun, after: TrueRun, t_s: float) -> TrueRun:
    """The true run of ``before`` up to ``t_s``, then ``after`` (see :func:`splice`)."""
    head = truncate_run(before, t_s)
    keep = after.time_s > t_s + 1e-9
    return replace(after, time_s=np.append(head.time_s, after.time_s[keep]),
                   wall_c=np.concatenate([head.wall_c, after.wall_c[:, keep]], axis=1),
                   total_mol_s=np.append(head.total_mol_s, after.total_mol_s[keep]),
                   o2_mol_s=np.append(head.o2_mol_s, after.o2_mol_s[keep]),
                   h2o_mol_s=np.append(head.h2o_mol_s, after.h2o_mol_s[keep]))


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
        if fail_at is not None:
            # The part of the run that happened: film first, then the cap.
            dep_s = 60.0 * sp["deposit_min"]
            truth["film_nm"] *= min(1.0, fail_at / dep_s) if dep_s > 0 else 1.0
            cap_s = duration - dep_s
            truth["cap_nm"] *= max(0.0, (fail_at - dep_s) / cap_s) if cap_s > 0 else 0.0
        # The tool reports its controllers' read-back (the O2 flow controller's bias is
        # part of the hidden truth: its reading is the clipped setpoint).
        reported = sputter_readback(sp, self.true.limits, fail_at, env.now - start)
        if fail_at is None:
            return StepResult(self.path, step.batch_id, "ok", start, env.now,
                              values=reported, truth=truth)
        return StepResult(self.path, step.batch_id, "aborted", start, env.now,
                          values=reported, truth=truth, fault="breakdown")


class SimulatedMill(SimulatedTool):
    """A mill making the hidden plant's true powder; it reports the lot's QC readings.

    Setpoints of a ``mill`` step: ``duration_s`` and ``power_kw`` (after media wear); context:
    ``feed_d50_um`` (the recipe's), ``duration_s`` (the whole step, also when a breakdown
    split it), ``mass_kg``, ``recipe``, ``si_fraction``, ``density_g_cm3``. When the lot is
    done the result's values carry the readings (``d50_um``, ``gsd``, ``ssa_m2_g``,
    ``oxygen_wt_pct``) and its truth the :class:`~twin.hidden.material.TrueLot`.
    """

    def __init__(self, path: str, clock: FailureClock, material: Material, sensors: Sensors,
                 feed_sd_rel: float, rng: np.random.Generator) -> None:
        super().__init__(path, clock)
        self.material = material
        self.sensors = sensors
        self.feed_sd_rel = feed_sd_rel
        self.rng = rng

    def execute(self, env: simpy.Environment,
                step: StepRequest) -> Generator[simpy.Event, Any, StepResult]:
        """Mill; the lot's truth and readings come with the part that completes it."""
        res: StepResult = yield from super().execute(env, step)
        if res.status != "ok":
            return res
        ctx = step.context
        z = float(self.rng.standard_normal())
        feed = float(ctx["feed_d50_um"]) * (math.exp(self.feed_sd_rel * z)
                                            if self.feed_sd_rel > 0 else 1.0)
        lot = true_lot(feed, duration_s=float(ctx["duration_s"]),
                       power_kw=float(step.setpoints["power_kw"]),
                       mass_kg=float(ctx["mass_kg"]), recipe=ctx["recipe"],
                       si_fraction=float(ctx["si_fraction"]),
                       density_g_cm3=float(ctx["density_g_cm3"]), material=self.material)
        values = {**res.values, **lot_readings(lot, self.sensors, self.rng)}
        return replace(res, values=values, truth=lot)
