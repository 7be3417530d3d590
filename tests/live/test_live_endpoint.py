"""In-batch endpoint control of a live furnace step: a supervisor of our own, the OPC UA
furnace equipment, the gateway and an emulated furnace PLC on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import simpy
from asyncua import Client, ua

from connectors.emulators import build_server
from connectors.live.equipment import LiveLinks, OpcUaFurnace
from connectors.live.session import emulated_site
from connectors.opcua.gateway import Gateway
from tests.emulators.conftest import Running, start_in_thread, stop_in_thread
from twin.config import load_plant
from twin.equipment.base import EndpointAction, StepRequest, StepResult, StepSupervisor
from twin.live.bridge import RealtimeBridge

#: Process seconds per wall second: a 400 °C step of ~45 min takes ~5 s.
TF = 600.0
#: Short loading and an instant lab; the default heartbeat timeout (10 s wall).
PLC = ["stations.oxidizer.load_unload_h=0.05", "stations.lab.turnaround_h=0.0",
       "stations.lab.measure_h=0.05"]
SETPOINTS = {"start_c": 25.0, "hold_c": 400.0, "ramp_c_per_min": 20.0, "hold_min": 5.0,
             "cool_c_per_min": 20.0, "po2_atm": 0.21, "ph2o_atm": 0.01, "gas_flow_slm": 100.0}
NODE = "ns=2;s=furnace1."


@dataclass
class Applied:
    action: EndpointAction
    confirmed_hold_min: float | None
    t_s: float
    error: str


@dataclass
class Supervisor:
    """A small StepSupervisor: every 30 s, once the record shows the hold temperature, ask
    for ``extend_min`` more hold (again after a refusal, until a hold is confirmed); with
    ``fault_below_atm`` a gross fault when the O2 analyser reads below it instead."""

    extend_min: float = 5.0
    fault_below_atm: float = 0.0
    checks: list[tuple[float, int, dict[str, int] | None, float]] = field(default_factory=list)
    applied_calls: list[Applied] = field(default_factory=list)

    def checkpoints_s(self, setpoints: Mapping[str, float]) -> tuple[float, ...]:
        return tuple(30.0 * k for k in range(1, 240))

    def check(self, seen: Any, elapsed_s: float, setpoints: Mapping[str, float],
              monitor: Mapping[str, Any] | None = None) -> EndpointAction | None:
        sizes = {k: len(v) for k, v in monitor.items()} if monitor else None
        self.checks.append((elapsed_s, len(seen.time_s), sizes, float(seen.time_s[-1])))
        if any(a.confirmed_hold_min is not None for a in self.applied_calls):
            return None
        if self.fault_below_atm > 0:
            o2 = None if not monitor else monitor.get("o2_analyser_atm")
            if o2 is not None and float(np.mean(o2[-3:])) < self.fault_below_atm:
                return EndpointAction(0.0, "analyser shows no O2", fault="wrong_gas")
            return None
        if seen.temperature_c[-1] < setpoints["hold_c"] - 3.0:
            return None
        return EndpointAction(setpoints["hold_min"] + self.extend_min, "test: extend")

    def applied(self, action: EndpointAction, confirmed_hold_min: float | None, t_s: float,
                error: str = "") -> None:
        self.applied_calls.append(Applied(action, confirmed_hold_min, t_s, error))


@pytest.fixture(scope="module")
def plc() -> Iterator[Running]:
    running = start_in_thread(build_server("furnace", port=0, time_factor=TF, seed=11,
                                           tick_s=0.05, overrides=PLC))
    yield running
    stop_in_thread(running)


async def _plc_call(url: str, method: str, *args: Any) -> None:
    async with Client(url) as client:
        parent = client.get_node(NODE.rstrip(".") + "." + method.rsplit(".", 1)[0])
        status, message = await parent.call_method(f"2:{method.rsplit('.', 1)[1]}", *args)
        assert status.is_good(), message


async def _read(url: str, *paths: str) -> list[Any]:
    async with Client(url) as client:
        return [await client.get_node(NODE + p).read_value() for p in paths]


async def _live_step(url: str, batch_id: str, supervisor: StepSupervisor | None,
                     **setpoints: float) -> StepResult:
    """One oxidize step through the live furnace equipment, with the bridge's clock."""
    cfg = load_plant()
    endpoints, tags = emulated_site(cfg, {"furnace1": url})
    gw = Gateway(endpoints, tags)
    await gw.start()
    tasks: set[asyncio.Task[None]] = set()

    def spawn(coro: Coroutine[Any, Any, None]) -> None:
        tasks.add(asyncio.get_running_loop().create_task(coro))

    env = simpy.Environment()
    bridge = RealtimeBridge(env, TF, slice_s=0.01)
    links = LiveLinks(gw, sim_time_at=bridge.sim_time_at, spawn=spawn, time_factor=TF)
    spawn(links.route())
    furnace = OpcUaFurnace(f"{cfg.plant.name}.oxidizer1", links)
    step = StepRequest(batch_id, "oxidation:endpoint-test", "oxidize",
                       {**SETPOINTS, **setpoints}, supervisor=supervisor)
    out: dict[str, StepResult] = {}

    def proc() -> Any:
        out["result"] = yield from furnace.execute(env, step)
        bridge.stop()

    env.process(proc())
    try:
        await bridge.run(until_s=4 * 3600.0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await gw.stop()
    return out["result"]


def _heat_cool_s() -> float:
    sp = SETPOINTS
    return 60.0 * ((sp["hold_c"] - sp["start_c"]) / sp["ramp_c_per_min"]
                   + (sp["hold_c"] - 100.0) / sp["cool_c_per_min"])


def test_supervisor_extends_the_hold_on_the_plc(plc: Running) -> None:
    sup = Supervisor(extend_min=5.0)
    result = asyncio.run(asyncio.wait_for(_live_step(plc.url, "LIVE-EP-1", sup), 120))
    hold_sp, hold_pv = asyncio.run(_read(plc.url, "HoldTime.SP", "HoldTime.PV"))
    assert result.status == "ok", result.fault
    assert isinstance(sup, StepSupervisor)
    # The record is shown from the step's start with the instruments on its grid.
    assert sup.checks
    for elapsed, n, sizes, last_t in sup.checks:
        assert sizes == {"overtemp_c": n, "o2_analyser_atm": n}
        assert last_t <= elapsed + 60.0  # samples lead the model's clock by a slice at most
    # One confirmed change, read back from the PLC; any refusal before it (the record can
    # reach the hold temperature a scan before the PLC enters Holding) is reported as one.
    done = [a for a in sup.applied_calls if a.confirmed_hold_min is not None]
    assert len(done) == 1 and done[0].error == ""
    assert done[0].confirmed_hold_min == 10.0 == hold_sp
    for refused in sup.applied_calls[:-1]:
        assert refused.confirmed_hold_min is None
        assert "adjust_hold" in refused.error and "BadInvalidState" in refused.error
    assert sup.applied_calls[-1] is done[0]
    assert result.start_s <= done[0].t_s <= result.end_s
    # The PLC held 10 min, and the record shows it: the step took the longer hold.
    assert hold_pv == pytest.approx(10.0, abs=1.0)
    assert result.values["hold_band_min"] == pytest.approx(10.0, abs=2.5)
    assert result.duration_s > _heat_cool_s() * 0.8 + 10 * 60.0
    # The same step without a supervisor: 5 min shorter (to the PLC scan, 60 s at 600x).
    planned = asyncio.run(asyncio.wait_for(_live_step(plc.url, "LIVE-EP-0", None), 120))
    assert planned.status == "ok"
    assert planned.values["hold_band_min"] == pytest.approx(5.0, abs=2.5)
    assert result.duration_s - planned.duration_s == pytest.approx(300.0, abs=120.0)


def test_gross_fault_ends_the_hold_and_aborts_the_step(plc: Running) -> None:
    asyncio.run(_plc_call(plc.url, "Simulation.InjectFault",
                          ua.Variant("wrong_gas", ua.VariantType.String)))
    sup = Supervisor(fault_below_atm=0.05)
    try:
        result = asyncio.run(asyncio.wait_for(
            _live_step(plc.url, "LIVE-EP-2", sup, hold_min=60.0), 120))
    finally:
        asyncio.run(_plc_call(plc.url, "Simulation.ClearFaults"))
    hold_sp, hold_pv = asyncio.run(_read(plc.url, "HoldTime.SP", "HoldTime.PV"))
    assert result.status == "aborted" and result.fault == "wrong_gas"
    # Found while heating (gas flows from Loading); the hold was ended as soon as it began.
    assert len(sup.applied_calls) == 1
    got = sup.applied_calls[0]
    assert got.action.fault == "wrong_gas" and got.error == ""
    assert got.confirmed_hold_min is not None and got.confirmed_hold_min == hold_sp < 3.0
    assert hold_pv == pytest.approx(hold_sp, abs=0.5)
    assert result.duration_s < _heat_cool_s() + 30 * 60.0  # far short of the 60 min hold
    assert math.isfinite(result.values["max_c"])
