"""Breakdowns (MTBF/MTTR) and planned maintenance.

Failures are counted in *operating* time, as reliability data are: a tool that stands idle
does not wear. Each tool draws its time to the next failure from an exponential distribution
with mean ``mtbf_h``; a recipe step that would run past it stops there (the equipment reports
the step as aborted). Repair times are log-normal with mean ``mttr_h`` and a coefficient of
variation of 0.5 (repair-time data are right-skewed; the shape is an estimate).

Planned maintenance is due every ``maintenance_every_h`` of calendar time and is taken at the
next batch boundary (a running batch is never interrupted for it).
"""

from __future__ import annotations

import math

import numpy as np

from twin.config.schema import Reliability

HOUR_S = 3600.0
MTTR_CV = 0.5


class FailureClock:
    """Operating-time failure clock of one tool.

    Parameters
    ----------
    cfg : Reliability
        MTBF, MTTR and maintenance interval (configuration).
    rng : numpy.random.Generator
        The tool's own stream.
    """

    def __init__(self, cfg: Reliability, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.rng = rng
        self.failures = 0
        self._left_s = self._draw()
        self._next_maintenance_s = (cfg.maintenance_every_h * HOUR_S
                                    if cfg.enabled and cfg.maintenance_every_h > 0 else math.inf)

    def _draw(self) -> float:
        if not self.cfg.enabled:
            return math.inf
        return float(self.rng.exponential(self.cfg.mtbf_h * HOUR_S))

    def run(self, duration_s: float) -> float | None:
        """Operate for ``duration_s``; return the offset of a failure inside it, or None."""
        if duration_s < self._left_s:
            self._left_s -= duration_s
            return None
        at = self._left_s
        self.failures += 1
        self._left_s = self._draw()
        return at

    def repair_s(self) -> float:
        """Draw one repair time, s (log-normal, mean ``mttr_h``)."""
        mean = self.cfg.mttr_h * HOUR_S
        s2 = math.log1p(MTTR_CV**2)
        return float(self.rng.lognormal(math.log(mean) - 0.5 * s2, math.sqrt(s2)))

    def maintenance_due(self, t_s: float) -> bool:
        """True when planned maintenance is due at calendar time ``t_s``."""
        return t_s >= self._next_maintenance_s

    def maintained(self, t_s: float) -> None:
        """Record maintenance done at ``t_s``; the next falls one interval later."""
        every = self.cfg.maintenance_every_h * HOUR_S
        while self._next_maintenance_s <= t_s:
            self._next_maintenance_s += every
