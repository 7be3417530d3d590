"""Run-to-run controller: invert the twin's model to put the next batch on aim.

Before a batch (and during its step) the controller predicts the batch's mean oxide under the
current setpoints at the tool's learnt log rate factor (level plus drift: the double-EWMA
offset of :mod:`twin.control.calibration`). When ``|log(prediction / aim)|`` exceeds the
deadband it inverts the model for the aim, one knob at a time in ``knob_order`` (by default
hold time, then temperature, then O2): each knob moves inside its equipment limits and at
most ``move_max_frac`` of its range from the current setpoint; the next knob is only used when
the previous one is saturated. Knobs start from the recipe (the controller never wanders away
from the recipe once a disturbance is gone), clipped into their allowed move. The ramp and
cool rates are not knobs; they are kept inside the furnace's ramp limits. Each knob is solved
by :func:`invert_1d`, a secant / regula falsi search from the running setpoint to the
setpoint resolution: a handful of single predictions near where the last batch ran.

:class:`PlainEwmaController` is the classic baseline: an EWMA of the measured log thickness
against a fixed log-linear model in the hold time, no physics and no process values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.config.schema import ControlConfig
from twin.control.charge import Theta
from twin.control.model import FurnaceModel, SputterCapModel

# The inversion walks from the running setpoint (secant steps, then a safeguarded regula
# falsi once the aim is bracketed): a handful of single predictions, each near the last, which
# the plant's anchored physics answers from the expansion it already holds. A dense grid over
# the whole allowed range would ask for predictions far from any charge seen so far.
MAX_EVALUATIONS = 24  # per knob; the search stops earlier once within the tolerance
#: Setpoint resolution the controller writes (an HMI/PLC setpoint is not continuous; a whole
#: number of minutes also lets the plant's physics cache reuse its anchors).
RESOLUTION: dict[str, float] = {"hold_min": 1.0, "hold_c": 1.0, "po2_atm": 0.001,
                                "oxidize_min": 0.05, "o2_sccm": 0.01}


@dataclass(frozen=True)
class Proposal:
    """Corrective setpoints for one batch.

    Attributes
    ----------
    loop, batch_id : str
        Tool path and batch.
    proposal_id : str
        ``<loop>/<batch_id>`` (``/mid`` appended for a change during the step).
    before, after : dict
        Setpoints before and after (only the knobs that change, units in the names).
    predicted_before_nm, predicted_after_nm : float
        Model prediction (with the learnt rate factor) under ``before`` and ``after``.
    aim_nm : float
        Target.
    reachable : bool
        The aim can be met inside the limits; False: the knobs are saturated.
    reason : str
        Why, for the audit trail.
    """

    loop: str
    batch_id: str
    proposal_id: str
    before: dict[str, float]
    after: dict[str, float]
    predicted_before_nm: float
    predicted_after_nm: float
    aim_nm: float
    reachable: bool
    reason: str

    def apply(self, setpoints: Mapping[str, float]) -> dict[str, float]:
        """``setpoints`` with this proposal's changes."""
        return {**setpoints, **self.after}


class RunToRunController:
    """Model-inversion run-to-run controller of one tool.

    Parameters
    ----------
    loop : str
        Tool path.
    model : FurnaceModel or SputterCapModel
        The twin's model of the tool.
    cfg : ControlConfig
        Aim, knob order, deadband, move limit.
    recipe : Mapping[str, float]
        The recipe's setpoints (the nominal every solution starts from).
    """

    def __init__(self, loop: str, model: FurnaceModel | SputterCapModel, cfg: ControlConfig,
                 recipe: Mapping[str, float]) -> None:
        self.loop = loop
        self.model = model
        self.cfg = cfg
        self.recipe = dict(recipe)
        self.knobs = [k for k in cfg.knob_order if k in model.knobs]

    def within_deadband(self, predicted_nm: float) -> bool:
        """Whether a prediction is close enough to the aim to leave the setpoints alone."""
        return abs(math.log(predicted_nm / self.cfg.aim_nm)) <= self.cfg.deadband_rel

    def propose(self, batch_id: str, current: Mapping[str, float], context: Any,
                theta: Theta, *, suffix: str = "", fixed: Sequence[str] = (),
                predicted_nm: float | None = None) -> Proposal | None:
        """Corrective setpoints for the batch, or None inside the deadband.

        Parameters
        ----------
        batch_id : str
            Batch the setpoints are for.
        current : Mapping[str, float]
            Setpoints the tool would run with now (all keys of a step).
        context : Any
            The batch's context for the model (particle sizes ...).
        theta : float
            Learnt log rate factor at the batch's time.
        suffix : str
            Appended to the proposal id (``'/mid'`` during a step).
        fixed : sequence of str
            Knobs that may not move (e.g. temperature during a hold).
        predicted_nm : float, optional
            The model's prediction under ``current`` at ``theta`` when the caller has it.
        """
        pred = (float(self.model.predict_setpoints([current], context, theta)[0])
                if predicted_nm is None else predicted_nm)
        if not math.isfinite(pred) or pred <= 0 or self.within_deadband(pred):
            return None
        after, reached, pred_after = self.solve(current, context, theta, fixed=fixed)
        changes = {k: v for k, v in after.items() if not math.isclose(v, current[k],
                                                                        rel_tol=1e-9,
                                                                        abs_tol=1e-9)}
        if not changes:
            return None
        verb = "above" if pred > self.cfg.aim_nm else "below"
        reason = (f"predicted {pred:.3g} nm {verb} aim {self.cfg.aim_nm:g} nm "
                  f"(log error {math.log(pred / self.cfg.aim_nm):+.2f} > deadband "
                  f"{self.cfg.deadband_rel:g}); model inversion over "
                  f"{', '.join(self.knobs)} gives {pred_after:.3g} nm")
        if not reached:
            reason += "; knobs saturated at their limits, aim not reachable"
        return Proposal(self.loop, batch_id, f"{self.loop}/{batch_id}{suffix}",
                        {k: float(current[k]) for k in changes}, changes, pred, pred_after,
                        self.cfg.aim_nm, reached, reason)

    def solve(self, current: Mapping[str, float], context: Any, theta: Theta, *,
              fixed: Sequence[str] = ()) -> tuple[dict[str, float], bool, float]:
        """Setpoints meeting the aim (knob by knob); also whether reached and the prediction."""
        ranges = {k: self.allowed(k, current, context) for k in self.knobs}
        sp = dict(current)
        for knob in self.knobs:
            name = self.model.knobs[knob]
            lo, hi = ranges[knob]
            if knob in fixed:
                continue
            sp[name] = min(max(float(self.recipe.get(name, current[name])), lo), hi)
        pred = math.nan
        for knob in self.knobs:
            if knob in fixed:
                continue
            # The search walks from the running setpoint (where the answer usually is), the
            # other knobs at their recipe values: the answer is the same from any start.
            name = self.model.knobs[knob]
            lo, hi = ranges[knob]
            start = min(max(float(current[name]), lo), hi)
            value, pred, reached = self._solve_knob(sp, knob, ranges[knob], context, theta,
                                                    start=start)
            sp[name] = value
            if reached:
                return sp, True, pred
        if math.isnan(pred):  # every knob fixed
            pred = float(self.model.predict_setpoints([sp], context, theta)[0])
        return sp, self.within_deadband(pred), pred

    def allowed(self, knob: str, current: Mapping[str, float], context: Any
                ) -> tuple[float, float]:
        """Range a knob may take for the next batch: equipment limits ∩ move limit."""
        lo, hi = self.model.knob_limits(knob, context)
        cur = float(current[self.model.knobs[knob]])
        step = self.cfg.move_max_frac * (hi - lo)
        return max(lo, cur - step), min(hi, cur + step)

    def _solve_knob(self, sp: dict[str, float], knob: str, bounds: tuple[float, float],
                    context: Any, theta: Theta, *,
                    start: float | None = None) -> tuple[float, float, bool]:
        """Value of one knob that puts the prediction on aim (or the nearest bound); the
        search starts at ``start`` (default: the knob's value in ``sp``)."""
        name = self.model.knobs[knob]

        def log_pred(xs: np.ndarray) -> np.ndarray:
            cands = [{**sp, name: float(x)} for x in xs]
            return _safe_log(self.model.predict_setpoints(cands, context, theta))

        step = RESOLUTION.get(name, 0.0)
        x, _, reached = invert_1d(log_pred, bounds, math.log(self.cfg.aim_nm),
                                  start=float(sp[name]) if start is None else start,
                                  tol_x=0.25 * step, final=False)
        x = quantise(x, step, bounds)
        pred = float(self.model.predict_setpoints([{**sp, name: x}], context, theta)[0])
        return x, pred, reached


def quantise(x: float, step: float, bounds: tuple[float, float]) -> float:
    """``x`` on the setpoint grid ``step`` (0: unchanged), kept inside ``bounds``."""
    lo, hi = bounds
    if step > 0:
        x = round(x / step) * step
        if x < lo - 1e-12:
            x += step
        if x > hi + 1e-12:
            x -= step
    return float(min(max(x, lo), hi))


def invert_1d(log_pred: Callable[[np.ndarray], np.ndarray], bounds: tuple[float, float],
              target_log: float, *, start: float | None = None, tol_x: float = 0.0,
              final: bool = True) -> tuple[float, float, bool]:
    """Solve ``log_pred(x) = target_log`` for x in ``bounds`` (a monotone prediction).

    Starts at ``start`` (default: mid-range), takes secant steps until the target is
    bracketed, then narrows the bracket by the Illinois variant of regula falsi until it is
    ``tol_x`` wide (or the prediction is within 1e-4 of the target in log); a step beyond a
    bound is tried at the bound, and a bound that does not bracket the target is the answer
    (saturated). ``log_pred`` gets one point at a time. The answer is interpolated linearly
    in log thickness between the bracket's ends (``final``: and evaluated there once more).

    Returns
    -------
    tuple
        ``(x, predicted_nm_at_x, reached)``; ``reached`` is False when no x in ``bounds``
        meets the target (x is then the bound closest to it).
    """
    lo, hi = float(bounds[0]), float(bounds[1])
    span = hi - lo
    tol = tol_x if tol_x > 0 else 1e-6 * max(span, 1e-12)
    seen: list[tuple[float, float]] = []

    def f(x: float) -> float:
        y = float(log_pred(np.array([x]))[0])
        seen.append((x, y))
        return y

    if span <= 0:
        y = f(lo)
        return lo, float(np.exp(y)), abs(y - target_log) <= 1e-9
    x0 = min(max(lo + 0.5 * span if start is None else float(start), lo), hi)
    f(x0)
    # Secant steps toward the target (the first with a small probe) until it is bracketed.
    h = max(4.0 * tol, 0.02 * span)
    x1 = x0 + h if x0 + h <= hi else x0 - h
    f(x1)
    bracket = _bracketing(seen, target_log)
    for _ in range(MAX_EVALUATIONS):
        if bracket is not None:
            break
        (xa, ya), (xb, yb) = seen[-2], seen[-1]
        if abs(yb - target_log) <= 1e-4:  # on target (the bracket test may miss by a hair)
            return xb, float(np.exp(yb)), True
        if not (np.isfinite(ya) and np.isfinite(yb)) or ya == yb:
            # No usable slope (nothing grows, or the same prediction): try the far bound.
            far = hi if abs(hi - xb) >= abs(lo - xb) else lo
            x_new = far if all(x != far for x, _ in seen) else None
        else:
            x_new = xb + (target_log - yb) * (xb - xa) / (yb - ya)
            # Never more than the whole range per step, and at least the probe.
            x_new = xb + float(np.clip(x_new - xb, -span, span))
            if abs(x_new - xb) < h:
                x_new = xb + np.copysign(h, x_new - xb)
            x_new = min(max(x_new, lo), hi)
            near = [x for x, _ in seen if abs(x_new - x) <= 0.25 * tol]
            if near and near[0] in (lo, hi):
                x_new = None  # pinned at a bound already tried: saturated
            elif near:
                # The root lies within the tolerance of a point already tried: one tolerance
                # past it, toward the target, brackets it.
                y_near = next(y for x, y in seen if x == near[0])
                slope = (yb - ya) / (xb - xa)
                x_new = min(max(near[0] + math.copysign(tol, (target_log - y_near) * slope),
                                lo), hi)
                if any(abs(x_new - x) <= 0.25 * tol for x, _ in seen):
                    x_new = None  # that is a bound already tried: saturated
        if x_new is None:
            break
        f(x_new)
        bracket = _bracketing(seen, target_log)
    if bracket is None:
        finite = [(x, y) for x, y in seen if np.isfinite(y)] or seen
        x, y = min(finite, key=lambda p: abs(p[1] - target_log))
        for bound in (lo, hi):
            if x != bound and abs(x - bound) <= tol:
                x, y = bound, f(bound)  # saturated: the bound itself, not a point beside it
        return float(x), float(np.exp(y)), False
    (xa, ya), (xb, yb) = bracket
    side = 0
    for _ in range(MAX_EVALUATIONS):
        if abs(xb - xa) <= tol:
            break
        if not (np.isfinite(ya) and np.isfinite(yb)):
            x_new = 0.5 * (xa + xb)
        else:
            x_new = xa + (target_log - ya) * (xb - xa) / (yb - ya)
            if not min(xa, xb) < x_new < max(xa, xb):
                x_new = 0.5 * (xa + xb)
        y_new = f(x_new)
        if abs(y_new - target_log) <= 1e-4:
            xa, ya, xb, yb = x_new, y_new, x_new, y_new
            break
        if (y_new - target_log) * (ya - target_log) > 0:
            xa, ya = x_new, y_new
            if side == -1:  # Illinois: halve the end that stayed, so it cannot stall
                yb = target_log + 0.5 * (yb - target_log)
            side = -1
        else:
            xb, yb = x_new, y_new
            if side == 1:
                ya = target_log + 0.5 * (ya - target_log)
            side = 1
    if xa == xb or not (np.isfinite(ya) and np.isfinite(yb)) or ya == yb:
        x = xa if abs(ya - target_log) <= abs(yb - target_log) else xb
    else:
        x = xa + (target_log - ya) * (xb - xa) / (yb - ya)
    x = float(min(max(x, lo), hi))
    y = _nearest_log(seen, x) if not final else f(x)
    return x, float(np.exp(y)), True


def _bracketing(seen: list[tuple[float, float]], target: float
                ) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The closest pair of evaluated points on either side of the target, or None."""
    below = [(x, y) for x, y in seen if y <= target]
    above = [(x, y) for x, y in seen if y >= target]
    if not below or not above:
        return None
    best = min(((a, b) for a in below for b in above), key=lambda ab: abs(ab[0][0] - ab[1][0]))
    return best


def _nearest_log(seen: list[tuple[float, float]], x: float) -> float:
    """Log prediction at ``x`` interpolated between the evaluated points around it."""
    pts = sorted(p for p in seen if np.isfinite(p[1]))
    if not pts:
        return -math.inf
    xs = np.array([p[0] for p in pts])
    ys = np.array([p[1] for p in pts])
    return float(np.interp(x, xs, ys))


def _safe_log(pred: np.ndarray) -> np.ndarray:
    pred = np.asarray(pred, dtype=float)
    return np.where(pred > 0, np.log(np.maximum(pred, 1e-300)), -np.inf)


class PlainEwmaController:
    """Baseline R2R: EWMA of measured log thickness, fixed log-linear model in hold time.

    Model ``log x = a + b * log(hold_min + hold_ref_min)``; ``b`` is fixed (from a one-off
    recipe study), ``a`` is the EWMA offset learnt from each lab result; the hold time for the
    next batch inverts the model for the aim inside the hold-time limits.

    Parameters
    ----------
    cfg : ControlConfig
        Aim and ``ewma_lambda``.
    gain : float
        ``b``, d log(thickness) / d log(hold time + hold_ref_min).
    hold_limits_min : tuple of float
        Hold-time limits, min.
    hold_ref_min : float
        Offset that accounts for the oxide grown during ramp and cool, min.
    """

    def __init__(self, cfg: ControlConfig, gain: float, hold_limits_min: tuple[float, float],
                 hold_ref_min: float = 30.0) -> None:
        if gain <= 0:
            raise ValueError(f"gain must be > 0, got {gain}")
        self.cfg = cfg
        self.gain = gain
        self.limits = hold_limits_min
        self.hold_ref_min = hold_ref_min
        self.offset: float | None = None

    def predict_nm(self, hold_min: float) -> float:
        """The baseline's own prediction for a hold time, nm (NaN before any lab result)."""
        if self.offset is None:
            return math.nan
        return math.exp(self.offset + self.gain * math.log(hold_min + self.hold_ref_min))

    def update(self, hold_min: float, measured_nm: float) -> None:
        """EWMA update of the offset with one lab result (in arrival order)."""
        if not (measured_nm > 0 and math.isfinite(measured_nm)):
            return
        obs = math.log(measured_nm) - self.gain * math.log(hold_min + self.hold_ref_min)
        lam = self.cfg.ewma_lambda
        self.offset = obs if self.offset is None else lam * obs + (1 - lam) * self.offset

    def next_hold_min(self, current_min: float) -> float:
        """Hold time for the next batch, min (unchanged inside the deadband)."""
        if self.offset is None:
            return current_min
        pred = self.predict_nm(current_min)
        if abs(math.log(pred / self.cfg.aim_nm)) <= self.cfg.deadband_rel:
            return current_min
        x = math.exp((math.log(self.cfg.aim_nm) - self.offset) / self.gain) - self.hold_ref_min
        lo, hi = self.limits
        return float(min(max(x, lo), hi))
