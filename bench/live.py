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

The browser path (``--browser``; on when chromium and Playwright are installed)
----------------------------------------------------------------------------------
In the same run the twin also serves its web view (``_start_web`` with ``WebOptions()``:
loopback, anonymous read) and a headless chromium (Debian's, ``/usr/bin/chromium``, driven by
Playwright) keeps ``/running`` open. The page gets every in-progress prediction pushed by
Server-Sent Events at the moment the twin publishes it to its own OPC UA server
(``LiveSession._publish`` → ``LiveSource.on_station``, the same call the probe notes) and shows
it in ``#pred-line1_oxidizer1``, whose ``data-mean`` is the full-precision value (JS
``String(number)``, which parses back to the same double). A script installed with
``add_init_script`` (run before the page's own; injected through CDP, so the page's
Content-Security-Policy does not apply to it) notes with a MutationObserver every change of that
``data-mean``, at ``(performance.timeOrigin + performance.now()) / 1000``. To split the path it
also notes the arrival of each ``station`` event (a wrapper of
``EventSource.prototype.addEventListener``, before the page's handler runs) and the start of
every animation frame. The page's DOM updates are paired with the twin's predictions by value,
exactly as the observer's OPC UA updates are, and every PV change gets the time from the
observer receiving it to the DOM holding a prediction that reflects it (or a newer one). The
eligibility rule is the same, applied to the page's updates, and a scan must be eligible for the
OPC UA path too (so both paths answer the same PV changes). The pixels follow at the next
paint; the DOM is what scripts, tests and assistive tools read.

What the browser adds to the shared part (PV change → prediction, dominated by the gateway's
publishing interval): the push (prediction → the page's event, a couple of ms) and the page's
drawing, which waits for the next animation frame (the page draws in ``requestAnimationFrame``:
at 60 Hz up to 17 ms). The frames' spacing in the window is reported, so a throttled page
(background pages of a headless chromium may get fewer frames and timers; this one is in front
and ``document.visibilityState`` is ``visible``) would show; so is the page's main-thread load.

Clocks. Both receive times are clocks of this one machine: the observer stamps what it receives
with ``time.monotonic()`` (CLOCK_MONOTONIC, shared by every process), the page with
``performance.timeOrigin + performance.now()`` (the wall clock at the page's start plus the
browser's monotonic clock since). The browser process measures the offset of the page's clock
to ``time.monotonic()``: of 40 evaluations of it, the one with the shortest round trip, at the
start and again at the end. Its uncertainty (half that round trip, about 0.5 ms), its drift over
the run and its difference to ``time.time()`` (the wall clock; close to 0) are reported. Unlike
the OPC UA path (both ends received by one client over the same publishing interval) the
observer's own delay in receiving the PV change does not cancel here: the browser figure is
lower by it (PLC stamp → observer, reported as the "from the PLC's stamp" rows).

The browser runs in a process of its own: a child of this script running Playwright's sync API
(its own loop, the node driver, chromium's processes), told what to do over stdin/stdout like
the observer. Playwright's async API in the twin's loop would put the protocol traffic and its
JSON between the twin's slices, and a thread in this process would contend for its GIL; in a
child process the browser disturbs the twin no more than any browser on the same machine does
(it shares the 2 CPU cores with the PLC, the twin, the observer).

Soak (``--soak-s S``)
---------------------
After the latency phase, a second PLC and twin run at ``--soak-time-factor`` (2400; the latency
phase keeps ``--time-factor``, the one its numbers are comparable at); ``--seconds 0`` skips the
latency phase. Once the twin is past its warm-up and its first batch started, ``--soak-idle-s``
(20) s without any page give the twin's own CPU; then chromium opens ``/running`` and
``/batches`` (no recording script: nothing of the bench grows in the page) and keeps them open
for S s. Every ``--soak-every`` (30) s each page's JS heap is read after a forced full GC
(CDP ``HeapProfiler.collectGarbage`` then ``Performance.getMetrics`` ``JSHeapUsedSize``), with
its ``Nodes`` (every DOM node alive in its renderer, detached ones included), the elements in
its document, its main-thread task time; and the CPU time of this process (the twin and its web
server, ``time.process_time``) and of the browser's processes (psutil, when installed). Reported:
each page's heap first, last, last/first and max, nodes first and last, and the server's CPU %
(of one core) over the soak beside the idle figure. The live session's ``hours`` covers the
soak with a margin (``(idle + soak + start timeout + 120 s) * time factor``).

Run: ``python bench/live.py [--seconds 30] [--tick 0.1] [--pv-sampling-ms 20] [--no-browser]
[--soak-s 120]`` (about 80 s without a soak, most of it waiting for the first batch on the
PLC); the last line is JSON. Nothing is left running: the browser (its process is told to
close chromium, then terminated), the web view, the PLC, observer and baseline-server processes
are stopped (killed if they do not stop) before the script exits, also on an error.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import importlib.util
import json
import logging
import math
import os
import re
import shutil
import signal
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
#: Debian's chromium (Playwright drives it through ``executable_path``: no browser download).
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


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


# -- the browser (child process) -----------------------------------------------------------
#: Installed in the page before its own script (``add_init_script``): notes each change of the
#: prediction's ``data-mean``, each ``station`` event's arrival and each animation frame's start,
#: all on the page's clock (unix seconds).
RECORDER = r"""
(() => {
  if (window.__bench) return;
  const ID = __ID__, PATH = __PATH__, MAX = 200000;
  const now = () => (performance.timeOrigin + performance.now()) / 1000;
  const rec = window.__bench = { dom: [], sse: [], frames: [] };
  let last = "";
  const check = () => {
    const el = document.getElementById(ID);
    const v = el ? (el.dataset.mean || "") : "";
    if (v && v !== last && rec.dom.length < MAX) { last = v; rec.dom.push([now(), v]); }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true,
    attributes: true, attributeFilter: ["data-mean"] });
  const add = EventTarget.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, fn, opts) {
    if (type === "station" && typeof fn === "function") {
      const inner = fn;
      fn = function (ev) {
        const t = now();
        try {
          const m = JSON.parse(ev.data);
          if (m.path === PATH && m.prediction && m.prediction.mean_nm != null &&
              rec.sse.length < MAX) rec.sse.push([t, String(m.prediction.mean_nm)]);
        } catch (e) { /* the page's handler reports it */ }
        return inner.call(this, ev);
      };
    }
    return add.call(this, type, fn, opts);
  };
  const frame = () => {
    if (rec.frames.length < MAX) rec.frames.push(now());
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})();
"""


def pred_id(path: str) -> str:
    """The id of a tool's prediction element on ``/running`` (app.js's ``cls``)."""
    return "pred-" + re.sub(r"[^A-Za-z0-9_-]", "_", path)


def _page_clock(page: Any, n: int = 40) -> dict[str, float]:
    """The page's clock (timeOrigin + now) minus this machine's monotonic and wall clocks, from
    the evaluation with the shortest round trip of ``n``."""
    best = (math.inf, 0.0, 0.0)
    for _ in range(n):
        a_m, a_w = time.monotonic(), time.time()
        b = float(page.evaluate("performance.timeOrigin + performance.now()")) / 1e3
        c_m, c_w = time.monotonic(), time.time()
        if c_m - a_m < best[0]:
            best = (c_m - a_m, b - (a_m + c_m) / 2, b - (a_w + c_w) / 2)
    return {"minus_monotonic_s": best[1], "minus_wall_ms": 1e3 * best[2],
            "round_trip_ms": 1e3 * best[0]}


def _page_metrics(page: Any, cdp: Any) -> dict[str, Any]:
    """A page's JS heap after a forced full GC, its nodes and elements, its main-thread time."""
    cdp.send("HeapProfiler.collectGarbage")
    m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
    elements, rows, visibility, conn = page.evaluate(
        "[document.getElementsByTagName('*').length, document.getElementsByTagName('tr').length,"
        " document.visibilityState,"
        " (document.getElementById('conn') || {dataset: {}}).dataset.state || '']")
    return {"heap_bytes": m.get("JSHeapUsedSize"), "heap_total_bytes": m.get("JSHeapTotalSize"),
            "nodes": m.get("Nodes"), "listeners": m.get("JSEventListeners"),
            "documents": m.get("Documents"), "elements": elements, "table_rows": rows,
            "task_s": m.get("TaskDuration"),
            "script_s": m.get("ScriptDuration"), "visibility": visibility, "conn": conn}


def browse(url: str, pages: list[str], record: str) -> None:
    """Open ``pages`` of the web view at ``url`` in headless chromium; ``record``: the station
    whose prediction the recorder notes ('' for none). Prints ``ready {clock}``, then answers
    ``sample`` with each page's metrics (one JSON line) until ``stop`` (or EOF), then prints what
    it recorded."""
    from playwright.sync_api import sync_playwright

    def leave(*_: Any) -> None:
        raise SystemExit(0)  # SIGTERM: close chromium on the way out (the finally below)

    signal.signal(signal.SIGTERM, leave)
    assert CHROMIUM is not None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 860})
            if record:
                ctx.add_init_script(RECORDER.replace("__ID__", json.dumps(pred_id(record)))
                                    .replace("__PATH__", json.dumps(record)))
            errors: list[str] = []
            opened = []
            for name in pages:
                page = ctx.new_page()
                page.on("pageerror", lambda e, name=name: errors.append(
                    f"/{name}: {e}; " + " | ".join(
                        ln.strip() for ln in (e.stack or "").splitlines()[1:4])))
                page.goto(url.rstrip("/") + "/" + name)
                page.wait_for_selector("#conn[data-state=live]", timeout=60_000)
                cdp = ctx.new_cdp_session(page)
                cdp.send("Performance.enable")
                opened.append((name, page, cdp))
            first = opened[0][1]
            print("ready " + json.dumps({"clock": _page_clock(first)}), flush=True)
            for line in sys.stdin:
                if line.strip() != "sample":
                    break
                print(json.dumps({name: _page_metrics(page, cdp) for name, page, cdp in opened}),
                      flush=True)
            out: dict[str, Any] = {"clock_end": _page_clock(first), "errors": errors}
            if record:
                out["rec"] = first.evaluate("window.__bench")
            print(json.dumps(out), flush=True)
        finally:
            browser.close()


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its living descendants; nan without psutil."""
    try:
        import psutil
    except ImportError:
        return float("nan")
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return float("nan")
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def browser_available() -> bool:
    return CHROMIUM is not None and importlib.util.find_spec("playwright") is not None


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


def _tell(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


async def _answer(proc: subprocess.Popen[str], what: str) -> dict[str, Any]:
    """The next JSON line of a child process."""
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    if not line.startswith("{"):
        raise SystemExit(f"bench: the {what} failed (said {line.strip()!r})")
    out: dict[str, Any] = json.loads(line)
    return out


async def live_phase(args: argparse.Namespace) -> dict[str, Any]:
    from connectors.live.launcher import start_emulator
    from connectors.live.session import LiveOptions, LiveSession, _start_web, emulated_site
    from connectors.net import free_port
    from connectors.web.server import WebOptions, WebServer
    from twin.config import DEFAULT_PLANT, load_plant

    cfg = load_plant()
    assert cfg.stations.oxidizer is not None
    zones = cfg.stations.oxidizer.plc.zones
    plc = start_emulator("furnace", TOOL, config=DEFAULT_PLANT, time_factor=args.time_factor,
                         seed=args.seed, port=free_port(), tick_s=args.tick)
    observer: subprocess.Popen[str] | None = None
    browser: subprocess.Popen[str] | None = None
    web: WebServer | None = None
    run: asyncio.Future[Any] | None = None
    page: dict[str, Any] | None = None
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
        if args.browser:
            # The web view is the twin's (its loop, its listeners); the browser opens /running
            # while the PLC gets to its first batch.
            web = await _start_web([session], WebOptions())
            browser = _child(["--browse", web.url, "running", STATION])
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
        clock: dict[str, Any] = {}
        metrics: list[dict[str, Any]] = []
        if browser is not None:
            ready_b = await asyncio.to_thread(_first_line, browser, "ready")
            clock = json.loads(ready_b.split(" ", 1)[1])["clock"]
            # The page's main-thread time and heap, before and after the window (not in it:
            # a sample forces a GC).
            _tell(browser, "sample")
            metrics.append({"t": time.monotonic(), **await _answer(browser, "browser")})
        assert session.server is not None
        twin_node = session.server.node_id(STATION, "PredictedThickness_nm")
        pv_nodes = [f"ns=2;s={TOOL}.Temperature.Zone{i}.PV" for i in range(1, zones + 1)]
        observer = _child(["--observe", plc.url, ",".join(pv_nodes), session.twin_url,
                           twin_node, str(args.publish_ms), str(args.queue)])
        ready = await asyncio.to_thread(_first_line, observer, "ready")
        revised = json.loads(ready.split(" ", 1)[1])
        await asyncio.sleep(args.seconds)
        _tell(observer, "stop")
        seen = await _answer(observer, "observer")
        if browser is not None:
            _tell(browser, "sample")
            metrics.append({"t": time.monotonic(), **await _answer(browser, "browser")})
            _tell(browser, "stop")
            page = await _answer(browser, "browser")
            page["clock"], page["metrics"] = clock, metrics
        session.bridge.stop()
        await asyncio.wait_for(run, 60)
    finally:
        if browser is not None:
            await asyncio.to_thread(_stop, browser)
        if web is not None:
            await web.stop()
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
            "dropped": session.gateway.dropped_samples if session.gateway else 0,
            "page": page}


async def soak_phase(args: argparse.Namespace) -> dict[str, Any]:
    """The twin at ``--soak-time-factor`` with /running and /batches open for ``--soak-s``."""
    from connectors.live.launcher import start_emulator
    from connectors.live.session import LiveOptions, LiveSession, _start_web, emulated_site
    from connectors.net import free_port
    from connectors.web.server import WebOptions, WebServer
    from twin.config import DEFAULT_PLANT, load_plant

    tf = args.soak_time_factor
    hours = (args.soak_idle_s + args.soak_s + args.start_timeout + 120.0) * tf / 3600.0
    cfg = load_plant()
    plc = start_emulator("furnace", TOOL, config=DEFAULT_PLANT, time_factor=tf,
                         seed=args.seed, port=free_port(), tick_s=args.tick)
    browser: subprocess.Popen[str] | None = None
    web: WebServer | None = None
    run: asyncio.Future[Any] | None = None
    tmp = tempfile.TemporaryDirectory(prefix="bench-soak-")
    try:
        endpoints, tags = emulated_site(cfg, {TOOL: plc.url})
        opts = LiveOptions(seed=args.seed, time_factor=tf, hours=hours, warmup_days=2,
                           emulate=False, out=Path(tmp.name), server=True, quiet=True)
        session = LiveSession(cfg, opts, endpoints=endpoints, tags=tags)
        started = asyncio.Event()
        observe_ = session.observe

        def spy(kind: str, path: str, batch_id: str, data: Any) -> None:
            if kind == "started" and path == STATION:
                started.set()
            observe_(kind, path, batch_id, data)

        session.observe = spy  # type: ignore[method-assign]
        web = await _start_web([session], WebOptions())
        run = asyncio.ensure_future(session.run())
        first = asyncio.ensure_future(started.wait())
        await asyncio.wait({run, first}, timeout=args.start_timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        if not first.done():
            first.cancel()
            if run.done():
                run.result()
            raise SystemExit(f"bench: soak: no batch started within {args.start_timeout:g} s")

        def alive() -> None:
            assert run is not None
            if run.done():
                run.result()
                raise SystemExit("bench: soak: the live session ended before the soak did "
                                 f"(hours {hours:g})")

        # The twin alone (no page open): its own CPU at this time factor.
        c0, w0, s0 = time.process_time(), time.monotonic(), float(session.env.now)
        await asyncio.sleep(args.soak_idle_s)
        alive()
        idle_wall = time.monotonic() - w0
        idle_cpu = 100.0 * (time.process_time() - c0) / idle_wall
        idle_tf = (float(session.env.now) - s0) / idle_wall
        browser = _child(["--browse", web.url, "running,batches", ""])
        await asyncio.to_thread(_first_line, browser, "ready")
        alive()
        samples: list[dict[str, Any]] = []
        t0 = time.monotonic()
        while True:  # a sample at 0, every --soak-every s, and at the end
            t_ask = time.monotonic()
            _tell(browser, "sample")
            pages = await _answer(browser, "browser")
            samples.append({"t_s": time.monotonic() - t0, "server_cpu_s": time.process_time(),
                            "browser_cpu_s": _tree_cpu_s(browser.pid),
                            "sim_s": float(session.env.now), "pages": pages,
                            "sample_s": time.monotonic() - t_ask})
            if time.monotonic() - t0 >= args.soak_s - 0.5:
                break
            due = min(args.soak_every * len(samples), args.soak_s)
            await asyncio.wait({run}, timeout=max(0.0, t0 + due - time.monotonic()))
            alive()
        _tell(browser, "stop")
        end = await _answer(browser, "browser")
        session.bridge.stop()
        await asyncio.wait_for(run, 60)
    finally:
        if browser is not None:
            await asyncio.to_thread(_stop, browser)
        if web is not None:
            await web.stop()
        if run is not None and not run.done():
            run.cancel()
            with contextlib.suppress(BaseException):
                await run
        plc.stop()
        tmp.cleanup()
    return {"time_factor": tf, "hours": hours, "idle_s": args.soak_idle_s,
            "idle_server_cpu_pct": idle_cpu, "idle_time_factor": idle_tf,
            "samples": samples, "page_errors": end["errors"]}


# -- analysis ---------------------------------------------------------------------------------
def _stat(xs: Any) -> dict[str, float]:
    a = np.asarray(xs, dtype=float)
    a = a[np.isfinite(a)]
    return {"p50_ms": 1e3 * _pct(a, 50), "p99_ms": 1e3 * _pct(a, 99)}


def match_updates(seen: Sequence[Sequence[float]], preds: Sequence[dict[str, Any]]
                  ) -> tuple[list[tuple[float, int]], int]:
    """(receive time, prediction index) of every update seen, matched to the twin's
    predictions by value, in order; and how many matched none."""
    by_value: dict[float, list[int]] = defaultdict(list)
    for i, p in enumerate(preds):
        by_value[p["value"]].append(i)
    updates: list[tuple[float, int]] = []
    unmatched, last = 0, -1
    for value, recv in sorted(seen, key=lambda e: e[1]):
        cands = [i for i in by_value.get(value, ()) if i > last]
        if not cands:
            unmatched += 1  # a batch-end VM value or the initial value, not a PV prediction
            continue
        last = cands[0]
        updates.append((recv, last))
    return updates, unmatched


class Scans:
    """The PLC scans the observer saw (the zone PVs of one scan are stamped within a
    millisecond; scans are tick_s apart), each with when the observer first received it."""

    def __init__(self, pv: Sequence[Sequence[float]], tick_s: float) -> None:
        self.scans: list[dict[str, float]] = []
        for _, stamp, recv in sorted(pv, key=lambda e: e[1]):
            if self.scans and stamp - self.scans[-1]["last"] < tick_s / 2:
                s = self.scans[-1]
                s["last"], s["recv"] = stamp, min(s["recv"], recv)
            else:
                self.scans.append({"stamp": stamp, "last": stamp, "recv": recv})
        self.stamps = [s["stamp"] for s in self.scans]

    def of(self, stamp: float) -> int:
        """The newest scan at or before this stamp."""
        return bisect.bisect_right(self.stamps, stamp + 1e-4) - 1

    def eligible(self, updates: Sequence[tuple[float, int]],
                 preds: Sequence[dict[str, Any]]) -> tuple[list[int], int]:
        """Per batch, the scans after its first update's scan up to its last one's; and how
        many batches."""
        spans: dict[str, list[int]] = {}
        for _, i in updates:
            k = self.of(preds[i]["reflects"])
            span = spans.setdefault(preds[i]["batch"], [k, k])
            span[1] = max(span[1], k)
        return sorted({k for a, b in spans.values() for k in range(a + 1, b + 1)}), len(spans)

    def answers(self, eligible: Sequence[int], updates: Sequence[tuple[float, int]],
                preds: Sequence[dict[str, Any]]) -> list[tuple[int, float, int]]:
        """(scan, receive time, prediction) of the first update that reflects each scan."""
        out: list[tuple[int, float, int]] = []
        u = 0
        for k in eligible:
            while u < len(updates) and self.of(preds[updates[u][1]]["reflects"]) < k:
                u += 1
            if u == len(updates):
                break
            out.append((k, *updates[u]))
        return out


def analyse(live: dict[str, Any], tick_s: float) -> dict[str, Any]:
    """Pair every eligible PV change with the first twin update that reflects it."""
    off = time.time() - time.monotonic()  # epoch stamps → this machine's monotonic clock
    probe: Probe = live["probe"]
    zones = live["zones"]
    sc = Scans(live["seen"]["pv"], tick_s)
    scans, stamps = sc.scans, sc.stamps
    # Twin updates seen by the observer ↔ the twin's predictions, by value, in order.
    preds = probe.predictions
    updates, unmatched = match_updates(live["seen"]["twin"], preds)
    # Eligible scans: per batch, after its first prediction's scan up to its last one's.
    eligible, batches = sc.eligible(updates, preds)
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
    answered = sc.answers(eligible, updates, preds)
    for k, recv, i in answered:
        p, t1 = preds[i], scans[k]["recv"]
        t_gw = gateway_has(k)
        rows.append((recv - t1, recv - (stamps[k] - off), t_gw - t1, p["t_pub"] - t_gw,
                     p["t_done"] - p["t_pub"], recv - p["t_done"]))
    cols = np.array(rows, dtype=float).reshape(-1, 6)
    names = ("latency", "from_plc_stamp", "plc_to_gateway", "gateway_to_prediction",
             "prediction_to_server", "server_to_client")
    stats = {n: _stat(cols[:, j]) for j, n in enumerate(names)}
    res = {"samples": len(rows), "scans_seen": len(scans), "eligible": len(eligible),
           "twin_updates": len(live["seen"]["twin"]), "matched_updates": len(updates),
           "unmatched_updates": unmatched, "batches": batches, "stats": stats,
           "compute_ms": {"p50": 1e3 * _pct(probe.compute_s, 50),
                          "p99": 1e3 * _pct(probe.compute_s, 99), "n": len(probe.compute_s)}}
    if live.get("page") is not None:
        res["browser"] = analyse_browser(live, sc, eligible, answered, off)
    return res


def analyse_browser(live: dict[str, Any], sc: Scans, eligible_opc: Sequence[int],
                    answered_opc: Sequence[tuple[int, float, int]], off: float
                    ) -> dict[str, Any]:
    """The same pairing for the page's DOM updates (on the page's clock, moved to this
    machine's monotonic clock by the offset measured at the start and the end)."""
    page = live["page"]
    preds = live["probe"].predictions
    c0, c1 = page["clock"], page["clock_end"]
    shift = (c0["minus_monotonic_s"] + c1["minus_monotonic_s"]) / 2
    rec = page["rec"]
    dom = [(float(v), t - shift) for t, v in rec["dom"]]
    updates, unmatched = match_updates(dom, preds)
    own, _ = sc.eligible(updates, preds)
    eligible = sorted(set(own) & set(eligible_opc))
    answered = sc.answers(eligible, updates, preds)
    # When each prediction's station event reached the page, and the animation frames.
    sse_updates, _ = match_updates([(float(v), t - shift) for t, v in rec["sse"]], preds)
    sse = {i: t for t, i in sse_updates}
    frames = sorted(t - shift for t in rec["frames"])
    rows: list[tuple[float, ...]] = []
    for k, t_dom, i in answered:
        p, t1 = preds[i], sc.scans[k]["recv"]
        t_sse = sse.get(i, float("nan"))
        j = bisect.bisect_left(frames, t_sse) if t_sse == t_sse else len(frames)
        t_frame = frames[j] if j < len(frames) else float("nan")
        # The first frame after the event, when the DOM changed in (or after) it.
        wait = t_frame - t_sse if t_frame <= t_dom + 1e-3 else 0.0
        rows.append((t_dom - t1, t_dom - (sc.stamps[k] - off), p["t_pub"] - t1,
                     t_sse - p["t_pub"], t_dom - t_sse, wait, t_dom - p["t_pub"]))
    cols = np.array(rows, dtype=float).reshape(-1, 7)
    names = ("latency", "from_plc_stamp", "pv_to_prediction", "prediction_to_page_event",
             "page_event_to_dom", "page_event_to_next_frame", "prediction_to_dom")
    stats = {n: _stat(cols[:, j]) for j, n in enumerate(names)}
    # Both paths on the same PV changes: the browser's extra time, sample by sample.
    opc = {k: t for k, t, _ in answered_opc}
    extra = [t - opc[k] for k, t, _ in answered if k in opc]
    lo, hi = (sc.scans[eligible[0]]["recv"], sc.scans[eligible[-1]]["recv"]) if eligible \
        else (-math.inf, math.inf)
    gaps = np.diff([f for f in frames if lo <= f <= hi])
    m0, m1 = page["metrics"]
    busy = (m1["running"]["task_s"] - m0["running"]["task_s"]) / (m1["t"] - m0["t"])
    return {"samples": len(rows), "eligible": len(eligible), "dom_updates": len(dom),
            "matched_updates": len(updates), "unmatched_updates": unmatched,
            "page_events": len(rec["sse"]), "stats": stats, "extra_vs_opcua": _stat(extra),
            "paired": len(extra),
            "frames": {"n": int(len(gaps) + 1) if len(gaps) else 0,
                       "interval_p50_ms": 1e3 * _pct(gaps, 50),
                       "interval_p99_ms": 1e3 * _pct(gaps, 99),
                       "interval_max_ms": 1e3 * float(gaps.max()) if len(gaps) else math.nan},
            "clock": {"page_minus_wall_ms": c0["minus_wall_ms"],
                      "uncertainty_ms": max(c0["round_trip_ms"], c1["round_trip_ms"]) / 2,
                      "drift_ms": 1e3 * (c1["minus_monotonic_s"] - c0["minus_monotonic_s"])},
            "page_errors": page["errors"], "page_main_thread_pct": 100.0 * busy,
            "page_heap_mb": [m0["running"]["heap_bytes"] / 2**20,
                             m1["running"]["heap_bytes"] / 2**20]}


def summarise_soak(soak: dict[str, Any]) -> dict[str, Any]:
    s = soak["samples"]
    first, last = s[0], s[-1]
    wall = last["t_s"] - first["t_s"]
    pages: dict[str, Any] = {}
    for name in first["pages"]:
        heap = [x["pages"][name]["heap_bytes"] for x in s]
        pages[name] = {
            "heap_first_mb": heap[0] / 2**20, "heap_last_mb": heap[-1] / 2**20,
            "heap_ratio": heap[-1] / heap[0], "heap_max_mb": max(heap) / 2**20,
            "nodes_first": first["pages"][name]["nodes"],
            "nodes_last": last["pages"][name]["nodes"],
            "elements_first": first["pages"][name]["elements"],
            "elements_last": last["pages"][name]["elements"],
            "table_rows_first": first["pages"][name]["table_rows"],
            "table_rows_last": last["pages"][name]["table_rows"],
            "listeners_first": first["pages"][name]["listeners"],
            "listeners_last": last["pages"][name]["listeners"],
            "main_thread_pct": 100.0 * (last["pages"][name]["task_s"]
                                        - first["pages"][name]["task_s"]) / wall
            if wall > 0 else math.nan,
            "conn_last": last["pages"][name]["conn"],
            "visibility": last["pages"][name]["visibility"]}
    return {"seconds": wall, "samples": len(s), "time_factor": soak["time_factor"],
            "achieved_time_factor": (last["sim_s"] - first["sim_s"]) / wall if wall > 0
            else math.nan,
            "server_cpu_pct": 100.0 * (last["server_cpu_s"] - first["server_cpu_s"]) / wall
            if wall > 0 else math.nan,
            "idle_server_cpu_pct": soak["idle_server_cpu_pct"],
            "idle_seconds": soak["idle_s"], "idle_time_factor": soak["idle_time_factor"],
            "browser_cpu_pct": 100.0 * (last["browser_cpu_s"] - first["browser_cpu_s"]) / wall
            if wall > 0 else math.nan,
            "pages": pages, "page_errors": soak["page_errors"],
            "sample_s_max": max(x["sample_s"] for x in s),
            "series": [{"t_s": x["t_s"], "server_cpu_s": x["server_cpu_s"],
                        **{f"{n}_heap_mb": x["pages"][n]["heap_bytes"] / 2**20
                           for n in x["pages"]},
                        **{f"{n}_nodes": x["pages"][n]["nodes"] for n in x["pages"]}}
                       for x in s]}


def print_soak(sm: dict[str, Any], series: list[dict[str, Any]]) -> None:
    names = list(sm["pages"])
    print(f"soak: {sm['seconds']:.0f} s at time factor {sm['time_factor']:g} (achieved "
          f"{sm['achieved_time_factor']:.0f}), pages /{' and /'.join(names)}; heap after a "
          f"forced GC, every sample")
    head = "".join(f"{n + ' heap MB':>18s}{n + ' nodes':>16s}" for n in names)
    print(f"{'t s':>7s}{head}{'server CPU %':>14s}")
    prev: dict[str, Any] | None = None
    for x in series:
        cpu = (100.0 * (x["server_cpu_s"] - prev["server_cpu_s"]) / (x["t_s"] - prev["t_s"])
               if prev is not None and x["t_s"] > prev["t_s"] else math.nan)
        cells = "".join(f"{x[n + '_heap_mb']:18.2f}{x[n + '_nodes']:16.0f}" for n in names)
        print(f"{x['t_s']:7.0f}{cells}" + (f"{cpu:14.1f}" if cpu == cpu else ""))
        prev = x
    for n, p in sm["pages"].items():
        print(f"  /{n}: heap {p['heap_first_mb']:.2f} → {p['heap_last_mb']:.2f} MB (×"
              f"{p['heap_ratio']:.2f}, max {p['heap_max_mb']:.2f}); nodes {p['nodes_first']:.0f}"
              f" → {p['nodes_last']:.0f}; elements {p['elements_first']} → "
              f"{p['elements_last']} (table rows {p['table_rows_first']} → "
              f"{p['table_rows_last']}); listeners {p['listeners_first']:.0f} → "
              f"{p['listeners_last']:.0f}; main thread {p['main_thread_pct']:.1f} %; "
              f"{p['visibility']}, {p['conn_last']}")
    print(f"  server (twin + web view) CPU {sm['server_cpu_pct']:.1f} % of a core over the "
          f"soak (the twin alone, no page, {sm['idle_seconds']:g} s before: "
          f"{sm['idle_server_cpu_pct']:.1f} %); browser processes {sm['browser_cpu_pct']:.1f} %;"
          f" page errors {len(sm['page_errors'])}; a sample took up to "
          f"{sm['sample_s_max']:.1f} s")
    for err in sorted(set(sm["page_errors"])):
        print(f"  page error ×{sm['page_errors'].count(err)}: {err}")


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
    out = {"bench": "live", "time_factor": args.time_factor, "plc_tick_s": args.tick,
           "pv_sampling_ms": live["pv_sampling_ms"],
           "gateway_publishing_ms": live["gateway_publish_ms"],
           "throttle_ms": 1e3 * live["throttle_s"], "client_publishing_ms": live["revised_ms"][1],
           "seconds": args.seconds, "samples": res["samples"], "eligible": res["eligible"],
           "twin_latency_ms": {"p50": lat["p50_ms"], "p99": lat["p99_ms"]},
           "parts_ms": {k: st[k] for k in label if k != "latency"},
           "prediction_compute_ms": res["compute_ms"],
           "raw_round_trip_ms": {"p50": raw_p50, "p99": raw_p99, "n": len(raw)},
           "ratio": ratio}
    b = res.get("browser")
    if b is not None:
        bs = b["stats"]
        bl = bs["latency"]
        b_ratio = {"p50": bl["p50_ms"] / lat["p50_ms"], "p99": bl["p99_ms"] / lat["p99_ms"]}
        print(f"browser: /running in headless chromium, {b['samples']} PV changes (of "
              f"{b['eligible']} eligible); DOM updates {b['dom_updates']} "
              f"({b['matched_updates']} matched), page events {b['page_events']}; frames "
              f"{b['frames']['interval_p50_ms']:.1f} ms apart (p99 "
              f"{b['frames']['interval_p99_ms']:.1f}, max {b['frames']['interval_max_ms']:.1f});"
              f" page clock − wall clock {b['clock']['page_minus_wall_ms']:+.1f} ms (±"
              f"{b['clock']['uncertainty_ms']:.1f}, drift {b['clock']['drift_ms']:+.2f}); page "
              f"main thread busy {b['page_main_thread_pct']:.0f} %; page errors "
              f"{len(b['page_errors'])}")
        blabel = {"latency": "PV change → DOM (browser)",
                  "from_plc_stamp": "  same, from the PLC's stamp",
                  "pv_to_prediction": "  part: PV change → prediction",
                  "prediction_to_page_event": "  part: prediction → page event",
                  "page_event_to_dom": "  part: page event → DOM",
                  "page_event_to_next_frame": "    of it: wait for a frame",
                  "prediction_to_dom": "  prediction → DOM"}
        for key, text in blabel.items():
            print(f"{text:34s}{bs[key]['p50_ms']:9.1f}{bs[key]['p99_ms']:9.1f}")
        ex = b["extra_vs_opcua"]
        print(f"{'browser − OPC UA, same PV change':34s}{ex['p50_ms']:9.1f}{ex['p99_ms']:9.1f}"
              f"   (n={b['paired']})")
        print(f"{'ratio browser / OPC UA path':34s}{b_ratio['p50']:9.2f}{b_ratio['p99']:9.2f}"
              f"   (aim: p99 within 1.5×)")
        out["browser"] = {"latency_ms": {"p50": bl["p50_ms"], "p99": bl["p99_ms"]},
                          "ratio_to_opcua": b_ratio, "within_1_5x": b_ratio["p99"] <= 1.5,
                          "parts_ms": {k: bs[k] for k in blabel if k != "latency"},
                          **{k: v for k, v in b.items() if k != "stats"}}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="live measurement window (0: no latency phase)")
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
    parser.add_argument("--browser", action=argparse.BooleanOptionalAction, default=None,
                        help="also measure the web view in headless chromium (default: when "
                             "chromium and playwright are installed)")
    parser.add_argument("--soak-s", type=float, default=0.0,
                        help="then keep /running and /batches open this long (0: no soak)")
    parser.add_argument("--soak-time-factor", type=float, default=2400.0)
    parser.add_argument("--soak-every", type=float, default=30.0, help="s between soak samples")
    parser.add_argument("--soak-idle-s", type=float, default=20.0,
                        help="s of the soak's twin without a page (its own CPU)")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--observe", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--browse", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server is not None:
        asyncio.run(bare_server(args.bare_server, stop_with_stdin=True))
        return 0
    if args.observe is not None:
        plc_url, pv, twin_url, twin_node, publish_ms, queue = args.observe
        asyncio.run(observe(plc_url, pv.split(","), twin_url, twin_node, float(publish_ms),
                            int(queue)))
        return 0
    if args.browse is not None:
        url, pages, record = args.browse
        browse(url, pages.split(","), record)
        return 0
    if args.browser is None:
        args.browser = browser_available()
    elif args.browser and not browser_available():
        raise SystemExit("bench: --browser needs chromium and playwright (pip install -e .[test])")
    if args.soak_s > 0 and not browser_available():
        raise SystemExit("bench: --soak-s needs chromium and playwright")
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # session notices, not results
    out: dict[str, Any] = {"bench": "live"}
    if args.seconds > 0:
        half = args.round_trips // 2
        raw = raw_round_trips(half)
        live = asyncio.run(live_phase(args))
        raw += raw_round_trips(args.round_trips - half)
        res = analyse(live, args.tick)
        if res["samples"] == 0:
            print("bench: no PV change was answered by the twin (no batch ran?)",
                  file=sys.stderr)
            return 1
        out = report(args, live, res, raw)
    if args.soak_s > 0:
        sm = summarise_soak(asyncio.run(soak_phase(args)))
        print_soak(sm, sm["series"])
        out["soak"] = sm
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
