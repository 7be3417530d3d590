"""The twin's own OPC UA server, read by a real asyncua client over loopback."""

from __future__ import annotations

import asyncio
import math

import pytest
from asyncua import Client, ua

from connectors.net import free_port
from connectors.security_common import Account
from connectors.twin_server import ServerSecurity, TwinServer

STATIONS = ["line1.oxidizer1", "line1.coater1"]


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_publish_browse_read_and_read_only() -> None:
    async def scenario() -> None:
        url = f"opc.tcp://127.0.0.1:{free_port()}/anode-twin"
        async with TwinServer(url, "line1", STATIONS, keep_batches=3) as srv:
            await srv.publish_station("line1.oxidizer1", {
                "BatchId": "OX-0001", "PredictedThickness_nm": 9.5, "LowerBound_nm": 8.0,
                "UpperBound_nm": 11.0, "ControllerState": "closed_loop"})
            async with Client(url) as client:
                ns = await client.get_namespace_index("urn:anode-twin:twin")
                node = await client.nodes.objects.get_child(
                    [f"{ns}:line1", f"{ns}:oxidizer1", f"{ns}:PredictedThickness_nm"])
                assert await node.read_value() == pytest.approx(9.5)
                by_id = client.get_node(srv.node_id("line1.oxidizer1", "BatchId"))
                assert await by_id.read_value() == "OX-0001"
                untouched = client.get_node(srv.node_id("line1.coater1", "Reliability"))
                assert math.isnan(await untouched.read_value())
                with pytest.raises(ua.UaStatusCodeError) as info:
                    await node.write_value(ua.Variant(1.0, ua.VariantType.Double))
                assert "BadNotWritable" in type(info.value).__name__ or \
                    "NotWritable" in str(info.value) or "AccessDenied" in str(info.value)
                assert await node.read_value() == pytest.approx(9.5)

    _run(scenario())


def test_batch_ring_reuses_oldest_slot() -> None:
    async def scenario() -> None:
        url = f"opc.tcp://127.0.0.1:{free_port()}/anode-twin"
        async with TwinServer(url, "line1", STATIONS, keep_batches=2) as srv:
            for i in range(3):
                await srv.publish_batch(f"B{i}", {"PredictedThickness_nm": float(i)})
            await srv.publish_batch("B1", {"LabThickness_nm": 1.5})
            async with Client(url) as client:
                ids = []
                for slot in range(2):
                    n = client.get_node(f"ns={srv.namespace_index};s=line1.Batches.{slot:03d}"
                                        ".BatchId")
                    ids.append(await n.read_value())
                assert sorted(ids) == ["B1", "B2"]  # B0 was the oldest and was replaced
                slot_b1 = ids.index("B1")
                lab = client.get_node(f"ns={srv.namespace_index};s=line1.Batches."
                                      f"{slot_b1:03d}.LabThickness_nm")
                assert await lab.read_value() == pytest.approx(1.5)

    _run(scenario())


def test_unknown_station_or_variable_is_an_error() -> None:
    async def scenario() -> None:
        url = f"opc.tcp://127.0.0.1:{free_port()}/anode-twin"
        async with TwinServer(url, "line1", STATIONS) as srv:
            with pytest.raises(KeyError, match="no station"):
                await srv.publish_station("line1.mill9", {"State": "x"})
            with pytest.raises(KeyError, match="Thickness"):
                await srv.publish_station("line1.oxidizer1", {"Thickness": 1.0})

    _run(scenario())


def test_proposal_methods_call_back_with_the_sessions_user() -> None:
    decisions: list[tuple[str, bool, str]] = []

    async def decide(pid: str, accept: bool, who: str) -> str:
        decisions.append((pid, accept, who))
        return "accepted" if accept else "rejected"

    async def scenario() -> None:
        url = f"opc.tcp://127.0.0.1:{free_port()}/anode-twin"
        sec = ServerSecurity({"ann": Account.with_password("ann", "operator", "ann-pw")})
        async with TwinServer(url, "line1", STATIONS, on_proposal=decide, security=sec) as srv:
            client = Client(url)
            client.set_user("ann")
            client.set_password("ann-pw")
            async with client:
                ns = srv.namespace_index
                plant = client.get_node(f"ns={ns};s=line1")
                # ``who`` is kept in the signature and ignored: the session is "ann".
                out = await plant.call_method(f"{ns}:AcceptProposal", "P-7", "alice")
                assert out == "accepted"
                out = await plant.call_method(f"{ns}:RejectProposal", "P-8", " ")
                assert out == "rejected"
            async with Client(url) as anonymous:
                with pytest.raises(ua.UaStatusCodeError):
                    await anonymous.get_node(f"ns={ns};s=line1").call_method(
                        f"{ns}:AcceptProposal", "P-9", "ann")

    _run(scenario())
    assert decisions == [("P-7", True, "ann"), ("P-8", False, "ann")]
