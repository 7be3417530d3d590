"""The generic simulated tool behind the equipment interface."""

from __future__ import annotations

import numpy as np
import simpy

from twin.config.schema import Reliability
from twin.equipment.base import Equipment, StepRequest, StepResult
from twin.equipment.simulated import SimulatedTool
from twin.plant.breakdowns import FailureClock


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
