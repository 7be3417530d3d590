"""The gateway against a real asyncua server on loopback (in the test's event loop)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from asyncua import Server, ua
from opcua_kit import endpoint_for, plc_server, run, tags_for

from connectors.net import free_port
from connectors.opcua import (
    CallError,
    EndpointState,
    EndpointUnreachableError,
    Gateway,
    NotConnectedError,
    OutOfLimitsError,
    Sample,
    TagError,
    WriteError,
)
from twin.config.tags import Heartbeat, Tag

SP = "line1.oxidizer1.temperature_sp"
PV = "line1.oxidizer1.temperature_pv"


async def server_value(srv: Server, idx: int, name: str) -> ua.Variant:
    dv = await srv.get_node(ua.NodeId(name, idx)).read_data_value()
    assert dv.Value is not None
    return dv.Value


async def next_sample(gw: Gateway, signal: str, pred: Any = None, timeout: float = 3.0) -> Sample:
    async def scan() -> Sample:
        async for s in gw.updates():
            if s.signal == signal and (pred is None or pred(s)):
                return s
        raise AssertionError("unreachable")
    return await asyncio.wait_for(scan(), timeout)


def test_resolve_subscribe_read_write_and_call() -> None:
    async def scenario() -> None:
        async with plc_server() as (srv, idx, port):
            gw = Gateway({"furnace": endpoint_for(port)}, tags_for())
            async with gw:
                assert gw.connected("furnace")
                # Initial values of every readable tag arrive through the subscription,
                # the PV found by browse path, the SP by NodeId.
                first = await next_sample(gw, PV)
                assert first.value == pytest.approx(24.5) and first.ok and not first.gap
                assert first.source_ts is not None and first.server_ts is not None
                # A value changed on the PLC reaches the twin.
                await srv.write_attribute_value(
                    ua.NodeId("furnace1.Temperature.Zone1.PV", idx),
                    ua.DataValue(ua.Variant(301.5, ua.VariantType.Double)))
                changed = await next_sample(gw, PV, lambda s: s.value == 301.5)
                latest = gw.latest(PV)
                assert latest is not None and latest.value == changed.value == 301.5
                assert (await gw.read(PV)).value == 301.5

                # Writes carry the tag's variant type and are confirmed by read-back.
                res = await gw.write(SP, 850)  # an int, sent as Double
                assert res.ok and res.status == "Good" and res.code == 0
                assert res.readback == 850.0 and res.variant_type == "Double"
                v = await server_value(srv, idx, "furnace1.Temperature.Zone1.SP")
                assert v.VariantType == ua.VariantType.Double and v.Value == 850.0

                res = await gw.write("line1.oxidizer1.o2_flow_sp", 2.7)  # Float, via nsu=
                assert res.ok and res.readback == pytest.approx(2.7, rel=1e-6)
                v = await server_value(srv, idx, "furnace1.Oxygen.Flow.SP")
                assert v.VariantType == ua.VariantType.Float

                res = await gw.write("line1.oxidizer1.hold_min_sp", 45)
                v = await server_value(srv, idx, "furnace1.HoldTime.SP")
                assert res.ok and v.VariantType == ua.VariantType.Int32 and v.Value == 45
                assert (await gw.write("line1.oxidizer1.door_closed", False)).readback is False
                assert (await gw.write("line1.oxidizer1.batch_id", "OX-0001")).ok
                assert gw.status("furnace").writes == 5

                # Methods: typed input arguments, outputs and a refused call's status.
                started = await gw.call("line1.oxidizer1.start", "OX-0001")
                assert started.ok and started.outputs == (True,)
                with pytest.raises(CallError, match="BadInvalidArgument") as info:
                    await gw.call("line1.oxidizer1.start", "")
                assert info.value.result.status == "BadInvalidArgument"
                held = await gw.call("line1.oxidizer1.hold", check=False)
                assert not held.ok and held.status == "BadInvalidState"
                assert held.outputs == ("BadInvalidState", "nothing to hold in Idle")
            assert gw.state("furnace") is EndpointState.STOPPED

    run(scenario())


def test_limits_and_server_refusals_are_surfaced() -> None:
    async def scenario() -> None:
        async with plc_server() as (srv, idx, port):
            async with Gateway({"furnace": endpoint_for(port)}, tags_for()) as gw:
                before = list(srv.writes)
                # Client-side: tag limits, type range and Python type, checked before sending.
                with pytest.raises(OutOfLimitsError,
                                   match=r"1400 °C is outside limits \[20, 1300\]"):
                    await gw.write(SP, 1400.0)
                with pytest.raises(OutOfLimitsError, match="not an integer"):
                    await gw.write("line1.oxidizer1.hold_min_sp", 2.5)
                with pytest.raises(OutOfLimitsError, match="expected a number"):
                    await gw.write(SP, True)
                with pytest.raises(OutOfLimitsError, match="not a finite number"):
                    await gw.write(SP, float("nan"))
                assert srv.writes == before  # nothing reached the PLC

                # Server-side: the PLC's own validator refuses 1250 °C; the status surfaces.
                with pytest.raises(WriteError, match="BadOutOfRange") as info:
                    await gw.write(SP, 1250.0)
                assert info.value.result.code == ua.StatusCodes.BadOutOfRange
                assert not info.value.result.ok and info.value.result.readback is None
                unchecked = await gw.write(SP, 1250.0, check=False)
                assert unchecked.status == "BadOutOfRange" and not unchecked.ok
                v = await server_value(srv, idx, "furnace1.Temperature.Zone1.SP")
                assert v.Value == 25.0

                with pytest.raises(TagError, match="is not writable"):
                    await gw.write(PV, 1.0)
                with pytest.raises(TagError, match="did you mean 'line1.oxidizer1.temperature_sp'"):
                    await gw.write("line1.oxidizer1.temperature_spp", 1.0)

    run(scenario())


BAD_TAGS: list[tuple[Tag, str]] = [
    (Tag(endpoint="furnace", node="ns=2;s=furnace1.Temperature.Zone9.SP", type="Double"),
     "node does not exist on the server (BadNodeIdUnknown)"),
    (Tag(endpoint="furnace", node="Objects/2:furnace1/2:Temperature/2:Zone9/2:SP",
         type="Double"), "browse path not found on the server"),
    (Tag(endpoint="furnace", node="ns=2;s=furnace1.HoldTime.SP", type="Double"),
     "wrong type: the tag says Double, the node's DataType is Int32"),
    (Tag(endpoint="furnace", node="ns=2;s=furnace1.Zones", type="UInt16", access="write"),
     "node is read-only for this user"),
    (Tag(endpoint="furnace", node="ns=2;s=furnace1.Start", type="Double"),
     "node is a Method, expected a Variable"),
    (Tag(endpoint="furnace", node="nsu=urn:nowhere;s=x", type="Double"),
     "namespace 'urn:nowhere' is not on the server"),
]


def test_bad_tag_is_one_line_naming_the_signal() -> None:
    async def scenario() -> None:
        # One server for all cases (a server takes over a second to build).
        async with plc_server() as (_, _, port):
            for tag, message in BAD_TAGS:
                tags = {**tags_for(), "line1.oxidizer1.bad_signal": tag}
                gw = Gateway({"furnace": endpoint_for(port)}, tags)
                with pytest.raises(TagError) as info:
                    await gw.start()
                text = str(info.value)
                assert "\n" not in text
                assert text.startswith("tag 'line1.oxidizer1.bad_signal' (endpoint 'furnace'")
                assert message in text, text
                assert gw.state("furnace") is EndpointState.STOPPED

    run(scenario())


def test_heartbeat_is_written_while_connected() -> None:
    async def scenario() -> None:
        async with plc_server() as (srv, idx, port):
            hb = Heartbeat(node="ns=2;s=furnace1.Supervisor.Heartbeat", type="UInt32",
                           period_s=0.05)
            gw = Gateway({"furnace": endpoint_for(port, heartbeat=hb)}, tags_for())
            async with gw:
                await asyncio.sleep(0.5)
                count = gw.status("furnace").heartbeats_written
                assert count >= 5
                v = await server_value(srv, idx, "furnace1.Supervisor.Heartbeat")
                assert v.VariantType == ua.VariantType.UInt32 and v.Value >= 5
            after_stop = (await server_value(srv, idx, "furnace1.Supervisor.Heartbeat")).Value
            await asyncio.sleep(0.2)
            still = (await server_value(srv, idx, "furnace1.Supervisor.Heartbeat")).Value
            assert still == after_stop  # no heartbeat once disconnected

    run(scenario())


def test_unreachable_endpoint_fails_start_naming_endpoint_and_signals() -> None:
    async def scenario() -> None:
        port = free_port()  # nothing listens here
        gw = Gateway({"furnace": endpoint_for(port)}, tags_for())
        t0 = time.monotonic()
        with pytest.raises(EndpointUnreachableError) as info:
            await gw.start()
        assert time.monotonic() - t0 < 3.0
        text = str(info.value)
        assert "\n" not in text
        assert f"endpoint 'furnace' (opc.tcp://127.0.0.1:{port}/plc" in text
        assert "line1.oxidizer1.batch_id" in text and "unreachable" in text

    run(scenario())


def test_late_plc_connects_in_background_and_closes_the_gap() -> None:
    async def scenario() -> None:
        port = free_port()
        gw = Gateway({"furnace": endpoint_for(port)}, tags_for())
        await gw.start(require_connected=False)
        try:
            assert gw.state("furnace") is EndpointState.RECONNECTING
            (gap,) = gw.gaps("furnace")
            assert gap.end is None
            marker = gw.latest(PV)
            assert marker is not None and marker.gap and marker.value is None
            t0 = time.monotonic()
            with pytest.raises(NotConnectedError, match="never queued"):
                await gw.write(SP, 500.0)
            assert time.monotonic() - t0 < 0.05  # at once, not after a timeout
            async with plc_server(port) as (srv, idx, _):
                await gw.wait_connected("furnace", 10.0)
                (gap,) = gw.gaps("furnace")
                assert gap.end is not None and gap.end > gap.start
                # The refused write was not kept for later.
                v = await server_value(srv, idx, "furnace1.Temperature.Zone1.SP")
                assert v.Value == 25.0 and srv.writes == []
                assert gw.status("furnace").reconnect_attempts >= 1
        finally:
            await gw.stop()

    run(scenario())
