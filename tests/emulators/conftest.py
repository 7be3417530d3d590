"""Fixtures: real emulated PLC servers on 127.0.0.1, each in its own thread and event loop.

A server starts in ~2 s, so each is started once per session; tests drive it through a real asyncua
client in their own event loop, exactly as a separate program would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from asyncua import Client, Node

from connectors.emulators import NAMESPACE_URI, EmulatorServer, build_server
from connectors.emulators.runner import quiet_asyncua

T = TypeVar("T")

#: Short recipes and an instant lab, so a batch and its measurement take ~1 s of wall time.
FAST_FURNACE = ["stations.oxidizer.load_unload_h=0.05", "stations.lab.turnaround_h=0.0",
                "stations.lab.measure_h=0.05", "stations.oxidizer.plc.heartbeat_timeout_s=1.0"]
# Every step lasts longer than one scan (tick × time factor = 50 s), so each is published.
FAST_SPUTTER = ["stations.sputter.pump_down_min=5.0", "stations.sputter.vent_min=5.0",
                "recipes.sputter.film_nm=20.0", "recipes.sputter.cap_nm=10.0",
                "stations.lab.turnaround_h=0.0",
                "stations.lab.measure_h=0.05"]


@dataclass
class Running:
    """A server running in a background thread."""

    server: EmulatorServer
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.server.url

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on the server's loop (for direct, server-side inspection)."""
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(30)


def start_in_thread(server: EmulatorServer) -> Running:
    quiet_asyncua()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    errors: list[BaseException] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(60)
    if errors:
        raise errors[0]
    return Running(server, loop, thread)


def stop_in_thread(running: Running) -> None:
    asyncio.run_coroutine_threadsafe(running.server.stop(), running.loop).result(30)
    running.loop.call_soon_threadsafe(running.loop.stop)
    running.thread.join(10)


@pytest.fixture(scope="session")
def furnace() -> Iterator[Running]:
    running = start_in_thread(build_server("furnace", port=0, time_factor=2000.0, seed=7,
                                           tick_s=0.05, overrides=FAST_FURNACE))
    yield running
    stop_in_thread(running)


@pytest.fixture(scope="session")
def sputter() -> Iterator[Running]:
    running = start_in_thread(build_server("sputter", port=0, time_factor=1000.0, seed=7,
                                           tick_s=0.05, overrides=FAST_SPUTTER))
    yield running
    stop_in_thread(running)


def run(coro: Awaitable[T]) -> T:
    """Run a client scenario with a hard timeout (a hung server fails, never hangs CI)."""
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 60)

    return asyncio.run(bounded())


class Tool:
    """Client-side helper: NodeIds by the documented scheme."""

    def __init__(self, client: Client, ns: int, name: str) -> None:
        self.client, self.ns, self.name = client, ns, name

    def node(self, path: str) -> Node:
        return self.client.get_node(f"ns={self.ns};s={self.name}.{path}")

    async def call(self, folder: str, method: str, *args: Any) -> list[Any]:
        out = await self.node(folder).call_method(f"{self.ns}:{method}", *args)
        return out if isinstance(out, list) else [out]

    async def wait_for(self, path: str, predicate: Callable[[Any], bool],
                       timeout_s: float = 20.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            value = await self.node(path).read_value()
            if predicate(value):
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{path} still {value!r} after {timeout_s} s")
            await asyncio.sleep(0.05)


async def connect(client: Client, name: str) -> Tool:
    ns = await client.get_namespace_index(NAMESPACE_URI)
    return Tool(client, ns, name)
