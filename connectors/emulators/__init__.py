"""Emulated furnace and sputter-tool PLCs: real OPC UA servers with a hidden true process.

``anode-twin plc furnace|sputter`` runs one; tests and benchmarks use
:func:`~connectors.emulators.runner.build_server` directly. The names below load their modules
(and asyncua) on first use, so that ``KINDS`` costs nothing to import.
"""

from __future__ import annotations

import importlib
from typing import Any

#: The tools that can be emulated (``anode-twin plc KIND``).
KINDS = ("furnace", "sputter")

_LAZY = {"NAMESPACE_URI": "address_space", "FurnaceTool": "furnace", "SputterTool": "sputter",
         "EmulatorServer": "server", "build_server": "runner", "make_tool": "runner",
         "serve": "runner"}

__all__ = ["KINDS", "NAMESPACE_URI", "EmulatorServer", "FurnaceTool", "SputterTool",
           "build_server", "make_tool", "serve"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'connectors.emulators' has no attribute {name!r}")
    return getattr(importlib.import_module(f"connectors.emulators.{module}"), name)
