"""Units of material with genealogy, and the plant's mass ledger.

A melt **heat** splits into mill **lots**; lots fill an oxidation **charge**; a charge is coated
into electrode **rolls** (powder line). On a thin-film line a sputter **run** makes **sheets**.
Every unit carries its parents' IDs, so any roll traces back to its heat.

The :class:`Ledger` holds every unit that currently exists as material (work in process) and
counts what entered, shipped and was scrapped, so conservation is checkable at any time:
``mass_in = shipped + scrap + WIP``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: ID prefixes by unit kind.
PREFIX: dict[str, str] = {"heat": "H", "lot": "L", "charge": "C", "roll": "R", "run": "S",
                          "sheet": "F"}


@dataclass(eq=False)
class Unit:
    """One unit of material moving through the plant.

    Attributes
    ----------
    id : str
        Unique ID, e.g. ``C000042``.
    kind : str
        ``heat``, ``lot``, ``charge``, ``roll``, ``run`` or ``sheet``.
    mass_kg : float
        Alloy (active) mass the unit holds, kg.
    parents : tuple of str
        IDs of the units it was made from.
    alloy : str
        Alloy label (e.g. ``Si80Ti20``); a change of alloy at a station is a changeover.
    origin_s : float
        Start time of its earliest ancestor, s (for cycle time).
    data : dict
        What the unit carries downstream (PSD, phases, oxide, truth handle ...).
    row : dict
        Its batch-record row, written to the historian when the unit is finished.
    """

    id: str
    kind: str
    mass_kg: float
    parents: tuple[str, ...]
    alloy: str
    origin_s: float
    data: dict[str, Any] = field(default_factory=dict)
    row: dict[str, Any] = field(default_factory=dict)


class Ledger:
    """Unit IDs, work in process and the plant's mass balance.

    Parameters
    ----------
    clock : callable, optional
        Current simulation time, s; used to integrate WIP over time (mean WIP).
    """

    def __init__(self, clock: Callable[[], float] = lambda: 0.0) -> None:
        self._next: dict[str, int] = dict.fromkeys(PREFIX, 0)
        self.clock = clock
        self.units: list[Unit] = []
        self.wip: dict[str, Unit] = {}
        self.mass_in_kg = 0.0
        self.shipped_kg = 0.0
        self.scrap_kg = 0.0
        self.shipped: dict[str, int] = {}
        self._wip_kg = 0.0
        self._wip_area = 0.0
        self._t_last = 0.0

    def _change(self, delta_kg: float) -> None:
        now = self.clock()
        self._wip_area += self._wip_kg * (now - self._t_last)
        self._t_last = now
        self._wip_kg += delta_kg

    def reserve_id(self, kind: str) -> str:
        """Take the next ID of ``kind`` for a unit created later (``new(..., unit_id=...)``).

        A sputter run is named when it starts, so that its control plan, step and audit
        records carry its ID, but its mass is only known when it ends.
        """
        self._next[kind] += 1
        return f"{PREFIX[kind]}{self._next[kind]:06d}"

    def new(self, kind: str, mass_kg: float, parents: tuple[Unit, ...], alloy: str,
            origin_s: float, *, raw: bool = False, unit_id: str | None = None) -> Unit:
        """Create a unit. ``raw`` units bring new material in; others consume their parents.

        A unit made from parents does not remove them here: call :meth:`consume` once all
        children of a parent exist, so WIP never double-counts or loses mass. ``unit_id``:
        an ID from :meth:`reserve_id` (default: the next one).
        """
        uid = unit_id if unit_id is not None else self.reserve_id(kind)
        unit = Unit(id=uid, kind=kind, mass_kg=mass_kg,
                    parents=tuple(p.id for p in parents), alloy=alloy, origin_s=origin_s)
        if raw:
            self.mass_in_kg += mass_kg
        self.wip[unit.id] = unit
        self.units.append(unit)
        self._change(mass_kg)
        return unit

    def consume(self, *units: Unit) -> None:
        """Remove parents that have been turned into children."""
        for u in units:
            if self.wip.pop(u.id, None) is not None:
                self._change(-u.mass_kg)

    def take_from(self, parent: Unit, mass_kg: float) -> None:
        """Move ``mass_kg`` out of ``parent`` (into a child about to be made)."""
        parent.mass_kg -= mass_kg
        self._change(-mass_kg)

    def ship(self, unit: Unit) -> None:
        """A finished unit leaves the plant."""
        self.wip.pop(unit.id)
        self._change(-unit.mass_kg)
        self.shipped_kg += unit.mass_kg
        self.shipped[unit.kind] = self.shipped.get(unit.kind, 0) + 1

    def scrap(self, unit: Unit) -> None:
        """A unit is scrapped."""
        self.wip.pop(unit.id)
        self._change(-unit.mass_kg)
        self.scrap_kg += unit.mass_kg

    @property
    def wip_kg(self) -> float:
        """Mass of all units in process, kg."""
        return sum(u.mass_kg for u in self.wip.values())

    def wip_kg_mean(self, horizon_s: float) -> float:
        """Time-averaged WIP over ``[0, horizon_s]``, kg."""
        area = self._wip_area + self._wip_kg * (horizon_s - self._t_last)
        return area / horizon_s if horizon_s > 0 else 0.0

    def balance_kg(self) -> float:
        """``mass_in - shipped - scrap - WIP``, kg (0 up to rounding)."""
        return self.mass_in_kg - self.shipped_kg - self.scrap_kg - self.wip_kg
