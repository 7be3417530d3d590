"""Plain records the gateway hands out: samples, gaps, write/call results, events, status.

They are frozen dataclasses (no asyncua types) so the live twin and the store can keep,
compare and tabulate them without importing asyncua.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

#: Values the gateway writes or reads for value tags.
Value = float | int | bool | str | datetime


class EndpointState(str, enum.Enum):
    """Connection state of one endpoint, as the gateway's owning task sees it."""

    STOPPED = "stopped"
    CONNECTING = "connecting"  # first attempt, from start()
    CONNECTED = "connected"  # session up, tags resolved, subscriptions live
    RECONNECTING = "reconnecting"  # lost (or never reached); retrying with back-off


@dataclass(frozen=True)
class Sample:
    """One value of a signal.

    Attributes
    ----------
    signal : str
        Logical signal (tag map key), e.g. ``line1.oxidizer1.temperature_pv``.
    value : Value or None
        The value; None when the status is bad or the sample marks a gap.
    status : str
        OPC UA status code name (``Good``, ``BadNotConnected``, ...).
    code : int
        OPC UA status code value (0 is Good).
    source_ts, server_ts : datetime or None
        Timestamps reported by the server (UTC), when it gives them.
    received_ts : float
        Gateway clock (``time.monotonic`` unless injected) when the sample was received.
    gap : bool
        True for the marker sample emitted when the endpoint's connection is lost: values
        from then until the next sample of this signal are unknown.
    """

    signal: str
    value: Value | None
    status: str
    code: int
    source_ts: datetime | None
    server_ts: datetime | None
    received_ts: float
    gap: bool = False

    @property
    def ok(self) -> bool:
        """True when the status is Good (not Uncertain or Bad) and this is not a gap marker."""
        return self.code & 0xC0000000 == 0 and not self.gap


@dataclass(frozen=True)
class Gap:
    """A communication outage of one endpoint, in gateway clock seconds.

    ``end`` is None while the outage lasts; it is the reconnect time (or the gateway's stop
    time if it stopped before the endpoint came back).
    """

    endpoint: str
    start: float
    end: float | None = None

    def overlaps(self, t0: float, t1: float) -> bool:
        """True if the gap intersects ``[t0, t1]`` (an open gap extends to infinity)."""
        end = float("inf") if self.end is None else self.end
        return self.start <= t1 and end >= t0


@dataclass(frozen=True)
class WriteResult:
    """Outcome of one single-node write and its read-back.

    ``ok`` is True only when the server returned Good and the value read back equals the
    value written (for Float, equal after rounding to 32 bits). ``status``/``code`` are the
    write's status; ``readback`` is None when the write was refused.
    """

    signal: str
    endpoint: str
    node: str
    value: Value
    variant_type: str
    status: str
    code: int
    readback: Value | None
    readback_status: str | None
    ok: bool
    written_ts: float

    def describe(self) -> str:
        """One-line account of the write, for logs and error messages."""
        where = f"{self.signal!r} (endpoint {self.endpoint!r}, {self.node})"
        if self.code != 0:
            return f"write of {self.value!r} to {where} failed: {self.status} (0x{self.code:08X})"
        if not self.ok:
            return (f"write of {self.value!r} to {where} not confirmed: read-back "
                    f"{self.readback!r} ({self.readback_status})")
        return f"wrote {self.value!r} as {self.variant_type} to {where}, confirmed by read-back"


@dataclass(frozen=True)
class CallResult:
    """Outcome of a method call (Start, Hold, Resume, Abort, ...)."""

    signal: str
    endpoint: str
    node: str
    status: str
    code: int
    outputs: tuple[Any, ...]
    ok: bool

    def describe(self) -> str:
        """One-line account of the call."""
        where = f"{self.signal!r} (endpoint {self.endpoint!r}, {self.node})"
        if self.ok:
            return f"called {where}: Good, outputs {list(self.outputs)!r}"
        return f"call of {where} failed: {self.status} (0x{self.code:08X})"


@dataclass(frozen=True)
class Alarm:
    """An alarm event of a PLC: a condition became active or inactive.

    Attributes
    ----------
    endpoint : str
        The endpoint whose server sent it.
    source : str
        The event's ``SourceName`` (the PLC's name for the machine or component).
    kind : str
        The condition's name (``ConditionName``, e.g. ``OverTemperature``).
    message : str
        The event's message text.
    severity : int
        OPC UA severity, 1..1000.
    active : bool
        ``ActiveState/Id``: True when the alarm became active, False when it cleared.
    time : datetime or None
        The event's ``Time`` (the PLC's clock, UTC).
    received_ts : float
        Gateway clock when it arrived.
    event_id : str
        The event's ``EventId`` (hex).
    """

    endpoint: str
    source: str
    kind: str
    message: str
    severity: int
    active: bool
    time: datetime | None
    received_ts: float
    event_id: str = ""


EventKind = Literal[
    "connected", "disconnected", "gap_start", "gap_end", "reconnect_attempt", "error", "stopped",
]


@dataclass(frozen=True)
class GatewayEvent:
    """Something that happened to an endpoint's connection (``time`` on the gateway clock)."""

    kind: EventKind
    endpoint: str
    time: float
    detail: str = ""


@dataclass(frozen=True)
class EndpointStatus:
    """Snapshot of one endpoint's connection bookkeeping."""

    name: str
    url: str
    state: EndpointState
    connects: int
    reconnect_attempts: int
    backoff_delays: tuple[float, ...] = field(default=())
    last_error: str | None = None
    heartbeats_written: int = 0
    writes: int = 0
