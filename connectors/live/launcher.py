"""Start the emulated PLCs as subprocesses and stop them again, leaving nothing behind.

An emulated PLC dies with the twin that started it, even when the twin is killed with
SIGKILL and cannot stop it: the child is started with ``--parent-pid`` (it stops when its
parent process is no longer the twin) and ``--watch-stdin`` (its standard input is a pipe from
the twin, whose write end only the twin holds; the kernel closes it when the twin dies, and
the PLC stops at end of file). Started from the main thread, the child also asks Linux for
SIGTERM when its parent dies (``--pdeathsig``; not from another thread, because the kernel
sends it when the forking *thread* ends). Each of these ends the PLC through its normal
SIGTERM path. PLCs the twin did not start (``anode-twin run --site``) are never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from twin.errors import TwinError


class LaunchError(TwinError):
    """An emulated PLC did not start (the message names the tool and what it printed)."""


@dataclass
class EmulatorProcess:
    """One emulated PLC running as ``anode-twin plc KIND`` in a child process."""

    kind: str
    name: str
    proc: subprocess.Popen[str]
    url: str
    stderr_tail: list[str] = field(default_factory=list)

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout_s``; return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        return int(self.proc.returncode)


def start_emulator(kind: str, name: str, *, config: Path, time_factor: float, seed: int,
                   port: int = 0, tick_s: float = 0.05, overrides: tuple[str, ...] = (),
                   timeout_s: float = 30.0, truth: str | None = None,
                   truth_log: Path | None = None) -> EmulatorProcess:
    """Start ``anode-twin plc KIND --name NAME --port 0 ...``; wait for its URL line.

    ``truth`` is handed to the PLC as ``--truth`` (the hidden process is the PLC's own
    business; without it the PLC runs the shipped nominal truth).
    """
    cmd = [sys.executable, "-m", "twin.cli", "plc", kind, "--name", name, "--port", str(port),
           "--time-factor", f"{time_factor:g}", "--seed", str(seed), "--config", str(config),
           "--tick", f"{tick_s:g}", "--parent-pid", str(os.getpid()), "--watch-stdin"]
    if threading.current_thread() is threading.main_thread():
        cmd.append("--pdeathsig")
    for item in overrides:
        cmd += ["--set", item]
    if truth is not None:
        cmd += ["--truth", str(truth)]
    if truth_log is not None:
        cmd += ["--truth-log", str(truth_log)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # A new session: a Ctrl-C in the terminal reaches the twin, which stops the PLCs itself
    # (in order, after the run is saved) instead of the PLCs dying first.
    # stdin: the parent-death pipe (nothing is written to it; the twin's death closes it).
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    tail: list[str] = []
    threading.Thread(target=_drain, args=(proc, tail), daemon=True).start()
    url = _read_url(proc, timeout_s)
    if url is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(5)
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        said = "; ".join(tail[-3:]) or "nothing"
        raise LaunchError(f"emulated {kind} PLC '{name}' did not start within {timeout_s:g} s "
                          f"(exit code {proc.returncode}; it said: {said})")
    return EmulatorProcess(kind, name, proc, url, tail)


def _read_url(proc: subprocess.Popen[str], timeout_s: float) -> str | None:
    box: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("opc.tcp://"):
                box.append(line.strip())
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout_s)
    return box[0] if box else None


def _drain(proc: subprocess.Popen[str], tail: list[str]) -> None:
    # Keep the child's stderr pipe from filling up; remember its last lines for errors.
    assert proc.stderr is not None
    for line in proc.stderr:
        tail.append(line.rstrip())
        del tail[:-20]
