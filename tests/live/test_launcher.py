"""Emulated PLCs die with the twin that started them, even after ``kill -9`` (real processes)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from twin.config import DEFAULT_PLANT

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process semantics")

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie nobody reaped yet counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_gone(pid: int, timeout_s: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if not _alive(pid):
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.parametrize("in_thread", [False, True], ids=["main-thread", "worker-thread"])
def test_emulator_dies_with_a_killed_twin(in_thread: bool) -> None:
    # A stand-in for the twin: starts one PLC (from the main thread or, as anode-twin run
    # does, from a worker thread), reports it and sleeps until it is killed.
    start = (f"threading.Thread(target=lambda: box.append(start()), daemon=True).start()\n"
             f"while not box: time.sleep(0.01)\n" if in_thread else "box.append(start())\n")
    code = textwrap.dedent("""
        import json, sys, threading, time
        from pathlib import Path
        from connectors.live.launcher import start_emulator
        box = []
        def start():
            return start_emulator("furnace", "furnace1", config=Path(sys.argv[1]),
                                  time_factor=100, seed=1)
        """) + start + textwrap.dedent("""
        e = box[0]
        print(json.dumps({"pid": e.proc.pid, "url": e.url}), flush=True)
        time.sleep(600)
        """)
    parent = subprocess.Popen([sys.executable, "-c", code, str(DEFAULT_PLANT)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    child = None
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line, f"the parent did not start a PLC (exit code {parent.poll()})"
        info = json.loads(line)
        child, port = int(info["pid"]), urlparse(info["url"]).port
        assert port is not None and _alive(child) and not _port_free(port)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        took = _wait_gone(child, 5.0)
        assert took is not None, "the emulated PLC outlived the twin that started it"
        assert took < 3.0, took
        t0 = time.monotonic()
        while not _port_free(port) and time.monotonic() - t0 < 3.0:
            time.sleep(0.05)
        assert _port_free(port), f"port {port} still held"
    finally:
        _kill(parent.pid)
        if child is not None:
            _kill(child)


def test_hand_started_plc_survives_its_parents_death(tmp_path: Path) -> None:
    # ``anode-twin plc`` run by hand (no watch flags) behaves as before: the death of the
    # process that started it (here a shell-like parent, killed -9) does not stop it.
    out = tmp_path / "plc.out"
    code = textwrap.dedent("""
        import subprocess, sys, time
        with open(sys.argv[1], "w") as out:
            p = subprocess.Popen([sys.executable, "-m", "twin.cli", "plc", "furnace",
                                  "--port", "0"], stdout=out, stderr=subprocess.DEVNULL,
                                 stdin=subprocess.PIPE, start_new_session=True)
        print(p.pid, flush=True)
        time.sleep(600)
        """)
    parent = subprocess.Popen([sys.executable, "-c", code, str(out)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    plc = None
    try:
        assert parent.stdout is not None
        plc = int(parent.stdout.readline())
        t0 = time.monotonic()
        while "opc.tcp://" not in out.read_text() and time.monotonic() - t0 < 30:
            time.sleep(0.05)
        assert "opc.tcp://" in out.read_text(), "the PLC did not start"
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        time.sleep(2.0)
        assert _alive(plc), "a hand-started PLC stopped when an unrelated process died"
        os.kill(plc, signal.SIGTERM)
        assert _wait_gone(plc, 10.0) is not None
    finally:
        _kill(parent.pid)
        if plc is not None:
            _kill(plc)


def test_launcher_stop_still_exits_cleanly() -> None:
    from connectors.live.launcher import start_emulator

    plc = start_emulator("furnace", "furnace1", config=DEFAULT_PLANT, time_factor=100, seed=1)
    assert plc.stop() == 0
