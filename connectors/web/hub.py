"""Server push to the open pages: one bounded queue per page, events in order.

A page's event stream starts with the whole picture (``snapshot``) and then gets what changed
(``station``, ``batch``, ``audit``, ``alarm``, ``line``, ``calibration``), plus a ``tick``
every :data:`TICK_S` so that a page knows the server is alive (it shows "stale" when neither
came for a few seconds).

Memory stays flat however long a page is open: a page that does not keep up (its queue holds
:data:`QUEUE_MAX` events) is dropped; its browser reconnects and starts again from a fresh
snapshot. Nothing is kept per event beyond the queues.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.web.views import jsonable

#: Seconds between two ticks of an idle stream.
TICK_S = 1.0
#: Events a page may have waiting before it is dropped (and reconnects).
QUEUE_MAX = 2000


@dataclass(eq=False)  # hashed by identity: one per open page
class Subscriber:
    queue: asyncio.Queue[tuple[str, str]] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_MAX))
    dropped: bool = False


class Hub:
    """Fan-out of view events to the open event streams."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.snapshot = snapshot
        self.subscribers: set[Subscriber] = set()
        self.seq = 0
        self.closed = asyncio.Event()

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Queue ``event`` for every open page (JSON-encoded once)."""
        if not self.subscribers:
            return
        self.seq += 1
        payload = json.dumps(jsonable({"seq": self.seq, **data}), allow_nan=False,
                             separators=(",", ":"))
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait((event, payload))
            except asyncio.QueueFull:
                sub.dropped = True  # this page reconnects and starts from a snapshot
                self.subscribers.discard(sub)

    async def stream(self, is_disconnected: Callable[[], Any]) -> AsyncIterator[dict[str, Any]]:
        """One page's events (for an SSE response): the snapshot, then changes and ticks."""
        sub = Subscriber()
        self.subscribers.add(sub)
        try:
            yield {"event": "snapshot", "data": json.dumps(
                jsonable({"seq": self.seq, "server_time": time.time(), **self.snapshot()}),
                allow_nan=False, separators=(",", ":")), "retry": 1000}
            while not sub.dropped and not self.closed.is_set():
                try:
                    event, payload = await asyncio.wait_for(sub.queue.get(), TICK_S)
                except asyncio.TimeoutError:
                    if await is_disconnected():
                        return
                    yield {"event": "tick", "data": json.dumps(
                        {"seq": self.seq, "server_time": time.time()})}
                    continue
                yield {"event": event, "data": payload}
                # A burst drains without a tick in between; a tick still comes each second.
        finally:
            self.subscribers.discard(sub)

    def close(self) -> None:
        """End every stream (the server stops)."""
        self.closed.set()
