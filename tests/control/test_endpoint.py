"""In-batch endpoint control: the hold is trimmed from the record so far, every action is
audited with the equipment's confirmed result, and gross faults end the hold."""

from __future__ import annotations

import math

import numpy as np

from twin.config.schema import ControlConfig, PlantConfig
from twin.control.audit import AuditBuffer
from twin.control.endpoint import EndpointControl, gross_faults, rest_of_step
from twin.control.loop import ControlLoop, Plan
from twin.control.model import FurnaceModel, OxidationContext
from twin.equipment.base import StepResult, StepSupervisor
from twin.hidden.config import load_truth
from twin.hidden.furnace import TrueFurnace
from twin.physics.oxidation_profile import Profile

PATH = "line1.oxidizer1"


def _record(plant: PlantConfig, model: FurnaceModel, sp: dict[str, float],
            t_end_s: float) -> Profile:
    """A healthy furnace's indicated record of ``sp`` up to ``t_end_s``."""
    ox = plant.stations.oxidizer
    assert ox is not None
    furnace = TrueFurnace(load_truth("nominal").furnace, ox.limits, np.random.default_rng(7))
    ind, _ = furnace.run_profile(model.planned_profile(sp), 60.0, flow_slm=250.0)
    keep = ind.time_s <= t_end_s
    return Profile(ind.time_s[keep], ind.temperature_c[keep], ind.po2_atm[keep],
                   ind.ph2o_atm[keep])


def _healthy(seen: Profile, sp: dict[str, float]) -> dict[str, np.ndarray]:
    return {"overtemp_c": seen.temperature_c + 4.0,
            "o2_analyser_atm": np.full(seen.time_s.size, sp["po2_atm"])}


def _loop(model: FurnaceModel, recipe: dict[str, float], buf: AuditBuffer,
          **cfg: object) -> ControlLoop:
    return ControlLoop(PATH, model, ControlConfig(**cfg), recipe, buf)  # type: ignore[arg-type]


def _started(model: FurnaceModel, recipe: dict[str, float], ctx: OxidationContext,
             buf: AuditBuffer) -> tuple[ControlLoop, Plan, dict[str, float], EndpointControl,
                                        float]:
    """A closed loop with batch B1 resolved and its supervisor at its first checkpoint."""
    loop = _loop(model, recipe, buf)
    plan = loop.before_batch("B1", recipe, ctx, 0.0)
    sp = dict(loop.resolve(plan, 0.0))
    sup = loop.supervisor(plan, ctx, 0.0)
    assert isinstance(sup, StepSupervisor) and isinstance(sup, EndpointControl)
    return loop, plan, sp, sup, sup.checkpoints_s(sp)[0]


def test_a_thick_charge_gets_a_shorter_hold_audited_with_the_read_back(
        plant: PlantConfig, model: FurnaceModel, ctx: OxidationContext,
        recipe: dict[str, float]) -> None:
    buf = AuditBuffer()
    loop, plan, sp, sup, cp = _started(model, recipe, ctx, buf)
    # The tube turned out three times as active as learnt: the record so far shows nothing
    # odd, but the prediction from it at the new rate is far above the aim.
    loop.start_calibration(math.log(3.0))
    seen = _record(plant, model, sp, cp)
    action = sup.check(seen, cp, sp, _healthy(seen, sp))
    assert action is not None and not action.fault
    assert action.hold_min < sp["hold_min"]
    assert "during the hold" in action.reason
    assert not [r for r in buf.records if r.kind == "write"]  # nothing done yet: no audit
    sup.applied(action, action.hold_min, cp)
    w = [r for r in buf.records if r.kind == "write"][-1]
    assert w.result == "ok"
    assert w.proposal_id.endswith("/B1/hold1") and w.after == {"hold_min": action.hold_min}
    assert plan.setpoints["hold_min"] == action.hold_min
    # A write the furnace refused is audited as failed and changes nothing.
    again = sup.check(seen, cp, plan.setpoints, _healthy(seen, sp))
    assert again is None or again.hold_min != plan.setpoints["hold_min"]
    if again is not None:
        sup.applied(again, None, cp, "BadOutOfRange")
        assert buf.records[-1].result == "failed: BadOutOfRange"
        assert plan.setpoints["hold_min"] == action.hold_min


def test_on_aim_the_hold_is_left_alone(plant: PlantConfig, model: FurnaceModel,
                                       ctx: OxidationContext,
                                       recipe: dict[str, float]) -> None:
    probe = _loop(model, recipe, AuditBuffer())
    plan = probe.before_batch("B0", recipe, ctx, 0.0)
    sp = dict(probe.resolve(plan, 0.0))
    cp = EndpointControl(probe, plan, ctx, 0.0).checkpoints_s(sp)[0]
    seen = _record(plant, model, sp, cp)
    now = float(model.predict_profiles([rest_of_step(seen, sp, sp["hold_min"])], ctx,
                                       probe.calibration.theta_at(0.0),
                                       flow_slm=sp.get("gas_flow_slm"))["mean_nm"][0])
    buf = AuditBuffer()
    loop = _loop(model, recipe, buf, aim_nm=now, window_nm=(0.5 * now, 3.0 * now),
                 mode="off")
    loop.mode = "closed_loop"
    plan = loop.before_batch("B1", sp, ctx, 0.0)
    sup = loop.supervisor(plan, ctx, 0.0)
    assert sup is not None
    assert sup.check(seen, cp, sp, _healthy(seen, sp)) is None
    assert not buf.records


def test_control_off_or_midstep_false_gives_no_supervisor(model: FurnaceModel,
                                                          ctx: OxidationContext,
                                                          recipe: dict[str, float]) -> None:
    for kw in ({"mode": "off"}, {"midstep": False}):
        loop = _loop(model, recipe, AuditBuffer(), **kw)
        plan = loop.before_batch("B1", recipe, ctx, 0.0)
        assert loop.supervisor(plan, ctx, 0.0) is None


def test_gross_faults_are_read_from_the_instruments(plant: PlantConfig, model: FurnaceModel,
                                                    recipe: dict[str, float]) -> None:
    sp = dict(recipe)
    seen = _record(plant, model, sp, 4000.0)
    ok = _healthy(seen, sp)
    assert gross_faults(seen, sp, ok, monitor_c=25.0, gas_rel=0.5, monitor_gap_c=4.0) == {}
    hot = {**ok, "overtemp_c": seen.temperature_c + 64.0}
    f = gross_faults(seen, sp, hot, monitor_c=25.0, gas_rel=0.5, monitor_gap_c=4.0)
    assert list(f) == ["thermocouple"] and f["thermocouple"][1] == 60.0
    n2 = {**ok, "o2_analyser_atm": np.zeros(seen.time_s.size)}
    assert list(gross_faults(seen, sp, n2, monitor_c=25.0, gas_rel=0.5)) == ["gas"]
    dry = Profile(seen.time_s, seen.temperature_c, seen.po2_atm, seen.ph2o_atm * 0.0)
    assert list(gross_faults(dry, sp, ok, monitor_c=25.0, gas_rel=0.5,
                             monitor_gap_c=4.0)) == ["water"]
    # A brief spike older than the window is not a fault now.
    spike = ok["overtemp_c"].copy()
    spike[:5] += 100.0
    assert gross_faults(seen, sp, {**ok, "overtemp_c": spike}, monitor_c=25.0, gas_rel=0.5,
                        monitor_gap_c=4.0) == {}


def test_wrong_gas_ends_the_hold_and_the_batch_is_not_learnt(
        plant: PlantConfig, model: FurnaceModel, ctx: OxidationContext,
        recipe: dict[str, float]) -> None:
    buf = AuditBuffer()
    loop, plan, sp, sup, cp = _started(model, recipe, ctx, buf)
    seen = _record(plant, model, sp, cp)
    n2 = {**_healthy(seen, sp), "o2_analyser_atm": np.zeros(seen.time_s.size)}
    action = sup.check(seen, cp, sp, n2)
    assert action is not None and "wrong gas" in action.fault
    held = (cp - (sp["hold_c"] - sp["start_c"]) / sp["ramp_c_per_min"] * 60.0) / 60.0
    assert math.isclose(action.hold_min, held)  # ended now: no hold rescues a charge w/o O2
    sup.applied(action, action.hold_min, cp)
    rec = buf.records[-1]
    assert rec.kind == "abort" and rec.result == "ok"
    res = StepResult(PATH, "B1", "aborted", 0.0, cp + 3600.0, actual=seen,
                     fault=action.fault)
    pred = loop.after_step(res, ctx)
    assert not pred.reliable
    out = loop.on_lab("B1", 3.0, cp + 7200.0)
    assert [o.status for o in out] == ["rejected"] and "gross fault" in out[0].reason


def test_a_plc_hold_runs_from_reaching_the_hold_temperature() -> None:
    """A PLC step that starts with 15 min of loading and heats slower than planned holds for
    its full time from when it entered Holding (projected while loading or heating); a
    furnace on a fixed schedule (no hold start given) is unchanged."""
    from twin.control.endpoint import hold_start_s, projected_hold_start_s, ramp_s

    sp = {"start_c": 25.0, "hold_c": 825.0, "ramp_c_per_min": 15.0, "cool_c_per_min": 15.0,
          "hold_min": 150.0}
    r_s = ramp_s(sp)
    load_s = 900.0
    # Loading, 5 min in: the rest of the loading, then the whole ramp.
    got = projected_hold_start_s("Loading", 300.0, 25.0, {"Loading": 0.0}, sp, load_s=load_s)
    assert got is not None and math.isclose(got, load_s + r_s)
    # Heating slower than planned, at 500 °C 40 min in: the rest of the ramp from there.
    got = projected_hold_start_s("Heating", 2400.0, 500.0, {"Loading": 0.0, "Heating": 900.0},
                                 sp, load_s=load_s)
    assert got is not None and math.isclose(got, 2400.0 + 325.0 / 15.0 * 60.0)
    # Holding: when the PLC entered it, whatever the plan said.
    entered = {"Loading": 0.0, "Heating": 900.0, "Holding": 6000.0}
    assert projected_hold_start_s("Holding", 7000.0, 825.0, entered, sp, load_s=load_s) == 6000.0
    t = np.arange(0.0, 7001.0, 60.0)
    temp = np.clip(25.0 + np.maximum(t - load_s, 0.0) * 10.0 / 60.0, None, 825.0)
    seen = Profile(t, temp, np.full(t.size, 0.21), np.full(t.size, 0.02))
    rest = rest_of_step(seen, {**sp, "hold_start_s": 6000.0}, 150.0)
    assert math.isclose(float(rest.time_s[-2]), 6000.0 + 150.0 * 60.0)  # the hold's end
    # No hold start given (a furnace on its planned schedule): the planned ramp end.
    assert hold_start_s(sp) == r_s
    rest = rest_of_step(seen, sp, 150.0)
    assert math.isclose(float(rest.time_s[-2]), r_s + 150.0 * 60.0)
