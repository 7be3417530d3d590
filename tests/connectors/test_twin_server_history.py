"""HistoryRead of the twin's published values and its alarms, backed by the journal.

Real asyncua server and clients on 127.0.0.1 and a real SQLite journal file: the values the
twin publishes are read back with HistoryRead (ReadRaw), also by a new server on the same
journal after the first one stopped (a historian's back-fill after an outage of the twin);
alarms are acknowledged by operators only, under the session's identity.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, ua

from connectors.net import free_port
from connectors.security_common import Account
from connectors.twin_server import ServerSecurity, TwinServer
from twin.store.journal import Journal, read_alarm, read_history

STATION = "line1.oxidizer1"
PW = {"alice": "al1ce-pw", "vera": "v3ra-pw"}


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def _security() -> ServerSecurity:
    return ServerSecurity(accounts={
        "alice": Account.with_password("alice", "operator", PW["alice"]),
        "vera": Account.with_password("vera", "viewer", PW["vera"])})


def _client(url: str, user: str | None = None) -> Client:
    client = Client(url, timeout=10)
    if user:
        client.set_user(user)
        client.set_password(PW[user])
    return client


def _server(url: str, journal: Journal, sim: list[float]) -> TwinServer:
    return TwinServer(url, "line1", [STATION], security=_security(), journal=journal,
                      sim_clock=lambda: sim[0], keep_batches=3)


def test_history_read_from_the_journal_and_back_fill_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    url = f"opc.tcp://127.0.0.1:{free_port()}/anode-twin"
    published = [9.5, 9.75, 10.25, 10.5]
    sim = [1000.0]
    box: dict[str, Any] = {}

    async def first() -> None:
        journal = Journal(path)
        t0 = datetime.now(timezone.utc) - timedelta(seconds=1)
        async with _server(url, journal, sim) as srv:
            for i, v in enumerate(published):
                sim[0] = 1000.0 + 60.0 * i
                await srv.publish_station(STATION, {"PredictedThickness_nm": v,
                                                    "LowerBound_nm": v - 1.0,
                                                    "LastAction": f"written {i}",
                                                    "UpdatedAt_s": sim[0]})
                await asyncio.sleep(0.02)
            node_id = srv.node_id(STATION, "PredictedThickness_nm")
            live = await srv._server.get_node(node_id).read_data_value()
            await srv.publish_station(STATION, {"PredictedThickness_nm": published[-1]})  # repeat
            await srv.publish_batch("C000001", {"PredictedThickness_nm": 9.9})
            await srv.publish_batch("C000001", {"LabThickness_nm": 10.1})
            async with _client(url) as client:  # anonymous, loopback
                node = client.get_node(node_id)
                assert (await node.read_data_value()).Value.Value == published[-1]
                level = await node.read_attribute(ua.AttributeIds.AccessLevel)
                assert level.Value.Value & ua.AccessLevel.HistoryRead.mask
                assert (await node.read_attribute(ua.AttributeIds.Historizing)).Value.Value
                t1 = datetime.now(timezone.utc) + timedelta(seconds=1)
                hist = await node.read_raw_history(t0, t1)
                assert [dv.Value.Value for dv in hist] == published  # the repeat not again
                times = [dv.SourceTimestamp for dv in hist]
                assert times == sorted(times) and t0 <= times[0] and times[-1] <= t1
                # A value's history time is the server timestamp it was published with.
                assert abs((times[-1] - live.SourceTimestamp).total_seconds()) < 1e-5
                # Limits and reverse order (start after end: newest first).
                two = await node.read_raw_history(t0, t1, numvalues=2)
                assert [dv.Value.Value for dv in two] == published[:2]
                rev = await node.read_raw_history(t1, t0)
                assert [dv.Value.Value for dv in rev] == published[::-1]
                action = client.get_node(srv.node_id(STATION, "LastAction"))
                texts = [dv.Value.Value for dv in await action.read_raw_history(t0, t1)]
                assert texts == [f"written {i}" for i in range(4)]
                lab = client.get_node("ns=2;s=line1.Batches.000.LabThickness_nm")
                labs = [dv.Value.Value for dv in await lab.read_raw_history(t0, t1)]
                assert math.isnan(labs[0]) and labs[1:] == [10.1]
            box.update(t0=t0, t1=datetime.now(timezone.utc) + timedelta(seconds=1),
                       times=times)
        journal.close()

    async def second() -> None:
        # The twin was down; a new server on the same journal (nothing published yet)
        # serves what the first one published: viewer and anonymous alike.
        journal = Journal(path)
        async with _server(url, journal, sim) as srv:
            for user in (None, "vera"):
                async with _client(url, user) as client:
                    node = client.get_node(srv.node_id(STATION, "PredictedThickness_nm"))
                    assert math.isnan(await node.read_value())  # nothing live yet
                    hist = await node.read_raw_history(box["t0"], box["t1"])
                    assert [dv.Value.Value for dv in hist] == published
                    assert [dv.SourceTimestamp for dv in hist] == box["times"]
                    # Nobody rewrites history.
                    with pytest.raises(ua.UaStatusCodeError):
                        await client.uaclient.history_update(ua.HistoryUpdateParameters(
                            HistoryUpdateDetails=[ua.UpdateDataDetails(
                                NodeId=node.nodeid,
                                PerformInsertReplace=ua.PerformUpdateType.Insert)]))
        journal.close()

    _run(first())
    _run(second())
    rows = read_history(Journal(path).db, f"{STATION}.PredictedThickness_nm", None, None)
    assert [v for _, v, _ in rows] == published
    assert [s for _, _, s in rows] == [1000.0, 1060.0, 1120.0, 1180.0]  # simulation time


def test_alarm_acknowledged_by_an_operator_only(tmp_path: Path) -> None:
    url = f"opc.tcp://127.0.0.1:{free_port()}/anode-twin"
    journal = Journal(tmp_path / "journal.sqlite")
    notes: list[str] = []

    async def scenario() -> None:
        got = journal.alarm(endpoint="furnace1", station=STATION, source="furnace1",
                            kind="OverTemperature", message="zone1 too hot", severity=800,
                            active=True, t=1.7e9, sim_time_s=5.0)
        assert got is not None
        aid = got[0]
        srv = TwinServer(url, "line1", [STATION], security=_security(), journal=journal,
                         on_note=notes.append)
        async with srv:
            await srv.publish_alarm(aid)
            async with _client(url) as client:
                state = client.get_node(srv.alarm_node_id(aid, "State"))
                assert await state.read_value() == "Active/Unacknowledged"
                plant = client.get_node("ns=2;s=line1")
                with pytest.raises(ua.UaStatusCodeError) as info:
                    await plant.call_method("2:AcknowledgeAlarm",
                                            ua.Variant(aid, ua.VariantType.UInt32))
                assert type(info.value).__name__ == "BadUserAccessDenied"
            async with _client(url, "vera") as client:
                obj = client.get_node(f"ns=2;s=line1.Alarms.{aid}")
                with pytest.raises(ua.UaStatusCodeError) as info:
                    await obj.call_method("2:Acknowledge")
                assert type(info.value).__name__ == "BadUserAccessDenied"
            assert read_alarm(journal.db, aid)["acknowledged_by"] is None  # type: ignore[index]
            async with _client(url, "alice") as client:
                plant = client.get_node("ns=2;s=line1")
                answer = await plant.call_method("2:AcknowledgeAlarm",
                                                 ua.Variant(aid, ua.VariantType.UInt32))
                assert answer.startswith("Good:") and "alice" in answer
                state = client.get_node(srv.alarm_node_id(aid, "State"))
                assert await state.read_value() == "Active/Acknowledged"
                with pytest.raises(ua.UaStatusCodeError):  # once only
                    await plant.call_method("2:AcknowledgeAlarm",
                                            ua.Variant(aid, ua.VariantType.UInt32))
                journal.alarm(endpoint="furnace1", station=STATION, source="furnace1",
                              kind="OverTemperature", message="OverTemperature cleared",
                              severity=100, active=False, t=1.7e9 + 60)
                await srv.publish_alarm(aid)
                assert await state.read_value() == "Cleared"
                assert await client.get_node(srv.alarm_node_id(aid, "AckedBy")).read_value() \
                    == "alice"

    _run(scenario())
    row = read_alarm(journal.db, aid_of(journal))
    assert row is not None and row["acknowledged_by"] == "alice"
    assert row["acknowledged_at"] is not None and row["cleared_at"] == 1.7e9 + 60
    assert notes and "acknowledged by alice" in notes[0]


def aid_of(journal: Journal) -> int:
    return int(journal.db.execute("SELECT MAX(alarm_id) FROM alarms").fetchone()[0])
