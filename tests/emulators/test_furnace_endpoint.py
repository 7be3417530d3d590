"""In-batch endpoint control on the emulated furnace PLC: AdjustHold, the independent
instruments (over-temperature thermocouple, exhaust O2 analyser) and the gross faults they
reveal. Real servers on 127.0.0.1, real asyncua clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, ua

from tests.emulators.conftest import Running, Tool, connect, run
from tests.emulators.test_secure import client_for, secure, secured  # noqa: F401  (fixture)

D = ua.VariantType.Double
#: A recipe whose hold lasts long enough at 2000x (60 min = 1.8 s of wall time) to act in it.
RECIPE = (("Temperature.Zone1.SP", 400.0), ("Temperature.Zone2.SP", 400.0),
          ("Temperature.Zone3.SP", 400.0), ("RampRate.SP", 20.0), ("CoolRate.SP", 20.0),
          ("HoldTime.SP", 60.0), ("Oxygen.PartialPressure.SP", 0.21),
          ("Water.DewPoint.SP", 10.0))


async def adjust(tool: Tool, hold_min: float) -> tuple[str, str]:
    """Call AdjustHold; (ReturnStatus name, message)."""
    status, message = await tool.call("BatchControl", "AdjustHold", ua.Variant(hold_min, D))
    return status.name, message


async def start_batch(tool: Tool, batch_id: str, *, fault: str = "") -> None:
    """Idle furnace, the recipe above, optionally a fault, Start; returns once Holding."""
    await tool.wait_for("MachineryItemState.CurrentState", lambda v: v.Text == "NotExecuting")
    assert (await tool.call("Simulation", "ClearFaults"))[0].is_good()
    for path, value in RECIPE:
        await tool.node(path).write_value(ua.DataValue(ua.Variant(value, D)))
    await tool.node("BatchControl.BatchId").write_value(ua.Variant(batch_id, ua.VariantType.String))
    if fault:
        status, message = await tool.call("Simulation", "InjectFault",
                                          ua.Variant(fault, ua.VariantType.String))
        assert status.is_good(), message
    status, message = await tool.call("BatchControl", "Start")
    assert status.is_good(), message
    await tool.wait_for("StepState.CurrentState", lambda v: v.Text == "Holding", 30.0)


async def finish(tool: Tool) -> None:
    """End the hold now and wait for Complete (the next test finds the furnace idle)."""
    if (await tool.node("StepState.CurrentState").read_value()).Text == "Holding":
        assert (await adjust(tool, 0.0))[0] == "Good"
    await tool.wait_for("StepState.CurrentState", lambda v: v.Text == "Complete", 30.0)
    assert (await tool.call("Simulation", "ClearFaults"))[0].is_good()


def test_adjust_hold_extends_shortens_and_reads_back(furnace: Running) -> None:
    async def scenario() -> None:
        async with Client(furnace.url) as client:
            tool = await connect(client, "furnace1")
            await tool.wait_for("MachineryItemState.CurrentState",
                                lambda v: v.Text == "NotExecuting")
            # Idle: nothing to adjust (and the setpoint is unchanged).
            before = await tool.node("HoldTime.SP").read_value()
            status, message = await adjust(tool, 30.0)
            assert status == "BadInvalidState" and "Idle" in message
            assert await tool.node("HoldTime.SP").read_value() == before
            await start_batch(tool, "EP-ADJ")
            # Extend: the setpoint (locked to writes while the batch runs) shows the new hold.
            status, message = await adjust(tool, 90.0)
            assert status == "Good", message
            assert await tool.node("HoldTime.SP").read_value() == 90.0
            # Out of range ([stations.oxidizer.limits] hold_min = [0, 240]): refused, unchanged.
            for bad in (241.0, -1.0, float("nan")):
                status, message = await adjust(tool, bad)
                assert status == "BadOutOfRange" and "limits" in message, bad
            assert await tool.node("HoldTime.SP").read_value() == 90.0
            # A plain write is still refused while the batch runs: AdjustHold is the only way.
            with pytest.raises(ua.UaStatusCodeError) as info:
                await tool.node("HoldTime.SP").write_value(ua.DataValue(ua.Variant(5.0, D)))
            assert type(info.value).__name__ == "BadNotWritable"
            # Wrong argument type: the call itself is refused, nothing is cast.
            with pytest.raises(ua.UaStatusCodeError):
                await tool.call("BatchControl", "AdjustHold", ua.Variant(5, ua.VariantType.Int32))
            # Shorten below what was held: the hold ends now, the read-back is the hold given.
            held = await tool.node("HoldTime.PV").read_value()
            status, message = await adjust(tool, 0.0)
            assert status == "Good" and "cooling" in message, message
            given = await tool.node("HoldTime.SP").read_value()
            assert held <= given < 60.0
            await tool.wait_for("StepState.CurrentState", lambda v: v.Text in ("Cooling",
                                                                               "Complete"))
            # Cooling: the hold is over.
            status, _ = await adjust(tool, 120.0)
            assert status == "BadInvalidState" or (
                await tool.node("StepState.CurrentState").read_value()).Text == "Complete"
            await tool.wait_for("StepState.CurrentState", lambda v: v.Text == "Complete", 30.0)
            assert (await adjust(tool, 120.0))[0] == "BadInvalidState"
            assert await tool.node("HoldTime.PV").read_value() == pytest.approx(given, abs=0.1)

    run(scenario())


def test_adjust_hold_extends_the_hold_the_furnace_runs(furnace: Running) -> None:
    async def scenario() -> None:
        async with Client(furnace.url) as client:
            tool = await connect(client, "furnace1")
            await start_batch(tool, "EP-LONG")
            # 60 -> 61 min, then shortened to 62 (still ahead): the furnace holds 62 min.
            assert (await adjust(tool, 61.0))[0] == "Good"
            assert (await adjust(tool, 62.0))[0] == "Good"
            await tool.wait_for("StepState.CurrentState", lambda v: v.Text == "Cooling", 30.0)
            assert await tool.node("HoldTime.PV").read_value() == pytest.approx(62.0, abs=2.0)
            assert await tool.node("HoldTime.SP").read_value() == 62.0
            await finish(tool)

    run(scenario())


async def _pvs(tool: Tool) -> dict[str, float]:
    paths = {"zones": [f"Temperature.Zone{i}.PV" for i in (1, 2, 3)],
             "overtemp": ["Temperature.OverTemp.PV"], "analyser": ["Oxygen.Analyser.PV"],
             "po2": ["Oxygen.PartialPressure.PV"], "o2_flow": ["Oxygen.Flow.PV"],
             "dew": ["Water.DewPoint.PV"]}
    out: dict[str, float] = {}
    for key, nodes in paths.items():
        values = [float(await tool.node(n).read_value()) for n in nodes]
        out[key] = max(values) if key == "zones" else values[0]
    return out


@pytest.mark.parametrize("fault", ["", "thermocouple_low", "wrong_gas", "humidifier_stuck"])
def test_gross_faults_show_on_the_independent_instruments(furnace: Running, fault: str) -> None:
    async def scenario() -> dict[str, float]:
        async with Client(furnace.url) as client:
            tool = await connect(client, "furnace1")
            await start_batch(tool, f"EP-FAULT-{fault or 'none'}", fault=fault)
            # Let the gas settle (tube lag 10 s of process time) and the zones sit at 400 °C.
            await tool.wait_for("HoldTime.PV", lambda v: v >= 3.0)
            pv = await _pvs(tool)
            faults = await tool.node("Simulation.ActiveFaults").read_value()
            await finish(tool)
            assert faults == ([fault] if fault else [])
            return pv

    pv = run(scenario())
    # The control thermocouples and the MFC reading look normal whatever the fault.
    assert pv["zones"] == pytest.approx(400.0, abs=6.0)
    assert pv["po2"] == pytest.approx(0.21, abs=0.01)
    gap_c = pv["overtemp"] - pv["zones"]
    if fault == "thermocouple_low":
        assert 50.0 < gap_c < 75.0  # the wall really runs ~60 °C hot
    else:
        assert -10.0 < gap_c < 15.0  # thermocouple offsets of the nominal truth, noise
    if fault == "wrong_gas":
        assert pv["analyser"] < 1e-3 and pv["o2_flow"] > 0.0
    else:
        assert pv["analyser"] == pytest.approx(0.21, abs=0.01)
    if fault == "humidifier_stuck":
        assert pv["dew"] <= -59.0  # dry gas
    else:
        assert pv["dew"] == pytest.approx(10.0, abs=1.0)


def test_lab_sees_the_true_process_of_a_faulty_batch() -> None:
    # The hidden charge physics runs on the true wall and gas: a furnace 60 °C hot grows more
    # oxide, one without O2 or water less (same seed, same recipe; no server needed).
    from connectors.emulators.runner import make_tool
    from twin.config import load_plant

    plant = load_plant(None, ["stations.oxidizer.load_unload_h=0.05",
                              "recipes.oxidation.hold_min=30.0"])
    oxide: dict[str, float] = {}
    for fault in ("", "thermocouple_low", "wrong_gas", "humidifier_stuck"):
        tool: Any = make_tool("furnace", plant, 3)
        assert tool.write_batch_field("BatchId", "B") == "Good"
        if fault:
            assert tool.inject_fault(fault)[0] == "Good"
        assert tool.command("Start")[0] == "Good"
        while tool.batch_active:
            tool.advance(30.0)
        oxide[fault] = tool.true_oxide_nm["B"]
    assert oxide["thermocouple_low"] > 1.2 * oxide[""]
    assert oxide["wrong_gas"] < 0.8 * oxide[""]
    assert oxide["humidifier_stuck"] < oxide[""]


def test_viewer_may_not_adjust_the_hold(secure: tuple[Running, Path]) -> None:  # noqa: F811
    running, pki = secure

    async def scenario() -> None:
        async with await secured(client_for(running.url, pki, "view"), pki) as client:
            tool = await connect(client, "furnace1")
            before = await tool.node("HoldTime.SP").read_value()
            with pytest.raises(ua.UaStatusCodeError) as info:
                await adjust(tool, 10.0)
            assert type(info.value).__name__ == "BadUserAccessDenied"
            assert await tool.node("HoldTime.SP").read_value() == before
        async with await secured(client_for(running.url, pki, "op"), pki) as client:
            tool = await connect(client, "furnace1")
            # The operator gets through to the PLC, which finds no hold to adjust.
            assert (await adjust(tool, 10.0))[0] == "BadInvalidState"

    run(scenario())
