"""Advance a SimPy environment from an asyncio loop at a fixed time factor.

SimPy is single-threaded and knows nothing of wall time; live mode needs both the plant model
and the OPC UA I/O (asyncio) in one thread. The bridge repeatedly runs the environment up to
the simulation time that corresponds to the wall clock (``env.run(until=t)`` also sets
``env.now = t``, so the model's clock tracks the wall clock even while it waits for a PLC),
then yields to asyncio so that OPC UA callbacks can trigger SimPy events. An event triggered
from asyncio is processed at the next slice, i.e. at most ``slice_s`` of wall time late.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import simpy


class RealtimeBridge:
    """Run ``env`` in step with wall time scaled by ``time_factor``.

    Parameters
    ----------
    env : simpy.Environment
        The plant model's environment (simulation time in seconds).
    time_factor : float
        Simulated seconds per wall second (600 = ten simulated minutes per second).
    slice_s : float
        Wall seconds between two slices; bounds how late an external event is seen.
    clock : callable, optional
        Wall clock in seconds (defaults to the event loop's monotonic clock).
    """

    def __init__(self, env: simpy.Environment, time_factor: float, *, slice_s: float = 0.02,
                 clock: Callable[[], float] | None = None) -> None:
        if time_factor <= 0:
            raise ValueError(f"time_factor must be > 0, got {time_factor}")
        self.env = env
        self.time_factor = time_factor
        self.slice_s = slice_s
        self._clock = clock
        self._stop = asyncio.Event()
        self.env_start = float(env.now)
        self._wall0: float | None = None
        self.max_lag_s = 0.0  # worst simulated-time lag behind the wall clock seen so far

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current slice (Ctrl-C, end of run)."""
        self._stop.set()

    def sim_time_for_wall(self, wall_elapsed_s: float) -> float:
        """Simulation time that corresponds to ``wall_elapsed_s`` since the start."""
        return self.env_start + wall_elapsed_s * self.time_factor

    def sim_time_at(self, wall_t: float) -> float:
        """Simulation time of a wall-clock reading (same clock as the event loop's ``time``).

        Used to place PLC samples on the model's time axis; before :meth:`run` starts it is
        the environment's current time.
        """
        if self._wall0 is None:
            return float(self.env.now)
        return self.sim_time_for_wall(wall_t - self._wall0)

    async def run(self, until_s: float) -> float:
        """Advance until simulation time ``until_s`` (or :meth:`stop`); return ``env.now``."""
        clock = self._clock or asyncio.get_running_loop().time
        wall0 = self._wall0 = clock()
        self.env_start = float(self.env.now)
        while self.env.now < until_s and not self._stop.is_set():
            target = min(until_s, self.sim_time_for_wall(clock() - wall0))
            if target > self.env.now:
                self.env.run(until=target)
            lag = self.sim_time_for_wall(clock() - wall0) - float(self.env.now)
            self.max_lag_s = max(self.max_lag_s, lag)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.slice_s)
        return float(self.env.now)
