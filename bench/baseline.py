"""The bare asyncua server the OPC UA benchmarks measure against (one Double variable).

Run in a child process by ``bench/plc.py`` and ``bench/live.py`` so both baselines are the same
server: it prints its URL and serves until SIGINT/SIGTERM (or a line / EOF on stdin when
``stop_on_stdin``). With ``scan_s`` it changes the variable on that scan, like an emulator.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading

from asyncua import Server, ua


def stop_on_stdin(stop: asyncio.Event) -> None:
    """Set ``stop`` when a line (or EOF: the parent is gone) arrives on stdin.

    A daemon thread, not the loop's executor: asyncio.run would wait for a blocked read.
    """
    loop = asyncio.get_running_loop()

    def read() -> None:
        sys.stdin.readline()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=read, daemon=True).start()


async def bare_server(port: int, *, scan_s: float | None = None,
                      stop_with_stdin: bool = False) -> None:
    """Serve ``opc.tcp://127.0.0.1:PORT/bare`` with the writable variable ``ns=2;s=x``."""
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    server = Server()
    await server.init()
    url = f"opc.tcp://127.0.0.1:{port}/bare"
    server.set_endpoint(url)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace("urn:bench:bare")
    var = await server.nodes.objects.add_variable(f"ns={ns};s=x", f"{ns}:x", 0.0,
                                                  varianttype=ua.VariantType.Double)
    await var.set_writable()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if stop_with_stdin:
        stop_on_stdin(stop)
    async with server:
        print(url, flush=True)
        i = 0.0
        while not stop.is_set():
            if scan_s is None:
                await stop.wait()
                break
            i += 1.0  # one change per scan, as the emulator makes
            await server.write_attribute_value(
                var.nodeid, ua.DataValue(ua.Variant(i, ua.VariantType.Double)))
            await asyncio.sleep(scan_s)
