"""The twin's own OPC UA server: what the twin knows, for SCADA and the MES to read.

Per station (browse path = the component's dotted path, ``Objects/line1/oxidizer1``) it serves
the current batch, its predicted oxide thickness with the prediction interval and reliability,
the controller state and the last action; per batch (the most recent ``keep_batches``) the
prediction, the lab result when it arrives and the disposition. Every variable is read-only
for clients: the twin is the only writer. Advisory control proposals are accepted or rejected
through the methods ``AcceptProposal`` / ``RejectProposal`` on the plant object, which call back
into the live twin (the callback decides and records who did it).

NodeIds are stable strings: ``ns=<twin ns>;s=<dotted path>.<Variable>``, e.g.
``line1.oxidizer1.PredictedThickness_nm``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from asyncua import Node, Server, ua
from asyncua.common.methods import uamethod

log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:anode-twin:twin"

#: Station variables: name -> (variant type, initial value).
STATION_VARIABLES: dict[str, tuple[ua.VariantType, Any]] = {
    "BatchId": (ua.VariantType.String, ""),
    "State": (ua.VariantType.String, "Idle"),
    "PredictedThickness_nm": (ua.VariantType.Double, float("nan")),
    "LowerBound_nm": (ua.VariantType.Double, float("nan")),
    "UpperBound_nm": (ua.VariantType.Double, float("nan")),
    "Reliability": (ua.VariantType.Double, float("nan")),
    "ControllerState": (ua.VariantType.String, "off"),
    "LastAction": (ua.VariantType.String, ""),
    "LabThickness_nm": (ua.VariantType.Double, float("nan")),
    "UpdatedAt_s": (ua.VariantType.Double, 0.0),
}

#: Per-batch variables (a ring of the most recent batches).
BATCH_VARIABLES: dict[str, tuple[ua.VariantType, Any]] = {
    "BatchId": (ua.VariantType.String, ""),
    "Station": (ua.VariantType.String, ""),
    "PredictedThickness_nm": (ua.VariantType.Double, float("nan")),
    "LowerBound_nm": (ua.VariantType.Double, float("nan")),
    "UpperBound_nm": (ua.VariantType.Double, float("nan")),
    "LabThickness_nm": (ua.VariantType.Double, float("nan")),
    "Disposition": (ua.VariantType.String, ""),
}

#: ``decide(proposal_id, accept, who) -> status text`` supplied by the live twin.
ProposalCallback = Callable[[str, bool, str], Awaitable[str]]


@dataclass
class _Slot:
    """One entry of the batch ring: its folder node and variable nodes."""

    nodes: dict[str, Node]
    batch_id: str = ""


class TwinServer:
    """Read-only OPC UA view of the twin's predictions and controller state.

    Parameters
    ----------
    url : str
        Endpoint, e.g. ``opc.tcp://127.0.0.1:0/anode-twin`` (port 0: a free port is chosen
        by the caller beforehand; asyncua needs a concrete port).
    plant_name : str
        Root of the component tree (``line1``).
    stations : iterable of str
        Dotted station paths (``line1.oxidizer1``) to publish.
    keep_batches : int
        How many recent batches the ``Batches`` folder holds.
    on_proposal : ProposalCallback, optional
        Called by the Accept/Reject methods; without it they answer ``BadNotImplemented``.
    """

    def __init__(self, url: str, plant_name: str, stations: Iterable[str], *,
                 keep_batches: int = 50, on_proposal: ProposalCallback | None = None) -> None:
        self.url = url
        self.plant_name = plant_name
        self.stations = list(stations)
        self.keep_batches = keep_batches
        self.on_proposal = on_proposal
        self._server = Server()
        self._ns = 0
        self._station_nodes: dict[str, dict[str, Node]] = {}
        self._slots: deque[_Slot] = deque()
        self._by_batch: dict[str, _Slot] = {}

    async def start(self) -> None:
        """Build the address space and start serving."""
        await self._server.init()
        self._server.set_endpoint(self.url)
        self._server.set_server_name("anode-twin")
        # Loopback demo/read-only view: no security policies beyond None; everything that can
        # change the plant goes through the PLCs' own (secured) servers, not through this one.
        self._server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self._ns = await self._server.register_namespace(NAMESPACE_URI)
        root = await self._server.nodes.objects.add_object(
            self._nid(self.plant_name), self._qn(self.plant_name))
        await self._add_methods(root)
        for path in self.stations:
            self._station_nodes[path] = await self._add_station(root, path)
        batches = await root.add_folder(self._nid(f"{self.plant_name}.Batches"),
                                        self._qn("Batches"))
        for i in range(self.keep_batches):
            self._slots.append(await self._add_slot(batches, i))
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()

    async def __aenter__(self) -> TwinServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def namespace_index(self) -> int:
        return self._ns

    def node_id(self, path: str, variable: str) -> str:
        """String NodeId of a station variable, e.g. ``ns=2;s=line1.oxidizer1.State``."""
        return f"ns={self._ns};s={path}.{variable}"

    async def publish_station(self, path: str, values: Mapping[str, Any]) -> None:
        """Write station variables (unknown names are an error, not silently dropped)."""
        nodes = self._station_nodes.get(path)
        if nodes is None:
            raise KeyError(f"twin server: no station '{path}'")
        for name, value in values.items():
            if name not in nodes:
                raise KeyError(f"twin server: station variable '{name}' does not exist")
            await self._write(nodes[name], STATION_VARIABLES[name][0], value)

    async def publish_batch(self, batch_id: str, values: Mapping[str, Any]) -> None:
        """Create or update the entry of ``batch_id`` in the ring of recent batches."""
        slot = self._by_batch.get(batch_id)
        if slot is None:
            slot = self._slots.popleft()  # the oldest slot is reused
            self._by_batch.pop(slot.batch_id, None)
            slot.batch_id = batch_id
            self._by_batch[batch_id] = slot
            self._slots.append(slot)
            for name, (vtype, initial) in BATCH_VARIABLES.items():
                await self._write(slot.nodes[name], vtype, batch_id if name == "BatchId"
                                  else initial)
        for name, value in values.items():
            if name not in slot.nodes:
                raise KeyError(f"twin server: batch variable '{name}' does not exist")
            await self._write(slot.nodes[name], BATCH_VARIABLES[name][0], value)

    async def _write(self, node: Node, vtype: ua.VariantType, value: Any) -> None:
        if vtype == ua.VariantType.Double:
            value = float(value)
        elif vtype == ua.VariantType.String:
            value = str(value)
        # Server-side write: bypasses the read-only access level that clients see.
        await self._server.write_attribute_value(node.nodeid, ua.DataValue(ua.Variant(value,
                                                                                     vtype)))

    def _nid(self, name: str) -> str:
        return f"ns={self._ns};s={name}"

    def _qn(self, name: str) -> str:
        return f"{self._ns}:{name}"

    async def _add_station(self, root: Node, path: str) -> dict[str, Node]:
        parent = root
        parts = path.split(".")
        # line1.oxidizer1 -> Objects/line1/oxidizer1 (the root is the first part).
        for i in range(1, len(parts)):
            sub = ".".join(parts[: i + 1])
            parent = await parent.add_object(self._nid(sub),
                                             self._qn(parts[i]))
        nodes = {}
        for name, (vtype, initial) in STATION_VARIABLES.items():
            nodes[name] = await parent.add_variable(
                self._nid(f"{path}.{name}"), self._qn(name),
                ua.Variant(initial, vtype))
        return nodes

    async def _add_slot(self, folder: Node, index: int) -> _Slot:
        base = f"{self.plant_name}.Batches.{index:03d}"
        obj = await folder.add_object(self._nid(base),
                                      self._qn(f"{index:03d}"))
        nodes = {}
        for name, (vtype, initial) in BATCH_VARIABLES.items():
            nodes[name] = await obj.add_variable(self._nid(f"{base}.{name}"),
                                                 self._qn(name),
                                                 ua.Variant(initial, vtype))
        return _Slot(nodes)

    async def _add_methods(self, root: Node) -> None:
        args = [ua.VariantType.String, ua.VariantType.String]
        for accept in (True, False):
            name = "AcceptProposal" if accept else "RejectProposal"
            await root.add_method(self._nid(f"{self.plant_name}.{name}"),
                                  self._qn(name),
                                  self._decision_method(accept), args, [ua.VariantType.String])

    def _decision_method(self, accept: bool) -> Callable[..., Any]:
        @uamethod
        async def decide(parent: ua.NodeId, proposal_id: str, who: str) -> str:
            if self.on_proposal is None:
                raise ua.UaStatusCodeError(ua.StatusCodes.BadNotImplemented)
            if not who.strip():
                raise ua.UaStatusCodeError(ua.StatusCodes.BadInvalidArgument)
            return await self.on_proposal(proposal_id, accept, who)

        return decide
