"""What every station shares: the run context, state logging, operators, breakdowns.

A station is a :class:`~twin.plant.components.Component` with ``count`` identical machines
(``line1.mill1`` ... ``line1.mill3``); each machine is one SimPy process that only waits,
takes resources and calls physics (through its equipment). All machines of a kind share one
input buffer and one output buffer.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from twin.config.schema import PlantConfig, StationBase
from twin.equipment.base import Equipment, StepRequest, StepResult
from twin.plant.batches import Ledger, Unit
from twin.plant.breakdowns import HOUR_S
from twin.plant.buffers import Buffer
from twin.plant.components import Component, RngTree
from twin.plant.historian import Historian
from twin.plant.resources import Crew


@dataclass
class Context:
    """Everything the stations of one run share."""

    env: simpy.Environment
    cfg: PlantConfig
    rng: RngTree
    historian: Historian
    ledger: Ledger
    crew: Crew
    horizon_s: float
    #: The storage room's humidity probe: ``t_s -> %RH`` (what the twin reads).
    storage_rh: Callable[[float], float] = field(default=lambda t_s: 40.0)
    physics: Any = None  # twin.plant.physics_cache.PhysicsCache
    control: Any = None  # twin.control.plant_hooks.PlantControl (VM and run-to-run control)

    def rh_percent(self, t_s: float) -> float:
        """The storage room's humidity as its probe reads it at ``t_s``, %RH."""
        return self.storage_rh(t_s)


class Machine(Component):
    """One machine of a station: a SimPy process with a logged state.

    Parameters
    ----------
    ctx : Context
    name : str
        Local name, e.g. ``mill2``.
    parent : Component
        The line.
    cfg : StationBase
        Station configuration (count, buffer, operators, changeover, reliability).
    equipment : Equipment
        What runs the recipe steps.
    inbox, outbox : Buffer or None
        Input and output buffers.
    """

    initial_state = "starved"

    def __init__(self, ctx: Context, name: str, parent: Component, cfg: StationBase,
                 equipment: Equipment, inbox: Buffer | None, outbox: Buffer | None) -> None:
        super().__init__(name, parent)
        self.ctx = ctx
        self.env = ctx.env
        self.cfg = cfg
        self.equipment = equipment
        self.inbox = inbox
        self.outbox = outbox
        self.last_alloy = ""
        self.batches_done = 0
        self._historian = ctx.historian
        rel = cfg.reliability
        self.maintenance_every_s = (rel.maintenance_every_h * HOUR_S
                                    if rel.enabled and rel.maintenance_every_h > 0 else 0.0)
        self.next_maintenance_s = self.maintenance_every_s or float("inf")
        ctx.historian.register(self.path, self.initial_state, self.env.now)
        self.process = self.env.process(self.run())

    # -- the machine's life ------------------------------------------------------------------
    def run(self) -> Generator[simpy.Event, Any, None]:
        """The machine's process: overridden by each station."""
        raise NotImplementedError
        yield  # pragma: no cover

    def state(self, state: str, batch_id: str = "") -> None:
        """Log a state change now."""
        self._historian.set_state(self.path, state, self.env.now, batch_id)

    def event(self, event: str, batch_id: str = "", detail: str = "") -> None:
        """Log an event now."""
        self._historian.event(self.env.now, self.path, event, batch_id, detail)

    def operators(self, batch_id: str = ""
                  ) -> Generator[simpy.Event, Any, list[simpy.resources.resource.Request]]:
        """Wait (``idle``) for the operators this station needs."""
        n = self.cfg.operators_needed
        if n == 0:
            return []
        if self.ctx.crew.calendar.wait_s(self.env.now) > 0 or \
                self.ctx.crew.resource.count + n > self.ctx.crew.resource.capacity:
            self.state("idle", batch_id)
        reqs = yield from self.ctx.crew.acquire(n)
        return reqs

    def release_operators(self, reqs: list[simpy.resources.resource.Request],
                          since_s: float) -> None:
        """Hand operators back."""
        if reqs:
            self.ctx.crew.release(reqs, self.env.now - since_s)

    def setup(self, duration_s: float, batch_id: str, what: str
              ) -> Generator[simpy.Event, Any, None]:
        """A ``setup`` phase (heat-up, cool-down, changeover, load/unload ...)."""
        if duration_s <= 0:
            return
        self.state("setup", batch_id)
        self.event(f"setup:{what}", batch_id, f"{duration_s:.0f}")
        yield self.env.timeout(duration_s)

    def changeover(self, unit: Unit) -> Generator[simpy.Event, Any, None]:
        """Changeover when the alloy differs from the previous batch's."""
        if self.last_alloy and unit.alloy != self.last_alloy:
            yield from self.setup(self.cfg.changeover_h * HOUR_S, unit.id, "changeover")
        self.last_alloy = unit.alloy

    def maintenance(self) -> Generator[simpy.Event, Any, bool]:
        """Take planned maintenance if it is due (at a batch boundary); True if taken."""
        if self.env.now < self.next_maintenance_s:
            return False
        self.state("down")
        self.event("maintenance:start")
        took = yield from self.equipment.maintain(
            self.env, self.cfg.reliability.maintenance_duration_h * HOUR_S)
        self.event("maintenance:end", detail=f"{took:.0f}")
        while self.next_maintenance_s <= self.env.now:
            self.next_maintenance_s += self.maintenance_every_s
        return True

    def step(self, request: StepRequest, *, resumable: bool
             ) -> Generator[simpy.Event, Any, list[StepResult]]:
        """Run a recipe step on the equipment (``working``), riding out breakdowns.

        A breakdown takes the machine ``down`` for the repair. A ``resumable`` step (milling,
        melting, coating) then continues for the rest of its duration; a non-resumable one
        (a furnace profile, a sputter run) stays aborted. Returns every partial result.
        """
        results: list[StepResult] = []
        req = request
        while True:
            self.state("working", request.batch_id)
            res: StepResult = yield from self.equipment.execute(self.env, req)
            results.append(res)
            if res.status != "aborted":
                return results
            self.state("down", request.batch_id)
            self.event("breakdown", request.batch_id, res.fault)
            down = yield from self.equipment.recover(self.env, res)
            self.event("repaired", request.batch_id, f"{down:.0f}")
            if not resumable:
                return results
            left = 1.0 - res.values.get("completed_fraction", 1.0)
            sp = dict(req.setpoints)
            sp["duration_s"] = sp["duration_s"] * left
            req = StepRequest(req.batch_id, req.recipe_id, req.kind, sp, req.context)

    def output(self, unit: Unit, *, hold: bool = False) -> Generator[simpy.Event, Any, None]:
        """Put a finished unit into the output buffer (``blocked`` while it is full)."""
        assert self.outbox is not None
        if self.outbox.full:
            self.state("blocked", unit.id)
            self.event("blocked", unit.id, self.outbox.path)
        yield from self.outbox.put(unit, hold=hold)

    def take(self, accept: Any = None) -> Generator[simpy.Event, Any, Unit]:
        """Wait (``starved``) for a released unit from the input buffer."""
        assert self.inbox is not None
        if not self.inbox.has_released(accept):
            self.state("starved")
        unit: Unit = yield from self.inbox.get(accept)
        return unit


def station_names(prefix: str, count: int) -> list[str]:
    """``['mill1', 'mill2', ...]``."""
    return [f"{prefix}{i + 1}" for i in range(count)]


def make_clock_rng(ctx: Context, path: str) -> np.random.Generator:
    """The failure-clock stream of a machine."""
    return ctx.rng.stream(f"{path}.reliability")


__all__ = ["Context", "Machine", "station_names", "make_clock_rng", "StationBase"]
