"""Run-to-run control of the sputter tool's reactive oxide cap.

The cap model (:class:`~twin.control.model.SputterCapModel`) is one scalar formula per
candidate: the cap is proportional to the oxidize time and falls with the O2/Ar flow ratio
(target poisoning). The furnace controller's one-knob solve interpolates log thickness on a
coarse grid, which suits the slow, vectorised oxidation physics but misplaces the answer for
the cap: its oxidize-time range starts at 0 min (a cap of 0, log -inf) and the aim sits a few
minutes above it. :class:`CapController` keeps everything else of
:class:`~twin.control.r2r.RunToRunController` (knob order, equipment and move limits, the
deadband, solutions starting from the recipe, proposals) and replaces only the one-knob solve
by a bisection on the log prediction, exact to the setpoint resolution.

Directions (from the model, not assumed): a cap predicted too thick shortens the oxidize
time; when the time is saturated the O2 flow goes *up*, since more O2 poisons the target
and lowers the cap rate (and down for a cap too thin).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from twin.control.charge import Theta
from twin.control.r2r import RESOLUTION, RunToRunController, quantise

#: Bisection steps: the bracket shrinks to 2**-60 of the knob range (far below RESOLUTION).
BISECT_STEPS = 60


class CapController(RunToRunController):
    """Model-inversion controller of the sputter tool's oxide cap (see the module notes)."""

    def _solve_knob(self, sp: dict[str, float], knob: str, bounds: tuple[float, float],
                    context: Any, theta: Theta, *,
                    start: float | None = None) -> tuple[float, float, bool]:
        """Value of one knob that puts the predicted cap on aim (or the nearest bound)."""
        name = self.model.knobs[knob]

        def log_pred(x: float) -> float:
            y = float(self.model.predict_setpoints([{**sp, name: x}], context, theta)[0])
            return math.log(y) if y > 0 and math.isfinite(y) else -math.inf

        x, reached = bisect_log(log_pred, bounds, math.log(self.cfg.aim_nm))
        if reached:
            # On the setpoint grid, without binary round-off in what is written and audited.
            x = min(max(round(quantise(x, RESOLUTION.get(name, 0.0), bounds), 9), bounds[0]),
                    bounds[1])
        # Saturated: the bound itself (a grid point next to it may lie on the wrong side of
        # the current setpoint and move the cap away from the aim).
        pred = float(self.model.predict_setpoints([{**sp, name: x}], context, theta)[0])
        return x, pred, reached


def bisect_log(log_pred: Callable[[float], float], bounds: tuple[float, float],
               target_log: float) -> tuple[float, bool]:
    """Solve ``log_pred(x) = target_log`` on ``bounds`` for a monotonic ``log_pred``.

    Returns
    -------
    tuple
        ``(x, reached)``; without a bracket, the bound whose prediction is closest to the
        target and ``False``.
    """
    lo, hi = bounds
    y_lo, y_hi = log_pred(lo), log_pred(hi)
    if hi <= lo or not (min(y_lo, y_hi) <= target_log <= max(y_lo, y_hi)):
        d_lo, d_hi = abs(y_lo - target_log), abs(y_hi - target_log)
        return (lo, False) if d_lo <= d_hi else (hi, False)
    rising = y_hi >= y_lo
    for _ in range(BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        if (log_pred(mid) < target_log) == rising:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi), True
