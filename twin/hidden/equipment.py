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
from twin.hidden.charge import ChargeOxidation, Recipe, truncate_run
from twin.hidden.config import Material, Sensors
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
        """Run the profile; report the indicated record; keep the true charge as truth."""
        sp = dict(step.setpoints)
        sp_prof = self.setpoint_profile(sp)
        t0 = float(env.now)
        offset = (float(self.true.rng.normal(0.0, self.offset_sd_c))
                  if self.offset_sd_c > 0 else 0.0)
        indicated, run = self.true.run_profile(sp_prof, FURNACE_DT_S, t0_s=t0,
                                               offset_c=offset,
                                               flow_slm=float(sp.get("gas_flow_slm", 0.0)))
        duration = sp_prof.duration_s
        start, fail_at = yield from self._run(env, step, duration)
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
        else:
            truth = self.oxidation.of_run(recipe, run, charge)
        return furnace_result(self.path, step, start, env.now, indicated, fail_at, duration,
                              truth)


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
