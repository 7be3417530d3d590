"""Benchmark: an emulated PLC against a bare asyncua server, same client, same run.

Measures, over loopback, with one asyncua client:

* read round trips per second (one value per Read request, sequential);
* write round trips per second (one checked setpoint per Write request, sequential);
* subscription notifications per second with 100 monitored items on changing tags.

The emulated furnace runs as ``anode-twin plc furnace`` in its own process with a 10 ms scan
(``--tick 0.01``) and 12 zones, so 13 process values (12 zone temperatures and the pressure)
change on every scan; its 100 monitored items are spread over those changing tags. The
baseline is a bare asyncua server in its own process with one Double variable rewritten on
the same 10 ms scan and monitored 100 times. The ratios (emulator / bare) show what the
emulator's process model, checked writes and ~40 node updates per scan cost.

Run: ``python bench/plc.py [--seconds 2] [--rounds 3]``; the last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from asyncua import Client, Node, ua
from baseline import bare_server

ROOT = Path(__file__).resolve().parents[1]
SCAN_S = 0.01
ITEMS = 100


# -- client measurements -----------------------------------------------------------------------
async def reads_per_s(node: Node, seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        await node.read_value()
        n += 1
    return n / (time.perf_counter() - t0)


async def writes_per_s(node: Node, values: tuple[float, float], seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        await node.write_value(ua.DataValue(ua.Variant(values[n % 2], ua.VariantType.Double)))
        n += 1
    return n / (time.perf_counter() - t0)


async def notifications_per_s(client: Client, nodes: list[Node], seconds: float) -> float:
    count = 0

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            nonlocal count
            count += 1

    sub = await client.create_subscription(ua.CreateSubscriptionParameters(
        RequestedPublishingInterval=10, RequestedLifetimeCount=1000,
        RequestedMaxKeepAliveCount=100, MaxNotificationsPerPublish=0, PublishingEnabled=True),
        Handler())
    await sub.subscribe_data_change(nodes, sampling_interval=0, queuesize=1)
    await asyncio.sleep(0.5)  # let the initial values drain
    count = 0
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    rate = count / (time.perf_counter() - t0)
    await sub.delete()
    return rate


async def measure(targets: dict[str, dict[str, Any]], seconds: float,
                  rounds: int) -> dict[str, dict[str, float]]:
    """Interleave the servers metric by metric; keep each one's best of ``rounds``.

    Interleaving and best-of keep a busy machine's load swings out of the ratios.
    """
    out: dict[str, dict[str, float]] = {name: {} for name in targets}
    clients = {name: Client(t["url"], timeout=30) for name, t in targets.items()}
    for c in clients.values():
        await c.connect()
    try:
        for _ in range(rounds):
            for name, t in targets.items():
                c = clients[name]
                best = out[name]
                for key, rate in (
                    ("read_per_s", await reads_per_s(c.get_node(t["read"]), seconds)),
                    ("write_per_s", await writes_per_s(c.get_node(t["write"]), t["values"],
                                                       seconds)),
                    ("notifications_per_s", await notifications_per_s(
                        c, [c.get_node(n) for n in t["watch"]], seconds)),
                ):
                    best[key] = max(best.get(key, 0.0), rate)
    finally:
        for c in clients.values():
            await c.disconnect()
    return out


def start(cmd: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("opc.tcp://"):
        proc.kill()
        raise SystemExit(f"bench: server did not start: {cmd}")
    return proc, url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server is not None:
        asyncio.run(bare_server(args.bare_server, scan_s=SCAN_S))
        return 0
    import logging

    from connectors.net import free_port

    logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # session notices, not results

    emu, emu_url = start([sys.executable, "-m", "twin.cli", "plc", "furnace", "--port", "0",
                          "--tick", str(SCAN_S), "--set", "stations.oxidizer.plc.zones=12"])
    bare, bare_url = start([sys.executable, str(Path(__file__).resolve()), "--bare-server",
                            str(free_port())])
    try:
        ns = "ns=2;s=furnace1."
        # Tags that change on every scan (thermocouple and gauge noise), nothing that can sit
        # still (a rate clipped at zero would deliver fewer changes and bias the ratio).
        changing = [f"{ns}Temperature.Zone{i}.PV" for i in range(1, 13)] + [f"{ns}Pressure.PV"]
        watch = [changing[i % len(changing)] for i in range(ITEMS)]
        targets = {
            "emulator": {"url": emu_url, "read": f"{ns}Temperature.Zone1.PV",
                         "write": f"{ns}Temperature.Zone1.SP", "watch": watch,
                         "values": (400.0, 401.0)},
            "bare": {"url": bare_url, "read": "ns=2;s=x", "write": "ns=2;s=x",
                     "watch": ["ns=2;s=x"] * ITEMS, "values": (1.0, 2.0)},
        }
        result = asyncio.run(measure(targets, args.seconds, args.rounds))
        emulated, base = result["emulator"], result["bare"]
    finally:
        for proc in (emu, bare):
            proc.terminate()
            proc.wait(20)
    ratios = {k: emulated[k] / base[k] if base[k] else float("nan") for k in emulated}
    print(f"{'':24s}{'emulator':>12s}{'bare':>12s}{'ratio':>8s}")
    for k in emulated:
        print(f"{k:24s}{emulated[k]:12.0f}{base[k]:12.0f}{ratios[k]:8.2f}")
    print(json.dumps({"bench": "plc", "items": ITEMS, "scan_s": SCAN_S,
                      "seconds": args.seconds, "rounds": args.rounds, "emulator": emulated,
                      "bare": base, "ratio": ratios}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
