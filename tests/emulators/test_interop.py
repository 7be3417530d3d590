"""Interoperability: node-opcua's client (an OPC UA stack nobody here wrote) drives the furnace.

Needs Node and ``npm install`` in ``tests/interop`` (``.ci/run`` does it); skipped with the
reason otherwise, failed in CI (``CI=true``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.emulators.conftest import Running, run

INTEROP = Path(__file__).resolve().parents[1] / "interop"


def node_or_skip() -> str:
    """Node with node-opcua installed; outside CI a missing one skips the test, in CI
    (CI=true) it fails it (an interop test must run there)."""
    miss = pytest.fail if os.environ.get("CI") == "true" else pytest.skip
    node = shutil.which("node")
    if node is None:
        miss("node is not installed")
    if not (INTEROP / "node_modules" / "node-opcua-client").is_dir():
        miss("node-opcua-client is not installed: run `npm install` in tests/interop")
    assert node is not None
    return node


def test_node_opcua_browses_reads_writes_and_subscribes(furnace: Running) -> None:
    node = node_or_skip()

    async def idle() -> None:  # a batch left running by another test would lock setpoints
        from asyncua import Client

        from tests.emulators.conftest import connect
        async with Client(furnace.url) as client:
            tool = await connect(client, "furnace1")
            await tool.wait_for("MachineryItemState.CurrentState",
                                lambda v: v.Text == "NotExecuting")

    run(idle())
    proc = subprocess.run([node, "emulator_client.mjs", furnace.url, "furnace1"], cwd=INTEROP,
                          capture_output=True, text=True, timeout=60)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, proc.stdout + proc.stderr
    out = json.loads(lines[-1])
    assert proc.returncode == 0, out
    assert out["namespaceIndex"] >= 2
    assert {"Identification", "ProcessValues", "BatchControl", "Alarms",
            "Metrology"} <= set(out["machineChildren"])
    assert out["zoneChildren"] == ["AnalogSignal", "ProcessValueSetpoint", "SignalTag"]
    assert out["unit"] == "°C" and isinstance(out["pv"], float)
    assert out["heartbeat"] == "Good"
    assert out["writeInRange"] == "Good"
    assert out["writeOutOfRange"] == "BadOutOfRange"
    assert out["writeWrongType"] == "BadTypeMismatch"
    assert out["spAfter"] == 455.5
    assert out["adjustHoldCall"] == "Good" and out["adjustHoldStatus"] == "BadInvalidState"
    assert out["notifications"] >= 5 and out["distinctValues"] >= 2
