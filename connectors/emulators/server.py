"""Run an emulated tool as an OPC UA server (asyncua): writes, methods, events, heartbeat.

The server owns the clock: every ``tick_s`` of wall time it advances the tool by
``elapsed × time_factor`` process seconds, publishes the values that changed, emits alarm
events, and supervises the client heartbeat (wall-clock, since it watches a connection).

Writes are checked item by item (:class:`_CheckedWrites`): a Write request with several
items gets one status per item, and a rejected item never affects the others — asyncua's
own setter hook would fail the whole request after applying the earlier items.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AttributeService
from asyncua.server.event_generator import EventGenerator

from connectors.emulators.address_space import NAMESPACE_URI, ToolNodes, build_tool, string_id
from connectors.emulators.security import SecuritySettings, apply_security, role_of
from connectors.emulators.tool import ALARM_KINDS, COMMANDS, LabResult, ToolCore
from connectors.net import free_port

log = logging.getLogger(__name__)

WriteHandler = Callable[[Any, ua.DataValue], str]
_VT = ua.VariantType


def _status(name: str) -> ua.StatusCode:
    return ua.StatusCode(getattr(ua.StatusCodes, name))


class _CheckedWrites(AttributeService):
    """AttributeService whose Value writes to checked nodes go through a handler per item."""

    def __init__(self, base: AttributeService, handlers: dict[ua.NodeId, WriteHandler],
                 written: Callable[[ua.NodeId], None]) -> None:
        super().__init__(base._aspace)
        self.handlers = handlers
        self.written = written

    async def write(self, params: ua.WriteParameters,
                    user: User = User(role=UserRole.Admin)) -> list[ua.StatusCode]:  # noqa: B008
        results: list[ua.StatusCode] = []
        for item in params.NodesToWrite:
            handler = (self.handlers.get(item.NodeId)
                       if item.AttributeId == ua.AttributeIds.Value else None)
            if handler is not None:
                status = handler(user, item.Value)
                if status != "Good":
                    results.append(_status(status))
                    continue
            one = ua.WriteParameters(NodesToWrite=[item])
            result = (await super().write(one, user))[0]
            if result.is_good():
                self.written(item.NodeId)
            results.append(result)
        return results


class EmulatorServer:
    """One emulated tool served over OPC UA.

    Parameters
    ----------
    tool : ToolCore
        The process (furnace or sputter tool).
    name : str
        Tool name: endpoint path and NodeId root.
    host, port : str, int
        Listen address; port 0 picks a free port.
    time_factor : float
        Process seconds per wall second.
    tick_s : float
        Wall-clock update period of the process values, s.
    heartbeat_timeout_s : float
        Wall-clock time without a Heartbeat write before the local recipe takes over.
    security : SecuritySettings or None
        ``--secure`` settings; None serves a plain (SecurityPolicy None) demo server.
    """

    def __init__(self, tool: ToolCore, name: str, *, host: str = "127.0.0.1", port: int = 0,
                 time_factor: float = 1.0, tick_s: float = 0.1, heartbeat_timeout_s: float = 10.0,
                 security: SecuritySettings | None = None) -> None:
        if time_factor <= 0 or tick_s <= 0:
            raise ValueError("time_factor and tick_s must be > 0")
        self.tool, self.name, self.host = tool, name, host
        self.port = port or free_port(host)
        self.time_factor, self.tick_s = time_factor, tick_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.security = security
        self.url = f"opc.tcp://{host}:{self.port}/anode-twin/{name}"
        self.server = Server()
        self.ns = 0
        self.nodes: ToolNodes | None = None
        self._published: dict[ua.NodeId, Any] = {}
        self._events: dict[str, EventGenerator] = {}
        self._server_events: dict[str, EventGenerator] = {}
        self._last_heartbeat: float | None = None
        self._task: asyncio.Task[None] | None = None

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> str:
        """Build the address space and start listening; return the endpoint URL."""
        srv = self.server
        await srv.init()
        srv.set_endpoint(self.url)
        srv.set_server_name(f"anode-twin emulated {self.tool.KIND} {self.name}")
        app_uri = f"urn:anode-twin:plc:{self.name}"
        await srv.set_application_uri(app_uri)
        if self.security is not None:
            await apply_security(srv, self.security, app_uri)
        else:
            srv.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            srv.set_identity_tokens([ua.AnonymousIdentityToken])
        self.ns = await srv.register_namespace(NAMESPACE_URI)
        plc = self.tool.plc
        ident = {"Manufacturer": plc.manufacturer, "Model": plc.model,
                 "SerialNumber": plc.serial_number, "SoftwareRevision": plc.software_revision,
                 "ProductInstanceUri": f"urn:anode-twin:{self.name}:{plc.serial_number}"}
        methods = {f"BatchControl.{c}": self._command_method(c) for c in COMMANDS}
        methods.update({"Metrology.RequestMeasurement": self._request_measurement,
                        "Metrology.GetMeasurement": self._get_measurement,
                        "Simulation.InjectFault": self._inject_fault,
                        "Simulation.ClearFaults": self._clear_faults})
        if self.tool.ADJUSTABLE_HOLD:
            methods["BatchControl.AdjustHold"] = self._adjust_hold
        faults = list(self.tool.FAULTS)
        extra = [
            ("BatchControl", "BatchId", "", _VT.String, ua.ObjectIds.String, True),
            ("BatchControl", "RecipeId", "", _VT.String, ua.ObjectIds.String, True),
            ("BatchControl", "ElapsedTime", 0.0, _VT.Double, ua.ObjectIds.Double, False),
            ("BatchControl", "ControlMode", "Remote", _VT.String, ua.ObjectIds.String, False),
            ("BatchControl", "Heartbeat", 0, _VT.UInt32, ua.ObjectIds.UInt32, True),
            ("BatchControl", "HeartbeatTimeout", float(self.heartbeat_timeout_s), _VT.Double,
             ua.ObjectIds.Double, False),
            *[("Alarms", k, False, _VT.Boolean, ua.ObjectIds.Boolean, False) for k in ALARM_KINDS],
            ("Alarms", "InterlockReason", "", _VT.String, ua.ObjectIds.String, False),
            ("Metrology", "PendingCount", 0, _VT.UInt32, ua.ObjectIds.UInt32, False),
            ("Metrology", "LabDelay", self.tool.lab_delay_s, _VT.Double, ua.ObjectIds.Double,
             False),
            ("Metrology.LastResult", "BatchId", "", _VT.String, ua.ObjectIds.String, False),
            ("Metrology.LastResult", "Thickness", float("nan"), _VT.Double, ua.ObjectIds.Double,
             False),
            ("Metrology.LastResult", "Sigma", float("nan"), _VT.Double, ua.ObjectIds.Double,
             False),
            ("Metrology.LastResult", "MeasuredAt", datetime.now(timezone.utc), _VT.DateTime,
             ua.ObjectIds.DateTime, False),
            ("Simulation", "TimeFactor", float(self.time_factor), _VT.Double,
             ua.ObjectIds.Double, False),
            ("Simulation", "ProcessTime", 0.0, _VT.Double, ua.ObjectIds.Double, False),
            ("Simulation", "ActiveFaults", [], _VT.String, ua.ObjectIds.String, False),
            ("Simulation", "AvailableFaults", faults, _VT.String, ua.ObjectIds.String, False),
        ]
        self.nodes = await build_tool(srv, self.ns, self.tool, self.name, identification=ident,
                                      methods=methods, extra_vars=extra)
        await self._setup_events()
        # A client write changes a node behind the publisher's back: forget what was
        # published there, so the next publish writes the tool's value again if it differs.
        srv.iserver.attribute_service = _CheckedWrites(
            srv.iserver.attribute_service, self._write_handlers(),
            lambda nodeid: self._published.pop(nodeid, None))
        await self._publish()
        await srv.start()
        self._task = asyncio.create_task(self._run())
        return self.url

    async def stop(self) -> None:
        """Stop the clock, mark the machine NotAvailable, close the server."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.nodes is not None:
            await self._set_state("MachineryItemState", "NotAvailable", 0)
        # asyncua's stop() waits out the 1 s sleep of its server-time task; cancel it instead
        # so that a SIGTERM exits at once.
        iserver = self.server.iserver
        if iserver.time_task is not None:
            iserver.time_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await iserver.time_task
            iserver.time_task = None
        await self.server.stop()

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- clock -----------------------------------------------------------------------------
    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            try:
                await self.tick((now - last) * self.time_factor, now)
            except Exception:  # a bug in one tick must not silently stop the PLC clock
                log.exception("emulator tick failed")
            last = now

    async def tick(self, dt_s: float, now: float | None = None) -> None:
        """Advance the process by ``dt_s`` process seconds and publish (tests call this too)."""
        now = time.monotonic() if now is None else now
        self._supervise_heartbeat(now)
        changes, results = self.tool.advance(dt_s)
        await self._publish()
        for change in changes:
            await self._emit(change.kind, change.active, change.message, change.severity)
        for result in results:
            await self._publish_result(result)

    def _supervise_heartbeat(self, now: float) -> None:
        if self._last_heartbeat is None:  # never armed: no supervisor has connected yet
            return
        lost = now - self._last_heartbeat > self.heartbeat_timeout_s
        if lost != self.tool.heartbeat_lost:
            self.tool.set_heartbeat_lost(lost)

    # -- publishing ------------------------------------------------------------------------
    async def _write(self, nodeid: ua.NodeId, value: Any, vtype: ua.VariantType) -> None:
        if self._published.get(nodeid, _MISSING) == value:
            return
        self._published[nodeid] = value
        now: Any = datetime.now(timezone.utc)  # asyncua's stubs call this ua.DateTime
        dv = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=now)
        await self.server.write_attribute_value(nodeid, dv)

    async def _publish(self) -> None:
        assert self.nodes is not None
        tool, n = self.tool, self.nodes
        for key, nodeid in n.pv.items():
            vt = _VT.Boolean if tool.by_key[key].kind == "Boolean" else _VT.Double
            value = tool.pv[key]
            await self._write(nodeid, bool(value) if vt == _VT.Boolean else float(value), vt)
        for key, nodeid in n.sp.items():
            value = tool.setpoints[key]
            vt = _VT.Boolean if isinstance(value, bool) else _VT.Double
            await self._write(nodeid, value, vt)
        await self._set_state("MachineryItemState", tool.machine_state,
                              _index(MACHINE_STATES_T, tool.machine_state))
        await self._set_state("StepState", tool.step, _index(tool.STEPS, tool.step))
        v = n.vars
        await self._write(v["BatchControl.BatchId"], tool.batch.batch_id, _VT.String)
        await self._write(v["BatchControl.RecipeId"], tool.batch.recipe_id, _VT.String)
        await self._write(v["BatchControl.ElapsedTime"], tool.batch_elapsed_s, _VT.Double)
        await self._write(v["BatchControl.ControlMode"], tool.control_mode, _VT.String)
        for kind in ALARM_KINDS:
            await self._write(v[f"Alarms.{kind}"], tool.alarms[kind], _VT.Boolean)
        await self._write(v["Alarms.InterlockReason"], tool.trip_reason, _VT.String)
        pending = sum(1 for j in tool.lab_jobs.values() if j.result is None)
        await self._write(v["Metrology.PendingCount"], pending, _VT.UInt32)
        await self._write(v["Simulation.ProcessTime"], tool.t_s, _VT.Double)
        await self._write(v["Simulation.ActiveFaults"], sorted(tool.faults), _VT.String)

    async def _set_state(self, machine: str, state: str, number: int) -> None:
        assert self.nodes is not None
        v = self.nodes.vars
        await self._write(v[f"{machine}.CurrentState"], ua.LocalizedText(state), _VT.LocalizedText)
        await self._write(v[f"{machine}.Id"], self.nodes.state_ids[f"{machine}.{state}"],
                          _VT.NodeId)
        await self._write(v[f"{machine}.Number"], number, _VT.UInt32)

    async def _publish_result(self, result: LabResult) -> None:
        assert self.nodes is not None
        v = self.nodes.vars
        await self._write(v["Metrology.LastResult.BatchId"], result.batch_id, _VT.String)
        await self._write(v["Metrology.LastResult.Thickness"], result.thickness_nm, _VT.Double)
        await self._write(v["Metrology.LastResult.Sigma"], result.sigma_nm, _VT.Double)
        await self._write(v["Metrology.LastResult.MeasuredAt"], datetime.now(timezone.utc),
                          _VT.DateTime)

    # -- events ----------------------------------------------------------------------------
    async def _setup_events(self) -> None:
        assert self.nodes is not None
        for kind in ALARM_KINDS:
            etype = string_id(f"{kind}AlarmType", self.ns)
            # One generator on the machine (subscribers to the tool) and one on the Server
            # object (SCADA subscribes there for all events).
            self._events[kind] = await self.server.get_event_generator(etype, self.nodes.machine)
            gen = await self.server.get_event_generator(etype, ua.ObjectIds.Server)
            gen.event.SourceNode = self.nodes.machine
            gen.event.SourceName = self.name
            self._server_events[kind] = gen

    async def _emit(self, kind: str, active: bool, message: str, severity: int) -> None:
        for gen in (self._events[kind], self._server_events[kind]):
            ev: Any = gen.event
            ev.Severity = severity
            ev.ConditionName = kind
            ev.Retain = active
            ev.ActiveState = ua.LocalizedText("Active" if active else "Inactive")
            setattr(ev, "ActiveState/Id", active)
            await gen.trigger(message=f"{self.name}: {message}")

    # -- writes ----------------------------------------------------------------------------
    def _write_handlers(self) -> dict[ua.NodeId, WriteHandler]:
        assert self.nodes is not None
        handlers: dict[ua.NodeId, WriteHandler] = {}
        for key, nodeid in self.nodes.sp.items():
            handlers[nodeid] = self._setpoint_handler(key)
        v = self.nodes.vars
        for name in ("BatchId", "RecipeId"):
            handlers[v[f"BatchControl.{name}"]] = self._batch_handler(name)
        handlers[v["BatchControl.Heartbeat"]] = self._heartbeat
        return handlers

    def _setpoint_handler(self, key: str) -> WriteHandler:
        expected = _VT.Boolean if self.tool.by_key[key].kind == "Boolean" else _VT.Double

        def handle(user: Any, dv: ua.DataValue) -> str:
            if role_of(user) != "operator":
                return "BadUserAccessDenied"
            if dv.Value is None or dv.Value.VariantType != expected:
                return "BadTypeMismatch"
            if self.tool.control_mode == "Local":
                return "BadNotWritable"  # the tool runs its local recipe until a heartbeat
            return self.tool.write_setpoint(key, dv.Value.Value)

        return handle

    def _batch_handler(self, name: str) -> WriteHandler:
        def handle(user: Any, dv: ua.DataValue) -> str:
            if role_of(user) != "operator":
                return "BadUserAccessDenied"
            if dv.Value is None or dv.Value.VariantType != _VT.String:
                return "BadTypeMismatch"
            return self.tool.write_batch_field(name, dv.Value.Value)

        return handle

    def _heartbeat(self, user: Any, dv: ua.DataValue) -> str:
        if role_of(user) != "operator":
            return "BadUserAccessDenied"
        if dv.Value is None or dv.Value.VariantType != _VT.UInt32:
            return "BadTypeMismatch"
        self._last_heartbeat = time.monotonic()
        if self.tool.heartbeat_lost:
            self.tool.set_heartbeat_lost(False)
        return "Good"

    # -- methods ---------------------------------------------------------------------------
    def _command_method(self, command: str) -> Callable[..., Any]:
        async def call(parent: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
            if args:
                return _call_result("BadTooManyArguments", [])
            status, message = self.tool.command(command)
            await self._publish()
            return _call_result("Good", [_sc(status), ua.Variant(message, _VT.String)])

        return call

    async def _adjust_hold(self, parent: ua.NodeId, *args: ua.Variant) -> Any:
        # Viewers never get here: RoleRuleset refuses their Call requests as a whole (the
        # same check as for Start/Abort); the value is checked by the tool, in Holding only.
        hold_min = _double_arg(args)
        if hold_min is None:
            return _call_result("BadInvalidArgument", [])
        status, message = self.tool.adjust_hold(hold_min)
        if status != "Good":
            log.info("%s: %s", self.name, message)
        await self._publish()
        return _call_result("Good", [_sc(status), ua.Variant(message, _VT.String)])

    async def _request_measurement(self, parent: ua.NodeId, *args: ua.Variant) -> Any:
        batch_id = _string_arg(args)
        if batch_id is None:
            return _call_result("BadInvalidArgument", [])
        status, ready_in = self.tool.request_measurement(batch_id)
        message = (f"lab result in {ready_in:.0f} s process time" if status == "Good"
                   else f"batch {batch_id!r} has not finished on this tool")
        await self._publish()
        return _call_result("Good", [_sc(status), ua.Variant(ready_in, _VT.Double),
                                     ua.Variant(message, _VT.String)])

    async def _get_measurement(self, parent: ua.NodeId, *args: ua.Variant) -> Any:
        batch_id = _string_arg(args)
        if batch_id is None:
            return _call_result("BadInvalidArgument", [])
        status, result = self.tool.measurement(batch_id)
        nan = float("nan")
        thick, sigma = (result.thickness_nm, result.sigma_nm) if result else (nan, nan)
        message = {"Good": "measured", "BadNotFound": f"batch {batch_id!r} not sent to the lab",
                   "BadWaitingForInitialData": "lab result pending"}[status]
        return _call_result("Good", [_sc(status), ua.Variant(thick, _VT.Double),
                                     ua.Variant(sigma, _VT.Double),
                                     ua.Variant(message, _VT.String)])

    async def _inject_fault(self, parent: ua.NodeId, *args: ua.Variant) -> Any:
        fault = _string_arg(args)
        if fault is None:
            return _call_result("BadInvalidArgument", [])
        status, message = self.tool.inject_fault(fault)
        await self._publish()
        return _call_result("Good", [_sc(status), ua.Variant(message, _VT.String)])

    async def _clear_faults(self, parent: ua.NodeId, *args: ua.Variant) -> Any:
        status, message = self.tool.clear_faults()
        await self._publish()
        return _call_result("Good", [_sc(status), ua.Variant(message, _VT.String)])


_MISSING = object()
MACHINE_STATES_T = ("NotAvailable", "OutOfService", "NotExecuting", "Executing")


def _index(states: tuple[str, ...], state: str) -> int:
    return states.index(state) if state in states else 0


def _sc(name: str) -> ua.Variant:
    return ua.Variant(_status(name), _VT.StatusCode)


def _string_arg(args: tuple[Any, ...]) -> str | None:
    if len(args) != 1:
        return None
    value = args[0].Value if isinstance(args[0], ua.Variant) else args[0]
    return value if isinstance(value, str) else None


def _double_arg(args: tuple[Any, ...]) -> float | None:
    """The one Double input of a method, or None (wrong count or type: no silent cast)."""
    if len(args) != 1:
        return None
    arg = args[0]
    if isinstance(arg, ua.Variant):
        if arg.VariantType != _VT.Double:
            return None
        arg = arg.Value
    return float(arg) if isinstance(arg, float) else None


def _call_result(status: str, outputs: list[ua.Variant]) -> ua.CallMethodResult:
    return ua.CallMethodResult(StatusCode=_status(status), OutputArguments=outputs)
