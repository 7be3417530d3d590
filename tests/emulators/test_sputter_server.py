"""The emulated sputter tool over OPC UA: steps seen by a subscription, Boolean shutter, lab."""

from __future__ import annotations

import asyncio
from typing import Any

from asyncua import Client, ua

from tests.emulators.conftest import Running, connect, run


def test_sputter_batch_steps_by_subscription_and_metrology(sputter: Running) -> None:
    async def scenario() -> None:
        async with Client(sputter.url) as client:
            tool = await connect(client, "sputter1")
            steps: asyncio.Queue[str] = asyncio.Queue()

            class Handler:
                def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
                    steps.put_nowait(val.Text)

            sub = await client.create_subscription(10, Handler())
            await sub.subscribe_data_change(tool.node("StepState.CurrentState"), queuesize=10)
            assert await steps.get() == "Idle"
            shutter = tool.node("Shutter.SP")
            assert (await shutter.read_browse_name()).Name == "ProcessValueSetpoint"
            try:
                await shutter.write_value(ua.DataValue(ua.Variant(1.0, ua.VariantType.Double)))
                raise AssertionError("a Double written to the Boolean shutter was accepted")
            except ua.UaStatusCodeError as exc:
                assert type(exc).__name__ == "BadTypeMismatch"
            eu = await tool.node("ArgonFlow.SP.EngineeringUnits").read_value()
            assert eu.DisplayName.Text == "sccm" and eu.UnitId == -1
            await tool.node("BatchControl.BatchId").write_value(
                ua.Variant("SP-1", ua.VariantType.String))
            status, message = await tool.call("BatchControl", "Start")
            assert status.is_good(), message
            seen = []
            while not seen or seen[-1] != "Complete":
                seen.append(await asyncio.wait_for(steps.get(), 30))
            assert seen == ["PumpDown", "Deposit", "Oxidize", "Vent", "Complete"]
            assert await tool.node("ThicknessMonitor.PV").read_value() > 5.0
            assert await tool.node("ChamberPressure.PV").read_value() > 100_000.0  # vented
            status, _, _ = await tool.call("Metrology", "RequestMeasurement",
                                           ua.Variant("SP-1", ua.VariantType.String))
            assert status.is_good()
            await tool.wait_for("Metrology.LastResult.BatchId", lambda v: v == "SP-1")
            cap = await tool.node("Metrology.LastResult.Thickness").read_value()
            assert 2.0 < cap < 30.0  # a ~10 nm reactive cap, measured with noise
            await sub.delete()

    run(scenario())
