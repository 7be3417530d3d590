"""Benchmark: PLC actual value → the twin's updated prediction at its own OPC UA server.

What is measured
----------------
An emulated furnace PLC runs as ``anode-twin plc furnace`` in a subprocess; a
:class:`~connectors.live.session.LiveSession` (gateway, plant model, real-time bridge and the
twin's OPC UA server) runs in this process against it, at a time factor at which the furnace
is running a batch during the measurement. An *observer* — a separate process, so that its
receive times do not wait on the twin's event loop — is an ordinary asyncua client subscribed
(``--publish-ms``, queue ``--queue``) both to the PLC's zone temperature PVs and to the twin
server's ``line1.oxidizer1.PredictedThickness_nm``.

One latency sample per *PV change* (one PLC scan that changed the zone temperatures): the time
the observer receives the first twin update that reflects that change (or a newer one), minus
the time the observer received the change itself. Both ends are received by the same client
over subscriptions with the same publishing interval, so its own delay cancels out.

Why this correlation and not "the newest PV change before the update": the PVs change on
every PLC scan, faster than the gateway publishes, so the newest change seen before a twin
update is often one the twin has not yet received; pairing with it would under-report the
latency. Driving a single PV step ourselves (setpoint step, fault injection) would give one
sample per batch phase and change the process under test. Instead the pairing is causal and
exact: the emulator stamps every value with its scan time (``SourceTimestamp``) and the
observer, the gateway and the twin's server see the same stamps. Light wrappers in this
process (not in the code under test) note, for every in-progress prediction the twin
publishes, the newest stamp of each zone PV it had received when it computed it; a
prediction *reflects* a scan when every zone's value from that scan (or newer) was in. The
observer's twin updates are matched to those predictions by value. A scan that the twin
never published on its own (skipped by a throttle, or superseded within one gateway publish)
is answered by the first later update that includes it, so dropped or delayed updates count
as latency, not as missing samples.

The same stamps split every sample into the pipeline's parts: PLC → gateway (the gateway's
subscription publishing interval dominates), gateway → prediction (routing, throttle,
the physics), prediction → twin server value, twin server → client (its publishing
interval). Beside it, measured in the same run, is the floor: a raw asyncua round trip on
loopback (a bare asyncua server with one Double variable in its own process; one Write, then
one Read of it back, sequentially), measured before and after the live phase.

Eligible scans are those a running batch could answer: after the first and up to the last
in-progress prediction of each batch (PV changes while the furnace is idle have no
prediction to update).

With the emulated tag map (PV ``sampling_ms`` 100, hence a 100 ms gateway publishing
interval) that interval dominates: a PV change waits on average half of it before the gateway
sees it. ``--pv-sampling-ms 20`` shows what a faster-sampled site gets (an asyncua server
reports a change on write, so its publishing interval, which the gateway sets to the fastest
sampling, is what batches the changes).

Run: ``python bench/live.py [--seconds 30] [--tick 0.1] [--pv-sampling-ms 20]`` (about 80 s,
most of it waiting for the first batch on the PLC); the last line is JSON. Nothing is left
running: the PLC, observer and baseline-server processes are stopped (killed if they do not
stop) before the script exits.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from asyncua import Client, ua
from baseline import bare_server, stop_on_stdin

ROOT = Path(__file__).resolve().parents[1]
STATION = "line1.oxidizer1"
TOOL = "furnace1"


def _pct(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=float), q)) if len(xs) else float("nan")


def _epoch(ts: datetime | None) -> float:
    if ts is None:
        return float("nan")
    if ts.tzinfo is None:  # asyncua gives UTC, naive in some versions
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.timestamp()


def _params(publish_ms: float) -> ua.CreateSubscriptionParameters:
    return ua.CreateSubscriptionParameters(
        RequestedPublishingInterval=publish_ms, RequestedLifetimeCount=3000,
        RequestedMaxKeepAliveCount=100, MaxNotificationsPerPublish=0, PublishingEnabled=True)


async def round_trips(url: str, n: int) -> list[float]:
    """``n`` sequential (Write, Read back) pairs on the bare server's variable, seconds each."""
    out: list[float] = []
    async with Client(url, timeout=10) as client:
        node = client.get_node("ns=2;s=x")
        for i in range(n + 50):  # the first 50 warm the connection up and are not kept
            value = float(i)
            t0 = time.perf_counter()
            await node.write_value(ua.DataValue(ua.Variant(value, ua.VariantType.Double)))
            back = await node.read_value()
            dt = time.perf_counter() - t0
            if back != value:
                raise SystemExit(f"bench: bare server read back {back!r}, wrote {value!r}")
            if i >= 50:
                out.append(dt)
    return out


# -- observer (child process) -----------------------------------------------------------------
async def observe(plc_url: str, pv_nodes: list[str], twin_url: str, twin_node: str,
                  publish_ms: float, queue: int) -> None:
    """Subscribe to the PLC's PVs and the twin's prediction; print what arrived on stop."""
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    pv: list[tuple[int, float, float]] = []  # (zone index, source stamp epoch s, received)
    twin: list[tuple[float, float]] = []  # (value, received)

    class PvHandler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            t = time.monotonic()
            dv = data.monitored_item.Value
            pv.append((index[node.nodeid], _epoch(dv.SourceTimestamp), t))

    class TwinHandler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            twin.append((float(val), time.monotonic()))

    async with Client(plc_url, timeout=10) as plc, Client(twin_url, timeout=10) as tw:
        nodes = [plc.get_node(n) for n in pv_nodes]
        index = {n.nodeid: i for i, n in enumerate(nodes)}
        sub_pv = await plc.create_subscription(_params(publish_ms), PvHandler())
        await sub_pv.subscribe_data_change(nodes, sampling_interval=ua.Double(0), queuesize=queue)
        sub_tw = await tw.create_subscription(_params(publish_ms), TwinHandler())
        await sub_tw.subscribe_data_change([tw.get_node(twin_node)], sampling_interval=ua.Double(0),
                                           queuesize=queue)
        revised = [sub_pv.parameters.RequestedPublishingInterval,
                   sub_tw.parameters.RequestedPublishingInterval]
        print("ready " + json.dumps(revised), flush=True)
        stop = asyncio.Event()
        stop_on_stdin(stop)
        await stop.wait()
        pv_n, tw_n = len(pv), len(twin)
        for sub in (sub_pv, sub_tw):
            with contextlib.suppress(Exception):
                await sub.delete()
    print(json.dumps({"pv": pv[:pv_n], "twin": twin[:tw_n]}), flush=True)


# -- helpers for child processes -------------------------------------------------------------
def _child(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _first_line(proc: subprocess.Popen[str], prefix: str) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith(prefix):
        proc.kill()
        proc.wait(10)
        raise SystemExit(f"bench: child process did not start (said {line!r})")
    return line


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def raw_round_trips(n: int) -> list[float]:
    from connectors.net import free_port

    bare = _child(["--bare-server", str(free_port())])
    try:
        url = _first_line(bare, "opc.tcp://")
        return asyncio.run(round_trips(url, n))
    finally:
        _stop(bare)


# -- the live phase -----------------------------------------------------------------------------
class Probe:
    """Notes what the twin received and published (wrappers around the session's calls)."""

    def __init__(self, zones: int) -> None:
        self.zone_signals = {f"{STATION}.zone{i}_temperature_pv": i - 1
                             for i in range(1, zones + 1)}
        self.gw: list[list[tuple[float, float]]] = [[] for _ in range(zones)]  # (stamp, recv)
        self.latest = [float("-inf")] * zones
        self.predictions: list[dict[str, Any]] = []
        self.compute_s: list[float] = []
        self.started = asyncio.Event()

    def wrap(self, session: Any) -> None:
        """Wrap the gateway (before the session's router starts reading it) and ``_publish``."""
        gw = session.gateway
        updates, publish = gw.updates, session._publish

        async def routed() -> Any:
            # A sample counts as in the twin when the router hands it to the station: the
            # prediction computed then sees it (not when the gateway merely queued it).
            async for s in updates():
                i = self.zone_signals.get(s.signal)
                if i is not None and s.ok:
                    stamp = _epoch(s.source_ts)
                    self.gw[i].append((stamp, s.received_ts))
                    self.latest[i] = max(self.latest[i], stamp)
                yield s

        def pub(path: str, values: dict[str, Any]) -> None:
            # The in-progress prediction is the publish that carries UpdatedAt_s.
            if path == STATION and "UpdatedAt_s" in values:
                cur = session.current.get(path, {})
                self.predictions.append({
                    "value": float(values["PredictedThickness_nm"]), "t_pub": time.monotonic(),
                    "reflects": min(self.latest), "batch": cur.get("batch_id", ""),
                    "t_done": float("nan")})
            publish(path, values)

        gw.updates = routed
        session._publish = pub

    def wrap_server(self, session: Any) -> None:
        server = session.server
        publish_station = server.publish_station

        async def done(path: str, values: dict[str, Any]) -> None:
            await publish_station(path, values)
            if path == STATION and "UpdatedAt_s" in values:
                value = float(values["PredictedThickness_nm"])
                for p in reversed(self.predictions):
                    if p["value"] == value and p["t_done"] != p["t_done"]:
                        p["t_done"] = time.monotonic()
                        break

        server.publish_station = done

    def wrap_compute(self, session: Any) -> None:
        """Time the in-progress prediction itself (the VM on record + planned rest)."""
        name = "_final_prediction"
        compute = getattr(session, name)

        def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return compute(*a, **kw)
            finally:
                self.compute_s.append(time.perf_counter() - t0)

        setattr(session, name, timed)


async def live_phase(args: argparse.Namespace) -> dict[str, Any]:
    from connectors.live.launcher import start_emulator
    from connectors.live.session import LiveOptions, LiveSession, emulated_site
    from connectors.net import free_port
    from twin.config import DEFAULT_PLANT, load_plant

    cfg = load_plant()
    assert cfg.stations.oxidizer is not None
    zones = cfg.stations.oxidizer.plc.zones
    plc = start_emulator("furnace", TOOL, config=DEFAULT_PLANT, time_factor=args.time_factor,
                         seed=args.seed, port=free_port(), tick_s=args.tick)
    observer: subprocess.Popen[str] | None = None
    run: asyncio.Future[Any] | None = None
    tmp = tempfile.TemporaryDirectory(prefix="bench-live-")
    try:
        endpoints, tags = emulated_site(cfg, {TOOL: plc.url})
        if args.pv_sampling_ms is not None:
            tags = {k: (t.model_copy(update={"sampling_ms": args.pv_sampling_ms})
                        if k.endswith("_pv") else t) for k, t in tags.items()}
        pv_sampling = min(t.sampling_ms for k, t in tags.items() if k.endswith("_pv"))
        gw_publish = max(10.0, min(t.sampling_ms for t in tags.values() if t.readable))
        opts = LiveOptions(seed=args.seed, time_factor=args.time_factor, hours=args.hours,
                           warmup_days=2, emulate=False, out=Path(tmp.name), server=True,
                           quiet=True)
        session = LiveSession(cfg, opts, endpoints=endpoints, tags=tags)
        probe = Probe(zones)
        observe_ = session.observe

        def spy(kind: str, path: str, batch_id: str, data: Any) -> None:
            if kind == "started" and path == STATION and not probe.started.is_set():
                probe.wrap_compute(session)
                probe.started.set()
            observe_(kind, path, batch_id, data)

        session.observe = spy  # type: ignore[method-assign]
        run = asyncio.ensure_future(session.run())
        # The gateway exists as soon as run() starts (the router reads it only after the
        # gateway has connected), the server a little later: wrap each as it appears.
        while session.gateway is None:
            await asyncio.sleep(0)
        probe.wrap(session)
        while session.server is None:
            if run.done():
                run.result()  # raises what stopped it
                raise SystemExit("bench: the live session ended before it started")
            await asyncio.sleep(0.001)
        probe.wrap_server(session)
        gateway_start = time.monotonic()
        started = asyncio.ensure_future(probe.started.wait())
        await asyncio.wait({run, started}, timeout=args.start_timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            started.cancel()
            if run.done():
                run.result()
            raise SystemExit(f"bench: no batch started on the PLC within "
                             f"{args.start_timeout:g} s")
        wait_batch_s = time.monotonic() - gateway_start
        assert session.server is not None
        twin_node = session.server.node_id(STATION, "PredictedThickness_nm")
        pv_nodes = [f"ns=2;s={TOOL}.Temperature.Zone{i}.PV" for i in range(1, zones + 1)]
        observer = _child(["--observe", plc.url, ",".join(pv_nodes), session.twin_url,
                           twin_node, str(args.publish_ms), str(args.queue)])
        ready = await asyncio.to_thread(_first_line, observer, "ready")
        revised = json.loads(ready.split(" ", 1)[1])
        await asyncio.sleep(args.seconds)
        assert observer.stdin is not None and observer.stdout is not None
        observer.stdin.write("stop\n")
        observer.stdin.flush()
        line = await asyncio.to_thread(observer.stdout.readline)
        if not line.startswith("{"):
            raise SystemExit(f"bench: the observer failed (said {line.strip()!r})")
        seen = json.loads(line)
        session.bridge.stop()
        await asyncio.wait_for(run, 60)
    finally:
        if run is not None and not run.done():
            run.cancel()
            with contextlib.suppress(BaseException):
                await run
        if observer is not None:
            _stop(observer)
        exit_code = plc.stop()
        tmp.cleanup()
    return {"seen": seen, "probe": probe, "revised_ms": revised, "zones": zones,
            "wait_batch_s": wait_batch_s, "pv_sampling_ms": pv_sampling,
            "gateway_publish_ms": gw_publish, "plc_exit": exit_code,
            "throttle_s": getattr(session, "PREDICT_MIN_INTERVAL_S", 0.05),
            "dropped": session.gateway.dropped_samples if session.gateway else 0}


# -- analysis ---------------------------------------------------------------------------------
def analyse(live: dict[str, Any], tick_s: float) -> dict[str, Any]:
    """Pair every eligible PV change with the first twin update that reflects it."""
    off = time.time() - time.monotonic()  # epoch stamps → this machine's monotonic clock
    probe: Probe = live["probe"]
    zones = live["zones"]
    pv = sorted(live["seen"]["pv"], key=lambda e: e[1])
    # Scans: the zone PVs of one scan are stamped within a millisecond; scans are tick_s apart.
    scans: list[dict[str, float]] = []
    for _, stamp, recv in pv:
        if scans and stamp - scans[-1]["last"] < tick_s / 2:
            s = scans[-1]
            s["last"], s["recv"] = stamp, min(s["recv"], recv)
        else:
            scans.append({"stamp": stamp, "last": stamp, "recv": recv})
    stamps = [s["stamp"] for s in scans]

    def scan_of(stamp: float) -> int:  # the newest scan at or before this stamp
        return bisect.bisect_right(stamps, stamp + 1e-4) - 1

    # Twin updates seen by the observer ↔ the twin's predictions, by value, in order.
    preds = probe.predictions
    by_value: dict[float, list[int]] = defaultdict(list)
    for i, p in enumerate(preds):
        by_value[p["value"]].append(i)
    updates: list[tuple[float, int]] = []  # (received, prediction index)
    unmatched, last = 0, -1
    for value, recv in sorted(live["seen"]["twin"], key=lambda e: e[1]):
        cands = [i for i in by_value.get(value, ()) if i > last]
        if not cands:
            unmatched += 1  # a batch-end VM value or the initial value, not a PV prediction
            continue
        last = cands[0]
        updates.append((recv, last))
    # Eligible scans: per batch, after its first prediction's scan up to its last one's.
    spans: dict[str, list[int]] = {}
    for _, i in updates:
        k = scan_of(preds[i]["reflects"])
        span = spans.setdefault(preds[i]["batch"], [k, k])
        span[1] = max(span[1], k)
    eligible = sorted({k for a, b in spans.values() for k in range(a + 1, b + 1)})
    gw = [sorted(z) for z in probe.gw]
    gw_stamps = [[s for s, _ in z] for z in gw]

    def gateway_has(k: int) -> float:  # when the gateway had every zone at scan k or newer
        out = 0.0
        for z in range(zones):
            j = bisect.bisect_left(gw_stamps[z], stamps[k] - 1e-4)
            if j == len(gw[z]):
                return float("nan")
            out = max(out, min(r for _, r in gw[z][j:j + 50]))
        return out

    rows: list[tuple[float, ...]] = []
    u = 0
    for k in eligible:
        while u < len(updates) and scan_of(preds[updates[u][1]]["reflects"]) < k:
            u += 1
        if u == len(updates):
            break
        recv, i = updates[u]
        p, t1 = preds[i], scans[k]["recv"]
        t_gw = gateway_has(k)
        rows.append((recv - t1, recv - (stamps[k] - off), t_gw - t1, p["t_pub"] - t_gw,
                     p["t_done"] - p["t_pub"], recv - p["t_done"]))
    cols = np.array(rows, dtype=float).reshape(-1, 6)
    names = ("latency", "from_plc_stamp", "plc_to_gateway", "gateway_to_prediction",
             "prediction_to_server", "server_to_client")
    stats = {n: {"p50_ms": 1e3 * _pct(cols[:, j][np.isfinite(cols[:, j])], 50),
                 "p99_ms": 1e3 * _pct(cols[:, j][np.isfinite(cols[:, j])], 99)}
             for j, n in enumerate(names)}
    return {"samples": len(rows), "scans_seen": len(scans), "eligible": len(eligible),
            "twin_updates": len(live["seen"]["twin"]), "matched_updates": len(updates),
            "unmatched_updates": unmatched, "batches": len(spans), "stats": stats,
            "compute_ms": {"p50": 1e3 * _pct(probe.compute_s, 50),
                           "p99": 1e3 * _pct(probe.compute_s, 99), "n": len(probe.compute_s)}}


def report(args: argparse.Namespace, live: dict[str, Any], res: dict[str, Any],
           raw: list[float]) -> dict[str, Any]:
    st = res["stats"]
    raw_p50, raw_p99 = 1e3 * _pct(raw, 50), 1e3 * _pct(raw, 99)
    lat = st["latency"]
    ratio = {"p50": lat["p50_ms"] / raw_p50, "p99": lat["p99_ms"] / raw_p99}
    comp = res["compute_ms"]
    print(f"pipeline: PLC scan {1e3 * args.tick:g} ms (time factor {args.time_factor:g}) → "
          f"gateway subscription: PV sampling {live['pv_sampling_ms']:g} ms, publishing "
          f"{live['gateway_publish_ms']:g} ms → twin: prediction throttle "
          f"{1e3 * live['throttle_s']:g} ms/station, prediction {comp['p50']:.2f} ms p50 "
          f"({comp['p99']:.2f} p99, n={comp['n']}) → twin server → client subscription "
          f"publishing {live['revised_ms'][1]:g} ms (queue {args.queue})")
    print(f"samples: {res['samples']} PV changes (of {res['eligible']} eligible, "
          f"{res['scans_seen']} seen) over {res['batches']} batch(es) in {args.seconds:g} s; "
          f"twin updates {res['twin_updates']} ({res['matched_updates']} matched, "
          f"{res['unmatched_updates']} not from PV); first batch after "
          f"{live['wait_batch_s']:.1f} s; gateway dropped {live['dropped']}")
    print(f"{'':34s}{'p50 ms':>9s}{'p99 ms':>9s}")
    label = {"latency": "PV change → twin update (client)",
             "from_plc_stamp": "  same, from the PLC's stamp",
             "plc_to_gateway": "  part: PLC → gateway",
             "gateway_to_prediction": "  part: gateway → prediction",
             "prediction_to_server": "  part: prediction → server value",
             "server_to_client": "  part: twin server → client"}
    for key, text in label.items():
        print(f"{text:34s}{st[key]['p50_ms']:9.1f}{st[key]['p99_ms']:9.1f}")
    print(f"{'raw asyncua write+read round trip':34s}{raw_p50:9.2f}{raw_p99:9.2f}"
          f"   (n={len(raw)})")
    print(f"{'ratio twin latency / round trip':34s}{ratio['p50']:9.1f}{ratio['p99']:9.1f}")
    return {"bench": "live", "time_factor": args.time_factor, "plc_tick_s": args.tick,
            "pv_sampling_ms": live["pv_sampling_ms"],
            "gateway_publishing_ms": live["gateway_publish_ms"],
            "throttle_ms": 1e3 * live["throttle_s"], "client_publishing_ms": live["revised_ms"][1],
            "seconds": args.seconds, "samples": res["samples"], "eligible": res["eligible"],
            "twin_latency_ms": {"p50": lat["p50_ms"], "p99": lat["p99_ms"]},
            "parts_ms": {k: st[k] for k in label if k != "latency"},
            "prediction_compute_ms": res["compute_ms"],
            "raw_round_trip_ms": {"p50": raw_p50, "p99": raw_p99, "n": len(raw)},
            "ratio": ratio}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="live measurement window")
    parser.add_argument("--tick", type=float, default=0.1, help="PLC scan (PV update), s")
    parser.add_argument("--time-factor", type=float, default=600.0)
    parser.add_argument("--hours", type=float, default=48.0, help="bound of the live run")
    parser.add_argument("--pv-sampling-ms", type=float, default=None,
                        help="override the tag map's PV sampling interval")
    parser.add_argument("--publish-ms", type=float, default=10.0,
                        help="the observer's publishing interval")
    parser.add_argument("--queue", type=int, default=100, help="the observer's queue size")
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--start-timeout", type=float, default=180.0,
                        help="s to wait for the first batch on the PLC")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--observe", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server is not None:
        asyncio.run(bare_server(args.bare_server, stop_with_stdin=True))
        return 0
    if args.observe is not None:
        plc_url, pv, twin_url, twin_node, publish_ms, queue = args.observe
        asyncio.run(observe(plc_url, pv.split(","), twin_url, twin_node, float(publish_ms),
                            int(queue)))
        return 0
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # session notices, not results
    half = args.round_trips // 2
    raw = raw_round_trips(half)
    live = asyncio.run(live_phase(args))
    raw += raw_round_trips(args.round_trips - half)
    res = analyse(live, args.tick)
    if res["samples"] == 0:
        print("bench: no PV change was answered by the twin (no batch ran?)", file=sys.stderr)
        return 1
    print(json.dumps(report(args, live, res, raw)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
