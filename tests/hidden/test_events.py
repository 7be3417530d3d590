"""Scenario events of the hidden furnace, its independent instruments, and a step that the
twin's endpoint control changes while it runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import simpy

from twin.config import load_plant
from twin.config.schema import Reliability
from twin.equipment.base import EndpointAction, StepRequest, StepResult
from twin.hidden.config import FurnaceEvent, load_truth
from twin.hidden.furnace import TrueFurnace
from twin.hidden.run import simulate
from twin.hidden.world import HiddenPlant
from twin.plant.breakdowns import FailureClock

from .test_equipment import CTX, OX


class Extend:
    """A supervisor that asks for ``hold_min`` at its one checkpoint and keeps what it saw."""

    def __init__(self, at_s: float, hold_min: float, fault: str = "") -> None:
        self.at_s, self.hold_min, self.fault = at_s, hold_min, fault
        self.seen: Any = None
        self.monitor: Mapping[str, Any] | None = None
        self.confirmed: list[float | None] = []

    def checkpoints_s(self, setpoints: Mapping[str, float]) -> tuple[float, ...]:
        return (self.at_s,)

    def check(self, seen: Any, elapsed_s: float, setpoints: Mapping[str, float],
              monitor: Mapping[str, Any] | None = None) -> EndpointAction | None:
        self.seen, self.monitor = seen, monitor
        return EndpointAction(self.hold_min, "test", fault=self.fault)

    def applied(self, action: EndpointAction, confirmed_hold_min: float | None, t_s: float,
                error: str = "") -> None:
        self.confirmed.append(confirmed_hold_min)


def _step(sup: Any, truth: Any = "nominal") -> StepResult:
    cfg = load_plant()
    assert cfg.stations.oxidizer is not None
    clock = FailureClock(Reliability(enabled=False), np.random.default_rng(3))
    hidden = (HiddenPlant(truth, cfg, 2) if not isinstance(truth, str)
              else HiddenPlant.load(truth, cfg, 2))
    eq = hidden.furnace("line1.oxidizer1", cfg.stations.oxidizer, clock)
    env = simpy.Environment()
    box: list[StepResult] = []

    def proc():  # type: ignore[no-untyped-def]
        box.append((yield from eq.execute(env, StepRequest("C1", "r", "oxidize", OX, CTX,
                                                           supervisor=sup))))

    env.process(proc())
    env.run()
    return box[0]


def test_a_changed_hold_keeps_the_record_the_twin_saw_and_runs_the_new_plan() -> None:
    ramp_s = (OX["hold_c"] - OX["start_c"]) / OX["ramp_c_per_min"] * 60.0
    at = ramp_s + 3600.0
    plain = _step(None)
    sup = Extend(at, OX["hold_min"] + 20.0)
    res = _step(sup)
    assert sup.confirmed == [OX["hold_min"] + 20.0]
    n = sup.seen.time_s.size
    # Up to the checkpoint the reported record is exactly what the supervisor was shown.
    np.testing.assert_array_equal(res.actual.time_s[:n], sup.seen.time_s)
    np.testing.assert_array_equal(res.actual.temperature_c[:n], sup.seen.temperature_c)
    assert res.duration_s == plain.duration_s + 20 * 60.0
    assert res.status == "ok" and res.truth.mean_nm > plain.truth.mean_nm
    assert set(sup.monitor or {}) == {"overtemp_c", "o2_analyser_atm"}
    # The furnace's limits bound what it accepts: it confirms the clipped hold.
    big = Extend(at, 10_000.0)
    _step(big)
    assert big.confirmed == [load_plant().stations.oxidizer.limits.hold_min[1]]  # type: ignore[union-attr]


def test_a_fault_action_ends_the_hold_and_aborts_the_step() -> None:
    ramp_s = (OX["hold_c"] - OX["start_c"]) / OX["ramp_c_per_min"] * 60.0
    res = _step(Extend(ramp_s + 1800.0, 0.0, fault="wrong gas"))
    assert res.status == "aborted" and res.fault == "wrong gas"
    assert res.values["hold_band_min"] < 35.0


def _with(*events: FurnaceEvent) -> Any:
    t = load_truth("nominal")
    return t.model_copy(update={"furnace": t.furnace.model_copy(update={"events": events})})


def test_gross_faults_show_on_the_instruments_and_in_the_truth() -> None:
    ramp_s = (OX["hold_c"] - OX["start_c"]) / OX["ramp_c_per_min"] * 60.0
    at = ramp_s + 3600.0
    plain = Extend(at, OX["hold_min"])
    base = _step(plain)
    gap = plain.monitor["overtemp_c"][-5:] - plain.seen.temperature_c[-5:]  # type: ignore[index]
    for kind, size in (("thermocouple_failure", 60.0), ("wrong_gas", 0.0),
                       ("humidifier_stuck", 0.0)):
        sup = Extend(at, OX["hold_min"])
        res = _step(sup, _with(FurnaceEvent(kind=kind, start_h=0.0, size=size)))
        mon = sup.monitor or {}
        if kind == "thermocouple_failure":
            fault_gap = mon["overtemp_c"][-5:] - sup.seen.temperature_c[-5:]
            assert np.allclose(fault_gap - gap, 60.0, atol=3.0)
            # The gas-dosed recipe caps the growth: hotter, the top of the trays takes the O2.
            assert res.truth.mean_nm > 1.1 * base.truth.mean_nm
            assert res.truth.p95_nm - res.truth.p5_nm > 1.5 * (base.truth.p95_nm
                                                               - base.truth.p5_nm)
        elif kind == "wrong_gas":
            assert np.all(mon["o2_analyser_atm"][-5:] < 0.01)
            assert res.truth.mean_nm < 0.7 * base.truth.mean_nm
        else:
            assert np.all(sup.seen.ph2o_atm[-5:] < 1e-4)


def test_drifts_and_steps_change_the_true_furnace_from_their_start() -> None:
    cfg = load_plant()
    assert cfg.stations.oxidizer is not None
    truth = _with(FurnaceEvent(kind="thermocouple_step", start_h=10.0, size=10.0),
                  FurnaceEvent(kind="tube_ageing", start_h=24.0, size=0.02)).furnace
    f = TrueFurnace(truth, cfg.stations.oxidizer.limits, np.random.default_rng(1))
    assert np.isclose(f.offset_c(10 * 3600.0 - 1) + 10.0, f.offset_c(10 * 3600.0), atol=1e-5)
    assert f.rate_factor(24 * 3600.0) == f.rate_factor(0.0)
    assert np.isclose(f.rate_factor(48 * 3600.0), 1.02 * f.rate_factor(0.0))


def test_the_twin_ends_a_charge_fed_the_wrong_gas_and_does_not_release_it() -> None:
    truth = _with(FurnaceEvent(kind="wrong_gas", start_h=30.0, size=0.0))
    rows = {}
    for mode in ("closed_loop", "off"):
        cfg = load_plant()
        cfg = cfg.model_copy(update={"control": cfg.control.model_copy(update={"mode": mode})})
        b: pd.DataFrame = simulate(cfg, 4, 5, truth=truth).batches
        c = b[(b.unit_kind == "charge") & (b.start_s >= 30 * 3600.0)].sort_values("start_s")
        rows[mode] = c.iloc[0]
    on, off = rows["closed_loop"], rows["off"]
    band = load_plant().control.band
    # Left alone the charge runs to the end in nitrogen, far below the band, and the twin's
    # prediction from the record (which looks normal) releases it.
    assert off.step_status == "ok" and off.true_oxide_mean_nm < band[0]
    # The twin saw it on the O2 analyser: the hold was ended, the step reported aborted with
    # the fault, and the batch waits for the lab instead of leaving on its prediction.
    assert on.ctrl_endpoint_actions >= 1 and on.step_status == "aborted"
    assert "wrong gas" in str(on.step_fault)
    assert bool(on.lab_requested) and str(on.disposition_reason).startswith("lab")
    assert on.disposition != "release"
