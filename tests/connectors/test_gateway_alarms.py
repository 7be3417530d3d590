"""The gateway's alarm subscription survives a PLC restart: a real emulated PLC subprocess is
killed and started again on the same port; the gateway reconnects and subscribes to the new
server's events, so an alarm raised after the restart still reaches it."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from asyncua import Client, ua

from connectors.live.launcher import start_emulator
from connectors.live.session import emulated_site
from connectors.net import free_port
from connectors.opcua import Alarm, Gateway
from twin.config import DEFAULT_PLANT, load_plant


async def _inject(url: str, fault: str) -> None:
    async with Client(url) as client:
        sim = client.get_node("ns=2;s=furnace1.Simulation")
        status, message = await sim.call_method("2:InjectFault",
                                                ua.Variant(fault, ua.VariantType.String))
        assert status.is_good(), message


async def _next_alarm(gw: Gateway, kind: str, timeout: float = 30.0) -> Alarm:
    async def wait() -> Alarm:
        async for alarm in gw.alarms():
            if alarm.kind == kind and alarm.active:
                return alarm
        raise AssertionError("unreachable")

    return await asyncio.wait_for(wait(), timeout)


def test_alarms_before_and_after_a_plc_restart() -> None:
    port = free_port()
    box: dict[str, Any] = {}

    def start() -> Any:
        return start_emulator("furnace", "furnace1", config=DEFAULT_PLANT, time_factor=600,
                              seed=3, port=port)

    box["plc"] = start()
    cfg = load_plant()
    endpoints, tags = emulated_site(cfg, {"furnace1": box["plc"].url})

    async def scenario() -> None:
        async with Gateway(endpoints, tags) as gw:
            await _inject(box["plc"].url, "HeaterRunaway")
            first = await _next_alarm(gw, "OverTemperature")
            assert first.endpoint == "furnace1" and first.source == "furnace1"
            assert first.severity == 800 and first.time is not None and first.message
            os.kill(box["plc"].proc.pid, signal.SIGKILL)
            await asyncio.to_thread(box["plc"].proc.wait, 10)
            box["plc"] = await asyncio.to_thread(start)
            await gw.wait_connected("furnace1", 30)
            # Subscribed again on the new session: the restarted PLC's alarm arrives.
            await _inject(box["plc"].url, "HeaterRunaway")
            again = await _next_alarm(gw, "OverTemperature")
            assert again.event_id != first.event_id and again.received_ts > first.received_ts
            assert gw.status("furnace1").connects >= 2

    try:
        asyncio.run(asyncio.wait_for(scenario(), 120))
    finally:
        box["plc"].stop()
