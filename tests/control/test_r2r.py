"""Run-to-run controller: direction, limits, move limits, deadband, knob order."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.config.schema import ControlConfig
from twin.control.model import FurnaceModel, OxidationContext
from twin.control.r2r import (
    MAX_EVALUATIONS,
    PlainEwmaController,
    RunToRunController,
    invert_1d,
)
from twin.physics.psd import lognormal


def test_thicker_prediction_gives_shorter_hold(model: FurnaceModel, ctx: OxidationContext,
                                               recipe: dict[str, float]) -> None:
    r2r = RunToRunController("f", model, ControlConfig(), recipe)
    # A faster tool (theta > 0) predicts thicker oxide: the hold gets shorter.
    fast = r2r.propose("B1", recipe, ctx, theta=math.log(2.0))
    slow = r2r.propose("B1", recipe, ctx, theta=math.log(0.5))
    assert fast is not None and slow is not None
    assert fast.predicted_before_nm > 10.0 and fast.after["hold_min"] < recipe["hold_min"]
    assert slow.predicted_before_nm < 10.0 and slow.after["hold_min"] > recipe["hold_min"]
    for p in (fast, slow):
        assert p.reachable and abs(math.log(p.predicted_after_nm / 10.0)) < 0.02


def test_temperature_used_when_hold_saturates(model: FurnaceModel, ctx: OxidationContext,
                                              recipe: dict[str, float]) -> None:
    r2r = RunToRunController("f", model, ControlConfig(move_max_frac=1.0), recipe)
    theta = math.log(200.0)  # far too fast: even no hold at all overshoots
    assert model.predict_setpoints([{**recipe, "hold_min": 0.0}], ctx, theta)[0] > 10.0
    p = r2r.propose("B1", recipe, ctx, theta=theta)
    assert p is not None
    assert p.after["hold_min"] == model.knob_limits("hold_time", ctx)[0]
    assert p.after["hold_c"] < recipe["hold_c"]  # lower temperature
    assert abs(math.log(p.predicted_after_nm / 10.0)) < 0.05


def test_knob_order_is_configurable(model: FurnaceModel, ctx: OxidationContext,
                                    recipe: dict[str, float]) -> None:
    cfg = ControlConfig(knob_order=("temperature", "hold_time"))
    p = RunToRunController("f", model, cfg, recipe).propose("B1", recipe, ctx, math.log(2.0))
    assert p is not None and set(p.after) == {"hold_c"} and p.after["hold_c"] < recipe["hold_c"]


def test_deadband_leaves_setpoints(model: FurnaceModel, ctx: OxidationContext,
                                   recipe: dict[str, float]) -> None:
    r2r = RunToRunController("f", model, ControlConfig(deadband_rel=0.05), recipe)
    pred = float(model.predict_setpoints([recipe], ctx, 0.0)[0])
    # Put the aim 3 % away from the prediction: inside the deadband, no proposal.
    near = RunToRunController("f", model, ControlConfig(aim_nm=pred * 1.03, deadband_rel=0.05),
                              recipe)
    assert near.propose("B1", recipe, ctx, 0.0) is None
    far = RunToRunController("f", model, ControlConfig(aim_nm=pred * 1.2, deadband_rel=0.05),
                             recipe)
    assert far.propose("B1", recipe, ctx, 0.0) is not None
    assert r2r.within_deadband(10.0 * 1.04) and not r2r.within_deadband(10.0 * 1.06)


@settings(max_examples=25, deadline=None)
@given(theta=st.floats(-2.5, 2.5), hold=st.floats(0.0, 240.0), temp=st.floats(600.0, 1000.0),
       po2=st.floats(0.0, 1.0), frac=st.floats(0.05, 1.0))
def test_never_outside_equipment_or_move_limits(model: FurnaceModel, recipe: dict[str, float],
                                                theta: float, hold: float, temp: float,
                                                po2: float, frac: float) -> None:
    ctx = OxidationContext(psd=lognormal(5.0, 1.8, n_bins=12), initial_nm=1.0)
    cfg = ControlConfig(move_max_frac=frac)
    current = {**recipe, "hold_min": hold, "hold_c": temp, "po2_atm": po2}
    p = RunToRunController("f", model, cfg, recipe).propose("B", current, ctx, theta)
    if p is None:
        return
    for knob, name in model.knobs.items():
        lo, hi = model.knob_limits(knob, ctx)
        v = p.apply(current)[name]
        assert lo - 1e-9 <= v <= hi + 1e-9
        assert abs(v - current[name]) <= frac * (hi - lo) + 1e-6
    ramp_lo, ramp_hi = model.limits.ramp_c_per_min
    assert ramp_lo <= p.apply(current)["ramp_c_per_min"] <= ramp_hi


def test_tin_charge_never_set_near_melting(model: FurnaceModel) -> None:
    assert model.knob_limits("temperature", {"material": "Sn"})[1] < 231.9


def test_plain_ewma_direction_and_limits() -> None:
    c = PlainEwmaController(ControlConfig(), gain=0.8, hold_limits_min=(0.0, 240.0))
    assert c.next_hold_min(30.0) == 30.0  # nothing learnt yet
    c.update(30.0, 20.0)  # twice the aim
    assert c.next_hold_min(30.0) < 30.0
    c2 = PlainEwmaController(ControlConfig(), gain=0.8, hold_limits_min=(0.0, 240.0))
    c2.update(30.0, 0.5)
    assert c2.next_hold_min(30.0) == 240.0
    with pytest.raises(ValueError):
        PlainEwmaController(ControlConfig(), gain=0.0, hold_limits_min=(0.0, 1.0))


@settings(max_examples=400, deadline=None)
@given(a=st.floats(-3.0, 3.0), b=st.floats(0.05, 4.0), power=st.floats(0.3, 2.5),
       rising=st.booleans(), target=st.floats(-6.0, 6.0), start=st.floats(0.0, 1.0))
def test_invert_1d_finds_the_root_of_a_monotone_prediction(a: float, b: float, power: float,
                                                          rising: bool, target: float,
                                                          start: float) -> None:
    """The secant / regula falsi search: the root to the tolerance where the target is in
    range (from any start), else the bound closest to it and ``reached`` False."""
    lo, hi = 0.0, 10.0
    calls: list[float] = []

    def f(x: float) -> float:
        u = x if rising else hi - x
        return a + b * (u + 0.1) ** power

    def log_pred(xs: np.ndarray) -> np.ndarray:
        calls.extend(float(x) for x in xs)
        return np.array([f(float(x)) for x in xs])

    x, pred_nm, reached = invert_1d(log_pred, (lo, hi), target, start=lo + start * (hi - lo),
                                    tol_x=0.01)
    y_lo, y_hi = f(lo), f(hi)
    assert lo <= x <= hi and all(lo <= c <= hi for c in calls)
    if min(y_lo, y_hi) <= target <= max(y_lo, y_hi):
        assert reached
        assert abs(f(x) - target) <= 1e-3 or abs(x - _root(f, lo, hi, target)) <= 0.02
        assert math.log(pred_nm) == pytest.approx(f(x), abs=1e-9)  # evaluated at x
    else:
        assert not reached
        assert x == (lo if abs(y_lo - target) < abs(y_hi - target) else hi)
    assert len(calls) <= 2 * MAX_EVALUATIONS + 3


def _root(f: Callable[[float], float], lo: float, hi: float, target: float) -> float:
    for _ in range(200):  # plain bisection, for the reference
        mid = 0.5 * (lo + hi)
        if (f(mid) - target) * (f(lo) - target) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def test_invert_1d_saturates_on_a_prediction_that_never_grows() -> None:
    # A knob that changes nothing (log prediction constant, or -inf: no oxide at all).
    for value in (1.0, -math.inf):
        x, _, reached = invert_1d(lambda xs, v=value: np.full(len(xs), v), (2.0, 8.0),
                                  math.log(10.0), start=5.0, tol_x=0.1)
        assert not reached and 2.0 <= x <= 8.0
