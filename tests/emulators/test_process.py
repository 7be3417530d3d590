"""``anode-twin plc`` as a real process: prints its URL, serves, stops cleanly, restarts."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import pytest
from asyncua import Client

from connectors.emulators import NAMESPACE_URI
from connectors.emulators.security import ENV_PASSWORDS
from twin.cli import main

CLI = [sys.executable, "-m", "twin.cli"]


def start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([*CLI, "plc", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url:
        proc.kill()
        raise AssertionError(f"no URL printed; stderr: {proc.communicate()[1]}")
    return proc, url


async def read_step(url: str, name: str) -> str:
    async with Client(url) as client:
        ns = await client.get_namespace_index(NAMESPACE_URI)
        node = client.get_node(f"ns={ns};s={name}.StepState.CurrentState")
        return str((await node.read_value()).Text)


def test_port_zero_signal_exit_zero_and_restart_on_the_same_port() -> None:
    proc, url = start("sputter", "--name", "tool7", "--port", "0", "--seed", "3")
    port = int(url.split(":")[2].split("/")[0])
    for sig, again in ((signal.SIGTERM, True), (signal.SIGINT, False)):
        try:
            assert port > 0 and url == f"opc.tcp://127.0.0.1:{port}/anode-twin/tool7"
            assert asyncio.run(asyncio.wait_for(read_step(url, "tool7"), 30)) == "Idle"
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        if again:  # the restart proves the port was released
            proc, url = start("sputter", "--name", "tool7", "--port", str(port))


@pytest.mark.parametrize("args, needle", [
    (["sputter", "--config", "plant_config/powder_line.toml"], "[stations.sputter]"),
    (["furnace", "--set", "stations.oxidizer.plc.zones=0"], "zones"),
    (["furnace", "--name", "1bad"], "--name"),
    (["furnace", "--secure", "--port", "0"], "--secure needs users"),
])
def test_bad_input_is_one_line_and_exit_two(args: list[str], needle: str,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_PASSWORDS.values():
        monkeypatch.delenv(var, raising=False)
    assert main(["plc", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err
