"""Simulated equipment behind the equipment interface."""

from __future__ import annotations

import numpy as np
import simpy

from twin.config.schema import FurnaceLimits, Reliability
from twin.equipment.base import Equipment, StepRequest, StepResult
from twin.equipment.simulated import SimulatedTool
from twin.hidden.config import FurnaceTruth
from twin.hidden.equipment import SimulatedFurnace
from twin.hidden.furnace import TrueFurnace
from twin.plant.breakdowns import FailureClock
from twin.plant.prediction import LognormalPsd

OX = {"start_c": 25.0, "hold_c": 875.0, "ramp_c_per_min": 10.0, "hold_min": 50.0,
      "cool_c_per_min": 15.0, "po2_atm": 0.21, "ph2o_atm": 0.02}
CTX = {"psd": LognormalPsd(0.26, 2.2), "material": "Si", "initial_nm": 0.5,
       "growth": {"si_area_fraction": 0.565}}


def _run(env: simpy.Environment, eq: Equipment, req: StepRequest) -> StepResult:
    box: list[StepResult] = []

    def proc():
        box.append((yield from eq.execute(env, req)))

    env.process(proc())
    env.run()
    return box[0]


def test_tool_runs_for_its_duration_and_implements_the_interface():
    env = simpy.Environment()
    tool = SimulatedTool("line1.mill1", FailureClock(Reliability(enabled=False),
                                                     np.random.default_rng(0)))
    assert isinstance(tool, Equipment)
    res = _run(env, tool, StepRequest("L1", "mill", "mill", {"duration_s": 3600.0}))
    assert res.status == "ok" and res.start_s == 0 and res.end_s == 3600.0
    assert res.path == "line1.mill1" and res.batch_id == "L1"


def test_a_breakdown_aborts_the_step_early():
    env = simpy.Environment()
    clock = FailureClock(Reliability(mtbf_h=1.0, mttr_h=1.0), np.random.default_rng(1))
    tool = SimulatedTool("line1.mill1", clock)
    res = _run(env, tool, StepRequest("L1", "mill", "mill", {"duration_s": 50 * 3600.0}))
    assert res.status == "aborted" and res.fault == "breakdown"
    assert 0 < res.values["completed_fraction"] < 1
    assert res.end_s < 50 * 3600.0


def test_furnace_reports_the_indicated_record_and_keeps_the_truth():
    env = simpy.Environment()
    true = TrueFurnace(FurnaceTruth(thermocouple_offset_c=10.0), FurnaceLimits(),
                       np.random.default_rng(2))
    furnace = SimulatedFurnace("line1.oxidizer1", FailureClock(
        Reliability(enabled=False), np.random.default_rng(3)), true, offset_sd_c=2.0)
    res = _run(env, furnace, StepRequest("C1", "ox", "oxidize", OX, CTX))
    assert res.status == "ok"
    assert abs(res.values["hold_c_mean"] - 875.0) < 10.0  # what the PLC shows
    assert res.actual.duration_s == res.end_s - res.start_s
    assert res.truth.mean_nm > 1.0
    # The truth ran 10 °C hotter than the record: more oxide than the record implies.
    from twin.physics.oxidation import Calibration
    from twin.plant.prediction import predict_oxide
    pred = predict_oxide(res.actual, CTX["psd"], material="Si", calibration=Calibration(),
                         initial_nm=0.5, growth=CTX["growth"])
    assert res.truth.mean_nm > pred.mean_nm * 0.9
