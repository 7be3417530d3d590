"""The twin's own OPC UA server: what the twin knows, for SCADA and the MES to read.

Per station (browse path = the component's dotted path, ``Objects/line1/oxidizer1``) it serves
the current batch, its predicted oxide thickness with the prediction interval and reliability,
the controller state and the last action; per batch (the most recent ``keep_batches``) the
prediction, the lab result when it arrives and the disposition. Every variable is read-only
for clients: the twin is the only writer. Advisory control proposals are accepted or rejected
through the methods ``AcceptProposal`` / ``RejectProposal`` on the plant object, which call back
into the live twin with the *session's* authenticated identity.

Roles are checked on the server (:class:`ServerSecurity`, users from
:mod:`connectors.security_common`): ``viewer`` reads, browses and subscribes; ``operator`` may
also accept or reject proposals; ``engineer`` may do what an operator may (and mode changes,
when the server has a method for them). Anonymous and viewer sessions calling
``AcceptProposal``/``RejectProposal`` get ``BadUserAccessDenied``. The decision is recorded
under the session's user name (or its X.509 user certificate's subject); the methods' second
argument ``who`` is kept for compatibility and ignored. Security modes:

* loopback default (``secure_only=False``): the None policy (plus SignAndEncrypt when a PKI
  directory is given), anonymous read-only sessions, username logins;
* a site (``secure_only=True``, ``anode-twin run --site``): SignAndEncrypt only (Basic256Sha256,
  and Aes256_Sha256_RsaPss where asyncua has it), username and X.509 user tokens, no
  anonymous sessions, client application certificates from ``<pki>/trusted/``.

NodeIds are stable strings: ``ns=<twin ns>;s=<dotted path>.<Variable>``, e.g.
``line1.oxidizer1.PredictedThickness_nm``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import Node, Server, ua
from asyncua.common.methods import uamethod
from asyncua.crypto.permission_rules import PermissionRuleset

from connectors.security_common import (
    Account,
    AccountUserManager,
    RoleUser,
    role_rank,
    secure_policies,
    setup_pki,
)

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

#: ``decide(proposal_id, accept, who) -> status text`` supplied by the live twin; ``who`` is
#: the calling session's authenticated identity.
ProposalCallback = Callable[[str, bool, str], Awaitable[str]]

#: The role a session needs to accept or reject a proposal.
DECIDE_ROLE = "operator"

#: The user of the session whose request is being served. asyncua serves one connection's
#: requests one after the other in one task and asks the permission ruleset about each just
#: before serving it, so the ruleset sets this and the method (same task) reads it.
_CALLER: ContextVar[Any] = ContextVar("twin_server_caller", default=None)


@dataclass(frozen=True)
class ServerSecurity:
    """Who may do what on the twin's server.

    accounts : users and roles (:func:`connectors.security_common.load_accounts`); without
        any, nobody may decide a proposal.
    pki_dir : server certificate (generated on first start) and trusted client certificates;
        None: no certificate, the None policy only (loopback).
    secure_only : a site: SignAndEncrypt only, username and X.509 user tokens, no anonymous
        sessions (needs ``pki_dir``).
    """

    accounts: Mapping[str, Account] = field(default_factory=dict)
    pki_dir: Path | None = None
    secure_only: bool = False


def session_identity(user: Any) -> tuple[str, str] | None:
    """``(identity, role)`` of an authenticated session user; None for anonymous."""
    if isinstance(user, RoleUser) and user.name:
        return str(user.name), user.plant_role
    return None


class TwinRuleset(PermissionRuleset):
    """Request-level permissions of the twin's server (and who is asking, for the methods)."""

    _CALL = ua.NodeId(ua.Int32(ua.ObjectIds.CallRequest_Encoding_DefaultBinary))
    _WRITE = ua.NodeId(ua.Int32(ua.ObjectIds.WriteRequest_Encoding_DefaultBinary))
    _ADMIN = {ua.NodeId(ua.Int32(i)) for i in (
        ua.ObjectIds.AddNodesRequest_Encoding_DefaultBinary,
        ua.ObjectIds.DeleteNodesRequest_Encoding_DefaultBinary,
        ua.ObjectIds.AddReferencesRequest_Encoding_DefaultBinary,
        ua.ObjectIds.DeleteReferencesRequest_Encoding_DefaultBinary,
        ua.ObjectIds.RegisterServerRequest_Encoding_DefaultBinary,
        ua.ObjectIds.RegisterServer2Request_Encoding_DefaultBinary)}

    def check_validity(self, user: Any, action_type_id: Any, body: Any) -> bool:
        _CALLER.set(user)
        if user is None or action_type_id in self._ADMIN:
            return False  # nobody edits the twin's address space
        if action_type_id in (self._CALL, self._WRITE):
            # Anonymous sessions only read, browse and subscribe.
            return session_identity(user) is not None
        return True


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
    security : ServerSecurity, optional
        Users, certificates and mode; default: loopback, anonymous read-only, no users.
    """

    def __init__(self, url: str, plant_name: str, stations: Iterable[str], *,
                 keep_batches: int = 50, on_proposal: ProposalCallback | None = None,
                 security: ServerSecurity | None = None) -> None:
        self.url = url
        self.plant_name = plant_name
        self.stations = list(stations)
        self.keep_batches = keep_batches
        self.on_proposal = on_proposal
        self.security = security if security is not None else ServerSecurity()
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
        await self._apply_security()
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

    async def _apply_security(self) -> None:
        sec = self.security
        if sec.secure_only and sec.pki_dir is None:
            raise ValueError("twin server: secure_only needs a PKI directory")
        policies: list[ua.SecurityPolicyType] = []
        if sec.pki_dir is not None:
            await setup_pki(self._server, sec.pki_dir, "urn:anode-twin:twin-server",
                            who="anode-twin run (twin server)")
            policies = secure_policies()
        if sec.secure_only:
            tokens: list[type] = [ua.UserNameIdentityToken, ua.X509IdentityToken]
        else:
            # Loopback: anonymous sessions may read; users log in by name (with a PKI the
            # password is encrypted with the server certificate, else it crosses loopback).
            policies.insert(0, ua.SecurityPolicyType.NoSecurity)
            tokens = [ua.AnonymousIdentityToken, ua.UserNameIdentityToken]
        self._server.set_security_policy(
            policies, permission_ruleset=TwinRuleset())  # type: ignore[arg-type]
        self._server.set_identity_tokens(tokens)
        self._server.iserver.user_manager = AccountUserManager(
            sec.accounts, anonymous=not sec.secure_only)

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
        async def decide(parent: ua.NodeId, proposal_id: str, who: str = "") -> Any:
            # ``who`` is what the caller claims; the record names the session's identity.
            caller = session_identity(_CALLER.get())
            if caller is None or role_rank(caller[1]) < role_rank(DECIDE_ROLE):
                log.warning("twin server: %s of proposal %r refused for %s",
                            "acceptance" if accept else "rejection", proposal_id,
                            f"{caller[0]} ({caller[1]})" if caller else "an anonymous session")
                return ua.StatusCode(ua.UInt32(ua.StatusCodes.BadUserAccessDenied))
            if self.on_proposal is None:
                return ua.StatusCode(ua.UInt32(ua.StatusCodes.BadNotImplemented))
            if who and who != caller[0]:
                log.info("twin server: proposal %r: caller said %r, recorded as the session's "
                         "user %r", proposal_id, who, caller[0])
            return await self.on_proposal(proposal_id, accept, caller[0])

        return decide
