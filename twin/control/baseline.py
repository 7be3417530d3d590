"""Textbook run-to-run baselines the twin's control is judged against, on the same information.

``control.strategy`` picks the furnace loop's controller:

``twin`` (default)
    The twin: model inversion on the multi-parameter calibration, in-batch endpoint control.
``ewma``
    EWMA run-to-run control (Sachs, Hu & Ingolfsson 1995, IEEE Trans. Semicond. Manuf. 8(1)):
    ``log x = a + b log(hold)``; ``b`` fixed, ``a`` the EWMA of ``log x_lab - b log hold`` over
    lab results as they arrive; the next hold inverts the model for the aim inside the hold
    limits and the move limit, with the same deadband.
``dewma``
    Double EWMA (Butler & Stefani 1994, IEEE Trans. Semicond. Manuf. 7(2)) with the same
    outlier rule as the twin (a result more than ``outlier_sigma`` robust deviations off the
    baseline's own prediction is not learnt until a second one confirms it) and humidity
    feed-forward (the last charge's dew-point reading, through the model's water
    sensitivity).

The baselines get what the twin gets: the lab results when the lab answers (1-in-N, late),
the hold each charge ran, the furnace's reported record. Their gains ``b`` (hold) and ``c``
(water) are the twin model's local sensitivities at the recipe, computed once at the first
charge (what a process engineer's start-up DOE gives). They do not trim during the step. The
VM keeps predicting every charge (the release rules are the plant's, whatever controls it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from twin.control.loop import ControlLoop, Plan
from twin.control.r2r import RESOLUTION, Proposal, quantise
from twin.control.vm import VmPrediction
from twin.equipment.base import StepResult

#: Robust deviations (MAD * 1.4826) kept for the double EWMA's outlier rule.
_RESIDUALS = 30


class BaselineLoop(ControlLoop):
    """A furnace loop whose between-batch controller is an EWMA or a double EWMA."""

    def __init__(self, *args: Any, double: bool = False, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.double = double
        self.gain_hold: float | None = None
        self.gain_water = 0.0
        self.offset: float | None = None
        self.drift = 0.0
        self.last_water_rel = 0.0  # log(dew-point reading / set) of the last charge
        self._ran: dict[str, tuple[float, float]] = {}  # batch: (hold run, water term)
        self._set_water: dict[str, float] = {}  # batch: the water it was set to, atm
        self._residuals: list[float] = []
        self._suspect: float | None = None

    def supervisor(self, plan: Plan, context: Any, start_s: float) -> None:
        """No in-batch control: the baselines act between batches only."""
        return None

    def _gains(self, sp: Mapping[str, float], context: Any) -> None:
        theta = self.calibration.theta_at(0.0)
        h, w = float(sp["hold_min"]), max(float(sp.get("ph2o_atm", 0.0)), 1e-6)
        cands = [dict(sp), {**sp, "hold_min": 1.1 * h}, {**sp, "ph2o_atm": 1.1 * w}]
        y = np.log(np.maximum(self.model.predict_setpoints(cands, context, theta), 1e-9))
        self.gain_hold = max(float((y[1] - y[0]) / math.log(1.1)), 0.05)
        self.gain_water = float((y[2] - y[0]) / math.log(1.1)) if sp.get("ph2o_atm") else 0.0

    def before_batch(self, batch_id: str, setpoints: Mapping[str, float], context: Any,
                     t_s: float) -> Plan:
        sp = {**setpoints, **self.running} if self.mode != "off" else dict(setpoints)
        if self.gain_hold is None:
            self._gains(setpoints, context)
        assert self.gain_hold is not None
        ff = self.gain_water * self.last_water_rel if self.double else 0.0
        self._ran[batch_id] = (float(sp["hold_min"]), ff)
        self._set_water[batch_id] = float(sp.get("ph2o_atm", 0.0))
        if self.mode == "off" or self.offset is None:
            return Plan(batch_id, sp, None, "none", math.nan)
        level = self.offset + (self.drift if self.double else 0.0)
        pred = math.exp(level + self.gain_hold * math.log(sp["hold_min"]) + ff)
        if abs(math.log(pred / self.cfg.aim_nm)) <= self.cfg.deadband_rel:
            return Plan(batch_id, sp, None, "none", pred)
        lo, hi = self.controller.allowed("hold_time", sp, context)
        hold = math.exp((math.log(self.cfg.aim_nm) - level - ff) / self.gain_hold)
        hold = quantise(min(max(hold, lo), hi), RESOLUTION["hold_min"], (lo, hi))
        if math.isclose(hold, sp["hold_min"]):
            return Plan(batch_id, sp, None, "none", pred)
        after = math.exp(level + self.gain_hold * math.log(hold) + ff)
        name = "double EWMA" if self.double else "EWMA"
        prop = Proposal(self.path, batch_id, f"{self.path}/{batch_id}",
                        {"hold_min": sp["hold_min"]}, {"hold_min": hold}, pred, after,
                        self.cfg.aim_nm, lo < hold < hi,
                        f"{name}: {pred:.3g} nm predicted vs aim {self.cfg.aim_nm:g} nm")
        self._ran[batch_id] = (hold, ff)
        if self.mode == "closed_loop":
            self._write(prop, t_s, who="controller", why=prop.reason)
            return Plan(batch_id, prop.apply(sp), prop, "written", pred)
        self._audit("proposal", prop, t_s, result="open", who="controller", reason=prop.reason)
        return Plan(batch_id, sp, prop, "open", pred)

    def after_step(self, result: StepResult, context: Any) -> VmPrediction:
        read = result.values.get("ph2o_atm_mean", math.nan)
        # The dew point's reading against the water the charge was set to (feed-forward for
        # the next charge: the humidifier's level persists over hours).
        set_w = self._set_water.pop(result.batch_id, math.nan)
        if read > 0 and set_w > 0 and result.status == "ok":
            self.last_water_rel = math.log(read / set_w)
        return super().after_step(result, context)

    def on_lab(self, batch_id: str, measured_nm: float, t_s: float) -> list[Any]:
        out = super().on_lab(batch_id, measured_nm, t_s)  # the VM keeps learning
        pend = self._pending.get(batch_id)
        ran = self._ran.pop(batch_id, None)
        if ran is None or not (measured_nm > 0) or (pend is not None and pend.problems):
            return out
        assert self.gain_hold is not None
        hold, ff = ran
        obs = math.log(measured_nm) - self.gain_hold * math.log(hold) - ff
        if self.offset is None:
            self.offset = obs
            return out
        if self.double:
            resid = obs - (self.offset + self.drift)
            if len(self._residuals) >= 5:
                scale = 1.4826 * float(np.median(np.abs(self._residuals))) or 1e-3
                if abs(resid) > self.cfg.outlier_sigma * scale and (
                        self._suspect is None or abs(resid - self._suspect) > 2 * scale):
                    self._suspect = resid  # not learnt until a second result confirms it
                    return out
            self._suspect = None
            self._residuals = [*self._residuals, resid][-_RESIDUALS:]
            lam, mu = self.cfg.ewma_lambda, self.cfg.drift_lambda
            prev = self.offset
            self.offset = lam * obs + (1 - lam) * (self.offset + self.drift)
            self.drift = mu * (obs - prev) + (1 - mu) * self.drift
        else:
            lam = self.cfg.ewma_lambda
            self.offset = lam * obs + (1 - lam) * self.offset
        return out
