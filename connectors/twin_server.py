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

History (HistoryRead, ``ReadRawModifiedDetails``), when the server is given the run's journal:
every station variable but ``UpdatedAt_s`` and every variable of the batch ring is historized
(``AccessLevel`` CurrentRead|HistoryRead, ``Historizing`` true). Each value is committed to
the journal's ``history`` table as it is published (a change of value; a repeat of the last
value of a node is not stored again), with the server timestamp its DataValue gets (wall
clock, UTC) and the model's simulation time; a HistoryRead is answered from the journal
(:class:`JournalHistory`), not from asyncua's in-memory history, so a historian can back-fill
after an outage of the twin itself: a new server on the same journal serves what the old one
published. Every session may read history (anonymous on loopback too); nobody may update it.

Alarms from the PLCs (journaled by the live session, table ``alarms``) are published under
``Objects/line1/Alarms/Alarm<id>`` with the variables ``AlarmId, Source, Station, Kind,
Message, Severity, Time, Active, Acked, AckedBy, AckedAt, State`` (``Active/Unacknowledged``,
``Active/Acknowledged``, ``Cleared/Unacknowledged``, ``Cleared``) and a method ``Acknowledge()``;
the plant object has ``AcknowledgeAlarm(alarm_id)``. Both need the operator role (engineer
too; anonymous and viewer: ``BadUserAccessDenied``) and record the session's identity and the
time in the journal (``acknowledged_by``, ``acknowledged_at``). asyncua has no server-side
Alarms & Conditions state machine, so these are plain objects (not ConditionType instances);
every change of an alarm object is also fired as a ``BaseEventType`` event on the plant
object (``Severity``, ``Message``) for clients that subscribe to events.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncua import Node, Server, ua
from asyncua.common.methods import uamethod
from asyncua.crypto.permission_rules import PermissionRuleset
from asyncua.server.history import HistoryStorageInterface

from connectors.security_common import (
    Account,
    AccountUserManager,
    RoleUser,
    role_rank,
    secure_policies,
    setup_pki,
)
from twin.store.journal import read_alarm, read_history, read_retained_alarms

if TYPE_CHECKING:
    from twin.store.journal import Journal

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

#: Station variables that are not historized (the simulation time of an update is kept with
#: every historized value instead).
NOT_HISTORIZED: frozenset[str] = frozenset({"UpdatedAt_s"})

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

#: The role a session needs to acknowledge an alarm.
ACK_ROLE = "operator"

#: Variables of an alarm object.
ALARM_VARIABLES: dict[str, tuple[ua.VariantType, Any]] = {
    "AlarmId": (ua.VariantType.UInt32, 0),
    "Source": (ua.VariantType.String, ""),
    "Station": (ua.VariantType.String, ""),
    "Kind": (ua.VariantType.String, ""),
    "Message": (ua.VariantType.String, ""),
    "Severity": (ua.VariantType.UInt16, 0),
    "Time": (ua.VariantType.DateTime, datetime(1970, 1, 1, tzinfo=timezone.utc)),
    "Active": (ua.VariantType.Boolean, False),
    "Acked": (ua.VariantType.Boolean, False),
    "AckedBy": (ua.VariantType.String, ""),
    "AckedAt": (ua.VariantType.DateTime, datetime(1970, 1, 1, tzinfo=timezone.utc)),
    "State": (ua.VariantType.String, ""),
}

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
        ua.ObjectIds.HistoryUpdateRequest_Encoding_DefaultBinary,
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


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def _unix(when: datetime | None) -> float | None:
    """Unix seconds of an OPC UA DateTime; None for an unspecified one (None or the 1601
    epoch)."""
    if when is None or when.year <= 1601:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def alarm_state(active: bool, acked: bool) -> str:
    """The state an alarm is shown in."""
    if active:
        return "Active/Acknowledged" if acked else "Active/Unacknowledged"
    return "Cleared" if acked else "Cleared/Unacknowledged"


class JournalHistory(HistoryStorageInterface):
    """asyncua history storage that answers HistoryRead from the journal's ``history`` table.

    The values are written to the journal by :class:`TwinServer` as it publishes them (so
    nothing here subscribes or saves); this class only reads. ``keys`` maps each historized
    NodeId to its journal key (the NodeId's string identifier).
    """

    def __init__(self, journal: Journal, keys: Mapping[ua.NodeId, str],
                 max_history_data_response_size: int = 10000) -> None:
        super().__init__(max_history_data_response_size)
        self.journal = journal
        self.keys = keys

    async def init(self) -> None:
        pass

    async def new_historized_node(self, node_id: ua.NodeId, period: Any,
                                  count: int = 0) -> None:
        pass

    async def save_node_value(self, node_id: ua.NodeId, datavalue: ua.DataValue) -> None:
        pass  # journaled by TwinServer when published

    async def read_node_history(self, node_id: ua.NodeId, start: datetime | None,
                                end: datetime | None, nb_values: int
                                ) -> tuple[list[ua.DataValue], datetime | None]:
        key = self.keys.get(node_id)
        if key is None:
            return [], None
        page = self.max_history_data_response_size
        want = int(nb_values) if nb_values else 0
        take = min(want, page) if want else page
        t0, t1 = _unix(start), _unix(end)
        ascending = not ((t0 is not None and t1 is not None and t0 > t1)
                         or (t0 is None and t1 is not None))
        rows = read_history(self.journal.db, key, t0, t1, limit=take + 1)
        cont = None
        if len(rows) > take:
            if ascending and (not want or want > take):
                cont = _utc(rows[take][0])  # the next read starts there (inclusive)
            rows = rows[:take]
        out = []
        for t, value, _sim in rows:
            when = _utc(t)
            variant = (ua.Variant(value, ua.VariantType.String) if isinstance(value, str)
                       else ua.Variant(float(value), ua.VariantType.Double))
            out.append(ua.DataValue(variant, SourceTimestamp=when,  # type: ignore[arg-type]
                                    ServerTimestamp=when))  # type: ignore[arg-type]
        return out, cont

    async def new_historized_event(self, source_id: ua.NodeId, evtypes: Any, period: Any,
                                   count: int = 0) -> None:
        pass

    async def save_event(self, event: Any) -> None:
        pass

    async def read_event_history(self, source_id: ua.NodeId, start: datetime | None,
                                 end: datetime | None, nb_values: int,
                                 evfilter: Any) -> tuple[list[Any], datetime | None]:
        return [], None

    async def stop(self) -> None:
        pass  # the journal belongs to the live session


_NOTHING = object()


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
    journal : Journal, optional
        The run's journal: published values are historized in it (HistoryRead answers from
        it) and alarms are read from and acknowledged in it. Without it nothing is
        historized and no alarm is published.
    sim_clock : callable, optional
        The model's simulation time, s (kept with every historized value).
    on_note : callable, optional
        Told one line for the live table when an alarm is acknowledged.
    keep_alarms : int
        How many cleared and acknowledged alarms stay in the address space (the journal keeps
        all of them).
    """

    def __init__(self, url: str, plant_name: str, stations: Iterable[str], *,
                 keep_batches: int = 50, on_proposal: ProposalCallback | None = None,
                 security: ServerSecurity | None = None, journal: Journal | None = None,
                 sim_clock: Callable[[], float] | None = None,
                 on_note: Callable[[str], None] | None = None,
                 keep_alarms: int = 100) -> None:
        self.url = url
        self.plant_name = plant_name
        self.stations = list(stations)
        self.keep_batches = keep_batches
        self.on_proposal = on_proposal
        self.security = security if security is not None else ServerSecurity()
        self.journal = journal
        self.sim_clock = sim_clock
        self.on_note = on_note
        self.keep_alarms = keep_alarms
        self._server = Server()
        self._ns = 0
        self._station_nodes: dict[str, dict[str, Node]] = {}
        self._slots: deque[_Slot] = deque()
        self._by_batch: dict[str, _Slot] = {}
        self._hist_keys: dict[ua.NodeId, str] = {}
        self._hist_last: dict[str, Any] = {}
        self._alarm_folder: Node | None = None
        self._alarm_nodes: dict[int, dict[str, Node]] = {}
        self._alarm_objects: dict[int, Node] = {}
        self._plant_node: Node | None = None
        self._events: Any = None

    async def start(self) -> None:
        """Build the address space and start serving."""
        await self._server.init()
        self._server.set_endpoint(self.url)
        self._server.set_server_name("anode-twin")
        await self._apply_security()
        self._ns = await self._server.register_namespace(NAMESPACE_URI)
        root = self._plant_node = await self._server.nodes.objects.add_object(
            self._nid(self.plant_name), self._qn(self.plant_name))
        await self._add_methods(root)
        for path in self.stations:
            self._station_nodes[path] = await self._add_station(root, path)
        batches = await root.add_folder(self._nid(f"{self.plant_name}.Batches"),
                                        self._qn("Batches"))
        for i in range(self.keep_batches):
            self._slots.append(await self._add_slot(batches, i))
        self._alarm_folder = await root.add_folder(self._nid(f"{self.plant_name}.Alarms"),
                                                   self._qn("Alarms"))
        if self.journal is not None:
            await self._historize(root)
            self._server.iserver.history_manager.set_storage(
                JournalHistory(self.journal, self._hist_keys))
        # Events (an alarm raised, cleared or acknowledged) are fired on the plant object.
        await self._server.write_attribute_value(
            root.nodeid, ua.DataValue(ua.Variant(ua.EventNotifier.SubscribeToEvents,
                                                 ua.VariantType.Byte)),
            ua.AttributeIds.EventNotifier)
        self._events = await self._server.get_event_generator(ua.ObjectIds.BaseEventType,
                                                            root.nodeid)
        await self._server.start()
        if self.journal is not None:  # a restarted twin shows the alarms still to be seen
            for row in read_retained_alarms(self.journal.db):
                await self._show_alarm(row, fire=False)

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

    def history_key(self, path: str, variable: str) -> str:
        """The journal key of a station variable's history (its NodeId's string id)."""
        return f"{path}.{variable}"

    async def publish_station(self, path: str, values: Mapping[str, Any]) -> None:
        """Write station variables (unknown names are an error, not silently dropped)."""
        nodes = self._station_nodes.get(path)
        if nodes is None:
            raise KeyError(f"twin server: no station '{path}'")
        rows: list[tuple[str, Any, float]] = []
        for name, value in values.items():
            if name not in nodes:
                raise KeyError(f"twin server: station variable '{name}' does not exist")
            await self._write(nodes[name], STATION_VARIABLES[name][0], value, rows)
        self._journal_history(rows)

    async def publish_batch(self, batch_id: str, values: Mapping[str, Any]) -> None:
        """Create or update the entry of ``batch_id`` in the ring of recent batches."""
        rows: list[tuple[str, Any, float]] = []
        slot = self._by_batch.get(batch_id)
        if slot is None:
            slot = self._slots.popleft()  # the oldest slot is reused
            self._by_batch.pop(slot.batch_id, None)
            slot.batch_id = batch_id
            self._by_batch[batch_id] = slot
            self._slots.append(slot)
            for name, (vtype, initial) in BATCH_VARIABLES.items():
                await self._write(slot.nodes[name], vtype, batch_id if name == "BatchId"
                                  else initial, rows)
        for name, value in values.items():
            if name not in slot.nodes:
                raise KeyError(f"twin server: batch variable '{name}' does not exist")
            await self._write(slot.nodes[name], BATCH_VARIABLES[name][0], value, rows)
        self._journal_history(rows)

    async def _write(self, node: Node, vtype: ua.VariantType, value: Any,
                     rows: list[tuple[str, Any, float]] | None = None) -> None:
        if vtype == ua.VariantType.Double:
            value = float(value)
        elif vtype == ua.VariantType.String:
            value = str(value)
        now = datetime.now(timezone.utc)
        # Server-side write: bypasses the read-only access level that clients see.
        await self._server.write_attribute_value(node.nodeid, ua.DataValue(
            ua.Variant(value, vtype), SourceTimestamp=now,  # type: ignore[arg-type]
            ServerTimestamp=now))  # type: ignore[arg-type]
        key = self._hist_keys.get(node.nodeid)
        if rows is not None and key is not None:
            last = self._hist_last.get(key, _NOTHING)
            same = last == value or (isinstance(last, float) and isinstance(value, float)
                                     and math.isnan(last) and math.isnan(value))
            if not same:
                self._hist_last[key] = value
                rows.append((key, value, now.timestamp()))

    def _journal_history(self, rows: list[tuple[str, Any, float]]) -> None:
        if rows and self.journal is not None:
            sim = self.sim_clock() if self.sim_clock is not None else None
            self.journal.history_many(rows, sim)

    async def _historize(self, root: Node) -> None:
        """Mark the station and batch-ring variables historized (values in the journal)."""
        nodes = [n for nodes in self._station_nodes.values() for name, n in nodes.items()
                 if name not in NOT_HISTORIZED]
        nodes += [n for slot in self._slots for n in slot.nodes.values()]
        bits = ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.HistoryRead.mask
        for node in nodes:
            assert isinstance(node.nodeid.Identifier, str)
            self._hist_keys[node.nodeid] = node.nodeid.Identifier
            for attr in (ua.AttributeIds.AccessLevel, ua.AttributeIds.UserAccessLevel):
                await self._server.write_attribute_value(
                    node.nodeid, ua.DataValue(ua.Variant(bits, ua.VariantType.Byte)), attr)
            await self._server.write_attribute_value(
                node.nodeid, ua.DataValue(ua.Variant(True, ua.VariantType.Boolean)),
                ua.AttributeIds.Historizing)

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
        await root.add_method(self._nid(f"{self.plant_name}.AcknowledgeAlarm"),
                              self._qn("AcknowledgeAlarm"), self._ack_method(None),
                              [ua.VariantType.UInt32], [ua.VariantType.String])

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

    # -- alarms --------------------------------------------------------------------------
    async def publish_alarm(self, alarm_id: int) -> None:
        """Show alarm ``alarm_id`` as the journal has it now (raised, cleared, acknowledged)."""
        if self.journal is None:
            return
        row = read_alarm(self.journal.db, alarm_id)
        if row is not None:
            await self._show_alarm(row)

    def alarm_node_id(self, alarm_id: int, variable: str) -> str:
        """String NodeId of an alarm variable, e.g. ``ns=2;s=line1.Alarms.3.State``."""
        return f"ns={self._ns};s={self.plant_name}.Alarms.{int(alarm_id)}.{variable}"

    async def _show_alarm(self, row: Mapping[str, Any], *, fire: bool = True) -> None:
        aid = int(row["alarm_id"])
        nodes = self._alarm_nodes.get(aid)
        if nodes is None:
            nodes = await self._add_alarm(aid)
        active = row["cleared_at"] is None
        acked = row["acknowledged_by"] is not None
        state = alarm_state(active, acked)
        message = str(row["message"] or "") if active else \
            str(row["clear_message"] or row["message"] or "")
        values: dict[str, Any] = {
            "AlarmId": aid, "Source": row["source"] or "", "Station": row["station"] or "",
            "Kind": row["kind"] or "", "Message": message,
            "Severity": max(0, min(1000, int(row["severity"] or 0))),
            "Time": _utc(float(row["raised_at"] if active else row["cleared_at"])),
            "Active": active, "Acked": acked, "AckedBy": row["acknowledged_by"] or "",
            "State": state}
        if acked:
            values["AckedAt"] = _utc(float(row["acknowledged_at"]))
        for name, value in values.items():
            await self._write(nodes[name], ALARM_VARIABLES[name][0], value)
        if fire and self._events is not None:
            ev = self._events.event
            ev.Severity = values["Severity"] if active else 100
            ev.SourceName = f"{self.plant_name}.Alarms.{aid}"
            await self._events.trigger(message=f"alarm {aid} {row['station'] or row['source']} "
                                               f"{row['kind']}: {state}: {message}")
        if not active and acked:
            await self._prune_alarms()

    async def _add_alarm(self, aid: int) -> dict[str, Node]:
        assert self._alarm_folder is not None
        base = f"{self.plant_name}.Alarms.{aid}"
        obj = await self._alarm_folder.add_object(self._nid(base), self._qn(f"Alarm{aid}"))
        nodes = {}
        for name, (vtype, initial) in ALARM_VARIABLES.items():
            nodes[name] = await obj.add_variable(self._nid(f"{base}.{name}"), self._qn(name),
                                                 ua.Variant(initial, vtype))
        await obj.add_method(self._nid(f"{base}.Acknowledge"), self._qn("Acknowledge"),
                             self._ack_method(aid), [], [ua.VariantType.String])
        self._alarm_nodes[aid] = nodes
        self._alarm_objects[aid] = obj
        return nodes

    async def _prune_alarms(self) -> None:
        """Remove the oldest cleared and acknowledged alarms beyond ``keep_alarms``."""
        closed = []
        for aid, nodes in self._alarm_nodes.items():
            if not await nodes["Active"].read_value() and await nodes["Acked"].read_value():
                closed.append(aid)
        for aid in sorted(closed)[:max(0, len(closed) - self.keep_alarms)]:
            obj = self._alarm_objects.pop(aid)
            self._alarm_nodes.pop(aid)
            await self._server.delete_nodes([obj], recursive=True)

    async def acknowledge(self, alarm_id: int, who: str) -> ua.StatusCode | str:
        """Record ``who`` (an authenticated identity) acknowledging an alarm."""
        if self.journal is None:
            return ua.StatusCode(ua.UInt32(ua.StatusCodes.BadNotImplemented))
        row = read_alarm(self.journal.db, alarm_id)
        if row is None:
            return ua.StatusCode(ua.UInt32(ua.StatusCodes.BadNotFound))
        if not self.journal.acknowledge_alarm(alarm_id, who, time.time()):
            return ua.StatusCode(ua.UInt32(ua.StatusCodes.BadConditionBranchAlreadyAcked))
        await self.publish_alarm(alarm_id)
        text = f"alarm {alarm_id} ({row['station'] or row['source']} {row['kind']}) " \
               f"acknowledged by {who}"
        if self.on_note is not None:
            self.on_note(text)
        return f"Good: {text}"

    def _ack_method(self, fixed_id: int | None) -> Callable[..., Any]:
        @uamethod
        async def ack(parent: ua.NodeId, *args: Any) -> Any:
            caller = session_identity(_CALLER.get())
            try:
                aid = int(fixed_id if fixed_id is not None else args[0])
            except (IndexError, TypeError, ValueError):
                return ua.StatusCode(ua.UInt32(ua.StatusCodes.BadInvalidArgument))
            if caller is None or role_rank(caller[1]) < role_rank(ACK_ROLE):
                log.warning("twin server: acknowledgement of alarm %s refused for %s", aid,
                            f"{caller[0]} ({caller[1]})" if caller else
                            "an anonymous session")
                return ua.StatusCode(ua.UInt32(ua.StatusCodes.BadUserAccessDenied))
            return await self.acknowledge(aid, caller[0])

        return ack
