"""The SimPy plant model: stations, batches with genealogy, historian.

``from twin.plant import simulate`` is the entry point; the package imports its modules
lazily so that :mod:`twin.equipment` can use :mod:`twin.plant.breakdowns` without a cycle.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SimulationResult", "simulate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from twin.plant import run

        return getattr(run, name)
    raise AttributeError(f"module 'twin.plant' has no attribute {name!r}")
