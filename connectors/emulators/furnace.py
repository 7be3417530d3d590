"""Emulated controlled-oxidation furnace PLC: process values, recipe steps, hidden truth.

Steps: Idle → Loading → Heating → Holding → Cooling → Complete (plus Held, Aborted).
The zone temperatures come from the hidden plant's furnace
(:class:`twin.hidden.furnace.TrueFurnace`, one state per zone): a rate-limited first-order
lag with seeded noise, reported as the *indicated* (thermocouple) value while each zone's wall
runs at its hidden offset. The gas-flow controller shows its setpoint-following reading while
the true flow carries the hidden bias; the dew-point sensor reads the humidifier's true water
with its bias. While a batch runs, every zone's true wall temperature and the true gas are
recorded; when it ends, the charge's true oxide is solved once with the hidden charge physics
(:mod:`twin.hidden.charge`) and kept for the lab only. The charge itself is what the
supervisor wrote (mass, d50 as measured), as it really is (the hidden instruments' bias
undone, the BET roughness of the truth file).

In-batch endpoint control
    While the step is ``Holding`` the method ``BatchControl.AdjustHold(HoldTime: Double, min)``
    sets the step's *total* hold time (counted from the start of the hold), as a furnace
    programmer's "extend/shorten segment" does. It is checked against ``[stations.oxidizer.
    limits] hold_min`` when called (``BadOutOfRange``, nothing changes) and refused outside
    Holding (``BadInvalidState``: idle, loading, heating, held, cooling, complete). A value at
    or below the hold already elapsed ends the hold at once (cool-down starts: "advance
    step"). The effective hold reads back on ``HoldTime.SP`` (the elapsed hold when the call
    ended it early); ``HoldTime.PV`` stays the hold elapsed so far.
Independent instruments (read-only process values, no setpoint)
    ``Temperature.OverTemp`` (°C): the over-temperature thermocouple, the true wall of the
    hottest zone with its own small noise; it never shares a fault of the control
    thermocouples. ``Oxygen.Analyser`` (atm): the exhaust O2 analyser, the true O2 partial
    pressure delivered (tube lag, small noise).
Gross faults (``Simulation.InjectFault``, besides the alarm faults)
    ``thermocouple_low``: the control thermocouples read 60 °C low, so the furnace really runs
    60 °C hot (zone PVs look normal, the over-temperature thermocouple shows it);
    ``wrong_gas``: nitrogen on the air line, the true O2 is a trace (the MFC reading looks
    normal, the analyser shows it); ``humidifier_stuck``: no water delivered (the dew-point
    reading shows dry gas). The true charge physics runs on the true wall and gas, so the lab
    result reflects them.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np

from connectors.emulators.points import (
    ATMOSPHERE,
    CELSIUS,
    CELSIUS_PER_MIN,
    KILOGRAM,
    MICROMETRE,
    MILLIBAR,
    MINUTE,
    SLM,
    Point,
    dew_point_range,
    dew_point_to_ph2o_atm,
    ph2o_atm_to_dew_point,
)
from connectors.emulators.tool import DeviationTimer, ToolCore, flow_deviation, lag
from twin.config.schema import LabConfig, OxidationRecipe, OxidizerConfig
from twin.errors import ConfigError, PhysicsError
from twin.hidden.charge import SL_PER_MOL, ChargeOxidation, ChargeTruth, TrueRun
from twin.hidden.config import TruthConfig, load_truth
from twin.hidden.furnace import FurnaceState, TrueFurnace
from twin.physics.milling import ssa_m2_g
from twin.physics.psd import lognormal

log = logging.getLogger(__name__)

#: Gas-composition lag of the furnace tube, s (estimate: a few tube volumes per minute).
GAS_TAU_S = 10.0
#: Record the true trajectory at most this often, process s (the oxide solver's knots).
RECORD_EVERY_S = 30.0
#: ``thermocouple_low``: how far the control thermocouples read low, °C.
THERMOCOUPLE_LOW_C = 60.0
#: ``wrong_gas``: O2 left in the nitrogen on the air line, atm (~10 ppm, a common N2 grade).
WRONG_GAS_PO2_ATM = 1e-5
#: Noise of the over-temperature thermocouple, °C (1 sigma, its own input card).
OVERTEMP_NOISE_C = 0.5
#: Noise of the exhaust O2 analyser, atm (1 sigma; zirconia cells resolve ~10 ppm).
ANALYSER_NOISE_ATM = 1e-5
#: The gross faults a supervisor's endpoint control has to find (see the module docstring).
GROSS_FAULTS: tuple[str, ...] = ("thermocouple_low", "wrong_gas", "humidifier_stuck")


def furnace_points(cfg: OxidizerConfig) -> tuple[Point, ...]:
    """The furnace's process values, limits from ``[stations.oxidizer.limits]``."""
    lim = cfg.limits
    t_lo, t_hi = lim.temperature_c
    pv_t = (0.0, t_hi + 200.0)
    zones = tuple(
        Point(f"zone{i}_c", f"Temperature.Zone{i}", CELSIUS, pv_t, lim.temperature_c,
              description=f"zone {i} temperature (indicated thermocouple)")
        for i in range(1, cfg.plc.zones + 1))
    ramp_hi = lim.ramp_c_per_min[1]
    return zones + (
        Point("ramp_c_per_min", "RampRate", CELSIUS_PER_MIN, (0.0, 2 * ramp_hi),
              lim.ramp_c_per_min, description="heating ramp (PV: measured heating rate)"),
        Point("cool_c_per_min", "CoolRate", CELSIUS_PER_MIN, (0.0, 2 * ramp_hi),
              lim.ramp_c_per_min, description="cooling ramp (PV: measured cooling rate)"),
        Point("hold_min", "HoldTime", MINUTE, (0.0, lim.hold_min[1]), lim.hold_min,
              description="hold time (PV: elapsed hold time)"),
        Point("po2_atm", "Oxygen.PartialPressure", ATMOSPHERE, (0.0, 1.0), lim.po2_atm,
              description="O2 partial pressure of the process gas (from the MFC reading)"),
        Point("gas_flow_slm", "ProcessGas.Flow", SLM, (0.0, lim.gas_flow_slm[1]),
              lim.gas_flow_slm, description="total process-gas flow (mass-flow controller)"),
        Point("o2_flow_slm", "Oxygen.Flow", SLM, (0.0, lim.o2_flow_slm[1]), None,
              description="O2 flow: the O2 share of the process-gas flow reading"),
        Point("dew_point_c", "Water.DewPoint", CELSIUS, (-80.0, 60.0),
              dew_point_range(lim.ph2o_atm), description="H2O dew point of the process gas"),
        Point("pressure_mbar", "Pressure", MILLIBAR, (0.0, 2000.0), lim.pressure_mbar,
              description="tube pressure"),
        # Independent instruments: read-only (no setpoint), never part of the control loop.
        Point("overtemp_c", "Temperature.OverTemp", CELSIUS, pv_t, None,
              description="over-temperature thermocouple (true wall of the hottest zone)"),
        Point("o2_analyser_atm", "Oxygen.Analyser", ATMOSPHERE, (0.0, 1.0), None,
              description="exhaust O2 analyser (O2 partial pressure delivered)"),
    )


def furnace_context(cfg: OxidizerConfig) -> tuple[Point, ...]:
    """Charge description the supervisor may write before Start (the truth needs it)."""
    return (
        Point("charge_d50_um", "ChargeD50", MICROMETRE, (0.01, 1000.0), (0.01, 1000.0),
              description="median particle size of the loaded charge"),
        Point("charge_mass_kg", "ChargeMass", KILOGRAM, (0.0, cfg.capacity_kg),
              (0.0, cfg.capacity_kg), description="mass of the loaded charge"),
    )


def furnace_recipe(cfg: OxidizerConfig, recipe: OxidationRecipe) -> dict[str, Any]:
    """The PLC's local recipe from the plant file's ``[recipes.oxidation]``."""
    out: dict[str, Any] = {f"zone{i}_c": recipe.hold_c for i in range(1, cfg.plc.zones + 1)}
    out.update(ramp_c_per_min=recipe.ramp_c_per_min, cool_c_per_min=recipe.cool_c_per_min,
               hold_min=recipe.hold_min, po2_atm=recipe.po2_atm,
               dew_point_c=ph2o_atm_to_dew_point(recipe.ph2o_atm),
               gas_flow_slm=recipe.gas_flow_slm,
               pressure_mbar=cfg.plc.pressure_mbar, charge_d50_um=cfg.plc.charge_d50_um,
               charge_mass_kg=min(recipe.charge_kg, cfg.capacity_kg))
    return {k: float(v) for k, v in out.items()}


class FurnaceTool(ToolCore):
    """Emulated oxidation furnace (see the module docstring).

    Parameters
    ----------
    cfg : OxidizerConfig
        Station configuration: limits, PLC emulation settings.
    recipe : OxidationRecipe
        Local recipe.
    material : {'Si', 'Sn'}
        Oxidising base element of the plant's alloy.
    lab : LabConfig
        Metrology turnaround and noise.
    rng : numpy.random.Generator
        The run's generator; split into truth, lab and instrument streams.
    truth : TruthConfig, optional
        The hidden plant (a truth file); default: the shipped nominal truth.
    phase_fraction : float
        Surface share of the charge's free Si (or Sn) phase (from the alloy's phases).
    """

    KIND: ClassVar[str] = "furnace"
    RUN_STEPS: ClassVar[tuple[str, ...]] = ("Loading", "Heating", "Holding", "Cooling")
    STEPS: ClassVar[tuple[str, ...]] = ("Idle", "Loading", "Heating", "Holding", "Cooling",
                                        "Complete", "Held", "Aborted")
    FAULTS: ClassVar[tuple[str, ...]] = ("HeaterRunaway", "O2FlowLoss", "DoorOpen",
                                         *GROSS_FAULTS)
    ADJUSTABLE_HOLD: ClassVar[bool] = True

    def __init__(self, cfg: OxidizerConfig, recipe: OxidationRecipe, material: str,
                 lab: LabConfig, rng: np.random.Generator, *,
                 truth: TruthConfig | None = None, phase_fraction: float = 1.0) -> None:
        # A fourth stream for the independent instruments: spawn() numbers its children, so
        # the first three (truth, lab, PLC instruments) are those of the earlier three-way split.
        truth_rng, lab_rng, self._inst_rng, self._monitor_rng = rng.spawn(4)
        points = furnace_points(cfg)
        self.context_points = furnace_context(cfg)
        local = furnace_recipe(cfg, recipe)
        _check_recipe(points + self.context_points, local)
        super().__init__(points + self.context_points, local, cfg.plc, lab, lab_rng)
        self.points = points
        self.cfg = cfg
        self.recipe = recipe
        self.material = material
        self.hidden = truth if truth is not None else load_truth(None)
        self.truth = TrueFurnace(self.hidden.furnace, cfg.limits, truth_rng,
                                 tau_s=cfg.plc.tau_s, zones=cfg.plc.zones)
        self.phase_fraction = phase_fraction
        zone_mean = sum(self.truth.zone_offsets_c) / self.truth.zones
        self.oxidation = ChargeOxidation(
            self.hidden.kinetics.build(), self.hidden.bed.build(), self.hidden.lab,
            zone_offsets_c=tuple(z - zone_mean for z in self.truth.zone_offsets_c),
            loop_tau_s=cfg.plc.tau_s, mode="exact")
        self.zones: list[FurnaceState] = [
            self.truth.initial_state(temperature_c=recipe.start_c, zone=i)
            for i in range(cfg.plc.zones)]
        self._held_sp: list[float] = []
        self._hold_elapsed_s = 0.0
        self._rate_c_per_min = 0.0
        self._po2_ind = 0.0
        self._flow_ind = 0.0
        self._ph2o_ind = 0.0
        self._po2_exhaust = 0.0
        self._pressure = 1013.25
        self._timers = DeviationTimer()
        # (time, wall per zone ..., O2, H2O, total flow) of the running batch, true values.
        self._trajectory: list[tuple[float, ...]] = []
        self._update_pv()

    # -- batch -----------------------------------------------------------------------------
    def _begin_batch(self) -> None:
        self._hold_elapsed_s = 0.0
        self._trajectory = []
        self._record(force=True)

    def _on_hold(self) -> None:
        # Held keeps the furnace where it is: the ramp stops at the present temperature.
        self._held_sp = [z.indicated_c for z in self.zones]

    def adjust_hold(self, hold_min: float) -> tuple[str, str]:
        """``AdjustHold``: set the running step's total hold time, min (see the module notes)."""
        if self.step != "Holding":
            return "BadInvalidState", f"AdjustHold: the step is {self.step}, not Holding"
        lo, hi = self.cfg.limits.hold_min
        # NaN fails both comparisons, so it is out of range too.
        if not lo <= hold_min <= hi:
            return "BadOutOfRange", (f"AdjustHold: hold {hold_min:g} min is outside the limits "
                                     f"[{lo:g}, {hi:g}] min")
        held_min = self._hold_elapsed_s / 60.0
        if hold_min <= held_min:
            # Advance step: the effective hold is what was held, and that is what reads back.
            self.setpoints["hold_min"] = held_min
            self._enter("Cooling")
            return "Good", f"AdjustHold: hold ended after {held_min:.2f} min, cooling"
        self.setpoints["hold_min"] = float(hold_min)
        return "Good", (f"AdjustHold: hold set to {hold_min:g} min "
                        f"({held_min:.2f} min held so far)")

    def _zone_keys(self) -> list[str]:
        return [f"zone{i}_c" for i in range(1, len(self.zones) + 1)]

    def _gas_on(self) -> bool:
        return self.batch_active

    def _zone_setpoints(self, i: int, step: str) -> dict[str, float]:
        sp = self.setpoints
        gas = self._gas_on() and "O2FlowLoss" not in self.faults
        po2 = sp["po2_atm"] if gas else 0.0
        ph2o = dew_point_to_ph2o_atm(sp["dew_point_c"]) if self._gas_on() else 0.0
        ramp_max = self.cfg.limits.ramp_c_per_min[1]
        if step in ("Heating", "Holding"):
            temp, ramp = sp[f"zone{i + 1}_c"], sp["ramp_c_per_min"]
        elif step == "Cooling":
            temp, ramp = self.cfg.plc.unload_c, sp["cool_c_per_min"]
        elif step == "Held":
            temp, ramp = self._held_sp[i], sp["ramp_c_per_min"]
        else:  # heaters off: the furnace drifts back to ambient
            temp, ramp = self.recipe.start_c, ramp_max
        if i == 0 and "HeaterRunaway" in self.faults and not self.trip_reason:
            temp, ramp = self.cfg.limits.temperature_c[1], ramp_max
        return {"temperature_c": temp, "ramp_c_per_min": ramp, "po2_atm": po2,
                "ph2o_atm": ph2o}

    # -- process ---------------------------------------------------------------------------
    def _process(self, dt_s: float) -> None:
        before = self._mean_indicated()
        self.zones = [self.truth.step(z, self._zone_setpoints(i, self.step), dt_s, zone=i)
                      for i, z in enumerate(self.zones)]
        rate = (self._mean_indicated() - before) / dt_s * 60.0
        self._rate_c_per_min = lag(self._rate_c_per_min, rate, dt_s, 60.0)
        gas = self._gas_on() and "O2FlowLoss" not in self.faults
        self._po2_ind = lag(self._po2_ind, self.setpoints["po2_atm"] if gas else 0.0, dt_s,
                            GAS_TAU_S)
        self._flow_ind = lag(self._flow_ind, self.setpoints["gas_flow_slm"] if gas else 0.0,
                             dt_s, GAS_TAU_S)
        h2o = dew_point_to_ph2o_atm(self.setpoints["dew_point_c"]) if self._gas_on() else 0.0
        if "humidifier_stuck" in self.faults:
            h2o = 0.0  # the sensor sees the dry gas the stuck humidifier lets through
        self._ph2o_ind = lag(self._ph2o_ind, h2o, dt_s, GAS_TAU_S)
        self._po2_exhaust = lag(self._po2_exhaust, self._true_gas()[0], dt_s, GAS_TAU_S)
        p_target = self.setpoints["pressure_mbar"] if self._gas_on() else 1013.25
        self._pressure = lag(self._pressure, p_target, dt_s, GAS_TAU_S)
        if self.step == "Holding":
            self._hold_elapsed_s += dt_s
        if self.batch_active:
            self._record()
            self._advance_step()
        self._update_pv()

    def _advance_step(self) -> None:
        sp = self.setpoints
        if self.step == "Loading" and self.step_elapsed_s >= self.cfg.load_unload_h * 1800.0:
            self._enter("Heating")
        elif self.step == "Heating":
            # The PLC's own settle band (a configured value, not the hidden noise level).
            band = 5.0
            if all(abs(z.indicated_c - sp[k]) <= band
                   for z, k in zip(self.zones, self._zone_keys(), strict=True)):
                self._enter("Holding")
        elif self.step == "Holding" and self._hold_elapsed_s >= sp["hold_min"] * 60.0:
            self._enter("Cooling")
        elif self.step == "Cooling" and self._mean_indicated() <= self.cfg.plc.unload_c + 5.0:
            self._record(force=True)
            self._end_batch("Complete")

    def _mean_indicated(self) -> float:
        return sum(z.indicated_c for z in self.zones) / len(self.zones)

    def _update_pv(self) -> None:
        pv = self.pv
        for key, z in zip(self._zone_keys(), self.zones, strict=True):
            pv[key] = z.indicated_c
        pv["ramp_c_per_min"] = max(self._rate_c_per_min, 0.0)
        pv["cool_c_per_min"] = max(-self._rate_c_per_min, 0.0)
        pv["hold_min"] = self._hold_elapsed_s / 60.0
        pv["po2_atm"] = self._po2_ind
        pv["gas_flow_slm"] = self._flow_ind
        pv["o2_flow_slm"] = self._po2_ind * self._flow_ind
        pv["dew_point_c"] = ph2o_atm_to_dew_point(self._ph2o_ind)
        pv["pressure_mbar"] = self._pressure + 0.2 * float(self._inst_rng.standard_normal())
        noise = self._monitor_rng.standard_normal(2)
        pv["overtemp_c"] = (max(z.true_c for z in self.zones) + self._tc_error_c()
                            + OVERTEMP_NOISE_C * float(noise[0]))
        pv["o2_analyser_atm"] = max(self._po2_exhaust + ANALYSER_NOISE_ATM * float(noise[1]),
                                    0.0)

    def _tc_error_c(self) -> float:
        """True wall minus what the zone states believe, °C (``thermocouple_low``).

        The zone states' ``indicated_c`` is what the control thermocouples read and the PLC
        controls; a thermocouple reading low makes the loop drive the real wall that far above.
        """
        return THERMOCOUPLE_LOW_C if "thermocouple_low" in self.faults else 0.0

    def _true_gas(self) -> tuple[float, float]:
        """O2 and H2O partial pressures really delivered now, atm (gross faults included)."""
        if not self._gas_on():
            return 0.0, 0.0
        z0 = self.zones[0]
        po2 = 0.0 if "O2FlowLoss" in self.faults else z0.po2_atm
        if "wrong_gas" in self.faults:
            po2 = min(po2, WRONG_GAS_PO2_ATM)
        ph2o = 0.0 if "humidifier_stuck" in self.faults else z0.ph2o_atm
        return po2, ph2o

    # -- alarms and interlocks -------------------------------------------------------------
    def _alarm_conditions(self, dt_s: float) -> dict[str, str]:
        out: dict[str, str] = {}
        band = self.plc.overtemp_band_c
        hi = self.cfg.limits.temperature_c[1]
        for key, z in zip(self._zone_keys(), self.zones, strict=True):
            if z.indicated_c > self.setpoints[key] + band or z.indicated_c > hi:
                out["OverTemperature"] = (f"{key}: {z.indicated_c:.1f} °C above setpoint "
                                          f"{self.setpoints[key]:.1f} °C + {band:g} °C")
                break
        demand = (self.setpoints["po2_atm"] * self.setpoints["gas_flow_slm"]
                  if self._gas_on() else 0.0)
        # Only a commanded flow can deviate: after the batch the valve closes on purpose.
        off = self._gas_on() and flow_deviation(self.pv["o2_flow_slm"], demand,
                                                self.plc.flow_deviation_rel, 0.05)
        if self._timers.update("o2", off, dt_s) > self.plc.flow_deviation_s:
            out["FlowDeviation"] = (f"O2 flow {self.pv['o2_flow_slm']:.2f} slm, "
                                    f"demand {demand:.2f} slm")
        return out

    def _interlock_cause(self) -> str:
        if "DoorOpen" in self.faults and self.batch_active:
            return "door opened during a batch"
        band = 2.0 * self.plc.overtemp_band_c
        for key, z in zip(self._zone_keys(), self.zones, strict=True):
            if z.indicated_c > self.setpoints[key] + band:
                return f"high-high temperature {key} {z.indicated_c:.0f} °C"
        return ""

    # -- truth -----------------------------------------------------------------------------
    def _record(self, force: bool = False) -> None:
        if not force and self._trajectory and self.t_s - self._trajectory[-1][0] < RECORD_EVERY_S:
            return
        gas = self._gas_on() and "O2FlowLoss" not in self.faults
        flow = (self.setpoints["gas_flow_slm"] * self.truth.flow_factor(self.t_s)
                / SL_PER_MOL / 60.0 if gas else 0.0)
        po2, ph2o = self._true_gas()
        tc_error = self._tc_error_c()
        self._trajectory.append((self.t_s, *(z.true_c + tc_error for z in self.zones),
                                 flow * po2, flow * ph2o, flow))

    def _charge(self) -> ChargeTruth:
        """The loaded charge as it really is (from what the supervisor wrote)."""
        d50 = self.setpoints["charge_d50_um"] / math.exp(self.hidden.sensors.laser_d50_bias_rel)
        gsd = self.cfg.plc.charge_gsd
        ssa = float(ssa_m2_g(lognormal(d50, gsd), 2.33)) * self.hidden.material.ssa_roughness
        return ChargeTruth(max(self.setpoints["charge_mass_kg"], 1e-3), d50, gsd, ssa,
                           self.cfg.plc.initial_oxide_nm, self.phase_fraction, 0.0,
                           self.material)

    def _finish(self) -> Any:
        self._record(force=True)
        rows = self._trajectory
        if len(rows) < 2:
            rows = rows + [(rows[-1][0] + 1.0, *rows[-1][1:])]
        a = np.array(rows, dtype=float)
        a[:, 0] -= a[0, 0]
        keep = np.concatenate([[True], np.diff(a[:, 0]) > 0])
        a = a[keep]
        nz = len(self.zones)
        # An atmosphere without flow still holds a trace of gas: keep the solver's total
        # above O2 + H2O.
        total = np.maximum(a[:, 3 + nz], a[:, 1 + nz] + a[:, 2 + nz])
        run = TrueRun(a[:, 0], a[:, 1:1 + nz].T.copy(), total, a[:, 1 + nz], a[:, 2 + nz],
                      offset_c=self.truth.offset_c(self.batch.start_s),
                      flow_mol_s=float(total.max()) or 1e-12, h2o_share=0.0,
                      rate_factor=self.truth.rate_factor(self.batch.start_s))
        try:
            return self.oxidation.of_cut_run(run, self._charge())
        except PhysicsError as exc:  # e.g. tin held above its melting point
            log.warning("furnace batch %s: no true oxide: %s", self.batch.batch_id, exc)
            return math.nan


def _check_recipe(points: tuple[Point, ...], recipe: dict[str, Any]) -> None:
    for p in points:
        v = recipe.get(p.key)
        if p.sp_range is not None and v is not None and not p.sp_range[0] <= v <= p.sp_range[1]:
            raise ConfigError(f"local recipe value {p.key}={v:g} is outside the tool limits "
                              f"{p.sp_range} (check [recipes] against [stations.*.limits])")
