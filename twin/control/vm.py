"""Virtual metrology: each batch's oxide from the process values it actually saw.

For a furnace charge the prediction runs the twin's oxidation physics over the *reported*
profile (indicated temperatures and gas) at the tool's learnt rate factor; for a sputter run,
the cap model over the read-back values. It returns the area-weighted mean, p5/p50/p95 and the
uniformity (share within ±50 % of the mean), a prediction interval on the mean, a reliability
score and the model version.

Interval
    Log-normal: ``mean * exp(±z * sigma)`` with ``sigma`` from the calibration's residual scale
    and the time since the last lab result (:meth:`ToolCalibration.sigma_log_at`), ``z`` for
    the configured ``interval_level``.
Reliability (0–1)
    0 when the record cannot be trusted (the step aborted, a hole in the record longer than
    ``max_gap_s``, an input outside the model's range); otherwise the product of a learning
    term (lab results used / ``min_lab_results``) and a precision term
    ``1 / (1 + (sigma / SIGMA_REF)^2)``.
Hold rule
    A batch whose prediction is not reliable (score below ``min_reliability`` or any hard
    reason) is held for the lab: :func:`release_basis` never returns ``vm`` for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from statistics import NormalDist
from typing import Any

from twin import __version__
from twin.config.schema import ControlConfig
from twin.control.calibration import ToolCalibration
from twin.control.furnace_cal import FurnaceCalibration, jacobian
from twin.control.model import FurnaceModel, OxidationContext, SputterCapModel
from twin.equipment.base import StepResult
from twin.physics.oxidation_profile import Profile

#: Model version recorded with every prediction (bump when the VM's method changes).
VM_VERSION = "vm-2"
#: Log-thickness standard deviation at which the precision term of reliability is 1/2.
SIGMA_REF = 0.15
#: Step in theta for the numerical sensitivity d log(thickness) / d theta.
D_THETA = 0.1


@dataclass(frozen=True)
class VmPrediction:
    """Virtual-metrology prediction of one batch.

    Attributes
    ----------
    batch_id, loop : str
        Batch and tool path.
    time_s : float
        Process time of the batch (end of its step), s.
    mean_nm, p5_nm, p50_nm, p95_nm : float
        Predicted area-weighted mean and percentiles of the oxide, nm.
    within_50pct_share : float
        Predicted share of surface within ±50 % of the mean.
    lower_nm, upper_nm : float
        Prediction interval on the batch's true mean at ``interval_level``, nm.
    lab_lower_nm, lab_upper_nm : float
        Prediction interval of what the lab will report for it (the interval on the mean
        widened by the lab method's stated repeatability), nm.
    sigma_log : float
        Standard deviation of log(mean) behind the interval.
    reliability : float
        Score in [0, 1].
    reliable : bool
        The prediction may release the batch on its own.
    reasons : tuple of str
        Why it is not reliable (empty when it is).
    theta : float
        Log rate factor used.
    sensitivity : float
        d log(mean) / d theta assumed for the interval (1, the linear regime; the exact value
        is computed by :meth:`VirtualMetrology.theta_for` when a lab result arrives).
    n_lab : int
        Lab results the calibration had used.
    model_version : str
        VM method, package version and thin-oxide model.
    fully_oxidised_share : float
        Predicted volume share of particles oxidised through.
    params : tuple of float
        The whole parameter vector used (furnace: log rate, bed offset K, log lag).
    jacobian : tuple of float
        d ln(mean) / d params at ``params`` (the calibration learns with it).
    """

    batch_id: str
    loop: str
    time_s: float
    mean_nm: float
    p5_nm: float
    p50_nm: float
    p95_nm: float
    within_50pct_share: float
    lower_nm: float
    upper_nm: float
    sigma_log: float
    reliability: float
    reliable: bool
    reasons: tuple[str, ...]
    theta: float
    sensitivity: float
    n_lab: int
    model_version: str
    fully_oxidised_share: float = math.nan
    params: tuple[float, ...] = ()
    jacobian: tuple[float, ...] = ()
    lab_lower_nm: float = math.nan
    lab_upper_nm: float = math.nan

    def in_window(self, window_nm: tuple[float, float]) -> bool:
        """Whether the predicted mean lies in the target window."""
        return window_nm[0] <= self.mean_nm <= window_nm[1]

    def as_columns(self, prefix: str = "vm_") -> dict[str, Any]:
        """Flat columns for the batches table (units in the names)."""
        # The fields one by one (asdict deep-copies every value; these are plain values).
        out = {f"{prefix}{k}": getattr(self, k) for k in _COLUMN_FIELDS}
        out[f"{prefix}reasons"] = "; ".join(self.reasons)
        if len(self.params) >= 4:
            out[f"{prefix}bed_offset_c"] = self.params[1]
            out[f"{prefix}bed_lag_factor"] = math.exp(self.params[2])
            out[f"{prefix}gas_utilisation_factor"] = math.exp(self.params[3])
        return out


#: VmPrediction fields written as batch columns (all but the batch and loop names).
_COLUMN_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(VmPrediction)
                                        if f.name not in ("batch_id", "loop", "params",
                                                          "jacobian"))


class VirtualMetrology:
    """VM predictor of one tool.

    Parameters
    ----------
    loop : str
        Tool path (``line1.oxidizer1``).
    model : FurnaceModel or SputterCapModel
        The twin's model of the tool.
    calibration : ToolCalibration
        The tool's learnt rate factor.
    cfg : ControlConfig
        ``interval_level``, ``min_reliability``, ``min_lab_results``, ``max_gap_s``.
    """

    def __init__(self, loop: str, model: FurnaceModel | SputterCapModel,
                 calibration: ToolCalibration | FurnaceCalibration,
                 cfg: ControlConfig) -> None:
        self.loop = loop
        self.model = model
        self.calibration = calibration
        self.cfg = cfg
        self._z = NormalDist().inv_cdf(0.5 + cfg.interval_level / 2.0)

    def version(self, context: Any = None) -> str:
        """Model version string recorded with each prediction."""
        thin = ""
        if isinstance(context, OxidationContext):
            thin = "/" + str(context.growth.get("thin_model", "suprem"))
        return _version(self.model.kind, thin)

    # -- prediction --------------------------------------------------------------------
    def predict(self, result: StepResult, context: Any, *,
                problems: list[str] | None = None) -> VmPrediction:
        """Predict the batch of ``result`` from the process values it reports.

        ``problems``: :meth:`record_problems` of ``result`` when the caller has them.
        """
        theta = self.calibration.theta_at(result.end_s)
        hard = self.record_problems(result, context) if problems is None else list(problems)
        stats, sens = self._stats(result, context, theta)
        jac: tuple[float, ...] = ()
        if isinstance(self.calibration, FurnaceCalibration) and stats["mean_nm"] > 0:
            # The prediction's sensitivities to every learnt parameter: the interval and,
            # when the lab answers, the calibration's linearisation.
            base = math.log(stats["mean_nm"])
            params = (theta,) if isinstance(theta, (int, float)) else tuple(theta)
            jac = jacobian(lambda th: self._log_mean(result, context, th), params, base)
        return self._finish(result, context, theta, stats, jac or sens, hard)

    def _log_mean(self, result: StepResult, context: Any, theta: Any) -> float:
        m = self._stats(result, context, theta)[0]["mean_nm"]
        return math.log(m) if m > 0 else -50.0

    def record_problems(self, result: StepResult, context: Any) -> list[str]:
        """Hard reasons not to trust a record: status, data gaps, out-of-range inputs."""
        out = []
        if result.status == "aborted":
            out.append(f"bad status: step aborted ({result.fault or 'no reason given'})")
        gap = max((b - a for a, b in result.gaps), default=0.0)
        if gap > self.cfg.max_gap_s:
            out.append(f"data gap: {gap:.0f} s hole in the process record "
                       f"(> {self.cfg.max_gap_s:g} s tolerated)")
        elif result.status == "gap" and not result.gaps:
            out.append("data gap: the tool reports holes in the record but not where")
        if isinstance(self.model, FurnaceModel):
            if not isinstance(result.actual, Profile):
                out.append("no process-value record for the step")
            elif isinstance(context, OxidationContext):
                out.extend(self.model.input_problems(result.actual, context))
        else:
            out.extend(self.model.input_problems(result.values))
        return out

    def _stats(self, result: StepResult, context: Any,
               theta: Any) -> tuple[dict[str, float], float]:
        if isinstance(self.model, FurnaceModel):
            if not isinstance(result.actual, Profile) or not isinstance(context,
                                                                        OxidationContext):
                return _nan_stats(), 1.0
            d = self.model.predict_one(result.actual, context, theta,
                                       flow_slm=result.values.get("gas_flow_slm_mean"))
            stats = {"mean_nm": d.mean_nm, "p5_nm": d.p5_nm, "p50_nm": d.p50_nm,
                     "p95_nm": d.p95_nm, "within_50pct_share": d.within_50pct_share,
                     "fully_oxidised_share": d.fully_oxidised_share}
            # The sensitivity to the rate factor is only needed when a lab result comes
            # (theta_for); here the linear-regime value 1 scales the rate-walk variance.
            return stats, 1.0
        try:
            cap = self.model.cap_nm(result.values, theta)
        except (KeyError, ValueError):
            return _nan_stats(), 1.0
        # A sputtered cap is uniform (rotation: < 0.3 % over 50 mm): percentiles = mean.
        return ({"mean_nm": cap, "p5_nm": cap, "p50_nm": cap, "p95_nm": cap,
                 "within_50pct_share": 1.0, "fully_oxidised_share": 0.0}, 1.0)

    def _finish(self, result: StepResult, context: Any, theta: Any,
                stats: Mapping[str, float], sens: Any, hard: list[str]) -> VmPrediction:
        mean = stats["mean_nm"]
        sigma = self.calibration.sigma_log_at(result.end_s, sens)
        params = tuple(theta) if not isinstance(theta, (int, float)) else (float(theta),)
        sigma_lab = math.hypot(sigma, float(getattr(self.calibration, "lab_sd_log", 0.0)))
        jac = tuple(sens) if not isinstance(sens, (int, float)) else ()
        sens = jac[0] if jac else float(sens)
        if not (math.isfinite(mean) and mean > 0):
            hard = [*hard, "the model gives no finite thickness for this record"]
            mean = math.nan
        n = self.calibration.n_used
        score = 0.0 if hard else self._score(sigma, n)
        reasons = list(hard)
        if not hard and n < self.cfg.min_lab_results:
            reasons.append(f"calibration has {n} lab result(s), {self.cfg.min_lab_results} "
                           "needed")
        if not hard and score < self.cfg.min_reliability:
            reasons.append(f"reliability {score:.2f} below {self.cfg.min_reliability:g} "
                           f"(sigma {sigma:.2f} in log thickness)")
        return VmPrediction(
            batch_id=result.batch_id, loop=self.loop, time_s=result.end_s, mean_nm=mean,
            p5_nm=stats["p5_nm"], p50_nm=stats["p50_nm"], p95_nm=stats["p95_nm"],
            within_50pct_share=stats["within_50pct_share"],
            lower_nm=mean * math.exp(-self._z * sigma), upper_nm=mean * math.exp(self._z * sigma),
            sigma_log=sigma, reliability=score, reliable=not reasons, reasons=tuple(reasons),
            theta=params[0], sensitivity=sens, n_lab=n, model_version=self.version(context),
            fully_oxidised_share=stats.get("fully_oxidised_share", math.nan), params=params,
            jacobian=jac, lab_lower_nm=mean * math.exp(-self._z * sigma_lab),
            lab_upper_nm=mean * math.exp(self._z * sigma_lab))

    def _score(self, sigma: float, n_lab: int) -> float:
        need = self.cfg.min_lab_results
        learning = 1.0 if need == 0 else min(1.0, n_lab / need)
        return learning / (1.0 + (sigma / SIGMA_REF) ** 2)

    # -- learning ----------------------------------------------------------------------
    def theta_for(self, result: StepResult, context: Any, measured_nm: float,
                  pred: VmPrediction) -> tuple[float, float]:
        """Log rate factor reproducing ``measured_nm`` for this batch, and the sensitivity.

        Secant iteration on log(mean) against theta from the prediction's theta (two model
        evaluations): the first at ``theta + D_THETA`` gives the local sensitivity
        d log(mean) / d theta, the second checks the Newton step and refines it.
        """
        if not (pred.mean_nm > 0 and measured_nm > 0):
            return math.nan, 0.0
        t0, y0 = pred.theta, math.log(pred.mean_nm)
        t1 = t0 + D_THETA
        m1 = self._stats(result, context, t1)[0]["mean_nm"]
        sens = _sensitivity(pred.mean_nm, m1) if isinstance(self.model, FurnaceModel) else 1.0
        if not (m1 > 0 and sens > 0):
            return math.nan, sens
        target = math.log(measured_nm)
        y1 = math.log(m1)
        t2 = max(-5.0, min(5.0, t0 + (target - y0) / sens))
        m2 = self._stats(result, context, t2)[0]["mean_nm"]
        if m2 > 0 and abs(t2 - t1) > 1e-9:
            y2 = math.log(m2)
            slope = (y2 - y1) / (t2 - t1)
            if slope > 0:
                t2 = max(-5.0, min(5.0, t2 + (target - y2) / slope))
        return t2, sens


@lru_cache(maxsize=16)
def _version(kind: str, thin: str) -> str:
    return f"{VM_VERSION}/anode-twin-{__version__}/{kind}{thin}"


def release_basis(pred: VmPrediction, window_nm: tuple[float, float]) -> tuple[str, str]:
    """The hold rule: on what a batch may be dispositioned.

    Returns
    -------
    tuple of str
        ``('vm', reason)`` when the prediction is reliable and its whole interval lies in the
        window (release on prediction allowed); otherwise ``('lab', reason)``: the batch is
        held for the lab and never released on the prediction alone.
    """
    if not pred.reliable:
        return "lab", "held for the lab: " + "; ".join(pred.reasons)
    lo, hi = window_nm
    if not (lo <= pred.lower_nm and pred.upper_nm <= hi):
        return "lab", (f"held for the lab: interval {pred.lower_nm:.3g}–{pred.upper_nm:.3g} nm "
                       f"not inside the window {lo:g}–{hi:g} nm")
    return "vm", (f"reliable prediction {pred.mean_nm:.3g} nm "
                  f"[{pred.lower_nm:.3g}, {pred.upper_nm:.3g}] inside the window")


def _sensitivity(mean: float, mean_hi: float) -> float:
    if mean > 0 and mean_hi > 0:
        return max(0.0, (math.log(mean_hi) - math.log(mean)) / D_THETA)
    return 0.0


def _nan_stats() -> dict[str, float]:
    nan = math.nan
    return {"mean_nm": nan, "p5_nm": nan, "p50_nm": nan, "p95_nm": nan,
            "within_50pct_share": nan}
