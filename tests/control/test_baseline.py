"""The textbook baselines (EWMA, double EWMA) the twin's control is judged against."""

from __future__ import annotations

import math

import numpy as np

from twin.config.schema import ControlConfig
from twin.control.audit import AuditBuffer
from twin.control.baseline import BaselineLoop
from twin.control.model import FurnaceModel, OxidationContext
from twin.equipment.base import StepResult
from twin.physics.oxidation_profile import Profile

PATH = "line1.oxidizer1"


def _result(batch_id: str, sp: dict[str, float], model: FurnaceModel,
            ph2o_read_atm: float) -> StepResult:
    plan = model.planned_profile(sp)
    rec = Profile(plan.time_s, plan.temperature_c, plan.po2_atm,
                  np.full(plan.time_s.size, ph2o_read_atm))
    return StepResult(PATH, batch_id, "ok", 0.0, float(plan.duration_s), actual=rec,
                      values={"ph2o_atm_mean": ph2o_read_atm})


def test_ewma_learns_the_offset_and_inverts_the_hold_for_the_aim(
        model: FurnaceModel, ctx: OxidationContext, recipe: dict[str, float]) -> None:
    loop = BaselineLoop(PATH, model, ControlConfig(aim_nm=30.0), recipe, AuditBuffer())
    plan = loop.before_batch("B1", recipe, ctx, 0.0)
    assert plan.state == "none" and loop.offset is None  # nothing learnt: the recipe runs
    assert loop.gain_hold is not None and loop.gain_hold > 0
    loop.after_step(_result("B1", plan.setpoints, model, recipe["ph2o_atm"]), ctx)
    loop.on_lab("B1", 15.0, 3600.0)  # half the aim
    assert loop.offset is not None
    plan2 = loop.before_batch("B2", recipe, ctx, 7200.0)
    assert plan2.state == "written"
    # Inverting log x = a + b log(hold) for the aim, inside the move limit.
    want = math.exp((math.log(30.0) - loop.offset) / loop.gain_hold)
    lo, hi = loop.controller.allowed("hold_time", recipe, ctx)
    assert abs(plan2.setpoints["hold_min"] - min(max(want, lo), hi)) <= 1.0
    assert plan2.setpoints["hold_min"] > recipe["hold_min"]
    assert loop.supervisor(plan2, ctx, 7200.0) is None  # no in-batch control


def test_double_ewma_feeds_the_last_dew_point_forward(
        model: FurnaceModel, ctx: OxidationContext, recipe: dict[str, float]) -> None:
    loop = BaselineLoop(PATH, model, ControlConfig(), recipe, AuditBuffer(), double=True)
    plan = loop.before_batch("B1", recipe, ctx, 0.0)
    wet = 1.3 * recipe["ph2o_atm"]
    loop.after_step(_result("B1", plan.setpoints, model, wet), ctx)
    # The reading against the water the charge was set to, not against itself.
    assert math.isclose(loop.last_water_rel, math.log(1.3))
    loop.on_lab("B1", 10.0, 3600.0)
    loop.before_batch("B2", recipe, ctx, 7200.0)
    assert math.isclose(loop._ran["B2"][1], loop.gain_water * math.log(1.3))
