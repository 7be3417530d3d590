"""PLC alarms in the live twin: a real emulated furnace PLC (subprocess), the gateway's event
subscription, the session's journal and live table, the twin's OPC UA server, the export.

A heater runaway injected on the PLC raises its OverTemperature (and then InterlockTrip)
alarms as OPC UA events; the twin journals them, shows them in the live table, publishes them
on its server, where an operator acknowledges one (recorded under the session's user) and a
viewer or an anonymous session is refused; ``alarms.parquet`` holds them.
"""

from __future__ import annotations

import asyncio
import io
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from asyncua import Client, ua

from connectors.live.launcher import EmulatorProcess, start_emulator
from connectors.live.session import LiveOptions, LiveSession, _write, emulated_site
from connectors.live.table import LiveTable
from connectors.net import free_port
from connectors.security_common import Account
from connectors.twin_server import ServerSecurity
from twin.config import DEFAULT_PLANT, load_plant
from twin.store.journal import open_journal, read_alarms

PW = {"alice": "al1ce-pw", "vera": "v3ra-pw"}


def _furnace(seed: int, port: int, time_factor: float) -> EmulatorProcess:
    return start_emulator("furnace", "furnace1", config=DEFAULT_PLANT, time_factor=time_factor,
                          seed=seed, port=port)


def _session(tmp_path: Path, url: str) -> LiveSession:
    cfg = load_plant()
    endpoints, tags = emulated_site(cfg, {"furnace1": url})
    security = ServerSecurity({
        "alice": Account.with_password("alice", "operator", PW["alice"]),
        "vera": Account.with_password("vera", "viewer", PW["vera"])})
    opts = LiveOptions(seed=5, time_factor=1200, hours=5, warmup_days=2, emulate=False,
                       out=tmp_path / "run", server=True, quiet=True,
                       server_security=security)
    return LiveSession(cfg, opts, endpoints=endpoints, tags=tags)


def _client(url: str, user: str | None = None) -> Client:
    client = Client(url, timeout=10)
    if user:
        client.set_user(user)
        client.set_password(PW[user])
    return client


async def _ack(url: str, user: str | None, alarm_id: int) -> Any:
    async with _client(url, user) as client:
        plant = client.get_node("ns=2;s=line1")
        return await plant.call_method("2:AcknowledgeAlarm",
                                       ua.Variant(alarm_id, ua.VariantType.UInt32))


def test_plc_alarm_journaled_published_and_acknowledged(tmp_path: Path) -> None:
    plc = _furnace(21, free_port(), 1200)
    session = _session(tmp_path, plc.url)
    shown = io.StringIO()
    session.table = LiveTable(out=shown)
    box: dict[str, Any] = {}

    async def operator() -> None:
        while session.live_from == math.inf or not session.twin_url:
            await asyncio.sleep(0.02)
        async with Client(plc.url) as client:  # the fault, on the PLC itself
            sim = client.get_node("ns=2;s=furnace1.Simulation")
            status, _ = await sim.call_method(
                "2:InjectFault", ua.Variant("HeaterRunaway", ua.VariantType.String))
            assert status.is_good()
        # The alarm reaches the twin's server: find it there by browsing.
        async with _client(session.twin_url) as client:
            folder = client.get_node("ns=2;s=line1.Alarms")
            while True:
                alarms = await folder.get_children()
                kinds = {}
                for obj in alarms:
                    aid = await client.get_node(f"{obj.nodeid.to_string()}.AlarmId").read_value()
                    kind = await client.get_node(f"{obj.nodeid.to_string()}.Kind").read_value()
                    kinds[kind] = aid
                if "OverTemperature" in kinds:
                    break
                await asyncio.sleep(0.05)
            aid = kinds["OverTemperature"]
            state = client.get_node(f"ns=2;s=line1.Alarms.{aid}.State")
            box["before"] = await state.read_value()
            source = await client.get_node(f"ns=2;s=line1.Alarms.{aid}.Station").read_value()
            box["station"] = source
        for who in (None, "vera"):
            with pytest.raises(ua.UaStatusCodeError) as info:
                await _ack(session.twin_url, who, aid)
            box.setdefault("refused", []).append(type(info.value).__name__)
        box["answer"] = await _ack(session.twin_url, "alice", aid)
        async with _client(session.twin_url) as client:
            box["after"] = await client.get_node(
                f"ns=2;s=line1.Alarms.{aid}.State").read_value()
            box["by"] = await client.get_node(
                f"ns=2;s=line1.Alarms.{aid}.AckedBy").read_value()
        box["aid"] = aid
        async with Client(plc.url) as client:
            sim = client.get_node("ns=2;s=furnace1.Simulation")
            await sim.call_method("2:ClearFaults")

    async def main() -> Any:
        task = asyncio.get_running_loop().create_task(operator())
        result, interrupted = await session.run()
        done = task.done()
        if not done:
            task.cancel()
        else:
            task.result()  # an assertion inside the operator fails the test
        return result, interrupted, done

    try:
        result, interrupted, done = asyncio.run(asyncio.wait_for(main(), 180))
    finally:
        plc.stop()
    assert done, "the operator never saw the alarm on the twin's server"
    assert box["before"] == "Active/Unacknowledged"
    assert box["refused"] == ["BadUserAccessDenied", "BadUserAccessDenied"]
    assert box["answer"].startswith("Good:") and "alice" in box["answer"]
    assert box["after"] in ("Active/Acknowledged", "Cleared") and box["by"] == "alice"
    assert box["station"] == "line1.oxidizer1"
    # The gateway saw the PLC's events; the journal has the alarm and who acknowledged it.
    gw = session.gateway
    assert gw is not None
    assert any(a.kind == "OverTemperature" and a.active for a in gw.alarm_log)
    folder = _write(session, result, session.opts, interrupted, [])
    db = open_journal(folder)
    try:
        journal_alarms = read_alarms(db).set_index("alarm_id")
    finally:
        db.close()
    row = journal_alarms.loc[box["aid"]]
    assert row["kind"] == "OverTemperature" and row["source"] == "furnace1"
    assert row["station"] == "line1.oxidizer1" and row["severity"] == 800
    assert row["acknowledged_by"] == "alice" and row["acknowledged_at"] >= row["raised_at"]
    assert row["sim_time_s"] >= session.live_from
    exported = pd.read_parquet(folder / "alarms.parquet")
    assert box["aid"] in set(exported["alarm_id"])
    assert exported.set_index("alarm_id").loc[box["aid"], "acknowledged_by"] == "alice"
    # The live table showed it, and the acknowledgement.
    text = shown.getvalue()
    assert "Alarm" in text and "OverTemperature" in text
    assert f"alarm {box['aid']} " in text and "acknowledged by alice" in text
