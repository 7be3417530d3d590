"""The OPC UA gateway: logical signals in, PLC nodes out.

:class:`Gateway` is what the live twin talks to. It knows signals (``line1.oxidizer1.
temperature_sp``), never NodeIds; the tag map in the plant file does the mapping. Each
endpoint is owned by one :class:`~connectors.opcua.endpoint.EndpointWorker` task.

Usage::

    async with Gateway(plant.endpoints, plant.tags) as gw:
        result = await gw.write("line1.oxidizer1.temperature_sp", 850.0)
        async for sample in gw.updates():
            ...
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from connectors.opcua.endpoint import EndpointWorker
from connectors.opcua.errors import (
    CallError,
    GatewayError,
    OutOfLimitsError,
    TagError,
    WriteError,
)
from connectors.opcua.records import (
    Alarm,
    CallResult,
    EndpointState,
    EndpointStatus,
    Gap,
    GatewayEvent,
    Sample,
    Value,
    WriteResult,
)
from connectors.opcua.variants import coerce
from twin.config.tags import Endpoint, Tag

if TYPE_CHECKING:
    from twin.config.schema import PlantConfig

log = logging.getLogger(__name__)


class Gateway:
    """Client gateway to the PLCs of a tag map.

    Parameters
    ----------
    endpoints : Mapping[str, Endpoint]
        OPC UA servers by name (``PlantConfig.endpoints``).
    tags : Mapping[str, Tag]
        Signals by name (``PlantConfig.tags``); every tag's endpoint must be in ``endpoints``.
    clock : callable, optional
        Time source for ``Sample.received_ts``, gap and event times (seconds). Defaults to
        ``time.monotonic``; the live twin may pass its own.
    base_dir : Path, optional
        Folder that relative certificate and password-file paths are resolved against
        (normally the site file's folder).
    rng : numpy.random.Generator, optional
        Jitter source for reconnect back-off (only used when an endpoint sets
        ``reconnect_jitter``).
    queue_size : int
        Bound of the sample queue behind :meth:`updates`. When the consumer falls behind,
        the oldest samples are dropped and counted in :attr:`dropped_samples`
        (:meth:`latest` always has the newest value).
    """

    def __init__(self, endpoints: Mapping[str, Endpoint], tags: Mapping[str, Tag], *,
                 clock: Callable[[], float] = time.monotonic, base_dir: Path | None = None,
                 rng: np.random.Generator | None = None, queue_size: int = 100_000) -> None:
        for signal, tag in tags.items():
            if tag.endpoint not in endpoints:
                raise TagError(f"tag {signal!r}: endpoint {tag.endpoint!r} is not configured "
                               f"(have: {', '.join(sorted(endpoints)) or 'none'})")
        self._tags = dict(tags)
        self._clock = clock
        self._samples: asyncio.Queue[Sample] = asyncio.Queue(maxsize=queue_size)
        self._events: asyncio.Queue[GatewayEvent] = asyncio.Queue(maxsize=10_000)
        self._event_log: deque[GatewayEvent] = deque(maxlen=10_000)
        self._alarms: asyncio.Queue[Alarm] = asyncio.Queue(maxsize=10_000)
        self._alarm_log: deque[Alarm] = deque(maxlen=10_000)
        #: Events logged in all (the bounded log keeps the newest; a journal takes the rest).
        self.events_logged = 0
        self._latest: dict[str, Sample] = {}
        self._gaps: list[Gap] = []
        self.dropped_samples = 0
        self._workers = {
            name: EndpointWorker(name, cfg, {s: t for s, t in tags.items() if t.endpoint == name},
                                 self, clock=clock, base_dir=base_dir, rng=rng)
            for name, cfg in endpoints.items()
        }
        self._started = False

    @classmethod
    def from_plant(cls, plant: PlantConfig, **kwargs: Any) -> Gateway:
        """Gateway for the ``[endpoints]`` and ``[tags]`` of a loaded plant (site) file."""
        return cls(plant.endpoints, plant.tags, **kwargs)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, require_connected: bool = True) -> None:
        """Connect every endpoint, resolve and check every tag, subscribe readable tags.

        Parameters
        ----------
        require_connected : bool
            If true (default) an unreachable endpoint fails the start. If false it is
            retried in the background (with a gap open from now) while the others run.
            A tag that does not fit its node, or unusable credentials, always fail.

        Raises
        ------
        TagError
            Missing node, wrong data type, wrong node class or access (names the signal).
        EndpointUnreachableError, SecurityError, CredentialsError
            The endpoint could not be connected (names the endpoint and its signals).
        """
        if self._started:
            raise RuntimeError("gateway already started")
        self._started = True
        try:
            await asyncio.gather(*(w.start(require_connected) for w in self._workers.values()))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Disconnect every endpoint (open gaps are closed at the stop time)."""
        await asyncio.gather(*(w.stop() for w in self._workers.values()))
        self._started = False

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    # ------------------------------------------------------------------- requests

    async def write(self, signal: str, value: Value, *, check: bool = True) -> WriteResult:
        """Write one setpoint: one node per request, explicit variant type, read-back.

        Parameters
        ----------
        signal : str
            A tag with access ``write`` or ``readwrite``.
        value : float, int, bool, str or datetime
            Checked against the tag's type and limits before anything is sent.
        check : bool
            If true (default) a refused or unconfirmed write raises :class:`WriteError`
            (its ``result`` holds status and read-back); if false the result is returned.

        Raises
        ------
        OutOfLimitsError
            Outside the tag's limits or its type's range; not sent.
        NotConnectedError
            The endpoint is not connected (fails at once; never queued or replayed).
        WriteError
            The server refused it (status surfaced) or the read-back differs.
        """
        tag = self._tag(signal)
        if not tag.writable:
            raise TagError(f"tag {signal!r} (endpoint {tag.endpoint!r}) is not writable "
                           f"(type {tag.type}, access {tag.access!r})")
        try:
            sent = coerce(tag.type, value)
        except ValueError as exc:
            raise OutOfLimitsError(f"write to {signal!r} (endpoint {tag.endpoint!r}): {exc}; "
                                   "not sent") from None
        if tag.limits is not None and isinstance(sent, int | float):
            lo, hi = tag.limits
            if not lo <= sent <= hi:
                units = f" {tag.units}" if tag.units else ""
                raise OutOfLimitsError(
                    f"write to {signal!r} (endpoint {tag.endpoint!r}): {sent:g}{units} is "
                    f"outside limits [{lo:g}, {hi:g}]{units}; not sent")
        result: WriteResult = await self._workers[tag.endpoint].submit("write", signal, sent)
        if check and not result.ok:
            raise WriteError(result)
        return result

    async def read(self, signal: str) -> Sample:
        """Read a signal's current value from the server (a Read request, not the cache)."""
        tag = self._tag(signal)
        if tag.type == "Method":
            raise TagError(f"tag {signal!r} (endpoint {tag.endpoint!r}) is a Method: use call()")
        sample: Sample = await self._workers[tag.endpoint].submit("read", signal)
        return sample

    async def call(self, signal: str, *args: Any, check: bool = True) -> CallResult:
        """Call a method tag (Start, Hold, Resume, Abort, ...) with typed input arguments.

        Raises :class:`CallError` on a bad status when ``check`` is true, and
        :class:`NotConnectedError` at once when the endpoint is not connected.
        """
        tag = self._tag(signal)
        if tag.type != "Method":
            raise TagError(f"tag {signal!r} (endpoint {tag.endpoint!r}) is a {tag.type}, "
                           "not a Method")
        result: CallResult = await self._workers[tag.endpoint].submit("call", signal, *args)
        if check and not result.ok:
            raise CallError(result)
        return result

    # ------------------------------------------------------------------- values

    def latest(self, signal: str) -> Sample | None:
        """The newest sample of a signal (a gap marker during an outage), or None yet."""
        self._tag(signal)
        return self._latest.get(signal)

    async def updates(self) -> AsyncIterator[Sample]:
        """Every sample as it arrives (one consumer; ends only when cancelled)."""
        while True:
            yield await self._samples.get()

    @property
    def samples(self) -> asyncio.Queue[Sample]:
        """The queue behind :meth:`updates` (for ``get()``/``get_nowait()`` consumers)."""
        return self._samples

    async def events(self) -> AsyncIterator[GatewayEvent]:
        """Connection events (connected, disconnected, gap_start, gap_end, ...) as they happen."""
        while True:
            yield await self._events.get()

    async def alarms(self) -> AsyncIterator[Alarm]:
        """The PLCs' alarms (became active, cleared) as they arrive (one consumer)."""
        while True:
            yield await self._alarms.get()

    @property
    def alarm_log(self) -> tuple[Alarm, ...]:
        """The most recent alarms (up to 10 000), oldest first."""
        return tuple(self._alarm_log)

    @property
    def event_log(self) -> tuple[GatewayEvent, ...]:
        """The most recent events (up to 10 000), oldest first."""
        return tuple(self._event_log)

    def gaps(self, endpoint: str | None = None) -> tuple[Gap, ...]:
        """Outages so far (the last may still be open: ``end is None``)."""
        return tuple(g for g in self._gaps if endpoint is None or g.endpoint == endpoint)

    # ---------------------------------------------------------------- connection

    def connected(self, endpoint: str) -> bool:
        """True while the endpoint is connected and its tags are live."""
        return self._worker(endpoint).state is EndpointState.CONNECTED

    def state(self, endpoint: str) -> EndpointState:
        """Connection state of an endpoint."""
        return self._worker(endpoint).state

    def status(self, endpoint: str) -> EndpointStatus:
        """Bookkeeping of an endpoint: connects, reconnect attempts, back-off, last error."""
        return self._worker(endpoint).status()

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Names of the configured endpoints."""
        return tuple(self._workers)

    def signals(self, endpoint: str | None = None) -> tuple[str, ...]:
        """Signals of the tag map (of one endpoint if given)."""
        return tuple(s for s, t in self._tags.items() if endpoint in (None, t.endpoint))

    async def wait_connected(self, endpoint: str, timeout: float) -> None:
        """Wait until the endpoint is connected; ``TimeoutError`` after ``timeout`` s."""
        worker = self._worker(endpoint)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while worker.state is not EndpointState.CONNECTED:
            if loop.time() >= deadline:
                raise TimeoutError(f"endpoint {endpoint!r} not connected after {timeout:g} s "
                                   f"({worker.status().last_error})")
            await asyncio.sleep(0.02)

    # ------------------------------------------------------------ sink (workers)

    def on_sample(self, sample: Sample) -> None:
        """Called by workers and subscription callbacks: store and enqueue, never block."""
        self._latest[sample.signal] = sample
        try:
            self._samples.put_nowait(sample)
        except asyncio.QueueFull:
            self._samples.get_nowait()  # drop the oldest: the newest matters for control
            self._samples.put_nowait(sample)
            self.dropped_samples += 1
            if self.dropped_samples == 1:
                log.warning("sample queue full (%d): dropping the oldest samples",
                            self._samples.maxsize)

    def on_event(self, event: GatewayEvent) -> None:
        """Called by workers: log and enqueue an event (oldest dropped when full)."""
        log.info("opcua %s %s %s", event.endpoint, event.kind, event.detail)
        self._event_log.append(event)
        self.events_logged += 1
        if self._events.full():
            self._events.get_nowait()
        self._events.put_nowait(event)

    def on_alarm(self, alarm: Alarm) -> None:
        """Called by event callbacks: log and enqueue an alarm (oldest dropped when full)."""
        log.info("opcua %s alarm %s %s %s", alarm.endpoint, alarm.kind,
                 "active" if alarm.active else "cleared", alarm.message)
        self._alarm_log.append(alarm)
        if self._alarms.full():
            self._alarms.get_nowait()
        self._alarms.put_nowait(alarm)

    def on_gap(self, gap: Gap) -> None:
        """Called by workers: a new gap, or the end of the endpoint's open one."""
        for i in range(len(self._gaps) - 1, -1, -1):
            old = self._gaps[i]
            if old.endpoint == gap.endpoint and old.start == gap.start and old.end is None:
                self._gaps[i] = gap
                return
        self._gaps.append(gap)

    # ------------------------------------------------------------------ helpers

    def _tag(self, signal: str) -> Tag:
        try:
            return self._tags[signal]
        except KeyError:
            hint = difflib.get_close_matches(signal, self._tags, n=1)
            did_you = f"; did you mean {hint[0]!r}?" if hint else ""
            raise TagError(f"unknown signal {signal!r} (not in the tag map){did_you}") from None

    def _worker(self, endpoint: str) -> EndpointWorker:
        try:
            return self._workers[endpoint]
        except KeyError:
            raise GatewayError(f"unknown endpoint {endpoint!r} (have: "
                               f"{', '.join(self._workers) or 'none'})") from None
