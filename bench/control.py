"""Bench: run-to-run control and virtual metrology against the equipment's hidden truth.

Runs the same seeded disturbance scenarios with three strategies and judges them against the
true oxide of :class:`twin.hidden.furnace.TrueFurnace` (never against the twin's own model):

``off``
    Recipe setpoints, no correction. The twin's VM still predicts and learns from the lab
    (controller off, VM on), so its MAPE and coverage are reported too.
``ewma``
    Classic R2R: EWMA of the measured log thickness against a fixed log-linear model in the
    hold time (:class:`twin.control.r2r.PlainEwmaController`); its own prediction is its VM.
``twin``
    The twin's loop (:class:`twin.control.loop.ControlLoop`, closed loop): physics VM over
    the reported record, double-EWMA calibration from the lab, model inversion over hold time
    → temperature → O2, with re-planning during the hold.

Plant: the shipped powder line with a steam (wet) oxidation recipe, so that humidity matters
to first order (in humid air at 850 °C the water channel hardly moves the oxide), and every
charge measured by the lab (4 h turnaround). The batch loop is driven directly (no SimPy): the
recipe/controller → :class:`TrueFurnace` (dynamics, thermocouple offset, O2 bias, rate
factor, batch and bed spread) → lab noise (:func:`twin.physics.metrology.measure_thickness_nm`)
→ the strategy's update, in process time, so a lab result only reaches batches that start
after it arrives. The recipe's hold time is commissioned on the undisturbed truth (what a
plant engineer's start-up DOE does), so ``off`` starts on aim.

Scenarios (onset after ``ONSET`` undisturbed batches):

``tc_step``  the thermocouple starts reading 75 °C low (the charge runs 75 °C hotter);
``rate_drift``  the true rate factor drifts up by 20 % of its start value per day;
``humidity``  the steam supply swings: pH2O times exp(1.5 sin(2 pi t / 36 h) + OU noise).

Thin film (the shipped thin-film line, every run measured): the sputter tool's reactive oxide
cap (aim 5 nm) against :class:`twin.hidden.sputter.TrueSputter` (rate factor, O2-flow bias,
run-to-run spread); the oxidize time is commissioned on the undisturbed truth:

``cap_drift``  the true deposition/cap rate falls by 3 % of its start value per day (target
erosion); ``ewma`` is the plain EWMA with the cap proportional to the oxidize time, ``twin``
the sputter loop (cap model inverted over oxidize time then O2 flow).

Metrics per strategy and scenario: ``in_window_share`` (true mean in 1–100 nm), ``cpk_log``
(Cpk of log true mean against log 1 and log 100), ``vm_mape`` and ``interval_coverage`` (over
the batches predicted after the 10th lab result), ``batches_to_recover`` (longest run of
consecutive batches after the onset whose true mean is outside ±``BAND_REL`` of aim; null if the
run is still out at the end). Ends with one JSON line.

Run: ``python bench/control.py [--batches N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from twin.config import CONFIG_DIR, load_plant
from twin.config.schema import ControlConfig, PlantConfig, SputterConfig
from twin.control.audit import AuditBuffer
from twin.control.loop import ControlLoop, Plan
from twin.control.model import FurnaceModel, OxidationContext, SputterCapModel
from twin.control.plant_hooks import sputter_context
from twin.control.r2r import PlainEwmaController
from twin.equipment.base import StepResult
from twin.hidden.config import FurnaceTruth, load_truth
from twin.hidden.furnace import TrueFurnace
from twin.hidden.sputter import TrueSputter
from twin.physics.metrology import measure_thickness_nm
from twin.physics.oxidation_profile import Profile
from twin.physics.psd import lognormal
from twin.plant.sputter import sputter_setpoints

#: The hidden plant the benchmark judges against (the shipped nominal truth file).
TRUTH = load_truth(None)

PLANT_OVERRIDES = [
    "recipes.oxidation.hold_c=800.0",
    "recipes.oxidation.po2_atm=0.05",
    "recipes.oxidation.ph2o_atm=0.25",
    "stations.oxidizer.limits.ph2o_atm=[0.0, 1.0]",
    "stations.lab.sample_every=1",
]
ONSET = 20
TC_STEP_C = 75.0
STEAM_SWING = 1.5
BAND_REL = 0.30
DT_S = 30.0
LAB_MIN_FOR_VM = 10
MIDSTEP_FRACTIONS = (0.5, 0.8)
STRATEGIES = ("off", "ewma", "twin")
SCENARIOS = ("tc_step", "rate_drift", "humidity")
THIN_OVERRIDES = ["stations.lab.sample_every=1"]
CAP_SCENARIOS = ("cap_drift",)
CAP_DRIFT_PER_DAY = -0.03
SPUTTER_PATH = "line2.sputter1"


# --------------------------------------------------------------------------------------------
# Scenarios: the truth of batch k
# --------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    """Seeded disturbance: the truth parameters and steam supply of each batch."""

    name: str
    base: FurnaceTruth
    rng: np.random.Generator
    onset_s: float = math.nan
    _ou: float = 0.0

    def truth(self, k: int, t_s: float) -> FurnaceTruth:
        """Truth parameters of batch ``k`` starting at ``t_s``."""
        if k < ONSET:
            return self.base
        if math.isnan(self.onset_s):
            self.onset_s = t_s
        if self.name == "tc_step":
            return self.base.model_copy(
                update={"thermocouple_offset_c": self.base.thermocouple_offset_c + TC_STEP_C})
        if self.name == "rate_drift":
            days = (t_s - self.onset_s) / 86400.0
            return self.base.model_copy(
                update={"rate_factor": self.base.rate_factor * (1.0 + 0.20 * days)})
        return self.base

    def steam_factor(self, k: int, t_s: np.ndarray) -> np.ndarray:
        """Multiplier on the set pH2O over times ``t_s`` (humidity swings only)."""
        if self.name != "humidity" or k < ONSET:
            return np.ones_like(t_s)
        if math.isnan(self.onset_s):
            self.onset_s = float(t_s[0])
        self._ou = 0.7 * self._ou + 0.15 * float(self.rng.standard_normal())
        phase = 2 * math.pi * (t_s - self.onset_s) / (36 * 3600.0)
        return np.exp(STEAM_SWING * np.sin(phase) + self._ou)


def steam_profile(sp_prof: Profile, factor: Callable[[np.ndarray], np.ndarray],
                  t0_s: float) -> Profile:
    """Setpoint profile resampled every 5 min with pH2O times the supply's factor."""
    t = np.unique(np.concatenate([sp_prof.time_s, np.arange(0.0, sp_prof.duration_s, 300.0)]))
    temp = np.interp(t, sp_prof.time_s, sp_prof.temperature_c)
    po2 = np.interp(t, sp_prof.time_s, sp_prof.po2_atm)
    ph2o = np.interp(t, sp_prof.time_s, sp_prof.ph2o_atm) * factor(t0_s + t)
    return Profile(t, temp, po2, ph2o)


def concat(a: Profile, b: Profile, t_split: float) -> Profile:
    """``a`` up to ``t_split``, then ``b`` shifted to start at ``t_split``."""
    keep = a.time_s < t_split
    parts = [np.append(getattr(a, n)[keep], getattr(b, n)) for n in
             ("temperature_c", "po2_atm", "ph2o_atm")]
    return Profile(np.append(a.time_s[keep], b.time_s + t_split), *parts)


def truncate(p: Profile, t_end: float) -> Profile:
    """``p`` up to ``t_end`` (last knot interpolated)."""
    keep = p.time_s < t_end
    t = np.append(p.time_s[keep], t_end)
    return Profile(t, *(np.append(getattr(p, n)[keep], np.interp(t_end, p.time_s,
                                                                 getattr(p, n)))
                        for n in ("temperature_c", "po2_atm", "ph2o_atm")))


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


@dataclass
class Record:
    """One batch: truth, prediction and what the strategy had learnt."""

    true_nm: float
    pred_nm: float
    lower_nm: float
    upper_nm: float
    n_lab: int
    hold_min: float
    hold_c: float


@dataclass
class Strategy:
    """A strategy's state for one scenario run."""

    name: str
    cfg: ControlConfig
    model: FurnaceModel
    recipe: dict[str, float]
    loop: ControlLoop | None = None
    ewma: PlainEwmaController | None = None
    lab_seen: int = 0
    resid_var: float = 0.3**2
    held: dict[str, float] = field(default_factory=dict)

    def plan(self, batch_id: str, ctx: OxidationContext, t_s: float) -> Plan:
        """Setpoints for the next batch."""
        sp = dict(self.recipe)
        if self.ewma is not None:
            sp["hold_min"] = self.ewma.next_hold_min(self.held.get("hold_min", sp["hold_min"]))
            self.held = dict(sp)
            return Plan(batch_id, sp)
        assert self.loop is not None
        plan = self.loop.before_batch(batch_id, sp, ctx, t_s)
        self.loop.resolve(plan, t_s)
        return plan

    def predict(self, result: StepResult, ctx: OxidationContext,
                sp: dict[str, float]) -> tuple[float, float, float]:
        """(mean, lower, upper) predicted for the finished batch, nm."""
        if self.ewma is not None:
            m = self.ewma.predict_nm(sp["hold_min"])
            z = NormalDist().inv_cdf(0.5 + self.cfg.interval_level / 2)
            s = math.sqrt(self.resid_var)
            return m, m * math.exp(-z * s), m * math.exp(z * s)
        assert self.loop is not None
        p = self.loop.after_step(result, ctx)
        return p.mean_nm, p.lower_nm, p.upper_nm

    def lab(self, batch_id: str, measured_nm: float, hold_min: float, t_s: float) -> bool:
        """One lab result arrives; True when the strategy asks the lab for a retest."""
        self.lab_seen += 1
        if self.ewma is not None:
            pred = self.ewma.predict_nm(hold_min)
            if math.isfinite(pred):
                e = math.log(measured_nm / pred)
                self.resid_var = 0.85 * self.resid_var + 0.15 * e * e
            self.ewma.update(hold_min, measured_nm)
            return False
        assert self.loop is not None
        outcomes = self.loop.on_lab(batch_id, measured_nm, t_s)
        return any(o.batch_id == batch_id and o.status == "suspect" for o in outcomes)


def make_strategy(name: str, plant: PlantConfig, model: FurnaceModel, recipe: dict[str, float],
                  ctx: OxidationContext) -> Strategy:
    """Build one strategy."""
    cfg = plant.control
    s = Strategy(name, cfg, model, recipe)
    if name == "ewma":
        ref = 30.0
        h0 = recipe["hold_min"]
        # Fixed gain from a one-off recipe study on the twin's model (d log x / d log hold).
        x = model.predict_setpoints([{**recipe, "hold_min": h0 * 0.8},
                                     {**recipe, "hold_min": h0 * 1.25}], ctx, 0.0)
        gain = math.log(x[1] / x[0]) / math.log((h0 * 1.25 + ref) / (h0 * 0.8 + ref))
        assert plant.stations.oxidizer is not None
        s.ewma = PlainEwmaController(cfg, gain, plant.stations.oxidizer.limits.hold_min, ref)
    else:
        s.loop = ControlLoop("line1.oxidizer1", model, cfg, recipe, AuditBuffer(),
                             mode="off" if name == "off" else "closed_loop")
    return s


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------


def recipe_setpoints(plant: PlantConfig) -> dict[str, float]:
    """Flat setpoints of the plant's oxidation recipe."""
    r = plant.recipes.oxidation
    assert r is not None
    return {"start_c": r.start_c, "hold_c": r.hold_c, "ramp_c_per_min": r.ramp_c_per_min,
            "hold_min": r.hold_min, "cool_c_per_min": r.cool_c_per_min, "po2_atm": r.po2_atm,
            "ph2o_atm": r.ph2o_atm}


def commission_hold(plant: PlantConfig, recipe: dict[str, float], ctx: OxidationContext,
                    aim_nm: float) -> float:
    """Hold time that puts the *undisturbed true* furnace on aim (the start-up DOE)."""
    ox = plant.stations.oxidizer
    assert ox is not None
    tr = TRUTH.furnace
    f = tr.rate_factor
    truth_model = FurnaceModel(ox.calibration.model_copy(update={
        "b_factor": f, "ba_factor": f, "c_factor": f}), ox.limits)

    def pred(h: float) -> float:
        sp = {**recipe, "hold_min": h, "hold_c": recipe["hold_c"] + tr.thermocouple_offset_c,
              "po2_atm": recipe["po2_atm"] * (1 + tr.o2_flow_bias_rel)}
        return float(truth_model.predict_setpoints([sp], ctx, 0.0)[0])

    lo, hi = ox.limits.hold_min
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if pred(mid) < aim_nm else (lo, mid)
    return round(0.5 * (lo + hi), 1)


def run(strategy_name: str, scenario_name: str, plant: PlantConfig, n_batches: int,
        seed: int) -> list[Record]:
    """One strategy through one scenario; the per-batch records."""
    ox, lab = plant.stations.oxidizer, plant.stations.lab
    assert ox is not None
    ss = np.random.SeedSequence([seed, SCENARIOS.index(scenario_name)])
    rng_truth, rng_lab, rng_scn, rng_feed = (np.random.default_rng(s) for s in ss.spawn(4))
    model = FurnaceModel(ox.calibration, ox.limits)
    ctx0 = OxidationContext(psd=lognormal(5.0, 1.8, n_bins=32), material="Si",
                            initial_nm=1.0)
    recipe = recipe_setpoints(plant)
    recipe["hold_min"] = commission_hold(plant, recipe, ctx0, plant.control.aim_nm)
    strat = make_strategy(strategy_name, plant, model, recipe, ctx0)
    scn = Scenario(scenario_name, TRUTH.furnace, rng_scn)
    furnace = TrueFurnace(TRUTH.furnace, ox.limits, rng_truth)
    load_s = ox.load_unload_h * 3600.0
    lab_delay_s = (lab.turnaround_h + lab.measure_h) * 3600.0
    inbox: list[tuple[float, str, float, float]] = []  # (arrival, batch, measured, hold)
    true_of: dict[str, float] = {}
    out: list[Record] = []
    t = 0.0
    for k in range(n_batches):
        bid = f"OX{k:04d}"
        d50 = 5.0 * math.exp(0.05 * float(rng_feed.standard_normal()))
        ctx = OxidationContext(psd=lognormal(d50, 1.8, n_bins=32), material="Si",
                               initial_nm=1.0)
        while due := sorted(i for i in inbox if i[0] <= t):
            item = due[0]
            inbox.remove(item)
            if strat.lab(item[1], item[2], item[3], item[0]):
                # Retest of the same sample: measured again, back after the measuring time.
                again = float(measure_thickness_nm(true_of[item[1]], rng_lab,
                                                   sigma_abs_nm=lab.noise_abs_nm,
                                                   sigma_rel=lab.noise_rel))
                inbox.append((item[0] + lab.measure_h * 3600.0, item[1], again, item[3]))
        n_lab = strat.lab_seen
        furnace.truth = scn.truth(k, t)
        plan = strat.plan(bid, ctx, t)
        indicated, true = run_batch(furnace, scn, k, plan, strat, ctx, t)
        t_end = t + indicated.duration_s
        dist = furnace.true_oxide(true, ctx.psd, material="Si", initial_nm=ctx.initial_nm,
                                  t_s=t)
        result = StepResult("line1.oxidizer1", bid, "ok", t, t_end, actual=indicated)
        m, lo, hi = strat.predict(result, ctx, plan.setpoints)
        measured = float(measure_thickness_nm(dist.mean_nm, rng_lab,
                                              sigma_abs_nm=lab.noise_abs_nm,
                                              sigma_rel=lab.noise_rel))
        inbox.append((t_end + lab_delay_s, bid, measured, plan.setpoints["hold_min"]))
        true_of[bid] = dist.mean_nm
        out.append(Record(dist.mean_nm, m, lo, hi, n_lab, plan.setpoints["hold_min"],
                          plan.setpoints["hold_c"]))
        t = t_end + load_s
    return out


def run_batch(furnace: TrueFurnace, scn: Scenario, k: int, plan: Plan, strat: Strategy,
              ctx: OxidationContext, t0: float) -> tuple[Profile, Profile]:
    """Run one charge on the true furnace, re-planning inside the hold for the twin."""
    model = strat.model
    sp = plan.setpoints

    def factor(ts: np.ndarray) -> np.ndarray:
        return scn.steam_factor(k, ts)

    ind, tru = furnace.run_profile(steam_profile(model.planned_profile(sp), factor, t0), DT_S,
                                   t0_s=t0)
    if strat.loop is None or strat.loop.mode == "off":
        return ind, tru
    ramp_s = abs(sp["hold_c"] - sp["start_c"]) / sp["ramp_c_per_min"] * 60.0
    for frac in MIDSTEP_FRACTIONS:
        t_chk = ramp_s + frac * plan.setpoints["hold_min"] * 60.0
        if t_chk >= ind.duration_s - 1.0:
            continue
        seen = truncate(ind, t_chk)
        new = strat.loop.during_step(plan, seen, t_chk, ctx, t0 + t_chk)
        if new is None:
            continue
        # The rest of the step under the new hold time, from the hold temperature.
        rest_hold_s = max(0.0, new["hold_min"] * 60.0 - (t_chk - ramp_s))
        rest = Profile.ramp_hold(start_c=new["hold_c"], hold_c=new["hold_c"],
                                 ramp_c_per_min=1.0, hold_s=rest_hold_s,
                                 cool_c_per_min=new["cool_c_per_min"], end_c=new["start_c"],
                                 po2_atm=new["po2_atm"], ph2o_atm=new.get("ph2o_atm", 0.0))
        ind2, tru2 = furnace.run_profile(steam_profile(rest, factor, t0 + t_chk), DT_S,
                                         t0_s=t0 + t_chk)
        ind, tru = concat(ind, ind2, t_chk), concat(tru, tru2, t_chk)
    return ind, tru


# --------------------------------------------------------------------------------------------
# Thin film: the sputter tool's oxide cap
# --------------------------------------------------------------------------------------------


def cap_truth(scfg: SputterConfig, k: int, t_s: float, onset: list[float]) -> Any:
    """Truth parameters of run ``k`` at ``t_s``: the rate falls linearly after the onset."""
    base = TRUTH.sputter.model_copy(update={"rate_drift_per_day": 0.0})
    if k < ONSET:
        return base
    if not onset:
        onset.append(t_s)
    days = (t_s - onset[0]) / 86400.0
    return base.model_copy(update={
        "rate_factor": base.rate_factor * max(0.05, 1.0 + CAP_DRIFT_PER_DAY * days)})


def commission_oxidize(tool: TrueSputter, recipe: dict[str, float], aim_nm: float) -> float:
    """Oxidize time that puts the *undisturbed true* cap on aim (the start-up DOE), min."""
    rate = tool.cap_rate(tool.actual(recipe), 0.0)
    return round(aim_nm / rate, 2)


def run_cap(strategy_name: str, plant: PlantConfig, n_batches: int, seed: int) -> list[Record]:
    """One strategy through the thin-film drift scenario; the per-run records."""
    scfg, lab, r = plant.stations.sputter, plant.stations.lab, plant.recipes.sputter
    assert scfg is not None and r is not None
    material = plant.alloy.base
    ss = np.random.SeedSequence([seed, len(SCENARIOS) + CAP_SCENARIOS.index("cap_drift")])
    rng_truth, rng_lab = (np.random.default_rng(s) for s in ss.spawn(2))
    cfg = plant.control
    tool = TrueSputter(TRUTH.sputter, scfg.limits, rng_truth, material=material)
    tool.truth = cap_truth(scfg, 0, 0.0, [])
    recipe = sputter_setpoints(r, material, scfg.calibration.b_factor,
                               scfg.calibration.c_factor)
    recipe["oxidize_min"] = commission_oxidize(tool, recipe, cfg.aim_nm)
    model = SputterCapModel(scfg.calibration, scfg.limits, material)
    loop: ControlLoop | None = None
    ewma: PlainEwmaController | None = None
    if strategy_name == "ewma":
        # The cap is proportional to the oxidize time: gain 1, no offset time.
        ewma = PlainEwmaController(cfg, 1.0, scfg.limits.deposit_min, 0.0)
    else:
        loop = ControlLoop(SPUTTER_PATH, model, cfg, recipe, AuditBuffer(),
                           mode="off" if strategy_name == "off" else "closed_loop")
    ctx = sputter_context(recipe, material)
    z = NormalDist().inv_cdf(0.5 + cfg.interval_level / 2)
    resid_var = 0.3**2
    overhead_s = (scfg.pump_down_min + scfg.vent_min) * 60.0 + scfg.load_unload_h * 3600.0
    lab_delay_s = (lab.turnaround_h + lab.measure_h) * 3600.0
    inbox: list[tuple[float, str, float, float]] = []  # (arrival, run, measured, oxidize)
    onset: list[float] = []
    out: list[Record] = []
    held = dict(recipe)
    n_lab = 0
    t = 0.0
    for k in range(n_batches):
        bid = f"S{k:04d}"
        for item in sorted(i for i in inbox if i[0] <= t):
            inbox.remove(item)
            n_lab += 1
            if ewma is not None:
                pred = ewma.predict_nm(item[3])
                if math.isfinite(pred):
                    resid_var = 0.85 * resid_var + 0.15 * math.log(item[2] / pred) ** 2
                ewma.update(item[3], item[2])
            else:
                assert loop is not None
                loop.on_lab(item[1], item[2], item[0])
        tool.truth = cap_truth(scfg, k, t, onset)
        if ewma is not None:
            held["oxidize_min"] = ewma.next_hold_min(held["oxidize_min"])
            sp = dict(held)
        else:
            assert loop is not None
            sp = loop.resolve(loop.before_batch(bid, recipe, ctx, t), t)
        true = tool.run_recipe(sp, t)
        run_s = 60.0 * (sp["deposit_min"] + sp["oxidize_min"])
        values = {**tool.actual(sp), "o2_sccm": sp["o2_sccm"],  # the MFC reads its setpoint
                  "deposit_min": sp["deposit_min"], "oxidize_min": sp["oxidize_min"]}
        result = StepResult(SPUTTER_PATH, bid, "ok", t, t + run_s, values=values)
        if ewma is not None:
            m = ewma.predict_nm(sp["oxidize_min"])
            s_ = math.sqrt(resid_var)
            m_lo, m_hi = m * math.exp(-z * s_), m * math.exp(z * s_)
        else:
            assert loop is not None
            p = loop.after_step(result, ctx)
            m, m_lo, m_hi = p.mean_nm, p.lower_nm, p.upper_nm
        measured = float(measure_thickness_nm(true["cap_nm"], rng_lab,
                                              sigma_abs_nm=lab.noise_abs_nm,
                                              sigma_rel=lab.noise_rel))
        inbox.append((t + run_s + lab_delay_s, bid, measured, sp["oxidize_min"]))
        out.append(Record(true["cap_nm"], m, m_lo, m_hi, n_lab, sp["oxidize_min"], math.nan))
        t += run_s + overhead_s
    return out


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def metrics(recs: list[Record], window: tuple[float, float], aim: float) -> dict[str, Any]:
    """The five figures of one strategy × scenario."""
    x = np.array([r.true_nm for r in recs])
    lo, hi = window
    logx = np.log(x)
    sd = float(logx.std(ddof=1))
    mu = float(logx.mean())
    cpk = min(mu - math.log(lo), math.log(hi) - mu) / (3 * sd) if sd > 0 else math.inf
    late = [r for r in recs if r.n_lab >= LAB_MIN_FOR_VM and math.isfinite(r.pred_nm)]
    mape = float(np.mean([abs(r.pred_nm - r.true_nm) / r.true_nm for r in late])) \
        if late else None
    cover = float(np.mean([r.lower_nm <= r.true_nm <= r.upper_nm for r in late])) \
        if late else None
    out_band = np.abs(logx - math.log(aim)) > math.log1p(BAND_REL)
    return {"in_window_share": round(float(np.mean((x >= lo) & (x <= hi))), 4),
            "cpk_log": round(cpk, 3),
            "vm_mape": None if mape is None else round(mape, 4),
            "interval_coverage": None if cover is None else round(cover, 4),
            "batches_to_recover": longest_excursion(out_band[ONSET:])}


def longest_excursion(out: np.ndarray) -> int | None:
    """Longest run of consecutive True; None when the last run lasts to the end."""
    best = run_len = 0
    for flag in out:
        run_len = run_len + 1 if flag else 0
        best = max(best, run_len)
    if run_len and run_len == best and run_len > 0 and out.size and out[-1]:
        return None
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=150)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args(argv)
    plant = load_plant(None, PLANT_OVERRIDES)
    aim, window = plant.control.aim_nm, plant.control.window_nm
    result: dict[str, dict[str, Any]] = {}
    print(f"bench/control.py: {args.batches} batches per run, seed {args.seed}, onset after "
          f"{ONSET} batches, recovery band ±{BAND_REL:.0%} of aim {aim:g} nm")
    for strat in STRATEGIES:
        result[strat] = {}
        for scn in SCENARIOS:
            t0 = time.perf_counter()
            recs = run(strat, scn, plant, args.batches, args.seed)
            m = metrics(recs, window, aim)
            result[strat][scn] = m
            x = np.array([r.true_nm for r in recs])
            print(f"{strat:5s} {scn:10s} in-window {m['in_window_share']:.3f}  "
                  f"Cpk(log) {m['cpk_log']:6.2f}  VM MAPE {m['vm_mape']}  coverage "
                  f"{m['interval_coverage']}  recover {m['batches_to_recover']}  "
                  f"true nm p5/50/95 {np.percentile(x, 5):.2f}/{np.median(x):.2f}/"
                  f"{np.percentile(x, 95):.2f}  ({time.perf_counter() - t0:.1f} s)")
    thin = load_plant(CONFIG_DIR / "thin_film_line.toml", THIN_OVERRIDES)
    for strat in STRATEGIES:
        for scn in CAP_SCENARIOS:
            t0 = time.perf_counter()
            recs = run_cap(strat, thin, args.batches, args.seed)
            m = metrics(recs, thin.control.window_nm, thin.control.aim_nm)
            result[strat][scn] = m
            x = np.array([r.true_nm for r in recs])
            print(f"{strat:5s} {scn:10s} in-window {m['in_window_share']:.3f}  "
                  f"Cpk(log) {m['cpk_log']:6.2f}  VM MAPE {m['vm_mape']}  coverage "
                  f"{m['interval_coverage']}  recover {m['batches_to_recover']}  "
                  f"true cap nm p5/50/95 {np.percentile(x, 5):.2f}/{np.median(x):.2f}/"
                  f"{np.percentile(x, 95):.2f}  aim {thin.control.aim_nm:g}  "
                  f"({time.perf_counter() - t0:.1f} s)")
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
