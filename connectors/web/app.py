"""The web view's ASGI app (Starlette): pages, a JSON snapshot, an event stream, two writes.

Routes
------
``GET /line /running /batches /control /alarms /calibration /login``
    The page shell (``static/index.html``; the script draws the page from the data).
``GET /api/me``
    Who this browser is (user, role, the session's CSRF token) and what it may do.
``GET /api/snapshot`` and ``GET /api/events`` (Server-Sent Events)
    Every line's view; the stream starts with it and then pushes changes and ticks.
``POST /api/login``, ``POST /api/logout``
``POST /api/lines/{line}/decide``  ``{"proposal_id": ..., "accept": true|false}``
    Operator role.
``POST /api/lines/{line}/alarms/{alarm_id}/ack``
    Operator role.
``GET /api/lines/{line}/report/{batch_id}`` and ``.../certificate/{batch_id}``
    The batch's release report (HTML) and certificate of analysis (JSON).

Every response carries a Content-Security-Policy without inline scripts or styles, and
``nosniff``/``no-referrer``/``frame-ancestors 'none'``. Reads need a session unless the view
allows anonymous reading (loopback); every POST needs the session's CSRF token and a same-origin
``Origin`` (when the browser sends one); writes check the role on the server.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from connectors.twin_server import ACK_ROLE, DECIDE_ROLE
from connectors.web.auth import (
    CSRF_HEADER,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    WebAuth,
    WebSession,
)
from connectors.web.hub import Hub
from connectors.web.sources import Source
from connectors.web.views import jsonable

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
PAGES = ("line", "running", "batches", "control", "alarms", "calibration", "login")

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "Cross-Origin-Opener-Policy": "same-origin"}
#: A report page is the report module's own HTML (inline styles, no scripts).
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
              "frame-ancestors 'none'; base-uri 'none'")


class WebView:
    """The app of one web view: its sources (one per line), users and push hub."""

    def __init__(self, sources: Sequence[Source], auth: WebAuth, *,
                 on_note: Callable[[str], None] | None = None) -> None:
        self.sources = {s.line: s for s in sources}
        self.auth = auth
        self.on_note = on_note
        self.hub = Hub(self.snapshot)
        for s in sources:
            attach = getattr(s, "attach", None)
            if attach is not None:
                attach(self.hub)
        routes: list[Route | Mount] = [Route(f"/{p}", self.page) for p in PAGES]
        routes += [
            Route("/", self.root),
            Route("/api/me", self.me),
            Route("/api/snapshot", self.snapshot_route),
            Route("/api/events", self.events),
            Route("/api/login", self.login, methods=["POST"]),
            Route("/api/logout", self.logout, methods=["POST"]),
            Route("/api/lines/{line}/decide", self.decide, methods=["POST"]),
            Route("/api/lines/{line}/alarms/{alarm_id:int}/ack", self.ack, methods=["POST"]),
            Route("/api/lines/{line}/{kind:str}/{batch_id:str}", self.report),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
        self.app = Starlette(routes=routes)
        self.app.add_middleware(_Headers)

    def snapshot(self) -> dict[str, Any]:
        return {"lines": {name: s.snapshot() for name, s in self.sources.items()}}

    # -- who ---------------------------------------------------------------------------
    def _session(self, request: Request) -> WebSession | None:
        return self.auth.session(request.cookies.get(SESSION_COOKIE))

    def _may_read(self, request: Request) -> bool:
        return self.auth.anonymous_read or self._session(request) is not None

    def _post_ok(self, request: Request, expected: str | None) -> str:
        """'' when the POST's origin and CSRF token are right, else why not."""
        origin = request.headers.get("origin")
        if origin is not None and origin != _own_origin(request):
            return "cross-origin request refused"
        if not self.auth.csrf_ok(expected, request.headers.get(CSRF_HEADER)):
            return "missing or wrong CSRF token"
        return ""

    # -- pages ---------------------------------------------------------------------------
    async def root(self, request: Request) -> Response:
        return RedirectResponse("/line", status_code=303)

    async def page(self, request: Request) -> Response:
        response = FileResponse(STATIC / "index.html", media_type="text/html")
        response.headers["Cache-Control"] = "no-store"
        if not request.cookies.get(LOGIN_CSRF_COOKIE):
            response.set_cookie(LOGIN_CSRF_COOKIE, secrets.token_urlsafe(24), httponly=False,
                                samesite="strict", path="/")
        return response

    # -- data ----------------------------------------------------------------------------
    async def me(self, request: Request) -> Response:
        s = self._session(request)
        ro = all(src.read_only for src in self.sources.values())
        return _json({"user": s.user if s else None, "role": s.role if s else None,
                      "csrf": s.csrf if s else None, "anonymous_read": self.auth.anonymous_read,
                      "logins": bool(self.auth.accounts), "read_only": ro,
                      "may_decide": self.auth.may(s, DECIDE_ROLE) and not ro,
                      "may_ack": self.auth.may(s, ACK_ROLE) and not ro,
                      "lines": list(self.sources)})

    async def snapshot_route(self, request: Request) -> Response:
        if not self._may_read(request):
            return _json({"error": "log in to see the plant"}, 401)
        return _json(self.snapshot())

    async def events(self, request: Request) -> Response:
        if not self._may_read(request):
            return _json({"error": "log in to see the plant"}, 401)
        return EventSourceResponse(self.hub.stream(request.is_disconnected), ping=15,
                                   headers={"Cache-Control": "no-store",
                                            "X-Accel-Buffering": "no"})

    async def report(self, request: Request) -> Response:
        if not self._may_read(request):
            return _json({"error": "log in to see the plant"}, 401)
        kind = request.path_params["kind"]
        src = self.sources.get(request.path_params["line"])
        if kind not in ("report", "certificate") or src is None:
            return _json({"error": "not found"}, 404)
        got = await src.report(request.path_params["batch_id"], kind)
        if got is None:
            return _json({"error": f"no {kind} for batch "
                                   f"{request.path_params['batch_id']!r}"}, 404)
        media, body = got
        response = Response(body, media_type=media)
        if media.startswith("text/html"):
            response.headers["Content-Security-Policy"] = REPORT_CSP
        return response

    # -- login ---------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        why = self._post_ok(request, request.cookies.get(LOGIN_CSRF_COOKIE))
        if why:
            return _json({"error": why}, 403)
        body = await _body(request)
        user, password = str(body.get("user", "")), str(body.get("password", ""))
        got = await self.auth.login(user, password)
        if got.session is None:
            log.warning("web view: refused login of %r (%s)", user, got.error)
            status = 429 if got.locked_s else 401
            return _json({"error": got.error}, status)
        response = _json({"user": got.session.user, "role": got.session.role,
                          "csrf": got.session.csrf})
        response.set_cookie(SESSION_COOKIE, got.token, httponly=True, samesite="strict",
                            path="/")
        return response

    async def logout(self, request: Request) -> Response:
        s = self._session(request)
        if s is not None:
            why = self._post_ok(request, s.csrf)
            if why:
                return _json({"error": why}, 403)
            self.auth.logout(request.cookies.get(SESSION_COOKIE))
        response = _json({"user": None})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- writes --------------------------------------------------------------------------
    async def _write(self, request: Request, role: str, what: str,
                     act: Callable[[Source, WebSession], Awaitable[tuple[int, str]]]
                     ) -> Response:
        s = self._session(request)
        if s is None:
            return _json({"error": "log in first"}, 401)
        why = self._post_ok(request, s.csrf)
        if why:
            return _json({"error": why}, 403)
        if not self.auth.may(s, role):
            log.warning("web view: %s refused for %s (%s)", what, s.user, s.role)
            if self.on_note is not None:
                self.on_note(f"web view: {what} refused for {s.user} ({s.role})")
            return _json({"error": f"{what} needs the {role} role; {s.user} is {s.role}"},
                         403)
        src = self.sources.get(request.path_params["line"])
        if src is None:
            return _json({"error": f"no line {request.path_params['line']!r}"}, 404)
        status, message = await act(src, s)
        return _json({"message": message} if status == 200 else {"error": message}, status)

    async def decide(self, request: Request) -> Response:
        body = await _body(request)
        pid, accept = body.get("proposal_id"), body.get("accept")
        if not isinstance(pid, str) or not isinstance(accept, bool):
            return _json({"error": "expected {\"proposal_id\": str, \"accept\": bool}"}, 400)
        verb = "acceptance" if accept else "rejection"
        return await self._write(request, DECIDE_ROLE, f"{verb} of proposal {pid}",
                                 lambda src, s: src.decide(pid, accept, s.user))

    async def ack(self, request: Request) -> Response:
        aid = int(request.path_params["alarm_id"])
        return await self._write(request, ACK_ROLE, f"acknowledgement of alarm {aid}",
                                 lambda src, s: src.acknowledge(aid, s.user))


class _Headers:
    """Security headers on every response (pure ASGI: the event stream is not buffered)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Mapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()
                         if k.lower().encode() not in have]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def _own_origin(request: Request) -> str:
    host = request.headers.get("host", "")
    return f"{request.url.scheme}://{host}"


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _json(data: Any, status: int = 200) -> JSONResponse:
    response = JSONResponse(jsonable(data), status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response
