"""Operators as a shared resource, available on a shift calendar.

Simulation time 0 is the run's configured start (a Monday at 00:00 by default), so the
calendar is plain arithmetic on seconds: day ``d = t // 86400``, weekday ``d % 7``. A shift
that passes midnight (``22 -> 30``) belongs to the day it starts on. Working days are the
first ``days_per_week`` weekdays (Mon–Fri for 5).

An operator who is on a task when the shift ends finishes it (overtime); a new task only
starts on shift. A station that needs more operators than the crew has is refused when the
plant is built (:mod:`twin.plant.plant`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy
from simpy.resources.resource import Request

from twin.config.schema import Operators
from twin.plant.components import Component

DAY_S = 86400.0
WEEK_S = 7 * DAY_S


class ShiftCalendar:
    """When operators are on shift.

    Parameters
    ----------
    shifts : sequence of (start_h, end_h)
        Shift windows in hours of the day; ``end_h`` may pass 24.
    days_per_week : int
        Working days per week, counted from the first day of the run.
    """

    def __init__(self, shifts: list[tuple[float, float]], days_per_week: int = 7) -> None:
        self.days_per_week = days_per_week
        # Working windows of one week in seconds from week start, merged and sorted.
        windows = sorted((d * DAY_S + a * 3600.0, d * DAY_S + b * 3600.0)
                         for d in range(days_per_week) for a, b in shifts)
        merged: list[list[float]] = []
        for a, b in windows:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        # A window running past the week's end wraps to the start of the next week.
        if merged and merged[-1][1] > WEEK_S:
            over = merged[-1][1] - WEEK_S
            merged[-1][1] = WEEK_S
            if merged[0][0] <= over:
                merged[0][0] = 0.0
                merged[0][1] = max(merged[0][1], over)
            else:
                merged.insert(0, [0.0, over])
        self.windows: list[tuple[float, float]] = [(a, b) for a, b in merged]
        self.always = self.windows == [(0.0, WEEK_S)]

    @classmethod
    def from_config(cls, ops: Operators) -> ShiftCalendar:
        """Calendar of the plant's operator shifts."""
        return cls([(s.start_h, s.end_h) for s in ops.shifts], ops.days_per_week)

    def wait_s(self, t_s: float) -> float:
        """Seconds from ``t_s`` until operators are next on shift (0 when on shift now)."""
        if self.always:
            return 0.0
        week0 = (t_s // WEEK_S) * WEEK_S
        tw = t_s - week0
        for a, b in self.windows:
            if tw < a:
                return a - tw
            if tw < b:
                return 0.0
        return WEEK_S - tw + self.windows[0][0]

    def on_shift_share(self) -> float:
        """Share of the week with operators on shift."""
        return sum(b - a for a, b in self.windows) / WEEK_S


class Crew(Component):
    """The plant's operators: a SimPy resource used only on shift.

    Parameters
    ----------
    env : simpy.Environment
    parent : Component
        The plant root.
    ops : Operators
        Crew size and shift calendar.
    """

    def __init__(self, env: simpy.Environment, parent: Component, ops: Operators) -> None:
        super().__init__("operators", parent)
        self.env = env
        self.count = ops.count
        self.calendar = ShiftCalendar.from_config(ops)
        self.resource = simpy.Resource(env, capacity=max(ops.count, 1))
        self.busy_s = 0.0

    def acquire(self, n: int) -> Generator[simpy.Event, Any, list[Request]]:
        """Wait for a shift and for ``n`` free operators; return the held requests."""
        if n <= 0:
            return []
        if n > self.count:
            raise ValueError(f"{self.path}: a task needs {n} operators, the crew has "
                             f"{self.count}")
        while True:
            wait = self.calendar.wait_s(self.env.now)
            if wait > 0:
                yield self.env.timeout(wait)
            reqs = [self.resource.request() for _ in range(n)]
            for r in reqs:
                yield r
            if self.calendar.wait_s(self.env.now) == 0.0:
                return reqs
            # Granted after the shift ended: hand the operators back and wait for the next.
            for r in reqs:
                self.resource.release(r)

    def release(self, reqs: list[Request], held_s: float) -> None:
        """Give operators back; ``held_s`` is how long they were held (for utilisation)."""
        for r in reqs:
            self.resource.release(r)
        self.busy_s += held_s * len(reqs)
