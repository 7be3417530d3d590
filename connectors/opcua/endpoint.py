"""One endpoint: the asyncio task that owns its OPC UA client and every request it sends.

Why one owning task: requests, heartbeats, reconnects and subscription set-up are then
serialised by construction, so a write can never race a reconnect (and be replayed on the new
session), and the connection state the API checks is the state the I/O runs under.

* Public calls (:meth:`EndpointWorker.submit`) check the state and fail at once when the
  endpoint is not connected; otherwise they post a request to the task's inbox and await its
  future. Nothing is ever queued across an outage: when the connection drops, every request
  still in the inbox fails with :class:`NotConnectedError`.
* Subscription callbacks run in asyncua's tasks and only build a :class:`Sample` and hand it
  to the sink (a non-blocking enqueue); they never await I/O.
* The client runs with ``auto_reconnect=False``: this task reconnects itself, with the
  configured back-off, on a *new* client, re-resolves every tag (a restarted PLC may renumber
  namespaces) and re-creates the subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from asyncua import Client, Node, ua

from connectors.opcua.backoff import Backoff
from connectors.opcua.errors import (
    CredentialsError,
    EndpointUnreachableError,
    GatewayError,
    NotConnectedError,
    SecurityError,
    TagError,
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
from connectors.opcua.resolve import ResolvedTag, resolve_tags
from connectors.opcua.security import configure_client
from connectors.opcua.variants import INT_RANGE, dv_status, dv_value, plain, same_value, to_variant
from twin.config.tags import Endpoint, Tag

log = logging.getLogger(__name__)

# Status codes that mean the session or the transport is gone (not a refusal of the request).
_TRANSPORT_CODES = frozenset({
    ua.StatusCodes.BadConnectionClosed, ua.StatusCodes.BadSecureChannelClosed,
    ua.StatusCodes.BadSessionClosed, ua.StatusCodes.BadSessionIdInvalid,
    ua.StatusCodes.BadServerNotConnected, ua.StatusCodes.BadNotConnected,
    ua.StatusCodes.BadCommunicationError, ua.StatusCodes.BadTimeout,
    ua.StatusCodes.BadShutdown, ua.StatusCodes.BadServerHalted,
    ua.StatusCodes.BadSecureChannelIdInvalid, ua.StatusCodes.BadConnectionRejected,
})
_AUTH_CODES = frozenset({
    ua.StatusCodes.BadUserAccessDenied, ua.StatusCodes.BadIdentityTokenInvalid,
    ua.StatusCodes.BadIdentityTokenRejected, ua.StatusCodes.BadUserSignatureInvalid,
})
_SECURITY_CODES = frozenset({
    ua.StatusCodes.BadSecurityChecksFailed, ua.StatusCodes.BadSecurityPolicyRejected,
    ua.StatusCodes.BadCertificateInvalid, ua.StatusCodes.BadCertificateUntrusted,
    ua.StatusCodes.BadCertificateTimeInvalid, ua.StatusCodes.BadCertificateHostNameInvalid,
    ua.StatusCodes.BadCertificateUriInvalid, ua.StatusCodes.BadCertificateUseNotAllowed,
    ua.StatusCodes.BadCertificateRevoked, ua.StatusCodes.BadNoValidCertificates,
    ua.StatusCodes.BadSecurityModeRejected,
})
_BAD_NOT_CONNECTED = ua.StatusCodes.BadNotConnected


def is_transport_error(exc: BaseException) -> bool:
    """True if ``exc`` means the connection is gone rather than that a request was refused."""
    if isinstance(exc, ua.UaStatusCodeError):
        return exc.code in _TRANSPORT_CODES
    return isinstance(exc, ConnectionError | OSError | TimeoutError | asyncio.TimeoutError)


class Sink(Protocol):
    """Where a worker reports; implemented by :class:`connectors.opcua.Gateway`.

    Every method is called from the event loop and must not block.
    """

    def on_sample(self, sample: Sample) -> None: ...

    def on_event(self, event: GatewayEvent) -> None: ...

    def on_gap(self, gap: Gap) -> None: ...

    def on_alarm(self, alarm: Alarm) -> None: ...


@dataclass
class _Request:
    kind: Literal["read", "write", "call"]
    signal: str
    args: tuple[Any, ...]
    future: asyncio.Future[Any]


@dataclass
class _Lost:
    generation: int
    reason: str
    at: float


@dataclass
class _Stop:
    pass


_LOST = _Lost(-1, "", 0.0)  # _serve's "connection lost" answer when the loss is already recorded


@dataclass
class _Session:
    """What one successful connect produced (replaced on every reconnect)."""

    client: Client
    generation: int
    resolved: dict[str, ResolvedTag]
    heartbeat: ResolvedTag | None
    signals_by_node: dict[ua.NodeId, list[str]] = field(default_factory=dict)
    ready_at: float = 0.0  # data flows again from here on (the end of an open gap)


class _Subscriber:
    """asyncua subscription handler: converts and enqueues, never awaits."""

    def __init__(self, worker: EndpointWorker, generation: int) -> None:
        self._worker, self._generation = worker, generation

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        self._worker._on_datachange(self._generation, node.nodeid, data.monitored_item.Value)

    def event_notification(self, event: Any) -> None:
        self._worker._on_alarm_event(self._generation, event)

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        # The server reports a subscription's death (e.g. BadTimeout) this way.
        if not status.Status.is_good():
            self._worker._on_connection_lost(self._generation, f"subscription {status.Status.name}")


class EndpointWorker:
    """Owns the connection to one endpoint and all requests to it.

    Parameters
    ----------
    name : str
        Endpoint key in the plant file.
    config : Endpoint
        Its validated configuration.
    tags : Mapping[str, Tag]
        The tags of this endpoint, by signal.
    sink : Sink
        Receives samples, events and gap records.
    clock : callable
        Time source for ``received_ts`` and gap times, seconds.
    base_dir : Path, optional
        Folder relative certificate and password paths are resolved against.
    rng : numpy.random.Generator, optional
        Jitter source for the back-off (needed only when ``reconnect_jitter > 0``).
    """

    def __init__(self, name: str, config: Endpoint, tags: Mapping[str, Tag], sink: Sink, *,
                 clock: Callable[[], float] = time.monotonic, base_dir: Path | None = None,
                 rng: np.random.Generator | None = None) -> None:
        self.name, self.config, self.tags = name, config, dict(tags)
        self._sink, self._clock, self._base_dir = sink, clock, base_dir
        if config.reconnect_jitter > 0 and rng is None:
            rng = np.random.default_rng(0)  # deterministic unless the caller passes its own
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s,
                                config.reconnect_jitter, rng)
        self._inbox: asyncio.Queue[_Request | _Lost | _Stop] = asyncio.Queue()
        self._state = EndpointState.STOPPED
        self._task: asyncio.Task[None] | None = None
        self._session: _Session | None = None
        self._generation = 0
        self._gap: Gap | None = None
        self._connects = 0
        self._attempts = 0
        self._delays: list[float] = []
        self._last_error: str | None = None
        self._heartbeats = 0
        self._heartbeat_value: int | bool = 0
        self._writes = 0
        self._stopping = False

    # ---------------------------------------------------------------------------- public

    @property
    def state(self) -> EndpointState:
        """Current connection state."""
        return self._state

    def status(self) -> EndpointStatus:
        """Snapshot of the connection bookkeeping."""
        return EndpointStatus(
            name=self.name, url=self.config.url, state=self._state, connects=self._connects,
            reconnect_attempts=self._attempts, backoff_delays=tuple(self._delays),
            last_error=self._last_error, heartbeats_written=self._heartbeats, writes=self._writes,
        )

    async def start(self, require_connected: bool = True) -> None:
        """Start the owning task and wait for its first connection attempt.

        Raises the attempt's :class:`GatewayError` if it failed and ``require_connected`` is
        true; a tag or credentials error is raised either way (waiting will not fix it).
        """
        if self._task is not None:
            raise RuntimeError(f"endpoint {self.name!r} already started")
        self._inbox = asyncio.Queue()  # nothing from an earlier run (a stale stop) carries over
        self._stopping = False
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(ready, require_connected),
                                         name=f"opcua-endpoint-{self.name}")
        await ready

    async def stop(self) -> None:
        """Disconnect and end the owning task; pending requests fail with NotConnectedError."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._inbox.put_nowait(_Stop())
        grace = self.config.timeout_s + 1.0
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except asyncio.TimeoutError:
            # Stuck inside a connect attempt: cancel it (the finally-block still cleans up).
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def submit(self, kind: Literal["read", "write", "call"], signal: str,
                     *args: Any) -> Any:
        """Run one request on the owning task; fail at once unless connected."""
        if self._state is not EndpointState.CONNECTED:
            raise NotConnectedError(
                f"{kind} of {signal!r} refused: endpoint {self.name!r} ({self.config.url}) is "
                f"{self._state.value}; requests are never queued for a later reconnect"
            )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait(_Request(kind, signal, args, future))
        return await future

    # ------------------------------------------------------------------- the owning task

    async def _run(self, ready: asyncio.Future[None], require_connected: bool) -> None:
        first = True
        try:
            while True:
                if not first:
                    self._attempts += 1
                    self._sink.on_event(GatewayEvent("reconnect_attempt", self.name,
                                                     self._clock(), f"attempt {self._attempts}"))
                self._state = EndpointState.CONNECTING if first else EndpointState.RECONNECTING
                try:
                    session = await self._connect()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # every failure is classified into one line
                    err = self._classify(exc)
                    self._last_error = str(err)
                    if first:
                        first = False
                        fatal = isinstance(err, TagError | CredentialsError)
                        if require_connected or fatal:
                            ready.set_exception(err)
                            return
                        self._state = EndpointState.RECONNECTING
                        ready.set_result(None)
                        self._open_gap(self._clock(), str(err))
                    else:
                        log.warning("%s", err)
                        self._sink.on_event(GatewayEvent("error", self.name, self._clock(),
                                                         str(err)))
                    if await self._wait_backoff():
                        return
                    continue
                self._on_connected(session)
                if first:
                    first = False
                    ready.set_result(None)
                lost = await self._serve(session)
                self._session = None
                await self._close_client(session.client)
                if lost is None:
                    return
                if await self._wait_backoff():
                    return
        finally:
            if not ready.done():
                ready.set_exception(NotConnectedError(f"endpoint {self.name!r}: stopped"))
            if self._session is not None:
                await self._close_client(self._session.client)
                self._session = None
            self._state = EndpointState.STOPPED
            self._fail_pending("the gateway stopped")
            if self._gap is not None:
                self._gap = Gap(self.name, self._gap.start, self._clock())
                self._sink.on_gap(self._gap)
                self._gap = None
            self._sink.on_event(GatewayEvent("stopped", self.name, self._clock()))

    async def _connect(self) -> _Session:
        cfg = self.config
        self._generation += 1
        generation = self._generation
        # A fresh client per attempt: no state (session, subscriptions, pending requests)
        # survives from the lost connection.
        client = Client(cfg.url, timeout=cfg.timeout_s, watchdog_intervall=cfg.watchdog_s)
        await configure_client(client, self.name, cfg, self._base_dir)

        async def lost(exc: Exception) -> None:
            self._on_connection_lost(generation, repr(exc))

        client.connection_lost_callback = lost
        try:
            await asyncio.wait_for(client.connect(auto_reconnect=False), cfg.connect_timeout_s)
        except BaseException:
            client.disconnect_socket()
            raise
        try:
            resolved = await resolve_tags(client, self.name, self.tags)
            heartbeat = None
            if cfg.heartbeat is not None:
                hb = Tag(endpoint=self.name, node=cfg.heartbeat.node, type=cfg.heartbeat.type,
                         access="write")
                heartbeat = (await resolve_tags(client, self.name, {"heartbeat": hb}))["heartbeat"]
            session = _Session(client, generation, resolved, heartbeat)
            # Published before subscribing: the initial values arrive while the subscription
            # is being set up, and the callbacks look the session up here.
            session.ready_at = self._clock()
            self._session = session
            await self._subscribe(session)
        except BaseException:
            self._session = None
            await self._close_client(client)
            raise
        return session

    async def _subscribe(self, session: _Session) -> None:
        readable = {s: r for s, r in session.resolved.items() if r.tag.readable}
        if not readable:
            sub = await session.client.create_subscription(
                100.0, _Subscriber(self, session.generation))
            await self._subscribe_alarms(session, sub)
            return
        for signal, r in readable.items():
            session.signals_by_node.setdefault(r.node.nodeid, []).append(signal)
        # One monitored item per node, at the fastest sampling any of its tags asks for.
        sampling: dict[ua.NodeId, float] = {}
        for r in readable.values():
            nid = r.node.nodeid
            sampling[nid] = min(sampling.get(nid, math.inf), r.tag.sampling_ms)
        publish_ms = max(10.0, min(sampling.values()))
        sub = await session.client.create_subscription(
            publish_ms, _Subscriber(self, session.generation))
        by_rate: dict[float, list[ua.NodeId]] = {}
        for nid, ms in sampling.items():
            by_rate.setdefault(ms, []).append(nid)
        for ms, nids in by_rate.items():
            handles = await sub.subscribe_data_change(
                [session.client.get_node(n) for n in nids], sampling_interval=ua.Double(ms))
            for nid, handle in zip(nids, handles, strict=True):
                if isinstance(handle, ua.StatusCode):
                    signal = session.signals_by_node[nid][0]
                    raise TagError(f"tag {signal!r} (endpoint {self.name!r}, node "
                                   f"{self.tags[signal].node!r}): cannot subscribe "
                                   f"({handle.name})")
        await self._subscribe_alarms(session, sub)

    async def _subscribe_alarms(self, session: _Session, sub: Any) -> None:
        """Subscribe to the server's events (the Server object: where a PLC reports all of
        its alarms); every (re)connect subscribes again on the new session. A server that
        does not serve events still runs (its alarms are not seen; logged once per connect).
        """
        try:
            await sub.subscribe_events(ua.ObjectIds.Server, evfilter=alarm_event_filter())
        except Exception as exc:
            if is_transport_error(exc):
                raise
            self._last_error = (f"endpoint {self.name!r}: no alarm events (subscribing to "
                                f"the Server object's events failed: {exc})")
            log.warning("%s", self._last_error)

    async def _serve(self, session: _Session) -> _Lost | None:
        """Run requests and heartbeats until the connection is lost (or stop: None)."""
        loop = asyncio.get_running_loop()
        period = self.config.heartbeat.period_s if self.config.heartbeat else None
        next_beat = loop.time()
        while True:
            timeout = None
            if session.heartbeat is not None and period is not None:
                timeout = max(0.0, next_beat - loop.time())
            try:
                item = await asyncio.wait_for(self._inbox.get(), timeout)
            except asyncio.TimeoutError:
                assert period is not None
                try:
                    await self._beat(session)
                except Exception as exc:
                    if is_transport_error(exc):
                        self._on_connection_lost(session.generation, f"heartbeat: {exc!r}")
                        return None if self._stopping else _LOST
                    self._last_error = (f"endpoint {self.name!r}: heartbeat write failed: "
                                        f"{exc}")
                    log.warning("%s", self._last_error)
                next_beat += period
                if next_beat < loop.time():  # fell behind (slow server): do not burst
                    next_beat = loop.time() + period
                continue
            if isinstance(item, _Stop):
                return None
            if isinstance(item, _Lost):
                if item.generation == session.generation:
                    return item
                continue  # from an older client
            try:
                await self._execute(session, item)
            except _TransportLost as lost:
                self._on_connection_lost(session.generation, lost.reason)
                return None if self._stopping else _LOST

    async def _wait_backoff(self) -> bool:
        """Sleep the next back-off delay; True if a stop arrived meanwhile."""
        delay = self._backoff.next()
        self._delays.append(delay)
        deadline = asyncio.get_running_loop().time() + delay
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            try:
                item = await asyncio.wait_for(self._inbox.get(), remaining)
            except asyncio.TimeoutError:
                return False
            if isinstance(item, _Stop):
                return True
            if isinstance(item, _Request):
                self._fail(item, "endpoint is reconnecting")

    # ----------------------------------------------------------------- requests

    async def _execute(self, session: _Session, req: _Request) -> None:
        if req.future.done():
            return  # the caller gave up (cancelled): never send a stale setpoint late
        r = session.resolved[req.signal]
        try:
            result: Any
            if req.kind == "write":
                result = await self._write(session.client, r, req.args[0])
            elif req.kind == "read":
                result = await self._read(session.client, r)
            else:
                result = await self._call(session.client, r, req.args)
        except Exception as exc:
            if is_transport_error(exc):
                self._fail(req, f"connection lost during the {req.kind}; its outcome is "
                                "unknown and it is not retried")
                raise _TransportLost(f"{req.kind} {req.signal}: {exc!r}") from exc
            if not req.future.done():
                req.future.set_exception(GatewayError(
                    f"{req.kind} of {req.signal!r} (endpoint {self.name!r}) failed: {exc}"))
            return
        if not req.future.done():
            req.future.set_result(result)

    async def _write(self, client: Client, r: ResolvedTag, value: Value) -> WriteResult:
        assert r.variant is not None
        node_id = r.node.nodeid
        # Value only, no timestamps: several PLCs (e.g. S7-1500) refuse writes carrying a
        # SourceTimestamp with BadWriteNotSupported.
        write = ua.WriteValue(NodeId=node_id, AttributeId=ua.AttributeIds.Value,
                              Value=ua.DataValue(to_variant(r.tag.type, value, r.variant)))
        written_ts = self._clock()
        self._writes += 1
        try:
            code = (await client.uaclient.write(ua.WriteParameters(NodesToWrite=[write])))[0]
        except ua.UaStatusCodeError as exc:
            if is_transport_error(exc):
                raise
            code = ua.StatusCode(exc.code)  # a ServiceFault for the whole request
        readback, readback_status, ok = None, None, False
        if code.is_good():
            dv = (await client.uaclient.read_attributes([node_id], ua.AttributeIds.Value))[0]
            readback, readback_status = plain(dv_value(dv)), dv_status(dv).name
            ok = dv_status(dv).is_good() and same_value(r.tag.type, value, readback)
        return WriteResult(signal=r.signal, endpoint=self.name, node=r.tag.node, value=value,
                           variant_type=r.variant.name, status=code.name, code=code.value,
                           readback=readback, readback_status=readback_status, ok=ok,
                           written_ts=written_ts)

    async def _read(self, client: Client, r: ResolvedTag) -> Sample:
        dv = (await client.uaclient.read_attributes([r.node.nodeid], ua.AttributeIds.Value))[0]
        return self._sample(r.signal, dv)

    async def _call(self, client: Client, r: ResolvedTag, args: tuple[Any, ...]) -> CallResult:
        assert r.parent is not None
        if r.input_types and len(args) != len(r.input_types):
            raise TypeError(f"expects {len(r.input_types)} argument(s), got {len(args)}")
        variants = [ua.Variant(a, vt) if vt is not None else ua.Variant(a)
                    for a, vt in zip(args, r.input_types or (None,) * len(args), strict=True)]
        request = ua.CallMethodRequest(ObjectId=r.parent.nodeid, MethodId=r.node.nodeid,
                                       InputArguments=variants)
        raw: list[Any] = []
        try:
            result = (await client.uaclient.call([request]))[0]
            code = result.StatusCode
            raw = [v.Value for v in result.OutputArguments or []]
        except ua.UaStatusCodeError as exc:
            if is_transport_error(exc):
                raise
            code = ua.StatusCode(ua.UInt32(exc.code))
        # Many PLC methods answer Good at the service level and report a refusal in a
        # StatusCode output argument (PLCopen-style "ReturnStatus"): surface that too.
        if code.is_good():
            code = next((o for o in raw if isinstance(o, ua.StatusCode) and not o.is_good()),
                        code)
        return CallResult(signal=r.signal, endpoint=self.name, node=r.tag.node, status=code.name,
                          code=code.value, outputs=tuple(plain(o) for o in raw),
                          ok=code.is_good())

    async def _beat(self, session: _Session) -> None:
        hb, cfg = session.heartbeat, self.config.heartbeat
        assert hb is not None and cfg is not None and hb.variant is not None
        if cfg.type == "Boolean":
            value: int | bool = not bool(self._heartbeat_value)
        else:
            # A counter that wraps to 0 past the type's maximum (PLC side watches for change).
            value = (int(self._heartbeat_value) + 1) % (INT_RANGE[cfg.type][1] + 1)
        write = ua.WriteValue(NodeId=hb.node.nodeid, AttributeId=ua.AttributeIds.Value,
                              Value=ua.DataValue(ua.Variant(value, hb.variant)))
        code = (await session.client.uaclient.write(ua.WriteParameters(NodesToWrite=[write])))[0]
        code.check()
        self._heartbeat_value = value
        self._heartbeats += 1

    # ---------------------------------------------------------- connection bookkeeping

    def _on_connected(self, session: _Session) -> None:
        self._session = session
        self._backoff.reset()
        self._delays = []
        self._connects += 1
        self._last_error = None
        self._state = EndpointState.CONNECTED
        now = session.ready_at
        self._sink.on_event(GatewayEvent("connected", self.name, now, self.config.url))
        if self._gap is not None:
            self._gap = Gap(self.name, self._gap.start, now)
            self._sink.on_gap(self._gap)
            self._sink.on_event(GatewayEvent("gap_end", self.name, now,
                                             f"outage {now - self._gap.start:.3f} s"))
            self._gap = None

    def _on_connection_lost(self, generation: int, reason: str) -> None:
        """Record a loss at once (from asyncua's supervisor, a callback or this task).

        Everything observable happens here, synchronously: from this instant requests fail,
        the gap is open and marked; the owning task is then woken to tear down and reconnect.
        Idempotent: only the first report for the current connection counts.
        """
        if generation != self._generation or self._state is not EndpointState.CONNECTED:
            return
        at = self._clock()
        self._state = EndpointState.RECONNECTING
        self._last_error = f"endpoint {self.name!r}: connection lost: {reason}"
        log.warning("%s", self._last_error)
        self._fail_pending("the connection was lost")
        self._sink.on_event(GatewayEvent("disconnected", self.name, at, reason))
        self._open_gap(at, reason)
        self._inbox.put_nowait(_Lost(generation, reason, at))

    def _open_gap(self, at: float, reason: str) -> None:
        self._gap = Gap(self.name, at)
        self._sink.on_gap(self._gap)
        self._sink.on_event(GatewayEvent("gap_start", self.name, at, reason))
        # A marker per readable signal so a recorded trajectory shows where data stops.
        for signal, tag in self.tags.items():
            if tag.readable:
                self._sink.on_sample(Sample(signal, None, "BadNotConnected", _BAD_NOT_CONNECTED,
                                            None, None, at, gap=True))

    def _fail_pending(self, why: str) -> None:
        keep: list[_Request | _Lost | _Stop] = []
        while True:
            try:
                item = self._inbox.get_nowait()
            except asyncio.QueueEmpty:
                break
            if isinstance(item, _Request):
                self._fail(item, why)
            else:
                keep.append(item)  # a stop request must survive
        for item in keep:
            self._inbox.put_nowait(item)

    def _fail(self, req: _Request, why: str) -> None:
        if not req.future.done():
            req.future.set_exception(NotConnectedError(
                f"{req.kind} of {req.signal!r} failed: endpoint {self.name!r} "
                f"({self.config.url}): {why}; it is not queued or replayed"))

    async def _close_client(self, client: Client) -> None:
        # Bounded: on a dead link CloseSession cannot be answered.
        try:
            await asyncio.wait_for(client.disconnect(), min(2.0, self.config.timeout_s))
        except (asyncio.TimeoutError, Exception):  # teardown of a connection we are dropping
            log.debug("endpoint %r: disconnect failed", self.name, exc_info=True)
            client.disconnect_socket()

    # --------------------------------------------------------------- subscriptions

    def _on_datachange(self, generation: int, node_id: ua.NodeId, dv: ua.DataValue) -> None:
        session = self._session
        if session is None or generation != session.generation:
            return  # a late notification from a client we already dropped
        for signal in session.signals_by_node.get(node_id, ()):
            self._sink.on_sample(self._sample(signal, dv))

    def _on_alarm_event(self, generation: int, event: Any) -> None:
        session = self._session
        if session is None or generation != session.generation:
            return
        alarm = alarm_of(self.name, event, self._clock())
        if alarm is not None:
            self._sink.on_alarm(alarm)

    def _sample(self, signal: str, dv: ua.DataValue) -> Sample:
        status = dv_status(dv)
        # Uncertain values are delivered (flagged by the status); Bad ones carry no value.
        value = None if status.is_bad() else plain(dv_value(dv))
        return Sample(signal, value, status.name, status.value, dv.SourceTimestamp,
                      dv.ServerTimestamp, self._clock())

    # ------------------------------------------------------------------- errors

    def _classify(self, exc: BaseException) -> GatewayError:
        """Turn a connect/resolve failure into one line naming endpoint, URL and signals."""
        if isinstance(exc, GatewayError):
            return exc
        signals = sorted(self.tags)
        shown = ", ".join(signals[:3]) + (f" and {len(signals) - 3} more" if len(signals) > 3
                                           else "")
        head = f"endpoint {self.name!r} ({self.config.url}, signals {shown or 'none'})"
        if isinstance(exc, ua.UaStatusCodeError):
            name = ua.StatusCode(exc.code).name
            if exc.code in _AUTH_CODES:
                who = self.config.username or "anonymous"
                src = (f"${self.config.password_env}" if self.config.password_env
                       else str(self.config.password_file or "no password"))
                return SecurityError(f"{head}: login as {who!r} rejected ({name}); check the "
                                     f"user and the password in {src}")
            if exc.code in _SECURITY_CODES:
                return SecurityError(f"{head}: secure channel refused ({name}); check "
                                     "security_mode/security_policy and that each side trusts "
                                     "the other's certificate")
            if exc.code not in _TRANSPORT_CODES:
                return GatewayError(f"{head}: {name}: {exc}")
        elif isinstance(exc, ua.UaError):
            if "No matching endpoints" in str(exc):
                return SecurityError(
                    f"{head}: secure channel refused: the server offers no endpoint with "
                    f"security_mode {self.config.security_mode!r} and security_policy "
                    f"{self.config.security_policy!r}")
            return GatewayError(f"{head}: {exc}")
        if isinstance(exc, asyncio.TimeoutError | TimeoutError):
            why = f"no answer within {self.config.connect_timeout_s:g} s"
        elif isinstance(exc, OSError) and exc.strerror:
            why = exc.strerror
        else:
            why = str(exc) or type(exc).__name__
        return EndpointUnreachableError(f"{head}: unreachable: {why}")


#: Event fields the gateway selects: (browse path, type that defines it).
_ALARM_FIELDS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("EventId",), ua.ObjectIds.BaseEventType),
    (("EventType",), ua.ObjectIds.BaseEventType),
    (("SourceName",), ua.ObjectIds.BaseEventType),
    (("Time",), ua.ObjectIds.BaseEventType),
    (("Message",), ua.ObjectIds.BaseEventType),
    (("Severity",), ua.ObjectIds.BaseEventType),
    (("ConditionName",), ua.ObjectIds.ConditionType),
    (("ActiveState", "Id"), ua.ObjectIds.AlarmConditionType),
)


def alarm_event_filter() -> ua.EventFilter:
    """The event filter of the alarm subscription: the fields of :data:`_ALARM_FIELDS` and
    no where clause (a condition event is recognised by its ``ActiveState/Id``; servers
    differ in which type filters they evaluate, and browsing the type tree takes time)."""
    evfilter = ua.EventFilter()
    for path, typ in _ALARM_FIELDS:
        op = ua.SimpleAttributeOperand()
        op.TypeDefinitionId = ua.NodeId(ua.Int32(typ))
        op.BrowsePath = [ua.QualifiedName(p, 0) for p in path]
        op.AttributeId = ua.AttributeIds.Value
        evfilter.SelectClauses.append(op)
    return evfilter


def alarm_of(endpoint: str, event: Any, received_ts: float) -> Alarm | None:
    """The :class:`Alarm` of an event notification; None for an event that is not an
    alarm's (no ``ActiveState/Id``)."""
    active = getattr(event, "ActiveState/Id", None)
    if active is None:
        return None
    kind = getattr(event, "ConditionName", None)
    if not kind:
        etype = getattr(event, "EventType", None)
        kind = str(getattr(etype, "Identifier", etype) or "Alarm")
    message = getattr(event, "Message", None)
    message = str(getattr(message, "Text", message) or "")
    when = getattr(event, "Time", None)
    if isinstance(when, datetime) and when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    event_id = getattr(event, "EventId", None)
    return Alarm(endpoint=endpoint, source=str(getattr(event, "SourceName", None) or endpoint),
                 kind=str(kind), message=message,
                 severity=int(getattr(event, "Severity", None) or 0), active=bool(active),
                 time=when if isinstance(when, datetime) else None, received_ts=received_ts,
                 event_id=event_id.hex() if isinstance(event_id, bytes) else "")


class _TransportLost(Exception):
    """Internal: a request found the connection gone."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
