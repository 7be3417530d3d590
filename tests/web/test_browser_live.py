"""The web view of a live twin in a real browser (Playwright driving Debian's chromium).

A real emulated furnace PLC (subprocess), the live twin (gateway, plant model in real time,
its OPC UA server, its journal) and its web view, in advisory mode; three browsers: an
anonymous one on loopback, a viewer (vera) and an operator (alice). Without reloading any
page: the running batch's predicted final thickness updates; a batch made on the PLC appears
in the batch table and gets its lab value and decision; alice accepts an open proposal after
a confirmation and sees the decision and then the tool's confirmed write in the audit trail
(the journal has both, under alice); vera is refused (403) and an anonymous page too (401);
a heater runaway on the PLC shows as an active alarm that alice acknowledges; when the twin
stops, every open page says "stale"; a PLC killed (-9) and restarted shows on the Line page
as lost and found again. The suite's screenshots of the pages are these pages
(``UPDATE_SCREENSHOTS=1`` copies them to ``docs/screenshots/`` for the README).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
from asyncua import Client, ua

from connectors.live.launcher import start_emulator
from connectors.live.session import LiveOptions, LiveSession, _start_web, _write, emulated_site
from connectors.net import free_port
from connectors.security_common import Account
from connectors.twin_server import ServerSecurity
from connectors.web.server import WebOptions
from twin.config import DEFAULT_PLANT, load_plant
from twin.control.audit import read_audit
from twin.store.journal import open_journal, read_alarms

PW = {"alice": "al1ce-pw", "vera": "v3ra-pw"}
TIME_FACTOR = 1200.0
#: A long load (2 h of the 4 h load/unload) gives an operator 6 s at 1200x to decide the
#: proposal made as the charge is loaded.
OVERRIDES = ["control.mode=advisory", "stations.oxidizer.load_unload_h=4"]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WAIT_MS = 90_000


class LiveTwin(threading.Thread):
    """The live twin and its web view in their own event loop (Playwright's sync API owns
    the test's thread)."""

    def __init__(self, tmp: Path, plc_url: str) -> None:
        super().__init__(daemon=True)
        cfg = load_plant(DEFAULT_PLANT, OVERRIDES)
        endpoints, tags = emulated_site(cfg, {"furnace1": plc_url})
        accounts = {"alice": Account.with_password("alice", "operator", PW["alice"]),
                    "vera": Account.with_password("vera", "viewer", PW["vera"])}
        opts = LiveOptions(seed=4, time_factor=TIME_FACTOR, hours=40, warmup_days=2,
                           emulate=False, out=tmp / "run", server=True, quiet=True,
                           server_security=ServerSecurity(accounts), overrides=tuple(OVERRIDES))
        self.session = LiveSession(cfg, opts, endpoints=endpoints, tags=tags,
                                   handle_signals=False)
        self.web_options = WebOptions(accounts=accounts)
        self.url = ""
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.outcome: tuple[Any, bool] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        web = await _start_web([self.session], self.web_options)
        self.url = web.url.rstrip("/")
        self.ready.set()
        try:
            self.outcome = await self.session.run()
        finally:
            await web.stop()

    def stop(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: stopped already
                self.loop.call_soon_threadsafe(self.session.interrupt)


def _plc_call(url: str, method: str, *args: str) -> None:
    async def call() -> None:
        async with Client(url) as client:
            sim = client.get_node("ns=2;s=furnace1.Simulation")
            await sim.call_method(f"2:{method}",
                                  *(ua.Variant(a, ua.VariantType.String) for a in args))
    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    box: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(asyncio.wait_for(call(), 20))
        except BaseException as exc:
            box.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    if box:
        raise box[0]


def _login(browser: Any, base: str, user: str) -> Any:
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    page = ctx.new_page()
    page.goto(f"{base}/login?next=/control")
    page.fill("#user", user)
    page.fill("#password", PW[user])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/control")
    page.wait_for_selector(f"#who:has-text('{user}')")
    return page


def _post(page: Any, path: str, body: dict[str, Any]) -> int:
    """A POST from the page itself, with its own session and CSRF token."""
    return int(page.evaluate(
        """async ([path, body]) => {
             const me = await (await fetch('/api/me')).json();
             const r = await fetch(path, {method: 'POST', headers: {
               'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf || ''},
               body: JSON.stringify(body)});
             return r.status; }""", [path, body]))


def _shot(page: Any, name: str, out: Path) -> None:
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000  # a drawn page, not a blank one


def test_live_web_view_in_a_browser(tmp_path: Path, browser: Any) -> None:
    plc = start_emulator("furnace", "furnace1", config=DEFAULT_PLANT, time_factor=TIME_FACTOR,
                         seed=44, port=free_port())
    twin = LiveTwin(tmp_path, plc.url)
    shots = tmp_path / "shots"
    shots.mkdir()
    errors: list[str] = []
    try:
        twin.start()
        assert twin.ready.wait(60) and twin.url, twin.error
        base = twin.url
        anon_ctx = browser.new_context(viewport={"width": 1280, "height": 860})
        running = anon_ctx.new_page()
        running.on("pageerror", lambda e: errors.append(str(e)))
        running.goto(f"{base}/running")
        running.evaluate("window.__loaded_once = true")
        # The running batch's prediction updates, pushed (no reload: the marker stays).
        pred = running.wait_for_selector(
            "[id^=pred-line1_oxidizer1][data-count]:not([data-count='0'])", timeout=WAIT_MS)
        first = int(pred.get_attribute("data-count") or 0)
        running.wait_for_function(
            "n => +document.querySelector('[id^=pred-line1_oxidizer1]').dataset.count >= n + 5",
            arg=first, timeout=WAIT_MS)
        assert running.evaluate("window.__loaded_once") is True
        text = running.inner_text("[id^=pred-line1_oxidizer1]")
        assert text.endswith("nm") and float(text.split()[0]) > 0

        # The operator decides the next open proposal, after a confirmation.
        alice = _login(browser, base, "alice")
        alice.on("pageerror", lambda e: errors.append(str(e)))
        button = alice.wait_for_selector("button[data-act=accept]:not([disabled])",
                                         timeout=WAIT_MS)
        pid = button.get_attribute("data-id")
        assert pid
        alice.locator(f"button[data-act=accept][data-id='{pid}']").click()
        alice.wait_for_selector("#confirm[open]")
        assert pid in alice.inner_text("#confirm-title")
        alice.click("#confirm-ok")
        msg = alice.wait_for_selector("#msg", timeout=10_000)
        assert "accepted by alice" in msg.inner_text(), msg.inner_text()
        alice.wait_for_selector(f"#audit tr[data-kind=decision][data-proposal='{pid}']")
        # The write follows when the charge starts, audited with the tool's read-back.
        alice.wait_for_selector(f"#audit tr[data-kind=write][data-proposal='{pid}']",
                                timeout=WAIT_MS)
        _shot(alice, "control", shots)

        # A viewer and an anonymous page are refused on the server.
        vera = _login(browser, base, "vera")
        assert vera.locator("button[data-act=accept]:not([disabled])").count() == 0
        assert _post(vera, "/api/lines/line1/decide", {"proposal_id": pid, "accept": True}) \
            == 403
        assert _post(running, "/api/lines/line1/decide",
                     {"proposal_id": pid, "accept": True}) == 401

        # A batch made on the PLC appears in the batch table and gets its lab decision.
        batches = anon_ctx.new_page()
        batches.goto(f"{base}/batches")
        batches.wait_for_selector("#batches tr[id^=batch-]", timeout=WAIT_MS)
        batches.evaluate("window.__loaded_once = true")
        live_row = batches.wait_for_selector(
            "#batches tr:has(.badge.plc)", timeout=WAIT_MS)
        row_id = live_row.get_attribute("id")
        batches.wait_for_selector(f"#{row_id}:not([data-decision=pending])", timeout=WAIT_MS)
        assert batches.evaluate("window.__loaded_once") is True
        # Its release report and certificate, from the journal as it is now (mid-run).
        bid = (row_id or "").removeprefix("batch-")
        for kind, media in (("report", "text/html"), ("certificate", "application/json")):
            got = batches.request.get(f"{base}/api/lines/line1/{kind}/{bid}")
            assert got.ok and got.headers["content-type"].startswith(media), got.status
            assert bid in got.text()
        _shot(batches, "batches", shots)

        _shot(running, "running", shots)  # later in the run: a batch well into its step
        # A heater runaway on the PLC: an active alarm that alice acknowledges.
        _plc_call(plc.url, "InjectFault", "HeaterRunaway")
        alice.goto(f"{base}/alarms")
        ack = alice.wait_for_selector("#alarms-active button[data-act=ack]:not([disabled])",
                                      timeout=WAIT_MS)
        aid = ack.get_attribute("data-id")
        alice.locator(f"button[data-act=ack][data-id='{aid}']").first.click()
        alice.click("#confirm-ok")
        # Acknowledged: still active, or cleared meanwhile (the trip stops the heater).
        alice.wait_for_selector(f"tr[data-alarm='{aid}'][data-state=active], "
                                f"tr[data-alarm='{aid}'][data-state=cleared]", timeout=20_000)
        assert "acknowledged by alice" in alice.inner_text("#msg")
        _plc_call(plc.url, "ClearFaults")
        _shot(alice, "alarms", shots)
        for name in ("line", "calibration"):
            page = anon_ctx.new_page()
            page.goto(f"{base}/{name}")
            page.wait_for_selector("#conn[data-state=live]", timeout=20_000)
            page.wait_for_timeout(1500)
            _shot(page, name, shots)

        # The PLC is killed (-9) and comes back on its address: the Line page shows the
        # connection lost and found again, without a reload.
        line_page = anon_ctx.new_page()
        line_page.goto(f"{base}/line")
        plc_state = ".plc[data-endpoint=furnace1][data-state={}]"
        line_page.wait_for_selector(plc_state.format("connected"), timeout=20_000)
        line_page.evaluate("window.__loaded_once = true")
        port = int(plc.url.split(":")[2].split("/")[0])
        plc.proc.kill()
        plc.proc.wait(10)
        line_page.wait_for_selector(plc_state.format("reconnecting"), timeout=20_000)
        plc = start_emulator("furnace", "furnace1", config=DEFAULT_PLANT,
                             time_factor=TIME_FACTOR, seed=45, port=port)
        line_page.wait_for_selector(plc_state.format("connected"), timeout=30_000)
        assert line_page.evaluate("window.__loaded_once") is True

        # The twin stops: every open page says so within a few seconds.
        twin.stop()
        for p in (running, batches, line_page):
            p.wait_for_selector("#conn[data-state=stale]", timeout=15_000)
        assert "stale" in running.inner_text("#conn")
    finally:
        twin.stop()
        twin.join(60)
        plc.stop()
    assert twin.error is None, twin.error
    assert not errors, errors
    assert twin.outcome is not None
    folder = _write(twin.session, twin.outcome[0], twin.session.opts, twin.outcome[1], [])
    # The journal and the exported audit trail name alice for both the decision and the write.
    records = read_audit(folder / "control_audit.jsonl")
    decision = [r for r in records if r["kind"] == "decision" and r["proposal_id"] == pid]
    writes = [r for r in records if r["kind"] == "write" and r["proposal_id"] == pid]
    assert [(r["who"], r["result"]) for r in decision] == [("alice", "accepted")]
    assert writes and writes[-1]["who"] == "alice" and writes[-1]["result"] == "ok", writes
    assert decision[0]["reason"] == "accepted through the web view"
    db = open_journal(folder)
    try:
        alarms = read_alarms(db).set_index("alarm_id")
    finally:
        db.close()
    assert alarms.loc[int(aid or 0), "acknowledged_by"] == "alice"
    # A killed twin's folder holds only its journal: serve exports a temporary copy and
    # shows the same batches, without writing the folder.
    from connectors.web.sources import folder_sources

    crashed = tmp_path / "crashed"
    crashed.mkdir()
    shutil.copy(folder / "journal.sqlite", crashed / "journal.sqlite")
    before = (crashed / "journal.sqlite").read_bytes()
    view = folder_sources(crashed)[0].snapshot()
    exported = pd.read_parquet(folder / "batches.parquet")
    released_units = exported[exported["unit_kind"] == "charge"]["unit_id"]
    assert {b["unit_id"] for b in view["batches"]} <= set(released_units)
    assert pid in {a["proposal_id"] for a in view["audit"]}
    # Nothing but SQLite's own shared-memory index of a WAL reader is added; the journal is
    # unchanged.
    assert {p.name for p in crashed.iterdir()} <= {"journal.sqlite", "journal.sqlite-shm",
                                                  "journal.sqlite-wal"}
    assert (crashed / "journal.sqlite").read_bytes() == before
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        for f in shots.glob("*.png"):
            shutil.copy(f, SHOTS / f.name)
    time.sleep(0)  # (nothing left running: the twin, its web view and the PLC are stopped)


def test_a_page_recovers_by_itself_when_its_server_comes_back(sim_run: Path,
                                                              browser: Any) -> None:
    from connectors.web.app import WebView
    from connectors.web.auth import WebAuth
    from connectors.web.server import WebServer
    from connectors.web.sources import folder_sources

    port = free_port()
    sources = folder_sources(sim_run)
    box: dict[str, Any] = {}

    def serve(stop: threading.Event) -> None:
        async def main() -> None:
            async with WebServer(WebView(sources, WebAuth()), port=port) as server:
                box["url"] = server.url
                while not stop.is_set():
                    await asyncio.sleep(0.05)
        asyncio.run(main())

    stop1 = threading.Event()
    t1 = threading.Thread(target=serve, args=(stop1,), daemon=True)
    t1.start()
    for _ in range(200):
        if "url" in box:
            break
        time.sleep(0.05)
    page = browser.new_page()
    page.goto(f"{box['url']}batches")
    page.wait_for_selector("#conn[data-state=finished]", timeout=20_000)
    page.evaluate("window.__loaded_once = true")
    stop1.set()
    t1.join(10)
    page.wait_for_selector("#conn[data-state=stale]", timeout=15_000)
    stop2 = threading.Event()
    t2 = threading.Thread(target=serve, args=(stop2,), daemon=True)
    t2.start()
    try:
        page.wait_for_selector("#conn[data-state=finished]", timeout=20_000)
        assert page.evaluate("window.__loaded_once") is True  # recovered without a reload
        assert page.locator("#batches tr[id^=batch-]").count() > 0
    finally:
        stop2.set()
        t2.join(10)
        page.close()
