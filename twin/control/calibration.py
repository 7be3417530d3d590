"""Per-tool learning from the lab: a double-EWMA on the tool's log rate factor.

Each lab result of a batch is turned into an observed log rate factor ``theta_obs``: the value
of ``theta`` (every rate constant times ``exp(theta)``) for which the twin's model, fed the
process values the batch actually saw, reproduces the measured thickness. The estimate is a
level ``a`` and a drift ``d`` (per hour of process time) updated in batch-time order:

.. math::

    p = a + d\\,\\Delta t, \\quad e = \\theta_{obs} - p, \\quad
    a \\leftarrow p + \\lambda e, \\quad d \\leftarrow d + \\mu e / \\Delta t

with ``lambda`` = ``ewma_lambda`` and ``mu`` = ``drift_lambda`` (the stability condition of this
loop is checked when the configuration is loaded, :mod:`twin.control.stability`). The first
results use the running mean (gain ``max(lambda, 1/n)``) so that a new tool learns quickly,
and the drift is only estimated from the third result on.

Late, out-of-order and missing results
    Results are kept by batch and the estimate is *replayed* in batch-time order whenever one
    arrives, so a late result lands where it belongs. The replay is incremental: the state
    after each result is kept as a checkpoint, so only the results from the insertion point
    on are replayed (an in-order result costs one step; a late one, the steps after it), with
    the same estimate and outcomes as replaying the whole history. A result that never
    arrives just leaves a longer gap: the predictive variance grows with the time since the
    last result (``RATE_WALK_VAR_PER_H``), which widens the VM interval and lowers its
    reliability.
Outliers
    A result whose standardised innovation exceeds ``outlier_sigma`` is *suspect* and not used;
    the loop asks the lab for a retest of that batch. If the retest agrees (or the next batch's
    result confirms it: same side, consistent), it is a level shift (a thermocouple replaced, a
    new tube) and the level is reset to it. Otherwise it stays rejected. A non-positive,
    non-finite or insensitive result is rejected outright. Every
    outcome carries a reason, logged in the audit trail by the control loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from twin.config.schema import ControlConfig
from twin.control.replay import ReplayedHistory

#: Variance growth of the log rate factor per hour without a lab result (estimate: a tool's
#: rate wanders by about 5 % a day).
RATE_WALK_VAR_PER_H = (0.05**2) / 24.0
#: Prior standard deviation of log thickness before any lab result (a new, unknown tool).
PRIOR_SIGMA_LOG = 0.30
#: Floor of the residual standard deviation (lab noise of a few percent).
MIN_SIGMA_LOG = 0.03
#: Weight of the newest squared innovation in the residual-variance estimate.
VAR_LAMBDA = 0.15
#: Smallest sensitivity d log(thickness) / d theta for which a result informs theta.
MIN_SENSITIVITY = 0.05
#: Shortest time step used in the drift update, h (two results closer than this are treated
#: as this far apart). A drift per hour learnt from results an hour or two apart divides the
#: lab's noise by that hour: measured on the thin-film line (1 result in 4, a few hours
#: apart), 0.5 h made the loop double the cap's spread (log sd 0.034 uncontrolled, 0.083
#: controlled); a day keeps the drift a drift (bench/control.py --thin-film).
MIN_DT_H = 24.0


@dataclass(frozen=True)
class LabObservation:
    """One lab result, turned into the tool's rate-factor scale.

    Attributes
    ----------
    batch_id : str
        Batch measured.
    batch_time_s : float
        Process time of the batch (end of its step), s; orders the replay.
    measured_nm : float
        Lab thickness, nm.
    predicted_nm : float
        Model prediction for the batch at ``theta_ref``, nm.
    theta_ref : float
        Log rate factor used for ``predicted_nm``.
    sensitivity : float
        d log(thickness) / d theta at ``theta_ref`` (1 in the linear regime, 1/2 parabolic).
    theta_obs : float
        Log rate factor that reproduces ``measured_nm``.
    received_s : float
        Process time the result arrived, s.
    """

    batch_id: str
    batch_time_s: float
    measured_nm: float
    predicted_nm: float
    theta_ref: float
    sensitivity: float
    theta_obs: float
    received_s: float = 0.0
    confirmations: int = 1


#: Two measurements of one batch agree when their log thicknesses differ by less than this
#: (a few lab standard deviations).
RETEST_AGREE_LOG = 0.15


@dataclass(frozen=True)
class Outcome:
    """What the calibration did with one result: ``used``, ``suspect``, ``rejected`` or
    ``reinstated`` (a suspect confirmed as a level shift), with the reason."""

    batch_id: str
    status: str
    reason: str
    innovation_sigma: float = 0.0


@dataclass(frozen=True)
class CalState:
    """Estimate after the results up to ``time_s``.

    Attributes
    ----------
    level : float
        Log rate factor at ``time_s``.
    drift_per_h : float
        Drift of the log rate factor, 1/h.
    time_s : float
        Batch time of the last used result, s (``nan`` before any).
    n_used : int
        Results used so far.
    resid_var : float
        Variance of a one-step-ahead log-thickness prediction error.
    """

    level: float = 0.0
    drift_per_h: float = 0.0
    time_s: float = math.nan
    n_used: int = 0
    resid_var: float = PRIOR_SIGMA_LOG**2


class ToolCalibration(ReplayedHistory[LabObservation, LabObservation, CalState,
                                      LabObservation, Outcome]):
    """Learnt log rate factor of one tool, from its lab results (see module docstring).

    Parameters
    ----------
    cfg : ControlConfig
        ``ewma_lambda``, ``drift_lambda`` and ``outlier_sigma`` are used.
    """

    def __init__(self, cfg: ControlConfig) -> None:
        super().__init__(CalState())
        self.cfg = cfg

    # -- queries -----------------------------------------------------------------------
    def theta_at(self, t_s: float) -> float:
        """Predicted log rate factor at process time ``t_s`` (level plus drift)."""
        s = self.state
        if s.n_used == 0:
            return s.level
        return s.level + s.drift_per_h * max(0.0, t_s - s.time_s) / 3600.0

    def sigma_log_at(self, t_s: float, sensitivity: float = 1.0) -> float:
        """Standard deviation of a log-thickness prediction at ``t_s``.

        The residual scale seen in past results plus the rate-factor wander since the last
        one (scaled by the thickness sensitivity to the rate factor).
        """
        s = self.state
        gap_h = 0.0 if s.n_used == 0 else max(0.0, t_s - s.time_s) / 3600.0
        var = s.resid_var + (sensitivity**2) * RATE_WALK_VAR_PER_H * gap_h
        return math.sqrt(var)

    @property
    def n_used(self) -> int:
        """Lab results used by the estimate."""
        return self.state.n_used

    # -- the replay hooks (the bookkeeping is ReplayedHistory's) --------------------------
    def _invalid(self, obs: LabObservation) -> str:
        return _invalid(obs)

    def _rejected(self, obs: LabObservation, reason: str) -> Outcome:
        return Outcome(obs.batch_id, "rejected", reason)

    def _key(self, kept: LabObservation) -> tuple[float, str]:
        return (kept.batch_time_s, kept.batch_id)

    def _merge_retest(self, obs: LabObservation) -> LabObservation:
        """A re-measurement of a batch: averaged with the first when they agree (then it
        confirms it), else it replaces it (the first was a lab error)."""
        old = self._obs.get(obs.batch_id)
        if old is None:
            return obs
        if abs(math.log(obs.measured_nm / old.measured_nm)) > RETEST_AGREE_LOG:
            return obs
        n = old.confirmations + 1
        return replace(obs, measured_nm=math.exp((math.log(old.measured_nm) * old.confirmations
                                                  + math.log(obs.measured_nm)) / n),
                       theta_obs=(old.theta_obs * old.confirmations + obs.theta_obs) / n,
                       confirmations=n)

    def _step(self, s: CalState, obs: LabObservation, suspect: LabObservation | None
              ) -> tuple[CalState, dict[str, Outcome], LabObservation | None]:
        h = obs.sensitivity
        dt_h = 0.0 if s.n_used == 0 else max(0.0, obs.batch_time_s - s.time_s) / 3600.0
        pred = s.level + s.drift_per_h * dt_h
        e = obs.theta_obs - pred
        sd = math.sqrt(s.resid_var + h * h * RATE_WALK_VAR_PER_H * dt_h)
        z = e * h / sd
        if s.n_used > 0 and abs(z) > self.cfg.outlier_sigma:
            if obs.confirmations >= 2:
                new = replace(s, level=obs.theta_obs, time_s=obs.batch_time_s,
                              n_used=s.n_used + 1,
                              resid_var=max(s.resid_var, MIN_SIGMA_LOG**2))
                why = (f"level shift confirmed by a retest of {obs.batch_id} (innovation "
                       f"{z:+.1f} sigma): log rate factor reset to {obs.theta_obs:+.3f}")
                out = {obs.batch_id: Outcome(obs.batch_id, "used", why, z)}
                if suspect is not None:
                    out[suspect.batch_id] = Outcome(suspect.batch_id, "rejected",
                                                    f"outlier: superseded by {obs.batch_id}")
                return new, out, None
            if suspect is not None and _consistent(suspect, obs, e, sd, pred):
                level = 0.5 * (suspect.theta_obs + obs.theta_obs)
                new = replace(s, level=level, time_s=obs.batch_time_s, n_used=s.n_used + 2,
                              resid_var=max(s.resid_var, ((obs.theta_obs - suspect.theta_obs)
                                                          * h) ** 2, MIN_SIGMA_LOG**2))
                why = (f"level shift confirmed by batches {suspect.batch_id} and "
                       f"{obs.batch_id}: log rate factor reset to {level:+.3f}")
                return new, {suspect.batch_id: Outcome(suspect.batch_id, "reinstated", why, z),
                             obs.batch_id: Outcome(obs.batch_id, "used", why, z)}, None
            out = {obs.batch_id: Outcome(
                obs.batch_id, "suspect",
                f"innovation {z:+.1f} sigma beyond {self.cfg.outlier_sigma:g} sigma "
                f"(measured {obs.measured_nm:.3g} nm vs predicted {obs.predicted_nm:.3g} nm); "
                "not used unless a retest or the next result confirms a level shift; "
                "retest requested", z)}
            if suspect is not None:
                out[suspect.batch_id] = Outcome(
                    suspect.batch_id, "rejected",
                    f"outlier: not confirmed by the next result ({obs.batch_id})")
            return s, out, obs
        out = {}
        if suspect is not None:
            out[suspect.batch_id] = Outcome(
                suspect.batch_id, "rejected",
                f"outlier: the next result ({obs.batch_id}) agrees with the model")
        n = s.n_used + 1
        lam = max(self.cfg.ewma_lambda, 1.0 / n)
        mu = self.cfg.drift_lambda if n >= 3 else 0.0
        drift = s.drift_per_h + (mu * e / max(dt_h, MIN_DT_H) if s.n_used else 0.0)
        w = VAR_LAMBDA if s.n_used else 1.0 / 3.0
        resid = max((1 - w) * s.resid_var + w * (e * h) ** 2, MIN_SIGMA_LOG**2)
        new = CalState(level=pred + lam * e, drift_per_h=drift, time_s=obs.batch_time_s,
                       n_used=n, resid_var=resid)
        out[obs.batch_id] = Outcome(obs.batch_id, "used",
                                    f"innovation {z:+.1f} sigma; log rate factor "
                                    f"{pred:+.3f} -> {new.level:+.3f}", z)
        return new, out, None


def _invalid(obs: LabObservation) -> str:
    if not (math.isfinite(obs.measured_nm) and obs.measured_nm > 0):
        return f"rejected: measured thickness {obs.measured_nm!r} nm is not a positive number"
    if not (math.isfinite(obs.theta_obs) and math.isfinite(obs.predicted_nm)):
        return "rejected: the model cannot reproduce this result (no finite rate factor)"
    if obs.sensitivity < MIN_SENSITIVITY:
        return (f"rejected: thickness insensitive to the rate (d log x / d theta = "
                f"{obs.sensitivity:.2g}); the result says nothing about the tool")
    return ""


def _consistent(a: LabObservation, b: LabObservation, e_b: float, sd: float,
                pred: float) -> bool:
    """Two out-of-gate results on the same side and agreeing with each other."""
    e_a = a.theta_obs - pred
    same_side = e_a * e_b > 0
    close = abs(a.theta_obs - b.theta_obs) * b.sensitivity <= 3.0 * max(sd, MIN_SIGMA_LOG) + \
        0.5 * abs(e_b * b.sensitivity)
    return same_side and close
