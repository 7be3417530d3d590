"""The emulated furnace over OPC UA, with a real asyncua client on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asyncua import Client, ua

from connectors.emulators.address_space import browse_tree
from tests.emulators.conftest import Running, Tool, connect, run
from twin.config import DEFAULT_PLANT, load_plant

D = ua.VariantType.Double


def dv(value: Any, vtype: ua.VariantType = D) -> ua.DataValue:
    return ua.DataValue(ua.Variant(value, vtype))


async def write_status(tool: Tool, path: str, value: Any, vtype: ua.VariantType = D) -> str:
    """Write one node; return the status name (Good or the Bad code)."""
    try:
        await tool.node(path).write_value(dv(value, vtype))
    except ua.UaStatusCodeError as exc:
        return type(exc).__name__
    return "Good"


async def wait_idle(tool: Tool) -> None:
    await tool.wait_for("MachineryItemState.CurrentState", lambda v: v.Text == "NotExecuting")


def test_address_space_layout_and_metadata(furnace: Running) -> None:
    async def scenario() -> None:
        async with Client(furnace.url) as client:
            tool = await connect(client, "furnace1")
            machine = await client.nodes.objects.get_child([f"{tool.ns}:Machines",
                                                            f"{tool.ns}:furnace1"])
            paths = set(await browse_tree(machine))
            for expected in ("/Identification/Manufacturer", "/Identification/SerialNumber",
                             "/MachineryItemState/CurrentState/Id",
                             "/StepState/CurrentState/Number",
                             "/ProcessValues/Temperature/Zone1/AnalogSignal/EURange",
                             "/ProcessValues/Temperature/Zone3/ProcessValueSetpoint",
                             "/ProcessValues/RampRate/ProcessValueSetpoint/EngineeringUnits",
                             "/ProcessValues/HoldTime/AnalogSignal",
                             "/ProcessValues/Oxygen/PartialPressure/ProcessValueSetpoint",
                             "/ProcessValues/Oxygen/Flow/AnalogSignal",
                             "/ProcessValues/Water/DewPoint/ProcessValueSetpoint",
                             "/ProcessValues/Pressure/ProcessValueSetpoint",
                             "/BatchControl/BatchId", "/BatchControl/Heartbeat",
                             "/BatchControl/Start", "/BatchControl/Abort",
                             "/Alarms/InterlockTrip", "/Metrology/RequestMeasurement",
                             "/Metrology/LastResult/Thickness", "/Simulation/InjectFault"):
                assert expected in paths, expected
            # Stable string NodeIds match the browse tree.
            sp = tool.node("Temperature.Zone1.SP")
            assert (await sp.read_browse_name()).Name == "ProcessValueSetpoint"
            eu = await tool.node("Temperature.Zone1.SP.EngineeringUnits").read_value()
            assert eu.DisplayName.Text == "°C" and eu.UnitId == 4408652
            rng = await tool.node("Temperature.Zone1.SP.EURange").read_value()
            assert (rng.Low, rng.High) == (20.0, 1000.0)  # powder_line.toml limits
            assert (await tool.node("Identification.Model").read_value()).Text.startswith(
                "Emulated")
            assert await tool.node("Temperature.Zone1.SignalTag").read_value() == \
                "furnace1.Temperature.Zone1"
            state_id = await tool.node("MachineryItemState.CurrentState.Id").read_value()
            state_name = (await client.get_node(state_id).read_browse_name()).Name
            assert state_name == (await tool.node(
                "MachineryItemState.CurrentState").read_value()).Text

    run(scenario())


def test_writes_are_checked_one_item_at_a_time(furnace: Running) -> None:
    async def scenario() -> None:
        async with Client(furnace.url) as client:
            tool = await connect(client, "furnace1")
            await wait_idle(tool)
            assert await write_status(tool, "Temperature.Zone1.SP", 420.0) == "Good"
            assert await tool.node("Temperature.Zone1.SP").read_value() == 420.0
            assert await write_status(tool, "Temperature.Zone1.SP", 1500.0) == "BadOutOfRange"
            assert await write_status(tool, "Temperature.Zone1.SP", 420,
                                      ua.VariantType.Int32) == "BadTypeMismatch"
            assert await write_status(tool, "RampRate.SP", 50.0) == "BadOutOfRange"
            assert await write_status(tool, "Temperature.Zone1.PV", 20.0) in (
                "BadUserAccessDenied", "BadNotWritable")
            assert await tool.node("Temperature.Zone1.SP").read_value() == 420.0
            # One request, three items: each gets its own status; the bad one changes nothing.
            params = ua.WriteParameters(NodesToWrite=[
                ua.WriteValue(NodeId=tool.node(f"Temperature.Zone{i}.SP").nodeid,
                              AttributeId=ua.AttributeIds.Value, Value=dv(v))
                for i, v in ((1, 430.0), (2, 5000.0), (3, 431.0))])
            results = await client.uaclient.write(params)
            assert [r.name for r in results] == ["Good", "BadOutOfRange", "Good"]
            values = [await tool.node(f"Temperature.Zone{i}.SP").read_value() for i in (1, 2, 3)]
            assert values[0] == 430.0 and values[1] != 5000.0 and values[2] == 431.0

    run(scenario())


def test_batch_methods_lock_run_to_complete_and_lab(furnace: Running) -> None:
    async def scenario() -> None:
        async with Client(furnace.url) as client:
            tool = await connect(client, "furnace1")
            await wait_idle(tool)
            for path, value in (("Temperature.Zone1.SP", 400.0), ("Temperature.Zone2.SP", 400.0),
                                ("Temperature.Zone3.SP", 400.0), ("RampRate.SP", 20.0),
                                ("CoolRate.SP", 20.0), ("HoldTime.SP", 2.0)):
                assert await write_status(tool, path, value) == "Good"
            await tool.node("BatchControl.BatchId").write_value(
                ua.Variant("OX-1", ua.VariantType.String))
            status, message = await tool.call("BatchControl", "Start")
            assert status.is_good(), message
            status, _ = await tool.call("BatchControl", "Hold")
            assert status.is_good()
            assert (await tool.node("StepState.CurrentState").read_value()).Text == "Held"
            assert (await tool.node("MachineryItemState.CurrentState").read_value()).Text == \
                "Executing"
            assert await write_status(tool, "Temperature.Zone1.SP", 410.0) == "BadNotWritable"
            assert await write_status(tool, "BatchControl.BatchId", "X",
                                      ua.VariantType.String) == "BadNotWritable"
            status, _ = await tool.call("BatchControl", "Start")
            assert status.name == "BadInvalidState"
            status, _ = await tool.call("BatchControl", "Resume")
            assert status.is_good()
            # Heating starts within a few seconds of wall time at 2000x.
            await tool.wait_for("StepState.CurrentState", lambda v: v.Text == "Heating")
            hot = await tool.wait_for("Temperature.Zone1.PV", lambda v: v > 200.0)
            assert hot < 420.0
            await tool.wait_for("StepState.CurrentState", lambda v: v.Text == "Complete", 30.0)
            hold_pv = await tool.node("HoldTime.PV").read_value()
            assert hold_pv == pytest.approx(2.0, abs=0.2)
            # The true oxide is not a process value: only the lab has it, after its delay.
            status, thick, sigma, _ = await tool.call("Metrology", "GetMeasurement",
                                                      ua.Variant("OX-1", ua.VariantType.String))
            assert status.name == "BadNotFound"
            status, ready_in, _ = await tool.call("Metrology", "RequestMeasurement",
                                                  ua.Variant("OX-1", ua.VariantType.String))
            assert status.is_good() and ready_in > 0
            await tool.wait_for("Metrology.LastResult.BatchId", lambda v: v == "OX-1")
            status, thick, sigma, _ = await tool.call("Metrology", "GetMeasurement",
                                                      ua.Variant("OX-1", ua.VariantType.String))
            assert status.is_good() and 0.1 < thick < 100 and sigma > 0
            assert await tool.node("Metrology.LastResult.Thickness").read_value() == thick
            status, _, _ = await tool.call("Metrology", "RequestMeasurement",
                                           ua.Variant("never-ran", ua.VariantType.String))
            assert status.name == "BadNotFound"

    run(scenario())


def test_alarm_events_for_runaway_trip_and_heartbeat(furnace: Running) -> None:
    async def scenario() -> None:
        async with Client(furnace.url) as client:
            tool = await connect(client, "furnace1")
            await wait_idle(tool)
            events: asyncio.Queue[Any] = asyncio.Queue()

            class Handler:
                def event_notification(self, event: Any) -> None:
                    events.put_nowait(event)  # callbacks only enqueue

            sub = await client.create_subscription(20, Handler())
            types = [client.get_node(ua.NodeId(f"{k}AlarmType", tool.ns))
                     for k in ("OverTemperature", "InterlockTrip", "HeartbeatLost")]
            await sub.subscribe_events(client.get_node(ua.NodeId("furnace1", tool.ns)), types)
            await write_status(tool, "Temperature.Zone1.SP", 400.0)
            await tool.node("BatchControl.BatchId").write_value(
                ua.Variant("OX-RUNAWAY", ua.VariantType.String))
            assert (await tool.call("BatchControl", "Start"))[0].is_good()
            status, _ = await tool.call("Simulation", "InjectFault",
                                        ua.Variant("HeaterRunaway", ua.VariantType.String))
            assert status.is_good()
            seen: list[tuple[str, bool]] = []
            while ("InterlockTrip", True) not in seen:
                ev = await asyncio.wait_for(events.get(), 20)
                seen.append((ev.ConditionName, getattr(ev, "ActiveState/Id")))
            assert seen.index(("OverTemperature", True)) < seen.index(("InterlockTrip", True))
            assert await tool.node("Alarms.InterlockTrip").read_value() is True
            assert (await tool.node("MachineryItemState.CurrentState").read_value()).Text == \
                "OutOfService"
            assert (await tool.node("StepState.CurrentState").read_value()).Text == "Aborted"
            assert (await tool.call("Simulation", "ClearFaults"))[0].is_good()
            while True:  # Reset succeeds once the furnace has cooled below the trip level
                status, _ = await tool.call("BatchControl", "Reset")
                if status.is_good():
                    break
                await asyncio.sleep(0.1)
            # Heartbeat: armed by the first write, lost after 1 s (fixture) without one.
            sp_before = await tool.node("Temperature.Zone1.SP").read_value()
            await tool.node("BatchControl.Heartbeat").write_value(
                ua.Variant(1, ua.VariantType.UInt32))
            while True:
                ev = await asyncio.wait_for(events.get(), 10)
                if ev.ConditionName == "HeartbeatLost":
                    assert getattr(ev, "ActiveState/Id") is True and ev.Severity >= 500
                    break
            assert await tool.node("BatchControl.ControlMode").read_value() == "Local"
            local = await tool.node("Temperature.Zone1.SP").read_value()
            hold_c = load_plant(DEFAULT_PLANT).recipes.oxidation.hold_c  # type: ignore[union-attr]
            assert local == hold_c != sp_before  # back on the plant file's recipe
            assert await write_status(tool, "Temperature.Zone1.SP", 400.0) == "BadNotWritable"
            await tool.node("BatchControl.Heartbeat").write_value(
                ua.Variant(2, ua.VariantType.UInt32))
            await tool.wait_for("BatchControl.ControlMode", lambda v: v == "Remote")
            assert await write_status(tool, "Temperature.Zone1.SP", 400.0) == "Good"
            await sub.delete()

    run(scenario())
