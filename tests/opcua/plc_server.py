"""A small real OPC UA server standing in for a furnace PLC in the gateway tests.

Used in-process (``build_server`` in the test's event loop) and as a subprocess
(``python plc_server.py --port N --log FILE``) where a process restart is the point. Every
client write to a setpoint is appended to the log file (when given) so a test can prove that
nothing was replayed after a restart: the file outlives the process.

NodeIds follow the emulators' scheme ``ns=<idx>;s=<tool>.<Group>.<Signal>.<SP|PV>``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole

NAMESPACE = "urn:anode-twin:test-plc"
SP_MAX_C = 1200.0  # the PLC's own limit: writes above are refused with BadOutOfRange

# name -> (variant type, initial value, writable)
VARIABLES: dict[str, tuple[ua.VariantType, Any, bool]] = {
    "furnace1.Temperature.Zone1.SP": (ua.VariantType.Double, 25.0, True),
    "furnace1.Temperature.Zone1.PV": (ua.VariantType.Double, 24.5, False),
    "furnace1.Oxygen.Flow.SP": (ua.VariantType.Float, 2.0, True),
    "furnace1.HoldTime.SP": (ua.VariantType.Int32, 30, True),
    "furnace1.Door.Closed": (ua.VariantType.Boolean, True, True),
    "furnace1.BatchId": (ua.VariantType.String, "", True),
    "furnace1.Zones": (ua.VariantType.UInt16, 3, False),
    "furnace1.Supervisor.Heartbeat": (ua.VariantType.UInt32, 0, True),
}


class PasswordUsers:
    """asyncua user manager: one ordinary (non-admin) user with a password."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username == self.username and password == self.password:
            return User(role=UserRole.User, name=username)
        return None


async def build_server(url: str, log_file: Path | None = None,
                       server: Server | None = None) -> tuple[Server, int]:
    """Create (not start) the test PLC server; returns it and its namespace index."""
    srv = server or Server()
    await srv.init()
    srv.set_endpoint(url)
    srv.set_server_name("anode-twin test PLC")
    # No 1 s CurrentTime task: stopping the server would wait up to a second for it.
    srv.disable_clock()
    idx = await srv.register_namespace(NAMESPACE)
    objects = srv.nodes.objects
    folders: dict[str, Any] = {}
    for name, (vtype, value, writable) in VARIABLES.items():
        parts = name.split(".")
        parent = objects
        for depth in range(1, len(parts)):
            key = ".".join(parts[:depth])
            if key not in folders:
                folders[key] = await parent.add_object(ua.NodeId(key, idx),
                                                       ua.QualifiedName(parts[depth - 1], idx))
            parent = folders[key]
        var = await parent.add_variable(ua.NodeId(name, idx), ua.QualifiedName(parts[-1], idx),
                                        ua.Variant(value, vtype))
        if writable:
            await var.set_writable()

    writes: list[tuple[str, Any]] = []

    def recorder(name: str) -> Any:
        def setter(node: Any, attr: ua.AttributeIds, dv: ua.DataValue) -> None:
            value = dv.Value.Value if dv.Value is not None else None
            if name.endswith("Zone1.SP") and value is not None and value > SP_MAX_C:
                raise ua.UaStatusCodeError(ua.StatusCodes.BadOutOfRange)
            node.attributes[attr].value = dv
            writes.append((name, value))
            if log_file is not None:
                with log_file.open("a", encoding="utf-8") as fh:
                    fh.write(f"{name} {value!r}\n")
        return setter

    for name, (_, _, writable) in VARIABLES.items():
        if writable:
            srv.set_attribute_value_setter(ua.NodeId(name, idx), recorder(name))
    srv.writes = writes  # type: ignore[attr-defined]  # inspected by in-process tests

    furnace = folders["furnace1"]

    async def start(parent: ua.NodeId, batch_id: ua.Variant) -> Any:
        # Like a PLC: a refused command answers with a status, not an exception.
        if not batch_id.Value:
            return ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
        return [ua.Variant(True, ua.VariantType.Boolean)]

    async def hold(parent: ua.NodeId) -> Any:
        # The emulators' convention: Good at the service level, refusal in ReturnStatus.
        return [ua.Variant(ua.StatusCode(ua.StatusCodes.BadInvalidState),
                           ua.VariantType.StatusCode),
                ua.Variant("nothing to hold in Idle", ua.VariantType.String)]

    start_node = await furnace.add_method(
        ua.NodeId("furnace1.Start", idx), ua.QualifiedName("Start", idx), start,
        [ua.VariantType.String], [ua.VariantType.Boolean])
    srv.start_node = start_node  # type: ignore[attr-defined]
    await furnace.add_method(ua.NodeId("furnace1.Hold", idx), ua.QualifiedName("Hold", idx),
                             hold, [], [ua.VariantType.StatusCode, ua.VariantType.String])
    return srv, idx


async def _serve(port: int, log_file: Path | None) -> None:
    srv, _ = await build_server(f"opc.tcp://127.0.0.1:{port}/plc", log_file)
    async with srv:
        print("READY", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    """Run the test PLC until killed (prints READY when it accepts connections)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_serve(args.port, args.log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
