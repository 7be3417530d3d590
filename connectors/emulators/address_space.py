"""OPC UA address space of an emulated tool, after OPC 40001-1 and 40001-2 conventions.

The official Machinery / Process Values NodeSets are *not* imported: they add ~2.7 s to every
server start and no NodeSet XML ships with asyncua. Instead the structure is reproduced with
own types in the namespace :data:`NAMESPACE_URI` (same browse names as the specifications, so
an integrator finds what they expect; a later switch to the official NodeSets keeps the
NodeIds below).

Layout (``<t>`` is the tool name, every NodeId is ``ns=<ns>;s=<string>``)::

    Objects/Machines/<t>                               s=<t>            (events are emitted here)
      Identification/{Manufacturer, Model, SerialNumber, SoftwareRevision, ProductInstanceUri}
      MachineryBuildingBlocks/ -> Identification, MachineryItemState
      MachineryItemState/CurrentState{Id, Number}   s=<t>.MachineryItemState.CurrentState
      StepState/CurrentState{Id, Number}            s=<t>.StepState.CurrentState
      ProcessValues/<path>                          s=<t>.<path>           (ProcessValueType)
          SignalTag                                 s=<t>.<path>.SignalTag
          AnalogSignal{EURange, EngineeringUnits}   s=<t>.<path>.PV
          ProcessValueSetpoint{EURange, EngineeringUnits}  s=<t>.<path>.SP  (writable)
      BatchControl/{BatchId, RecipeId, ElapsedTime, ControlMode, Heartbeat,
                    HeartbeatTimeout, <charge context>, Start(), Hold(), Resume(), Abort(), Reset(),
                    AdjustHold(HoldTime) (furnace only: the running step's total hold, min)}
      Alarms/{OverTemperature, FlowDeviation, InterlockTrip, HeartbeatLost, InterlockReason}
      Metrology/{RequestMeasurement(BatchId), GetMeasurement(BatchId), PendingCount, LabDelay,
                 LastResult/{BatchId, Thickness, Sigma, MeasuredAt}}
      Simulation/{TimeFactor, ProcessTime, ActiveFaults, AvailableFaults, InjectFault(Fault),
                  ClearFaults()}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncua import Node, Server, ua

from connectors.emulators.points import UNECE_NAMESPACE, Point, Unit
from connectors.emulators.tool import ALARM_KINDS, MACHINE_STATES, ToolCore

NAMESPACE_URI = "urn:anode-twin:emulator"

_I = ua.ObjectIds
RW = ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.CurrentWrite.mask
RO = ua.AccessLevel.CurrentRead.mask

MethodCallback = Callable[..., Awaitable[Any]]


@dataclass
class ToolNodes:
    """NodeIds the server updates or checks writes on."""

    machine: ua.NodeId
    pv: dict[str, ua.NodeId] = field(default_factory=dict)
    sp: dict[str, ua.NodeId] = field(default_factory=dict)
    vars: dict[str, ua.NodeId] = field(default_factory=dict)
    state_ids: dict[str, ua.NodeId] = field(default_factory=dict)


def numeric_id(identifier: int) -> ua.NodeId:
    """A namespace-0 NodeId of a standard node (typed for mypy)."""
    return ua.NodeId(ua.Int32(identifier))


def string_id(identifier: str, ns: int) -> ua.NodeId:
    """A string NodeId in namespace ``ns``."""
    return ua.NodeId(ua.String(identifier), ua.Int16(ns))


def eu_information(unit: Unit) -> ua.EUInformation:
    """``EUInformation`` of a unit (UnitId -1 when it has no UNECE code)."""
    return ua.EUInformation(NamespaceUri=UNECE_NAMESPACE, UnitId=unit.unit_id,
                            DisplayName=ua.LocalizedText(unit.symbol),
                            Description=ua.LocalizedText(unit.description))


class _Batch:
    """Collects AddNodes items and submits them in one call (fast, and parents first)."""

    def __init__(self, server: Server, ns: int) -> None:
        self.server, self.ns = server, ns
        self.items: list[ua.AddNodesItem] = []

    def nid(self, sid: str) -> ua.NodeId:
        return string_id(sid, self.ns)

    def _item(self, parent: ua.NodeId, sid: str, name: str, cls: ua.NodeClass,
              ref: int, typedef: int | ua.NodeId | None, attrs: Any) -> ua.NodeId:
        item = ua.AddNodesItem()
        item.RequestedNewNodeId = self.nid(sid)
        item.BrowseName = ua.QualifiedName(name, self.ns)
        item.NodeClass = cls
        item.ParentNodeId = parent
        item.ReferenceTypeId = numeric_id(ref)
        if typedef is not None:
            item.TypeDefinition = (typedef if isinstance(typedef, ua.NodeId)
                                   else numeric_id(typedef))
        attrs.DisplayName = ua.LocalizedText(name)
        item.NodeAttributes = attrs
        self.items.append(item)
        return item.RequestedNewNodeId

    def obj(self, parent: ua.NodeId, sid: str, name: str, typedef: int | ua.NodeId = _I.FolderType,
            ref: int = _I.Organizes, description: str = "") -> ua.NodeId:
        attrs = ua.ObjectAttributes(Description=ua.LocalizedText(description), EventNotifier=0)
        return self._item(parent, sid, name, ua.NodeClass.Object, ref, typedef, attrs)

    def objtype(self, parent: ua.NodeId | int, sid: str, name: str, description: str = "",
                ) -> ua.NodeId:
        attrs = ua.ObjectTypeAttributes(Description=ua.LocalizedText(description),
                                        IsAbstract=False)
        p = parent if isinstance(parent, ua.NodeId) else numeric_id(parent)
        return self._item(p, sid, name, ua.NodeClass.ObjectType, _I.HasSubtype, None, attrs)

    def var(self, parent: ua.NodeId, sid: str, name: str, value: Any, vtype: ua.VariantType,
            datatype: int, *, writable: bool = False, typedef: int = _I.BaseDataVariableType,
            ref: int = _I.HasComponent, description: str = "") -> ua.NodeId:
        attrs = ua.VariableAttributes(
            Description=ua.LocalizedText(description), Value=ua.Variant(value, vtype),
            DataType=numeric_id(datatype),
            ValueRank=ua.ValueRank.OneDimension if isinstance(value, list) else -1,
            AccessLevel=RW if writable else RO, UserAccessLevel=RW if writable else RO)
        return self._item(parent, sid, name, ua.NodeClass.Variable, ref, typedef, attrs)

    def prop(self, parent: ua.NodeId, sid: str, value: Any, vtype: ua.VariantType,
             datatype: int) -> ua.NodeId:
        """A property; its browse name is the last segment of ``sid``."""
        return self.var(parent, sid, sid.rsplit(".", 1)[-1], value, vtype, datatype,
                        typedef=_I.PropertyType, ref=_I.HasProperty)

    async def commit(self) -> None:
        results = await self.server.iserver.isession.add_nodes(self.items)
        for item, res in zip(self.items, results, strict=True):
            if not res.StatusCode.is_good():
                raise RuntimeError(f"cannot add node {item.RequestedNewNodeId}: {res.StatusCode}")
        self.items = []


async def build_types(server: Server, ns: int, tool: ToolCore) -> dict[str, ua.NodeId]:
    """Own ObjectTypes, state-machine types with their states, and alarm event types."""
    b = _Batch(server, ns)
    types = {
        "Tool": b.objtype(_I.BaseObjectType, f"{tool.KIND.title()}Type",
                          f"Emulated{tool.KIND.title()}Type", "machine (OPC 40001-1 pattern)"),
        "Identification": b.objtype(_I.BaseObjectType, "MachineIdentificationType",
                                    "MachineIdentificationType", "after OPC 40001-1"),
        "ProcessValue": b.objtype(_I.BaseObjectType, "ProcessValueType", "ProcessValueType",
                                  "after OPC 40001-2 ProcessValueType"),
    }
    for name, states in (("MachineryItemStateMachineType", MACHINE_STATES),
                         (f"{tool.KIND.title()}StepStateMachineType", tool.STEPS)):
        sm = b.objtype(_I.FiniteStateMachineType, name, name)
        types[name] = sm
        for number, state in enumerate(states):
            sid = f"{name}.{state}"
            st = b.obj(sm, sid, state, typedef=_I.StateType, ref=_I.HasComponent)
            b.prop(st, f"{sid}.StateNumber", number, ua.VariantType.UInt32, _I.UInt32)
    for kind in ALARM_KINDS:
        types[kind] = b.objtype(_I.AlarmConditionType, f"{kind}AlarmType", f"{kind}AlarmType")
    await b.commit()
    return types


async def build_tool(server: Server, ns: int, tool: ToolCore, name: str, *,
                     identification: dict[str, str], methods: dict[str, MethodCallback],
                     extra_vars: Sequence[tuple[str, str, Any, ua.VariantType, int, bool]] = (),
                     ) -> ToolNodes:
    """Create the tool's instance nodes below ``Objects/Machines``.

    Parameters
    ----------
    server : asyncua.Server
        Initialised server.
    ns : int
        Index of :data:`NAMESPACE_URI`.
    tool : ToolCore
        The tool (points, steps, setpoints).
    name : str
        Tool name: root of every NodeId.
    identification : dict
        Manufacturer, Model, SerialNumber, SoftwareRevision.
    methods : dict
        ``"BatchControl.Start"`` style keys to async callbacks ``(parent, *args)``.
    extra_vars : sequence
        ``(folder, name, value, variant type, data type, writable)`` added below a folder.
    """
    types = await build_types(server, ns, tool)
    b = _Batch(server, ns)
    machines = b.obj(numeric_id(_I.ObjectsFolder), "Machines", "Machines",
                     description="OPC 40001-1 entry point")
    m = b.obj(machines, name, name, typedef=types["Tool"], description=f"emulated {tool.KIND}")
    nodes = ToolNodes(machine=m)

    ident = b.obj(m, f"{name}.Identification", "Identification", typedef=types["Identification"],
                  ref=_I.HasComponent)
    for key, value in identification.items():
        text = key in ("Manufacturer", "Model")
        b.prop(ident, f"{name}.Identification.{key}", ua.LocalizedText(value) if text else value,
               ua.VariantType.LocalizedText if text else ua.VariantType.String,
               _I.LocalizedText if text else _I.String)
    bb = b.obj(m, f"{name}.MachineryBuildingBlocks", "MachineryBuildingBlocks",
               ref=_I.HasComponent)

    for sm_name, sm_type in (("MachineryItemState", "MachineryItemStateMachineType"),
                             ("StepState", f"{tool.KIND.title()}StepStateMachineType")):
        sm = b.obj(m, f"{name}.{sm_name}", sm_name, typedef=types[sm_type], ref=_I.HasComponent)
        cur = b.var(sm, f"{name}.{sm_name}.CurrentState", "CurrentState",
                    ua.LocalizedText(""), ua.VariantType.LocalizedText, _I.LocalizedText,
                    typedef=_I.FiniteStateVariableType)
        nodes.vars[f"{sm_name}.CurrentState"] = cur
        nodes.vars[f"{sm_name}.Id"] = b.prop(cur, f"{name}.{sm_name}.CurrentState.Id",
                                            ua.NodeId(), ua.VariantType.NodeId, _I.NodeId)
        nodes.vars[f"{sm_name}.Number"] = b.prop(cur, f"{name}.{sm_name}.CurrentState.Number",
                                                0, ua.VariantType.UInt32, _I.UInt32)
        states = MACHINE_STATES if sm_name == "MachineryItemState" else tool.STEPS
        for state in states:
            nodes.state_ids[f"{sm_name}.{state}"] = b.nid(f"{sm_type}.{state}")

    pvs = b.obj(m, f"{name}.ProcessValues", "ProcessValues", ref=_I.HasComponent,
                description="process values (OPC 40001-2 ProcessValueType)")
    folders: dict[str, ua.NodeId] = {}
    for point in tool.points:
        parent = pvs
        parts = point.path.split(".")
        for depth in range(1, len(parts)):
            fpath = ".".join(parts[:depth])
            if fpath not in folders:
                folders[fpath] = b.obj(parent, f"{name}.{fpath}", parts[depth - 1])
            parent = folders[fpath]
        _process_value(b, parent, f"{name}.{point.path}", parts[-1], point, nodes,
                       types["ProcessValue"])

    bc = b.obj(m, f"{name}.BatchControl", "BatchControl", ref=_I.HasComponent)
    alarms = b.obj(m, f"{name}.Alarms", "Alarms", ref=_I.HasComponent)
    met = b.obj(m, f"{name}.Metrology", "Metrology", ref=_I.HasComponent,
                description="lab results of finished batches (never a process value)")
    last = b.obj(met, f"{name}.Metrology.LastResult", "LastResult", ref=_I.HasComponent)
    sim = b.obj(m, f"{name}.Simulation", "Simulation", ref=_I.HasComponent,
                description="emulator controls: time factor and fault injection for tests")
    parents = {"BatchControl": bc, "Alarms": alarms, "Metrology": met,
               "Metrology.LastResult": last, "Simulation": sim}
    for point in getattr(tool, "context_points", ()):
        nodes.sp[point.key] = _analog(b, bc, f"{name}.BatchControl.{point.path}", point.path,
                                      float(tool.setpoints[point.key]), point.unit,
                                      point.pv_range, writable=True,
                                      description=point.description)
    for folder, vname, value, vtype, dtype, writable in extra_vars:
        nodes.vars[f"{folder}.{vname}"] = b.var(parents[folder], f"{name}.{folder}.{vname}",
                                                vname, value, vtype, dtype, writable=writable)
    await b.commit()

    server_node = server.get_node(numeric_id(_I.Server))
    await server_node.add_reference(m, ua.ObjectIds.HasNotifier)
    for target in (f"{name}.Identification", f"{name}.MachineryItemState"):
        await server.get_node(bb).add_reference(b.nid(target), ua.ObjectIds.Organizes)
    for key, callback in methods.items():
        folder, method = key.rsplit(".", 1)
        inputs, outputs = METHOD_ARGS[method]
        await server.get_node(parents[folder]).add_method(
            b.nid(f"{name}.{key}"), ua.QualifiedName(method, ns), callback,
            [_arg(*a) for a in inputs], [_arg(*a) for a in outputs])
    return nodes


def _process_value(b: _Batch, parent: ua.NodeId, sid: str, name: str, point: Point,
                   nodes: ToolNodes, pv_type: ua.NodeId) -> None:
    obj = b.obj(parent, sid, name, typedef=pv_type, ref=_I.HasComponent,
                description=point.description)
    b.prop(obj, f"{sid}.SignalTag", sid, ua.VariantType.String, _I.String)
    initial: Any = False if point.kind == "Boolean" else 0.0
    if point.kind == "Boolean":
        nodes.pv[point.key] = _two_state(b, obj, f"{sid}.PV", "AnalogSignal", initial, False)
        if point.has_setpoint:
            nodes.sp[point.key] = _two_state(b, obj, f"{sid}.SP", "ProcessValueSetpoint",
                                             initial, True)
        return
    nodes.pv[point.key] = _analog(b, obj, f"{sid}.PV", "AnalogSignal", initial, point.unit,
                                  point.pv_range, writable=False)
    if point.sp_range is not None:
        nodes.sp[point.key] = _analog(b, obj, f"{sid}.SP", "ProcessValueSetpoint", initial,
                                      point.unit, point.sp_range, writable=True)


def _analog(b: _Batch, parent: ua.NodeId, sid: str, name: str, value: float, unit: Unit,
            eu_range: tuple[float, float], *, writable: bool, description: str = "") -> ua.NodeId:
    var = b.var(parent, sid, name, value, ua.VariantType.Double, _I.Double, writable=writable,
                typedef=_I.AnalogUnitRangeType, description=description)
    b.prop(var, f"{sid}.EURange", ua.Range(Low=eu_range[0], High=eu_range[1]),
           ua.VariantType.ExtensionObject, _I.Range)
    b.prop(var, f"{sid}.EngineeringUnits", eu_information(unit),
           ua.VariantType.ExtensionObject, _I.EUInformation)
    return var


def _two_state(b: _Batch, parent: ua.NodeId, sid: str, name: str, value: bool,
               writable: bool) -> ua.NodeId:
    var = b.var(parent, sid, name, value, ua.VariantType.Boolean, _I.Boolean, writable=writable,
                typedef=_I.TwoStateDiscreteType)
    b.prop(var, f"{sid}.TrueState", ua.LocalizedText("Open"),
           ua.VariantType.LocalizedText, _I.LocalizedText)
    b.prop(var, f"{sid}.FalseState", ua.LocalizedText("Closed"),
           ua.VariantType.LocalizedText, _I.LocalizedText)
    return var


_STATUS = ("ReturnStatus", _I.StatusCode, "Good, or why the command was refused")
_MESSAGE = ("Message", _I.String, "one line for the operator")
_Args = tuple[tuple[str, int, str], ...]
#: Method name -> (input arguments, output arguments), each (name, data type, description).
METHOD_ARGS: dict[str, tuple[_Args, _Args]] = {
    **{c: ((), (_STATUS, _MESSAGE)) for c in ("Start", "Hold", "Resume", "Abort", "Reset",
                                               "ClearFaults")},
    "AdjustHold": ((("HoldTime", _I.Double,
                     "new total hold time of the running step, min (from the start of the "
                     "hold; at or below the time held ends the hold now)"),),
                   (_STATUS, _MESSAGE)),
    "InjectFault": ((("Fault", _I.String, "one of AvailableFaults"),), (_STATUS, _MESSAGE)),
    "RequestMeasurement": ((("BatchId", _I.String, "a finished batch"),),
                           (_STATUS, ("ReadyIn", _I.Double, "process seconds until the result"),
                            _MESSAGE)),
    "GetMeasurement": ((("BatchId", _I.String, "a batch sent to the lab"),),
                       (_STATUS, ("Thickness", _I.Double, "measured mean oxide, nm"),
                        ("Sigma", _I.Double, "measurement standard deviation, nm"), _MESSAGE)),
}


def _arg(name: str, datatype: int, description: str) -> ua.Argument:
    return ua.Argument(Name=name, DataType=numeric_id(datatype), ValueRank=-1,
                       Description=ua.LocalizedText(description))


async def browse_tree(node: Node, depth: int = 8) -> list[str]:
    """Browse names below ``node`` as slash paths (for tests and the ``--list`` option)."""
    out: list[str] = []

    async def walk(n: Node, prefix: str, level: int) -> None:
        if level > depth:
            return
        for child in await n.get_children():
            bn = (await child.read_browse_name()).Name
            out.append(f"{prefix}/{bn}")
            await walk(child, f"{prefix}/{bn}", level + 1)

    await walk(node, "", 0)
    return out
