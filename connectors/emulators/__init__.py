"""Emulated furnace and sputter-tool PLCs: real OPC UA servers with a hidden true process.

``anode-twin plc furnace|sputter`` runs one; tests and benchmarks use
:func:`~connectors.emulators.runner.build_server` directly.
"""

from connectors.emulators.address_space import NAMESPACE_URI
from connectors.emulators.furnace import FurnaceTool
from connectors.emulators.runner import KINDS, build_server, make_tool, serve
from connectors.emulators.server import EmulatorServer
from connectors.emulators.sputter import SputterTool

__all__ = ["KINDS", "NAMESPACE_URI", "EmulatorServer", "FurnaceTool", "SputterTool",
           "build_server", "make_tool", "serve"]
