"""The metrology lab and the disposition rules.

Sampling: ``sample_count`` (k) of every ``sample_every`` (n) batches are measured, the k chosen
at random in each group of n (seeded), so the sample never aliases with a cycle in the line.
A batch is also measured when its step was aborted, when the twin's prediction fails the
rules, or when ``release_on_prediction`` is off.

A measured batch waits in its station's output buffer, on hold, for the turnaround (transport,
preparation, queue) and the measurement on one of the lab's ``count`` instruments; the
thickness is the true thickness with the XPS noise model of :mod:`twin.physics.metrology`.

Disposition: :mod:`twin.plant.release` (the one decision of the plant model and the reports).
A batch the lab leaves undecided (its prediction contradicted by the lab, or no thickness
returned) is held for a retest / QA review: its units leave the station's buffer into the
lab's held inventory (:meth:`Lab.hold`), still material in process.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from twin.config.schema import LabConfig
from twin.equipment.base import LabResult, LabSample, LabSource
from twin.physics.metrology import measure_thickness_nm
from twin.plant.batches import Unit
from twin.plant.breakdowns import HOUR_S
from twin.plant.components import Component
from twin.plant.station import Context


class Sampler:
    """Chooses k of every n batches at random (seeded)."""

    def __init__(self, k: int, n: int, rng: np.random.Generator) -> None:
        self.k, self.n, self.rng = k, n, rng
        self._group: set[int] = set()
        self._i = 0

    def pick(self) -> bool:
        """True when the next batch is to be measured."""
        pos = self._i % self.n
        if pos == 0:
            self._group = {int(j) for j in self.rng.choice(self.n, self.k, replace=False)}
        self._i += 1
        return pos in self._group


class Lab(Component):
    """The metrology lab (``line1.lab``): turnaround, instruments, XPS noise."""

    def __init__(self, ctx: Context, parent: Component, cfg: LabConfig) -> None:
        super().__init__("lab", parent)
        self.ctx = ctx
        self.env = ctx.env
        self.cfg = cfg
        self.instruments = simpy.Resource(ctx.env, capacity=cfg.count)
        self.rng = ctx.rng.stream(f"{self.path}.noise")
        self.sampler = Sampler(cfg.sample_count, cfg.sample_every,
                               ctx.rng.stream(f"{self.path}.sampling"))
        self.busy = 0
        self.measured = 0
        #: Units held for a retest / QA review (out of their buffer, still in process).
        self.held: dict[str, Unit] = {}
        ctx.historian.register(self.path, "idle", self.env.now)

    def hold(self, unit: Unit, reason: str) -> None:
        """Take a unit into the held inventory (held for a retest / QA review)."""
        self.held[unit.id] = unit
        self.ctx.historian.event(self.env.now, self.path, "held", unit.id, reason)

    @property
    def held_kg(self) -> float:
        """Mass of the held inventory, kg."""
        return sum(u.mass_kg for u in self.held.values())

    def submit(self, batch_id: str, truth: float | LabSource | LabSample,
               done: Callable[[LabResult], None]) -> None:
        """Measure a batch: ``done(result)`` is called when the lab reports.

        ``truth`` is what the lab receives: a simulated batch's material
        (:class:`LabSample`: the hidden plant's handle, analysed with this lab's method and
        noise after the turnaround), a :class:`LabSource` (live equipment: the real lab's
        result is awaited as it is), or a plain true thickness (a model's own value: XPS noise
        is added).
        """
        if isinstance(truth, (float, int)):
            self.env.process(self._measure(batch_id, float(truth), done))
        elif isinstance(truth, LabSource):
            self.env.process(self._external(batch_id, truth, done))
        else:
            self.env.process(self._measure(batch_id, truth, done))

    def _external(self, batch_id: str, source: LabSource,
                  done: Callable[[LabResult], None]) -> Generator[simpy.Event, Any, None]:
        env, h = self.env, self.ctx.historian
        h.event(env.now, self.path, "sample:received", batch_id)
        measured = yield from source.measure(env)
        self.measured += 1
        h.event(env.now, self.path, "sample:result", batch_id, f"{measured:.4f}")
        done(LabResult(measured, "lab"))

    def _measure(self, batch_id: str, truth: float | LabSample,
                 done: Callable[[LabResult], None]) -> Generator[simpy.Event, Any, None]:
        env, h = self.env, self.ctx.historian
        h.event(env.now, self.path, "sample:received", batch_id)
        yield env.timeout(self.cfg.turnaround_h * HOUR_S)
        with self.instruments.request() as req:
            yield req
            self.busy += 1
            h.set_state(self.path, "working", env.now)
            yield env.timeout(self.cfg.measure_h * HOUR_S)
            self.busy -= 1
            if self.busy == 0:
                h.set_state(self.path, "idle", env.now)
        if isinstance(truth, float):
            result = LabResult(float(measure_thickness_nm(
                truth, self.rng, sigma_abs_nm=self.cfg.noise_abs_nm,
                sigma_rel=self.cfg.noise_rel)), "xps")
        else:
            result = truth.analyse(self.cfg, self.rng)
        self.measured += 1
        h.event(env.now, self.path, "sample:result", batch_id, f"{result.thickness_nm:.4f}")
        done(result)
