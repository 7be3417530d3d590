"""Run-to-run controller: invert the twin's model to put the next batch on aim.

Before a batch (and during its step) the controller predicts the batch's mean oxide under the
current setpoints at the tool's learnt log rate factor (level plus drift: the double-EWMA
offset of :mod:`twin.control.calibration`). When ``|log(prediction / aim)|`` exceeds the
deadband it inverts the model for the aim, one knob at a time in ``knob_order`` (by default
hold time, then temperature, then O2): each knob moves inside its equipment limits and at
most ``move_max_frac`` of its range from the current setpoint; the next knob is only used when
the previous one is saturated. Knobs start from the recipe (the controller never wanders away
from the recipe once a disturbance is gone), clipped into their allowed move. The ramp and
cool rates are not knobs; they are kept inside the furnace's ramp limits.

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
from twin.control.model import FurnaceModel, SputterCapModel

# One vectorised physics call costs about the same for 1 or 33 candidates, so the inversion
# evaluates one dense grid per knob and interpolates (no second pass by default).
GRID_POINTS = 33  # candidates per knob
REFINE_POINTS = 9  # candidates between the bracketing pair in an optional second pass
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
                theta: float, *, suffix: str = "",
                fixed: Sequence[str] = ()) -> Proposal | None:
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
        """
        pred = float(self.model.predict_setpoints([current], context, theta)[0])
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

    def solve(self, current: Mapping[str, float], context: Any, theta: float, *,
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
        pred = float(self.model.predict_setpoints([sp], context, theta)[0])
        for knob in self.knobs:
            if knob in fixed:
                continue
            value, pred, reached = self._solve_knob(sp, knob, ranges[knob], context, theta)
            sp[self.model.knobs[knob]] = value
            if reached:
                return sp, True, pred
        return sp, self.within_deadband(pred), pred

    def allowed(self, knob: str, current: Mapping[str, float], context: Any
                ) -> tuple[float, float]:
        """Range a knob may take for the next batch: equipment limits ∩ move limit."""
        lo, hi = self.model.knob_limits(knob, context)
        cur = float(current[self.model.knobs[knob]])
        step = self.cfg.move_max_frac * (hi - lo)
        return max(lo, cur - step), min(hi, cur + step)

    def _solve_knob(self, sp: dict[str, float], knob: str, bounds: tuple[float, float],
                    context: Any, theta: float) -> tuple[float, float, bool]:
        """Value of one knob that puts the prediction on aim (or the nearest bound)."""
        name = self.model.knobs[knob]

        def log_pred(xs: np.ndarray) -> np.ndarray:
            cands = [{**sp, name: float(x)} for x in xs]
            return _safe_log(self.model.predict_setpoints(cands, context, theta))

        x, _, reached = invert_1d(log_pred, bounds, math.log(self.cfg.aim_nm), final=False)
        x = quantise(x, RESOLUTION.get(name, 0.0), bounds)
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
              target_log: float, *, final: bool = True,
              refine: int = 0) -> tuple[float, float, bool]:
    """Solve ``log_pred(x) = target_log`` for x in ``bounds`` on a grid, then refine.

    The prediction is evaluated for a whole grid at once (vectorised physics), ``refine``
    times more between the bracketing candidates; the answer is interpolated linearly in log
    thickness between the bracketing pair (``final``: and evaluated there once more). Without
    a bracket, the candidate closest to the target is returned.

    Returns
    -------
    tuple
        ``(x, predicted_nm_at_x, reached)``.
    """
    lo, hi = bounds
    xs = np.linspace(lo, hi, GRID_POINTS) if hi > lo else np.array([lo])
    ys = log_pred(xs)
    for _ in range(refine):
        i = _bracket(ys, target_log)
        if i is None:
            break
        xs = np.linspace(xs[i], xs[i + 1], REFINE_POINTS)
        ys = log_pred(xs)
    i = _bracket(ys, target_log)
    if i is None:
        best = int(np.nanargmin(np.abs(ys - target_log)))
        return float(xs[best]), float(np.exp(ys[best])), False
    j = i
    k = min(j + 1, xs.size - 1)
    x0, x1, y0, y1 = xs[j], xs[k], ys[j], ys[k]
    x = x0 if y1 == y0 else x0 + (target_log - y0) * (x1 - x0) / (y1 - y0)
    x = float(min(max(x, lo), hi))
    y = float(log_pred(np.array([x]))[0]) if final else y0 + (x - x0) * (
        (y1 - y0) / (x1 - x0) if x1 != x0 else 0.0)
    return x, float(np.exp(y)), True


def _safe_log(pred: np.ndarray) -> np.ndarray:
    pred = np.asarray(pred, dtype=float)
    return np.where(pred > 0, np.log(np.maximum(pred, 1e-300)), -np.inf)


def _bracket(ys: np.ndarray, target: float) -> int | None:
    """Index i with the target between ys[i] and ys[i+1] (either direction), or None."""
    d = ys - target
    for i in range(ys.size - 1):
        if d[i] == 0 or d[i] * d[i + 1] <= 0:
            return i
    return None


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
