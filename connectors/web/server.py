"""Serve a :class:`~connectors.web.app.WebView` with uvicorn inside the caller's event loop.

The live twin's loop is the web view's loop: no thread, no copy of the twin's state; a page's
request reads the model between two of its slices. uvicorn's own signal handling is off (the
live session owns Ctrl-C and SIGTERM and stops the web view with the run).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Coroutine, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from connectors.net import free_port
from connectors.security_common import Account
from connectors.web.app import WebView
from twin.errors import UsageError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from this
    machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WebOptions:
    """Where and for whom a web view is served (``--web-host``, ``--web-port``, ``--users``).

    A view bound to loopback may be read without logging in (like the twin's OPC UA server's
    anonymous sessions); on any other address every page needs a login.
    """

    host: str = LOOPBACK
    port: int | None = None
    accounts: Mapping[str, Account] = field(default_factory=dict)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the live session handles the signals


class WebServer:
    """One uvicorn server of one web view, started and stopped in the current loop."""

    def __init__(self, view: WebView, host: str = LOOPBACK, port: int | None = None) -> None:
        self.view = view
        self.host = host
        self.port = port if port is not None else free_port()
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._helpers: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a helper of the view (a source's watcher) until the server stops."""
        task = asyncio.get_running_loop().create_task(coro)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        config = uvicorn.Config(self.view.app, host=self.host, port=self.port,
                                log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1, ws="none")
        # The socket is bound here, so that a taken port is one clear error (uvicorn would
        # exit the process).
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as err:
            sock.close()
            raise UsageError(f"--web-port {self.port}: cannot listen on {self.host} "
                             f"({err.strerror})") from None
        self.port = sock.getsockname()[1]
        server = self._server = _Server(config)
        self._task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                exc = self._task.exception() if not self._task.cancelled() else None
                raise UsageError(f"web view: cannot listen on {self.host}:{self.port}"
                                 + (f" ({exc})" if exc else ""))
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.view.hub.close()
        for task in list(self._helpers):
            task.cancel()
        await asyncio.gather(*self._helpers, return_exceptions=True)
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 5)
            if not self._task.done():
                self._task.cancel()

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()
