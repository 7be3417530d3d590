"""Furnaces and sputter tools simulated by the twin's own model (no hidden truth).

A live twin runs its stations on the PLCs that report them; a station no PLC reports (a second
sputter tool, the line before the twin joins it) still has to run in the model. It runs here on
what the twin itself believes: the furnace's temperature loop as the plant file describes it
(its setpoint through a first-order lag of ``plc.tau_s``), the oxide and cap the twin's physics
predicts at the tool's configured calibration. Nothing here knows a truth file; the lab of such
a station measures the model's own value (with the lab's noise), and the live twin never learns
its calibration from those results.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import simpy

from twin.config.schema import MillConfig, OxidizerConfig, PlantConfig, SputterConfig
from twin.equipment.base import Equipment, LabResult, StepRequest, StepResult, StepStatus
from twin.equipment.simulated import (
    FURNACE_DT_S,
    SimulatedTool,
    furnace_result,
    sputter_readback,
    truncate,
)
from twin.physics import composition
from twin.physics.oxidation import Calibration
from twin.physics.oxidation_profile import Profile
from twin.physics.thermal import lag_profile
from twin.plant.breakdowns import FailureClock
from twin.plant.physics_cache import OxidePhysics
from twin.plant.prediction import calibration as configured
from twin.plant.prediction import predict_cap


class ModelTools:
    """Tool provider whose furnaces and sputter tools run the twin's own model.

    Parameters
    ----------
    cfg : PlantConfig
        The plant (its storage room's setpoint).
    physics : OxidePhysics, optional
        Oxide physics to evaluate charges with (a fresh cache by default).
    """

    def __init__(self, cfg: PlantConfig, physics: OxidePhysics | None = None) -> None:
        self.physics = physics if physics is not None else OxidePhysics("fast")
        self.storage_setpoint_percent = cfg.recipes.storage.rh_percent

    def furnace(self, path: str, cfg: OxidizerConfig, clock: FailureClock) -> Equipment:
        """A furnace that runs its setpoints through the configured loop lag."""
        return ModelFurnace(path, clock, cfg, self.physics)

    def mill(self, path: str, cfg: MillConfig, clock: FailureClock) -> Equipment:
        """A mill whose lots read as the twin's milling model predicts them."""
        return ModelMill(path, clock)

    def storage_rh_percent(self, t_s: float) -> float:
        """The storage room at its setpoint (no probe is connected)."""
        return self.storage_setpoint_percent

    def sputter(self, path: str, cfg: SputterConfig, clock: FailureClock, *,
                material: str) -> Equipment:
        """A sputter tool whose film and cap are the twin's coating model."""
        return ModelSputter(path, clock, cfg, material)


@dataclass(frozen=True)
class ModelSample:
    """A modelled charge as the lab receives it: the model's own thickness, analysed with the
    lab's method and stated repeatability (no sampling, no lab bias: nothing is known of
    them)."""

    mean_nm: float

    def analyse(self, lab: Any, rng: np.random.Generator) -> LabResult:
        """The lab's result (see :class:`twin.equipment.base.LabSample`)."""
        x = self.mean_nm
        if lab.method == "xps":
            if not bool(composition.xps_valid(x)):
                return LabResult(math.nan, "xps", note="layer outside the XPS range")
            sd = math.hypot(lab.noise_abs_nm, lab.noise_rel * x)
            return LabResult(max(x + sd * float(rng.standard_normal()), 0.0), "xps")
        rel = float(composition.thickness_sigma_rel_o_bet(lab.oxygen_rsd, lab.bet_rsd))
        return LabResult(x * math.exp(rel * float(rng.standard_normal())), "o_bet")


class ModelFurnace(SimulatedTool):
    """An oxidation furnace as the twin models it (see the module notes)."""

    def __init__(self, path: str, clock: FailureClock, cfg: OxidizerConfig,
                 physics: OxidePhysics) -> None:
        super().__init__(path, clock)
        self.cfg = cfg
        self.physics = physics
        self.calibration: Calibration = configured(cfg.calibration)

    def execute(self, env: simpy.Environment,
                step: StepRequest) -> Generator[simpy.Event, Any, StepResult]:
        """Run the ramp-hold-cool profile; the record is the setpoint through the loop lag."""
        sp = dict(step.setpoints)
        planned = Profile.ramp_hold(start_c=sp["start_c"], hold_c=sp["hold_c"],
                                    ramp_c_per_min=sp["ramp_c_per_min"],
                                    hold_s=sp["hold_min"] * 60.0,
                                    cool_c_per_min=sp["cool_c_per_min"], po2_atm=sp["po2_atm"],
                                    ph2o_atm=sp.get("ph2o_atm", 0.0))
        record = lag_profile(planned, self.cfg.plc.tau_s, dt_s=FURNACE_DT_S)
        duration = planned.duration_s
        start, fail_at = yield from self._run(env, step, duration)
        if fail_at is not None:
            record = truncate(record, fail_at)
        ctx = dict(step.context)
        oxide = self.physics.predict(record, ctx["psd"], material=ctx["material"],
                                     calibration=self.calibration,
                                     initial_nm=ctx["initial_nm"], growth=ctx.get("growth", {}))
        return furnace_result(self.path, step, start, env.now, record, fail_at, duration,
                              ModelSample(oxide.mean_nm))


class ModelSputter(SimulatedTool):
    """A sputter tool as the twin models it: read-back equals the clipped setpoints."""

    def __init__(self, path: str, clock: FailureClock, cfg: SputterConfig,
                 material: str) -> None:
        super().__init__(path, clock)
        self.cfg = cfg
        self.material = material
        self.calibration: Calibration = configured(cfg.calibration)

    def execute(self, env: simpy.Environment,
                step: StepRequest) -> Generator[simpy.Event, Any, StepResult]:
        """Deposit then oxidize; the film and cap are what the twin's model predicts."""
        sp = dict(step.setpoints)
        duration = 60.0 * (sp["deposit_min"] + sp.get("oxidize_min", 0.0))
        start, fail_at = yield from self._run(env, step, duration)
        values = sputter_readback(sp, self.cfg.limits, fail_at, env.now - start)
        truth = predict_cap(values, material=self.material, calibration=self.calibration)
        status: StepStatus = "ok" if fail_at is None else "aborted"
        return StepResult(self.path, step.batch_id, status, start, env.now, values=values,
                          truth=truth, fault="" if fail_at is None else "breakdown")


class ModelMill(SimulatedTool):
    """A mill whose finished lot reads as the twin's milling model predicts it."""

    def execute(self, env: simpy.Environment,
                step: StepRequest) -> Generator[simpy.Event, Any, StepResult]:
        """Mill; a finished lot's readings are the milling model at the recipe's feed."""
        res: StepResult = yield from super().execute(env, step)
        if res.status != "ok":
            return res
        from twin.plant.mill import mill_lot

        ctx = step.context
        lot = mill_lot(float(ctx["feed_d50_um"]), duration_s=float(ctx["duration_s"]),
                       power_kw=float(step.setpoints["power_kw"]),
                       charge_kg=float(ctx["mass_kg"]), recipe=ctx["recipe"],
                       si_fraction=float(ctx["si_fraction"]),
                       density_g_cm3=float(ctx["density_g_cm3"]))
        readings = {"d50_um": lot.d50_um, "gsd": lot.psd.gsd, "ssa_m2_g": lot.ssa_m2_g,
                    "oxygen_wt_pct": lot.oxygen_wt_pct}
        return replace(res, values={**res.values, **readings})
