"""Finite buffers between stations.

A buffer has ``capacity`` slots. A station that finishes a unit must first get a slot
(:meth:`Buffer.put`); when the buffer is full the station waits there, which the station logs
as ``blocked``. Units in a buffer are either released (visible to the next station) or on
hold (waiting for the lab or a decision): a held unit still takes its slot, as it does on a
real quarantine rack. Released units are taken in FIFO order, optionally filtered (a furnace
fills a charge with lots of one alloy).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy

from twin.plant.batches import Unit
from twin.plant.components import Component


class Buffer(Component):
    """A slot-limited store of units.

    Parameters
    ----------
    env : simpy.Environment
    name : str
        Local component name.
    parent : Component
    capacity : int or None
        Slots; ``None`` for unlimited (the warehouse).
    """

    def __init__(self, env: simpy.Environment, name: str, parent: Component,
                 capacity: int | None) -> None:
        super().__init__(name, parent)
        self.env = env
        self.capacity = capacity
        self.slots: simpy.Container | None = (
            simpy.Container(env, capacity=capacity, init=capacity) if capacity else None)
        self.released = simpy.FilterStore(env)
        self.held: dict[str, Unit] = {}
        self.level = 0
        self.max_level = 0
        self.full_events = 0

    @property
    def full(self) -> bool:
        """True when no slot is free."""
        return self.slots is not None and self.slots.level == 0

    def put(self, unit: Unit, *, hold: bool = False) -> Generator[simpy.Event, Any, None]:
        """Wait for a slot, then store ``unit`` released (or held when ``hold``)."""
        slots = self.slots
        if slots is not None:
            if slots.level == 0:
                self.full_events += 1
            yield slots.get(1)
        level = self.level = self.level + 1
        if level > self.max_level:
            self.max_level = level
        if hold:
            self.held[unit.id] = unit
        else:
            yield self.released.put(unit)

    def release(self, unit: Unit) -> simpy.Event:
        """Make a held unit available downstream."""
        del self.held[unit.id]
        return self.released.put(unit)

    def remove_held(self, unit: Unit) -> None:
        """Take a held unit out (scrapped or sent to rework), freeing its slot."""
        del self.held[unit.id]
        self._free()

    def get(self, accept: Callable[[Unit], bool] | None = None
            ) -> Generator[simpy.Event, Any, Unit]:
        """Wait for a released unit (the first one ``accept`` takes), freeing its slot."""
        ev = self.released.get(accept) if accept is not None else self.released.get()
        unit: Unit = yield ev
        self._free()
        return unit

    def _free(self) -> None:
        self.level -= 1
        if self.slots is not None:
            self.slots.put(1)

    def has_released(self, accept: Callable[[Unit], bool] | None = None) -> bool:
        """True when a released unit (accepted by ``accept``) is waiting."""
        items = self.released.items
        return any(accept(u) for u in items) if accept is not None else bool(items)
