"""Emulated magnetron sputter-tool PLC: Si film plus a reactive oxide cap, on Cu foil.

Steps: Idle → PumpDown → Deposit → Oxidize (O2 bleed) → Vent → Complete (plus Held,
Aborted). Film and cap grow with the shared true process
(:class:`twin.hidden.sputter.TrueSputter`): the coating physics' rates times a drifting,
seeded tool factor, with the O2 reaching the target biased against the MFC reading. The
vacuum, gas and heater readings are instrument models of this PLC (no oxide depends on them
beyond the setpoints the truth receives).

The quartz-crystal thickness monitor reads the *film* with a hidden, seeded tooling-factor
error; its crystal shutter is closed during the O2 bleed (reactive oxygen would load the
crystal), so the true cap thickness never appears as a process value — only the lab measures
it, through the metrology node.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np

from connectors.emulators.furnace import _check_recipe
from connectors.emulators.points import (
    CELSIUS,
    MILLITORR,
    MINUTE,
    NANOMETRE,
    NO_UNIT,
    SCCM,
    WATT,
    Point,
)
from connectors.emulators.tool import DeviationTimer, ToolCore, flow_deviation, lag
from twin.config.schema import LabConfig, SputterConfig, SputterRecipe
from twin.hidden.config import SputterTruth
from twin.hidden.sputter import SputterState, TrueSputter
from twin.physics import coating

ATMOSPHERE_MTORR = 760_000.0
AMBIENT_C = 25.0
#: O2/Ar flow ratios the reactive process (and the coating physics) is qualified for.
REACTIVE_WINDOW = coating.CAP_RATIO_RANGE


def sputter_points(cfg: SputterConfig) -> tuple[Point, ...]:
    """The sputter tool's process values, limits from ``[stations.sputter.limits]``."""
    lim = cfg.limits
    return (
        Point("pressure_mtorr", "ChamberPressure", MILLITORR, (0.0, 800_000.0),
              lim.pressure_mtorr, description="chamber pressure (process setpoint)"),
        Point("ar_sccm", "ArgonFlow", SCCM, (0.0, 1.5 * lim.ar_sccm[1]), lim.ar_sccm,
              description="Ar mass-flow controller"),
        Point("o2_sccm", "OxygenFlow", SCCM, (0.0, 1.5 * lim.o2_sccm[1]), lim.o2_sccm,
              description="O2 mass-flow controller (bleed during Oxidize)"),
        Point("power_w", "TargetPower", WATT, (0.0, 1.2 * lim.power_w[1]), lim.power_w,
              description="target (cathode) power"),
        Point("substrate_temperature_c", "SubstrateTemperature", CELSIUS,
              (0.0, lim.substrate_temperature_c[1] + 200.0), lim.substrate_temperature_c,
              description="substrate heater"),
        Point("shutter", "Shutter", NO_UNIT, (0.0, 1.0), (0.0, 1.0), kind="Boolean",
              description="target shutter open (SP: manual, when no batch runs)"),
        Point("deposit_min", "DepositionTime", MINUTE, (0.0, lim.deposit_min[1]),
              lim.deposit_min, description="deposition time (PV: elapsed)"),
        Point("oxidize_min", "OxidationTime", MINUTE, (0.0, lim.deposit_min[1]),
              lim.deposit_min, description="reactive O2-bleed time (PV: elapsed)"),
        Point("qcm_nm", "ThicknessMonitor", NANOMETRE, (0.0, 10_000.0), None,
              description="quartz-crystal monitor: film thickness this run"),
    )


def sputter_recipe(cfg: SputterConfig, recipe: SputterRecipe, material: str) -> dict[str, Any]:
    """Local recipe from ``[recipes.sputter]``: times from the textbook (nominal) rates."""
    m: Literal["Si", "Sn"] = "Si" if material == "Si" else "Sn"
    film_rate = coating.deposition_rate_nm_min(recipe.power_w, recipe.pressure_mtorr, material=m)
    cap_rate = coating.cap_rate_nm_min(recipe.ar_sccm, recipe.o2_sccm, power_w=recipe.power_w,
                                       pressure_mtorr=recipe.pressure_mtorr, material=m)
    return {"pressure_mtorr": recipe.pressure_mtorr, "ar_sccm": recipe.ar_sccm,
            "o2_sccm": recipe.o2_sccm, "power_w": recipe.power_w,
            "substrate_temperature_c": recipe.substrate_temperature_c, "shutter": False,
            "deposit_min": round(recipe.film_nm / film_rate, 3),
            "oxidize_min": round(recipe.cap_nm / cap_rate, 3)}


class SputterTool(ToolCore):
    """Emulated sputter tool (see the module docstring); parameters as :class:`FurnaceTool`."""

    KIND: ClassVar[str] = "sputter"
    RUN_STEPS: ClassVar[tuple[str, ...]] = ("PumpDown", "Deposit", "Oxidize", "Vent")
    STEPS: ClassVar[tuple[str, ...]] = ("Idle", "PumpDown", "Deposit", "Oxidize", "Vent",
                                        "Complete", "Held", "Aborted")
    FAULTS: ClassVar[tuple[str, ...]] = ("VacuumLeak", "ArFlowLoss", "HeaterRunaway")

    def __init__(self, cfg: SputterConfig, recipe: SputterRecipe, material: str,
                 lab: LabConfig, rng: np.random.Generator, *,
                 truth: SputterTruth | None = None) -> None:
        truth_rng, lab_rng, self._inst_rng = rng.spawn(3)
        points = sputter_points(cfg)
        local = sputter_recipe(cfg, recipe, material)
        _check_recipe(points, local)
        super().__init__(points, local, cfg.plc, lab, lab_rng)
        self.context_points: tuple[Point, ...] = ()
        self.cfg = cfg
        self.truth = TrueSputter(truth or SputterTruth(), cfg.limits, truth_rng, material=material,
                                 tau_s=cfg.plc.tau_s)
        self.state = SputterState()
        # The monitor's tooling-factor error is a property of this tool: drawn once.
        self._tooling = 1.0 + cfg.plc.qcm_tooling_error_rel * float(
            self._inst_rng.standard_normal())
        self._pressure = ATMOSPHERE_MTORR
        self._ar = self._o2 = 0.0
        self._substrate_c = AMBIENT_C
        self._elapsed = {"Deposit": 0.0, "Oxidize": 0.0}
        self._timers = DeviationTimer()
        self._update_pv()

    # -- batch -----------------------------------------------------------------------------
    def _recipe_problem(self) -> str:
        sp = self.setpoints
        ratio = sp["o2_sccm"] / sp["ar_sccm"]
        lo, hi = REACTIVE_WINDOW
        if sp["oxidize_min"] > 0 and not lo <= ratio <= hi:
            return (f"O2/Ar flow ratio {ratio:.3g} outside the qualified reactive window "
                    f"{lo}–{hi} (OxygenFlow {sp['o2_sccm']:g} sccm, ArgonFlow "
                    f"{sp['ar_sccm']:g} sccm)")
        return ""

    def _begin_batch(self) -> None:
        self.state = SputterState(time_s=self.t_s)
        self._elapsed = {"Deposit": 0.0, "Oxidize": 0.0}

    def _plasma_mode(self) -> str:
        if self.step not in ("Deposit", "Oxidize") or "ArFlowLoss" in self.faults:
            return "idle"  # no argon, no plasma
        return "deposit" if self.step == "Deposit" else "oxidize"

    def _truth_setpoints(self) -> dict[str, float]:
        # The truth only evaluates the cap rate in oxidize mode (and continues it outside
        # the fitted O2/Ar window), so the setpoints go to it as they are.
        return {k: float(self.setpoints[k]) for k in
                ("power_w", "pressure_mtorr", "ar_sccm", "o2_sccm", "substrate_temperature_c")}

    # -- process ---------------------------------------------------------------------------
    def _process(self, dt_s: float) -> None:
        step, sp, plc = self.step, self.setpoints, self.cfg.plc
        self.state = self.truth.step(self.state, self._truth_setpoints(), dt_s,
                                     mode=self._plasma_mode())
        if step in self._elapsed:
            self._elapsed[step] += dt_s
        self._pressure = self._chamber(step, dt_s)
        flowing = step in ("Deposit", "Oxidize")
        ar = sp["ar_sccm"] if flowing and "ArFlowLoss" not in self.faults else 0.0
        self._ar = lag(self._ar, ar, dt_s, plc.tau_s)
        self._o2 = lag(self._o2, sp["o2_sccm"] if step == "Oxidize" else 0.0, dt_s, plc.tau_s)
        heat = sp["substrate_temperature_c"] if self.batch_active else AMBIENT_C
        if "HeaterRunaway" in self.faults and not self.trip_reason:
            heat = self.cfg.limits.substrate_temperature_c[1] + 150.0
        self._substrate_c = lag(self._substrate_c, heat, dt_s, plc.substrate_tau_s)
        if self.batch_active:
            self._advance_step()
        self._update_pv()

    def _chamber(self, step: str, dt_s: float) -> float:
        base = self.cfg.plc.base_pressure_mtorr
        p = self._pressure
        if step == "PumpDown":
            # Log-linear pump curve: atmosphere to base pressure in pump_down_min.
            span = math.log(ATMOSPHERE_MTORR / base)
            t = max(self.cfg.pump_down_min * 60.0, 1.0)
            return max(base, p * math.exp(-span * dt_s / t))
        if step == "Vent":
            span = math.log(ATMOSPHERE_MTORR / base)
            t = max(self.cfg.vent_min * 60.0, 1.0)
            return min(ATMOSPHERE_MTORR, max(p, base) * math.exp(span * dt_s / t))
        if step in ("Deposit", "Oxidize"):
            target = self.setpoints["pressure_mtorr"]
            if "VacuumLeak" in self.faults:
                return p + 2.0 * dt_s  # a leak the throttle valve cannot follow
            return lag(p, target, dt_s, self.cfg.plc.tau_s)
        if step in ("Held", "Aborted") and p < ATMOSPHERE_MTORR:
            return lag(p, base, dt_s, self.cfg.plc.tau_s) + (2.0 * dt_s if "VacuumLeak"
                                                              in self.faults else 0.0)
        return p

    def _advance_step(self) -> None:
        sp = self.setpoints
        if self.step == "PumpDown" and self.step_elapsed_s >= self.cfg.pump_down_min * 60.0:
            self._enter("Deposit")
        elif self.step == "Deposit" and self._elapsed["Deposit"] >= sp["deposit_min"] * 60.0:
            self._enter("Oxidize")
        elif self.step == "Oxidize" and self._elapsed["Oxidize"] >= sp["oxidize_min"] * 60.0:
            self._enter("Vent")
        elif self.step == "Vent" and self.step_elapsed_s >= self.cfg.vent_min * 60.0:
            self._end_batch("Complete")

    def _update_pv(self) -> None:
        pv, noise = self.pv, self._inst_rng.standard_normal(2)
        pv["pressure_mtorr"] = self._pressure * (1.0 + 0.005 * float(noise[0]))
        pv["ar_sccm"] = self._ar
        pv["o2_sccm"] = self._o2
        pv["power_w"] = self.state.power_w
        pv["substrate_temperature_c"] = self._substrate_c
        pv["shutter"] = (self._plasma_mode() != "idle") or (
            not self.batch_active and bool(self.setpoints["shutter"]))
        pv["deposit_min"] = self._elapsed["Deposit"] / 60.0
        pv["oxidize_min"] = self._elapsed["Oxidize"] / 60.0
        qcm = self.state.film_nm * self._tooling
        if self.step != "Oxidize" or "qcm_nm" not in pv:
            pv["qcm_nm"] = max(0.0, qcm + self.cfg.plc.qcm_noise_nm * float(noise[1]))

    # -- alarms and interlocks -------------------------------------------------------------
    def _alarm_conditions(self, dt_s: float) -> dict[str, str]:
        out: dict[str, str] = {}
        sp, pv, plc = self.setpoints, self.pv, self.plc
        t_ref = sp["substrate_temperature_c"] if self.batch_active else AMBIENT_C
        hi = self.cfg.limits.substrate_temperature_c[1]
        if pv["substrate_temperature_c"] > max(t_ref, sp["substrate_temperature_c"]) + \
                plc.overtemp_band_c or pv["substrate_temperature_c"] > hi:
            out["OverTemperature"] = (f"substrate {pv['substrate_temperature_c']:.1f} °C above "
                                      f"setpoint {t_ref:.1f} °C + {plc.overtemp_band_c:g} °C")
        mode = self.step
        ar_off = mode in ("Deposit", "Oxidize") and flow_deviation(
            pv["ar_sccm"], sp["ar_sccm"], plc.flow_deviation_rel, 0.5)
        o2_off = mode == "Oxidize" and flow_deviation(
            pv["o2_sccm"], sp["o2_sccm"], plc.flow_deviation_rel, 0.2)
        if self._timers.update("ar", ar_off, dt_s) > plc.flow_deviation_s:
            out["FlowDeviation"] = f"Ar flow {pv['ar_sccm']:.1f} sccm, SP {sp['ar_sccm']:g} sccm"
        elif self._timers.update("o2", o2_off, dt_s) > plc.flow_deviation_s:
            out["FlowDeviation"] = f"O2 flow {pv['o2_sccm']:.2f} sccm, SP {sp['o2_sccm']:g} sccm"
        return out

    def _interlock_cause(self) -> str:
        if self.step in ("Deposit", "Oxidize") and \
                self._pressure > 2.0 * self.cfg.limits.pressure_mtorr[1]:
            return f"vacuum lost during {self.step} ({self._pressure:.0f} mTorr)"
        if self._substrate_c > self.cfg.limits.substrate_temperature_c[1] + 50.0:
            return f"substrate over-temperature {self._substrate_c:.0f} °C"
        return ""

    # -- truth -----------------------------------------------------------------------------
    def _finish(self) -> float:
        # The run-to-run spread applies to the whole run (TrueSputter.run_spread).
        return float(self.state.cap_nm * self.truth.run_spread())
