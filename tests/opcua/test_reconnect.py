"""A PLC process killed and restarted on the same port: reconnect, gap, nothing replayed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opcua_kit import PLC_SCRIPT, endpoint_for, run, tags_for

from connectors.net import free_port
from connectors.opcua import EndpointState, Gateway, NotConnectedError, Sample
from twin.config.tags import Heartbeat

SP = "line1.oxidizer1.temperature_sp"
PV = "line1.oxidizer1.temperature_pv"
SP_NODE = "furnace1.Temperature.Zone1.SP"
HB_NODE = "furnace1.Supervisor.Heartbeat"


def start_plc(port: int, log: Path) -> subprocess.Popen[str]:
    """Start the test PLC as a process; return once it accepts connections."""
    proc = subprocess.Popen([sys.executable, str(PLC_SCRIPT), "--port", str(port),
                             "--log", str(log)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until READY (or EOF if it died)
    if line.strip() != "READY":
        proc.kill()
        raise RuntimeError(f"test PLC did not start: {line!r}")
    return proc


def written(log: Path, start_line: int = 0) -> list[tuple[str, str]]:
    """(node, value) of every write the PLC processes accepted, from ``start_line`` on."""
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8").splitlines()[start_line:]
    return [(name, value) for name, value in (ln.split(" ", 1) for ln in lines)]


async def wait_for(pred, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_plc_restart_reconnects_with_backoff_and_replays_nothing(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "plc_writes.log"
    procs = [start_plc(port, log)]
    try:
        async def scenario() -> None:
            hb = Heartbeat(node=f"ns=2;s={HB_NODE}", type="UInt32", period_s=0.1)
            cfg = endpoint_for(port, heartbeat=hb, reconnect_min_s=0.2, reconnect_max_s=0.8)
            async with Gateway({"furnace": cfg}, tags_for()) as gw:
                assert (await gw.write(SP, 850.0)).ok
                assert (SP_NODE, "850.0") in written(log)

                # Kill the PLC process: the loss is seen, a gap opens, a marker is emitted.
                procs[0].kill()
                procs[0].wait()
                await wait_for(lambda: not gw.connected("furnace"), 5.0)
                t0 = time.monotonic()
                with pytest.raises(NotConnectedError, match="never queued"):
                    await gw.write(SP, 900.0)
                assert time.monotonic() - t0 < 0.05  # at once
                (gap,) = gw.gaps("furnace")
                assert gap.end is None
                marker = gw.latest(PV)
                assert marker is not None and marker.gap and marker.value is None

                # Exponential back-off while the PLC is down: 0.2, 0.4, 0.8, 0.8, ...
                await asyncio.sleep(1.5)
                status = gw.status("furnace")
                assert gw.state("furnace") is EndpointState.RECONNECTING
                assert status.reconnect_attempts >= 2
                expected = (0.2, 0.4, 0.8, 0.8, 0.8)
                assert status.backoff_delays == pytest.approx(
                    expected[: len(status.backoff_delays)])
                assert "unreachable" in (status.last_error or "")

                # The same PLC restarts on the same port (fresh process, fresh values).
                restart_line = len(written(log))
                procs.append(await asyncio.to_thread(start_plc, port, log))
                await gw.wait_connected("furnace", 10.0)
                (gap,) = gw.gaps("furnace")
                assert gap.end is not None and gap.end > gap.start
                # In the stream: ..., the gap marker, then values of the new connection.
                after_marker = await asyncio.wait_for(_after_gap_marker(gw, PV), 3.0)
                assert after_marker.ok and after_marker.value == 24.5
                assert after_marker.received_ts >= gap.end
                await asyncio.sleep(0.4)  # heartbeats resume on the new connection

                # Nothing earlier was re-written: neither 850 (written before the crash) nor
                # 900 (refused during the outage); the new PLC keeps its own initial value.
                after = written(log, restart_line)
                assert [v for n, v in after if n == SP_NODE] == []
                assert (await gw.read(SP)).value == 25.0
                assert any(n == HB_NODE for n, _ in after)

                kinds = [e.kind for e in gw.event_log]
                order = ["connected", "disconnected", "gap_start", "reconnect_attempt",
                         "connected", "gap_end"]
                it = iter(kinds)
                assert all(k in it for k in order), kinds  # in this order
            assert gw.status("furnace").connects == 2

        run(scenario(), timeout=40)
    finally:
        for p in procs:
            p.kill()
            p.wait()


async def _after_gap_marker(gw: Gateway, signal: str) -> Sample:
    """The first sample of ``signal`` that follows its gap marker in the update stream."""
    seen_marker = False
    async for s in gw.updates():
        if s.signal != signal:
            continue
        if s.gap:
            seen_marker = True
        elif seen_marker:
            return s
    raise AssertionError("update stream ended")
