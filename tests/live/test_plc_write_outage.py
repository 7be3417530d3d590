"""A PLC killed (kill -9) while the twin downloads a batch's setpoints, and restarted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pandas as pd

from connectors.live.launcher import EmulatorProcess
from connectors.live.session import _write
from connectors.net import free_port
from twin.control.audit import verify_audit

from .test_live_run import _furnace, _session


def test_plc_killed_during_a_setpoint_write_and_restarted(tmp_path: Path) -> None:
    port = free_port()
    box: dict[str, Any] = {}

    def start() -> EmulatorProcess:
        return _furnace(9, port, 2400)

    box["plc"] = start()
    # Aim thicker than the warm-up learnt: the first live batches get a longer hold written.
    session = _session(tmp_path, box["plc"].url, seed=3, time_factor=2400, hours=24,
                       server=False, overrides=("control.aim_nm=11",))
    written: list[tuple[str, str]] = []

    async def run() -> tuple[Any, bool]:
        task = asyncio.create_task(session.run())
        while session.gateway is None:
            await asyncio.sleep(0.01)
        gw = session.gateway
        original = gw.write

        async def write(signal_name: str, value: Any, **kw: Any) -> Any:
            # The first setpoint the live twin downloads: the PLC dies while it is sent.
            if session.live[0] and "killed" not in box and signal_name.endswith("_sp"):
                box["killed"] = signal_name
                os.kill(box["plc"].proc.pid, signal.SIGKILL)
                box["plc"].proc.wait(10)

                def restart() -> None:
                    time.sleep(1.0)  # the outage
                    box["plc"] = start()
                session.spawn(asyncio.to_thread(restart))
            written.append((signal_name, repr(value)))
            return await original(signal_name, value, **kw)

        gw.write = write  # type: ignore[method-assign]
        return await task

    try:
        result, interrupted = asyncio.run(run())
        out = _write(session, result, session.opts, interrupted, [])
    finally:
        box["plc"].stop()
    assert "killed" in box and not interrupted
    b = pd.read_parquet(out / "batches.parquet")
    live = b[b["live_equipment"].astype(bool) & (b["unit_kind"] == "charge")].sort_values(
        "start_s")
    first = live.iloc[0]
    # The batch whose download the PLC died in did not run: aborted with the write's failure,
    # held (never released on a prediction), and never downloaded again (no replay).
    assert first["step_status"] == "aborted"
    assert first["disposition"] != "release" or pd.notna(first["measured_oxide_nm"])
    audit = [json.loads(x) for x in (out / "control_audit.jsonl").read_text().splitlines()]
    mine = [a for a in audit if a["batch_id"] == first["unit_id"] and a["kind"] == "write"
            and "/hold" not in a["proposal_id"]]
    assert all(a["result"] != "ok" for a in mine), mine  # never confirmed: not ok
    if mine:
        assert mine[0]["result"] == "pending" and mine[-1]["result"].startswith("failed: ")
    # The PLC came back and the line went on: a later batch ran to the end on it (one
    # refused while the endpoint was still reconnecting is aborted the same way).
    assert (live.iloc[1:]["step_status"] == "ok").any(), live[["unit_id", "step_status"]]
    gw = session.gateway
    assert gw is not None and gw.gaps("furnace1")
    assert verify_audit(out) == []
