"""The web view's server-side checks, over HTTP against a real uvicorn server on 127.0.0.1.

The writes go to real parts: proposals are decided with the live twin's own
:func:`~connectors.live.session.record_decision` into a real audit buffer, alarms are
acknowledged in a real SQLite journal, and a finished run's pages come from a real run folder
(``anode-twin simulate``). What is checked: reads without a login only on loopback; a write
needs a session (401), its CSRF token and a same-origin request (403), and the operator role
(403 for a viewer); the record names the session's user, never a name the request carries;
the session cookie is HttpOnly and SameSite; every page has a CSP without inline scripts.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.live.session import record_decision
from connectors.security_common import Account
from connectors.web import auth as web_auth
from connectors.web.app import STATIC, WebView
from connectors.web.auth import WebAuth
from connectors.web.server import WebServer
from connectors.web.sources import answer, folder_sources
from twin.cli import main as cli
from twin.control.audit import AuditBuffer, AuditRecord
from twin.store.journal import Journal, read_alarm

PW = {"alice": "al1ce-pw", "vera": "v3ra-pw"}


def _accounts() -> dict[str, Account]:
    return {"alice": Account.with_password("alice", "operator", PW["alice"]),
            "vera": Account.with_password("vera", "viewer", PW["vera"])}


class LineOnRealParts:
    """A line whose writes land in a real audit buffer and a real journal."""

    read_only = False

    def __init__(self, journal: Journal) -> None:
        self.line = "line1"
        self.sink = AuditBuffer()
        self.sink.record(AuditRecord(kind="proposal", loop="line1.oxidizer1", batch_id="C1",
                                     before={"hold_min": 150.0}, after={"hold_min": 171.0},
                                     proposal_id="line1.oxidizer1/C1", result="open",
                                     predicted_nm={"before": 9.1, "after": 10.0}))
        self.sink.record(AuditRecord(kind="proposal", loop="line1.oxidizer1", batch_id="C0",
                                     before={"hold_min": 150.0}, after={"hold_min": 160.0},
                                     proposal_id="line1.oxidizer1/C0/hold1", result="advice"))
        self.journal = journal
        got = journal.alarm(endpoint="furnace1", station="line1.oxidizer1",
                            source="furnace1.Alarms.OverTemperature", kind="OverTemperature",
                            message="zone 2 over temperature", severity=800, active=True,
                            t=time.time())
        assert got is not None
        self.alarm_id = got[0]

    def snapshot(self) -> dict[str, Any]:
        return {"name": self.line, "records": len(self.sink.records)}

    async def decide(self, proposal_id: str, accept: bool, who: str) -> tuple[int, str]:
        return answer(record_decision(self.sink, proposal_id, accept=accept, who=who,
                                      t_s=1.0, channel="the web view"))

    async def acknowledge(self, alarm_id: int, who: str) -> tuple[int, str]:
        if read_alarm(self.journal.db, alarm_id) is None:
            return answer(f"BadNotFound: no alarm {alarm_id}")
        if not self.journal.acknowledge_alarm(alarm_id, who, time.time()):
            return answer("BadConditionBranchAlreadyAcked: acknowledged before")
        return answer(f"Good: alarm {alarm_id} acknowledged by {who}")

    async def report(self, batch_id: str, kind: str) -> tuple[str, bytes] | None:
        return None


def _serve(sources: list[Any], *, anonymous_read: bool,
           scenario: Callable[[httpx.AsyncClient, str], Awaitable[None]]) -> None:
    async def main() -> None:
        view = WebView(sources, WebAuth(_accounts(), anonymous_read=anonymous_read))
        async with WebServer(view) as server:
            async with httpx.AsyncClient(base_url=server.url.rstrip("/"), timeout=10) as c:
                await scenario(c, server.url.rstrip("/"))

    asyncio.run(asyncio.wait_for(main(), 60))


async def _login(c: httpx.AsyncClient, user: str, password: str | None = None) -> str:
    """Log in as a browser does (the page sets the login CSRF cookie); the session's token."""
    await c.get("/line")
    r = await c.post("/api/login", json={"user": user, "password": password or PW[user]},
                     headers={"X-CSRF-Token": c.cookies[web_auth.LOGIN_CSRF_COOKIE]})
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    return str(r.json()["csrf"])


def test_writes_need_a_session_csrf_same_origin_and_the_operator_role(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    line = LineOnRealParts(journal)
    pid = "line1.oxidizer1/C1"
    decide = "/api/lines/line1/decide"

    async def scenario(c: httpx.AsyncClient, base: str) -> None:
        # Anonymous on loopback: may read, may not write.
        assert (await c.get("/api/snapshot")).status_code == 200
        r = await c.post(decide, json={"proposal_id": pid, "accept": True})
        assert r.status_code == 401
        assert (await c.post(f"/api/lines/line1/alarms/{line.alarm_id}/ack")).status_code == 401
        # A viewer: logged in, right token, refused for the role.
        token = await _login(c, "vera")
        r = await c.post(decide, json={"proposal_id": pid, "accept": True},
                         headers={"X-CSRF-Token": token})
        assert r.status_code == 403 and "operator" in r.json()["error"]
        r = await c.post(f"/api/lines/line1/alarms/{line.alarm_id}/ack",
                         headers={"X-CSRF-Token": token})
        assert r.status_code == 403
        assert [r.kind for r in line.sink.records] == ["proposal", "proposal"]
        # An operator without the token, with a wrong one, from another origin: refused.
        c.cookies.clear()
        token = await _login(c, "alice")
        for headers in ({}, {"X-CSRF-Token": "x" + token[1:]},
                        {"X-CSRF-Token": token, "Origin": "http://evil.example"}):
            r = await c.post(decide, json={"proposal_id": pid, "accept": True}, headers=headers)
            assert r.status_code == 403, headers
        assert [r.kind for r in line.sink.records] == ["proposal", "proposal"]
        # Right: recorded under the session's user whatever name the request carries.
        r = await c.post(decide, json={"proposal_id": pid, "accept": True, "who": "mallory"},
                         headers={"X-CSRF-Token": token, "Origin": base})
        assert r.status_code == 200, r.text
        rec = line.sink.records[-1]
        assert (rec.kind, rec.who, rec.result) == ("decision", "alice", "accepted")
        assert rec.reason == "accepted through the web view"
        # Decided once only; an unknown proposal is 404.
        r = await c.post(decide, json={"proposal_id": pid, "accept": False},
                         headers={"X-CSRF-Token": token})
        assert r.status_code == 409
        # In-step advice is not for a decision: the twin would not act on it.
        r = await c.post(decide, json={"proposal_id": "line1.oxidizer1/C0/hold1",
                                       "accept": True}, headers={"X-CSRF-Token": token})
        assert r.status_code == 409 and "HMI" in r.json()["error"]
        r = await c.post(decide, json={"proposal_id": "nope", "accept": False},
                         headers={"X-CSRF-Token": token})
        assert r.status_code == 404
        r = await c.post(decide, json={"proposal_id": pid, "accept": "yes"},
                         headers={"X-CSRF-Token": token})
        assert r.status_code == 400
        # Alarm: acknowledged once, under alice.
        ack = f"/api/lines/line1/alarms/{line.alarm_id}/ack"
        r = await c.post(ack, headers={"X-CSRF-Token": token})
        assert r.status_code == 200, r.text
        row = read_alarm(journal.db, line.alarm_id)
        assert row is not None and row["acknowledged_by"] == "alice"
        assert (await c.post(ack, headers={"X-CSRF-Token": token})).status_code == 409
        assert (await c.post("/api/lines/line1/alarms/999/ack",
                             headers={"X-CSRF-Token": token})).status_code == 404
        # Logged out: the old cookie is dead on the server, not only in the browser.
        old = c.cookies[web_auth.SESSION_COOKIE]
        assert (await c.post("/api/logout", headers={"X-CSRF-Token": token})).status_code == 200
        c.cookies.set(web_auth.SESSION_COOKIE, old)
        r = await c.post(ack, headers={"X-CSRF-Token": token})
        assert r.status_code == 401

    _serve([line], anonymous_read=True, scenario=scenario)
    journal.close()


def test_login_needs_its_csrf_cookie_and_locks_a_guessed_name(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")

    async def scenario(c: httpx.AsyncClient, base: str) -> None:
        r = await c.post("/api/login", json={"user": "alice", "password": PW["alice"]})
        assert r.status_code == 403  # no double-submit token: a cross-site form cannot log in
        await c.get("/line")
        csrf = {"X-CSRF-Token": c.cookies[web_auth.LOGIN_CSRF_COOKIE]}
        for _ in range(web_auth.MAX_FAILURES):
            r = await c.post("/api/login", json={"user": "alice", "password": "guess"},
                             headers=csrf)
            assert r.status_code == 401
        # Locked: even the right password is refused until the lock ends.
        r = await c.post("/api/login", json={"user": "alice", "password": PW["alice"]},
                         headers=csrf)
        assert r.status_code == 429
        r = await c.post("/api/login", json={"user": "vera", "password": PW["vera"]},
                         headers=csrf)
        assert r.status_code == 200  # another name is not locked

    _serve([LineOnRealParts(journal)], anonymous_read=True, scenario=scenario)
    journal.close()


def test_off_loopback_every_read_needs_a_login(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")

    async def scenario(c: httpx.AsyncClient, base: str) -> None:
        for path in ("/api/snapshot", "/api/events", "/api/lines/line1/report/C1"):
            assert (await c.get(path)).status_code == 401, path
        me = (await c.get("/api/me")).json()
        assert me["user"] is None and me["anonymous_read"] is False
        await _login(c, "vera")
        assert (await c.get("/api/snapshot")).status_code == 200

    _serve([LineOnRealParts(journal)], anonymous_read=False, scenario=scenario)
    journal.close()


def test_pages_have_a_csp_without_inline_script_or_style(sim_run: Path) -> None:
    html = (STATIC / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in html and " style=" not in html
    js = (STATIC / "app.js").read_text()
    assert "eval(" not in js and "new Function" not in js
    assert "style=" not in js  # styles only through classes in app.css

    async def scenario(c: httpx.AsyncClient, base: str) -> None:
        for path in ("/line", "/running", "/batches", "/control", "/alarms", "/calibration",
                     "/login", "/api/me", "/static/app.js"):
            r = await c.get(path)
            assert r.status_code == 200, path
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
            assert "frame-ancestors 'none'" in csp
            assert r.headers["x-content-type-options"] == "nosniff"

    _serve(folder_sources(sim_run), anonymous_read=True, scenario=scenario)


def test_a_finished_run_is_read_only_and_links_its_reports(sim_run: Path) -> None:
    sources = folder_sources(sim_run)
    view = sources[0].snapshot()
    released = [b["unit_id"] for b in view["batches"] if b["decision"] == "release"]
    proposals = [a for a in view["audit"] if a["kind"] == "proposal"]
    assert released and proposals and view["read_only"]

    async def scenario(c: httpx.AsyncClient, base: str) -> None:
        token = await _login(c, "alice")
        pid = proposals[-1]["proposal_id"]
        r = await c.post("/api/lines/line1/decide", json={"proposal_id": pid, "accept": True},
                         headers={"X-CSRF-Token": token})
        assert r.status_code == 409 and "read-only" in r.json()["error"]
        me = (await c.get("/api/me")).json()
        assert me["read_only"] and not me["may_decide"]
        r = await c.get(f"/api/lines/line1/report/{released[0]}")
        assert r.status_code == 200 and released[0] in r.text
        assert "script-src" not in r.headers["content-security-policy"]  # no script at all
        r = await c.get(f"/api/lines/line1/certificate/{released[0]}")
        assert r.status_code == 200 and r.json()["batch_id"] == released[0]
        assert (await c.get("/api/lines/line1/report/NOPE")).status_code == 404

    _serve(sources, anonymous_read=True, scenario=scenario)
    assert not (sim_run / "report").exists()  # the run folder is never written


def test_cli_refuses_an_open_address_without_users_and_a_missing_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["run", "--web-host", "0.0.0.0", "--hours", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--web-host 0.0.0.0" in err and "--users" in err
    assert cli(["serve", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope" in err
