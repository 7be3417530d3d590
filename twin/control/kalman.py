"""Per-tool learning of several model parameters from the lab: an extended Kalman filter.

:class:`KalmanCalibration` learns a vector ``theta`` of up to four parameters of a tool's
model (for example the log rate factor ``log_rate``, the charge's effective temperature offset
``offset_c`` in K and the log of its thermal lag time constant ``log_lag``) from the lab's
thickness results, and says which of them the results can tell apart
(:meth:`KalmanCalibration.identifiability`).

Measurement model
    The caller linearises the twin's model for each measured batch at the filter's then-current
    estimate ``theta_ref`` (:class:`KalmanObservation`): ``predicted_log`` = ln(predicted nm)
    and ``jacobian`` ``J`` = d ln(predicted nm) / d theta there. Then

    .. math::

        \\ln x_{meas} = \\text{predicted\\_log} + J (\\theta - \\theta_{ref}) + v, \\quad
        v \\sim N(0, \\sigma_{lab}^2 / c + r)

    with ``sigma_lab`` the lab method's own sd of ln(measured), ``c`` the number of agreeing
    measurements averaged into the value and ``r`` the model-residual variance (what the model
    misses batch to batch), estimated by the filter. The linearisation is kept with the result
    and reused when the history is replayed (the filter has no model to re-linearise with): a
    late result is used with the linearisation its caller made.
Process model
    Each parameter is a random walk: between two used results ``dt_h`` hours apart the
    covariance grows by ``Q dt_h`` with ``Q = diag(walk_sd**2)`` (tools drift; 0 for a
    parameter that does not wander). The mean has no drift term. Before the first result the
    state is the prior (``prior_mean``, ``diag(prior_sd**2)``).
Update
    Standard Kalman gain, Joseph-form covariance update ``(I - K J) P (I - K J)' + K R K'``,
    symmetrised; a non-positive variance (round-off only) is repaired by clipping the
    eigenvalues, so ``P`` stays positive definite.
Model-residual variance ``r`` (adaptive R)
    Covariance matching (Mehra 1972; the Sage-Husa form): a result's innovation ``e`` has
    ``E[e**2] = J P J' + sigma_lab**2 / c + r``, so ``e**2 - J P J' - sigma_lab**2 / c`` is an
    unbiased sample of ``r``, of variance ``2 S**2`` (``S`` the innovation variance).
    ``r`` is an exponentially forgotten (``RESID_LAMBDA`` per result) weighted mean of these
    samples with weights ``1 / S**2``: a result made while the parameters are still uncertain
    (``S`` dominated by ``J P J'``) says little about ``r`` and barely moves it. The prior
    ``resid_sd_prior**2`` counts as ``RESID_PRIOR_SAMPLES`` samples. The filter uses
    ``max(mean, RESID_VAR_FLOOR)`` (the mean itself is kept unfloored: flooring the recursion
    would bias ``r`` upward when the model is right) so that a run of small innovations cannot
    make it over-confident. Outliers are gated before they reach it. Measured on synthetic
    runs (40 seeds x 400 results, see the tests): 90 % intervals of new lab values cover 90.0 %
    when the model misses by 2-8 % per batch, 91 % when the model is exact (the variance
    estimate cannot go below 0, so it sits slightly above it).
Late, out-of-order and repeated results
    Kept by :class:`twin.control.replay.ReplayedHistory`: by batch, replayed in batch-time
    order from the insertion point, with a checkpoint after every step (an in-order result
    costs one step; the final state equals a replay from scratch). A re-measurement of a
    batch agreeing with the kept value (within ``RETEST_AGREE_LOG``) is averaged in
    (``confirmations`` + 1, lab variance / ``confirmations``); a disagreeing one replaces it.
Outliers and level shifts
    A result whose standardised innovation ``z = e / sqrt(J P J' + sigma_lab**2 / c + r)``
    exceeds ``outlier_sigma`` is *suspect*: not used, a retest is requested. It becomes a
    level shift (a thermocouple replaced, a new tube) when a retest confirms it
    (``confirmations >= 2``) or when the next result is out of the gate on the same side and
    consistent with it (within the gate of the state refitted to the suspect). The reset adds
    the prior covariance to ``P`` ("the tool may have moved by up to its prior spread in any
    parameter": it keeps the correlations learnt so far, and no guess is needed about which
    parameter moved) and updates with the confirming result(s), so that the model matches them;
    ``r`` is kept (the shift is explained by the parameters, not by the residual). Otherwise
    the suspect is *rejected*. Invalid results are rejected outright. Every outcome carries a
    one-line reason for the audit trail.
Identifiability
    Per parameter, the ratio of posterior to prior sd: *learnt* below ``LEARNT_RATIO``. A
    parameter not learnt cannot be told apart from the parameters whose posterior correlation
    with it reaches ``CONFOUND_CORR`` in magnitude (its group); the group's joint effect is
    learnt when the smallest principal sd of the group's covariance, in prior-sd units, is
    below ``LEARNT_RATIO``. A parameter not learnt with no such partner but determined by a
    combination of the others (multiple correlation ``sqrt(1 - 1 / (P_ii (P^-1)_ii))`` at least
    ``CONFOUND_CORR``) is reported as such; otherwise simply as not learnt (the results do not
    depend on it enough).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from twin.config.schema import ControlConfig
from twin.control.calibration import RETEST_AGREE_LOG, Outcome
from twin.control.replay import ReplayedHistory

__all__ = [
    "CONFOUND_CORR",
    "LEARNT_RATIO",
    "RESID_LAMBDA",
    "RESID_VAR_FLOOR",
    "Identifiability",
    "KalmanCalibration",
    "KalmanObservation",
    "KalmanState",
]

#: Largest number of parameters (the filter uses plain dense numpy; beyond 4 nothing is gained
#: from this lab signal anyway: one number per batch).
MAX_PARAMS = 4
#: Forgetting rate of the model-residual variance estimate per result (about 50 results of
#: memory: the relative sd of the estimated innovation variance is then about 14 %, which
#: costs about 0.2 % of coverage of a 90 % interval).
RESID_LAMBDA = 0.02
#: The prior of the model-residual variance counts as this many samples (of innovation
#: variance twice the prior), so that the first few results cannot swing it to the floor.
RESID_PRIOR_SAMPLES = 5.0
#: Floor of the model-residual variance, (ln units)^2: 0.5 % model error. Small against a lab
#: sd of a few percent, so the intervals are not widened when the model is right.
RESID_VAR_FLOOR = 0.005**2
#: A parameter whose posterior sd is below this share of its prior sd is *learnt*.
LEARNT_RATIO = 0.5
#: Posterior correlation (in magnitude) from which two parameters cannot be told apart.
CONFOUND_CORR = 0.9
#: A result informs a parameter when a one-prior-sd change of it moves ln(thickness) by more
#: than this (0.1 %); a result informing none is rejected (it says nothing about the tool).
MIN_EFFECT_LOG = 1e-3


@dataclass(frozen=True)
class KalmanObservation:
    """One lab result with the model's local linearisation at ``theta_ref``.

    Attributes
    ----------
    batch_id : str
        Batch measured.
    batch_time_s : float
        Process time of the batch (end of its step), s; orders the replay.
    measured_nm : float
        Lab thickness, nm.
    theta_ref : tuple of float
        Parameters the prediction was made at (units of each parameter).
    predicted_log : float
        ln(predicted thickness / nm) at ``theta_ref``.
    jacobian : tuple of float
        d ln(predicted thickness) / d theta_i at ``theta_ref`` (1 / unit of parameter i).
    lab_sd_log : float
        The lab method's own sd of ln(measured) (dimensionless), known from the method.
    received_s : float
        Process time the result arrived, s.
    confirmations : int
        Agreeing measurements averaged into ``measured_nm``.
    """

    batch_id: str
    batch_time_s: float
    measured_nm: float
    theta_ref: tuple[float, ...]
    predicted_log: float
    jacobian: tuple[float, ...]
    lab_sd_log: float
    received_s: float = 0.0
    confirmations: int = 1


@dataclass(frozen=True, eq=False)
class KalmanState:
    """Estimate after the results up to ``time_s`` (arrays are read-only).

    Attributes
    ----------
    mean : numpy.ndarray
        Parameter estimate, shape (k,).
    cov : numpy.ndarray
        Its covariance at ``time_s``, shape (k, k).
    time_s : float
        Batch time of the last used result, s (``nan`` before any).
    n_used : int
        Results used so far.
    resid_var : float
        Model-residual variance ``r`` of ln(thickness) used by the filter (floored).
    resid_ewma : float
        The weighted EWMA of the covariance-matching samples before the floor (it may be below
        it: flooring the recursion itself would bias ``r`` upward when the model is right).
    resid_weight : float
        Sum of the (forgotten) weights of those samples, 1 / (ln units)^4.
    """

    mean: np.ndarray
    cov: np.ndarray
    time_s: float = math.nan
    n_used: int = 0
    resid_var: float = 0.05**2
    resid_ewma: float = 0.05**2
    resid_weight: float = 0.0


@dataclass(frozen=True, eq=False)
class Identifiability:
    """What the lab results can tell apart.

    Attributes
    ----------
    names : tuple of str
        Parameter names.
    sd_ratio : tuple of float
        Posterior sd / prior sd per parameter.
    learnt : tuple of bool
        ``sd_ratio < LEARNT_RATIO`` per parameter.
    corr : numpy.ndarray
        Posterior correlation matrix, shape (k, k).
    n_used : int
        Results used.
    message : str
        One line: what is learnt, what cannot be told apart.
    """

    names: tuple[str, ...]
    sd_ratio: tuple[float, ...]
    learnt: tuple[bool, ...]
    corr: np.ndarray
    n_used: int
    message: str

    @property
    def all_learnt(self) -> bool:
        """Every parameter learnt."""
        return all(self.learnt)


@dataclass(frozen=True)
class _Prep:
    """A kept result in the filter's terms: innovation ``y0 - J @ mean``, lab variance."""

    obs: KalmanObservation
    jac: np.ndarray
    y0: float
    lab_var: float


#: A pending suspect result and its standardised innovation.
_Suspect = tuple[_Prep, float]


def _ro(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class KalmanCalibration(ReplayedHistory[KalmanObservation, _Prep, KalmanState, _Suspect,
                                         Outcome]):
    """Learnt model parameters of one tool from its lab results (see module docstring).

    Parameters
    ----------
    names : sequence of str
        Parameter names, 1 to 4, unique (e.g. ``("log_rate", "offset_c", "log_lag")``).
    prior_mean : sequence of float
        Prior mean per parameter (its units).
    prior_sd : sequence of float
        Prior sd per parameter, > 0 (its units).
    walk_sd_per_sqrt_h : sequence of float
        Random-walk sd per sqrt(hour) per parameter, >= 0 (its units / sqrt(h)).
    outlier_sigma : float, optional
        Gate on the standardised innovation; default ``cfg.outlier_sigma`` or 4.
    resid_sd_prior : float
        Prior of the model-residual sd of ln(thickness).
    cfg : ControlConfig, optional
        Source of ``outlier_sigma`` when it is not given.
    """

    def __init__(self, names: Sequence[str], prior_mean: Sequence[float],
                 prior_sd: Sequence[float], walk_sd_per_sqrt_h: Sequence[float], *,
                 outlier_sigma: float | None = None, resid_sd_prior: float = 0.05,
                 cfg: ControlConfig | None = None) -> None:
        self.names = tuple(names)
        k = len(self.names)
        if not 1 <= k <= MAX_PARAMS:
            raise ValueError(f"KalmanCalibration: {k} parameters given, 1 to {MAX_PARAMS} "
                             "supported")
        if len(set(self.names)) != k or not all(isinstance(n, str) and n for n in self.names):
            raise ValueError(f"KalmanCalibration: parameter names {self.names!r} must be "
                             "unique non-empty strings")
        arrays = []
        for label, vals in (("prior_mean", prior_mean), ("prior_sd", prior_sd),
                            ("walk_sd_per_sqrt_h", walk_sd_per_sqrt_h)):
            a = np.array(vals, dtype=np.float64)
            if a.shape != (k,):
                raise ValueError(f"KalmanCalibration: {label} has {a.size} values, "
                                 f"expected {k} (one per parameter {self.names})")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"KalmanCalibration: {label} {list(vals)} is not finite")
            arrays.append(_ro(a))
        self.prior_mean, self.prior_sd, self.walk_sd = arrays
        if np.any(self.prior_sd <= 0):
            raise ValueError(f"KalmanCalibration: prior_sd {self.prior_sd.tolist()} must be > 0")
        if np.any(self.walk_sd < 0):
            raise ValueError(f"KalmanCalibration: walk_sd_per_sqrt_h "
                             f"{self.walk_sd.tolist()} must be >= 0")
        if outlier_sigma is None:
            outlier_sigma = cfg.outlier_sigma if cfg is not None else 4.0
        elif cfg is not None and outlier_sigma != cfg.outlier_sigma:
            raise ValueError(f"KalmanCalibration: outlier_sigma {outlier_sigma} contradicts "
                             f"cfg.outlier_sigma {cfg.outlier_sigma}; give one")
        if not (math.isfinite(outlier_sigma) and outlier_sigma > 0):
            raise ValueError(f"KalmanCalibration: outlier_sigma {outlier_sigma} must be > 0")
        if not (math.isfinite(resid_sd_prior) and resid_sd_prior > 0):
            raise ValueError(f"KalmanCalibration: resid_sd_prior {resid_sd_prior} must be > 0")
        self.outlier_sigma = float(outlier_sigma)
        self.k = k
        self._prior_var = _ro(self.prior_sd**2)
        self._q = _ro(np.diag(self.walk_sd**2))  # covariance growth per hour
        self._has_q = bool(np.any(self.walk_sd > 0))
        self._eye = _ro(np.eye(k))
        super().__init__(KalmanState(mean=self.prior_mean, cov=_ro(np.diag(self._prior_var)),
                                     resid_var=max(resid_sd_prior**2, RESID_VAR_FLOOR),
                                     resid_ewma=resid_sd_prior**2,
                                     resid_weight=RESID_PRIOR_SAMPLES
                                     / (2.0 * resid_sd_prior**2) ** 2))

    # -- queries -------------------------------------------------------------------------
    @property
    def n_used(self) -> int:
        """Lab results used by the estimate."""
        return self.state.n_used

    def mean_at(self, t_s: float) -> np.ndarray:
        """Parameter estimate at process time ``t_s``.

        Parameters
        ----------
        t_s : float
            Process time, s. Random walks have no drift, so this is the last estimate (also
            for a time before the last result: the filter does not smooth).

        Returns
        -------
        numpy.ndarray
            A copy of the mean, shape (k,), in each parameter's units.
        """
        return self.state.mean.copy()

    def cov_at(self, t_s: float) -> np.ndarray:
        """Parameter covariance at ``t_s``.

        Parameters
        ----------
        t_s : float
            Process time, s.

        Returns
        -------
        numpy.ndarray
            Shape (k, k): the covariance after the last used result grown by ``Q`` times the
            hours since it (never shrunk for an earlier ``t_s``); the prior before any result.
        """
        return np.array(self._grown(self.state, t_s))  # a writable copy

    def predict_log(self, t_s: float, theta_ref: Sequence[float], predicted_log: float,
                    jacobian: Sequence[float]) -> float:
        """ln(thickness / nm) of a batch at the current estimate, from the model's
        linearisation at ``theta_ref``: ``predicted_log + J (mean - theta_ref)``.

        Parameters
        ----------
        t_s : float
            Process time of the batch, s.
        theta_ref : sequence of float
            Parameters the model was run at.
        predicted_log : float
            ln(predicted thickness / nm) at ``theta_ref``.
        jacobian : sequence of float
            d ln(thickness) / d theta_i at ``theta_ref`` (1 / unit of parameter i).
        """
        j = np.asarray(jacobian, dtype=np.float64)
        return float(predicted_log + j @ (self.state.mean - np.asarray(theta_ref, np.float64)))

    def sigma_log_at(self, t_s: float, jacobian: Sequence[float]) -> float:
        """Sd of the predicted ln(thickness) of a batch: the uncertainty of its true mean
        thickness, without the lab's noise.

        Parameters
        ----------
        t_s : float
            Process time of the batch, s (``P`` is grown to it).
        jacobian : sequence of float
            d ln(thickness) / d theta_i of the batch (1 / unit of parameter i).

        Returns
        -------
        float
            ``sqrt(J P(t) J' + r)``, ln units (dimensionless).
        """
        j = np.asarray(jacobian, dtype=np.float64)
        return math.sqrt(float(j @ self.cov_at(t_s) @ j) + self.state.resid_var)

    def sigma_log_lab_at(self, t_s: float, jacobian: Sequence[float], lab_sd_log: float) -> float:
        """Sd of a lab value's predicted ln(thickness): :meth:`sigma_log_at` with the lab
        method's variance added, ``sqrt(J P(t) J' + r + lab_sd_log**2)`` (ln units).

        Parameters
        ----------
        t_s : float
            Process time of the batch, s.
        jacobian : sequence of float
            d ln(thickness) / d theta_i of the batch (1 / unit of parameter i).
        lab_sd_log : float
            The lab method's sd of ln(measured).
        """
        return math.hypot(self.sigma_log_at(t_s, jacobian), lab_sd_log)

    def identifiability(self, t_s: float | None = None) -> Identifiability:
        """Which parameters the results used so far have learnt and which they cannot tell
        apart (rule in the module docstring).

        Parameters
        ----------
        t_s : float, optional
            Process time, s: the covariance is grown to it first (a long silence unlearns
            wandering parameters). Default: at the last used result.
        """
        p = self.state.cov if t_s is None else self.cov_at(t_s)
        sd = np.sqrt(np.diag(p))
        ratio = sd / self.prior_sd
        corr = _ro(p / np.outer(sd, sd))
        learnt = ratio < LEARNT_RATIO
        n, k, names = self.n_used, self.k, self.names
        parts: list[str] = []
        if n == 0:
            parts.append("no lab result used yet: nothing learnt (prior only)")
        elif learnt.all():
            parts.append(f"{names[0]} learnt from these {n} results" if k == 1 else
                         f"all {k} parameters learnt from these {n} results")
        else:
            # Multiple correlation of each parameter with all the others: 1 - 1/(P_ii P^-1_ii).
            scaled = p / np.outer(self.prior_sd, self.prior_sd)
            mult = (np.sqrt(np.clip(1.0 - 1.0 / (np.diag(p) * np.diag(np.linalg.inv(p))),
                                    0.0, 1.0)) if k > 1 else np.zeros(1))
            done: set[int] = set()
            for i in range(k):
                if learnt[i] or i in done:
                    continue
                group = [m for m in range(k)
                         if m == i or (m not in done and abs(corr[i, m]) >= CONFOUND_CORR)]
                if len(group) > 1:
                    # The group's best-learnt combination, in prior-sd units.
                    block = scaled[np.ix_(group, group)]
                    joint = math.sqrt(max(float(np.linalg.eigvalsh(block)[0]), 0.0))
                    what = ("their joint effect is learnt" if joint < LEARNT_RATIO else
                            "neither is learnt" if len(group) == 2 else "none is learnt")
                    who = [names[m] for m in group]
                    if len(group) == 2:
                        how = f"posterior correlation {corr[group[0], group[1]]:+.2f}"
                    else:
                        top = max(abs(corr[a, b]) for a in group for b in group if a < b)
                        how = f"posterior correlations up to {top:.2f} in magnitude"
                    parts.append(f"{', '.join(who[:-1])} and {who[-1]} cannot be told apart "
                                 f"from these {n} results ({how}); {what}")
                    done.update(group)
                elif mult[i] >= CONFOUND_CORR:
                    others = ", ".join(names[m] for m in range(k) if m != i)
                    parts.append(f"{names[i]} cannot be told apart from a combination of "
                                 f"{others} (multiple correlation {mult[i]:.2f}, "
                                 f"{n} results)")
                    done.add(i)
                else:
                    parts.append(f"{names[i]} not learnt (posterior sd {ratio[i]:.2f} of its "
                                 f"prior after {n} results)")
                    done.add(i)
            rest = [names[m] for m in range(k) if learnt[m] and m not in done]
            if rest:
                parts.append(f"{', '.join(rest)} learnt")
        return Identifiability(names, tuple(float(x) for x in ratio),
                               tuple(bool(x) for x in learnt), corr, n, "; ".join(parts))

    # -- the replay hooks (the bookkeeping is ReplayedHistory's) ----------------------------
    def _rejected(self, obs: KalmanObservation, reason: str) -> Outcome:
        return Outcome(obs.batch_id, "rejected", reason)

    def _key(self, kept: _Prep) -> tuple[float, str]:
        return (kept.obs.batch_time_s, kept.obs.batch_id)

    def _invalid(self, obs: KalmanObservation) -> str:
        if not (math.isfinite(obs.measured_nm) and obs.measured_nm > 0):
            return f"rejected: measured thickness {obs.measured_nm!r} nm is not a positive number"
        if not math.isfinite(obs.batch_time_s):
            return f"rejected: batch time {obs.batch_time_s!r} s is not finite"
        if len(obs.jacobian) != self.k or len(obs.theta_ref) != self.k:
            return (f"rejected: linearisation has {len(obs.theta_ref)} reference values and "
                    f"{len(obs.jacobian)} derivatives, the calibration has {self.k} "
                    f"parameters {self.names}")
        if not (math.isfinite(obs.predicted_log) and all(map(math.isfinite, obs.jacobian))
                and all(map(math.isfinite, obs.theta_ref))):
            return "rejected: the model's linearisation is not finite (no usable prediction)"
        if not (math.isfinite(obs.lab_sd_log) and obs.lab_sd_log >= 0):
            return f"rejected: lab sd {obs.lab_sd_log!r} (ln units) is not a number >= 0"
        if obs.confirmations < 1:
            return f"rejected: {obs.confirmations} confirmations (at least 1 measurement)"
        effect = max(abs(j) * s for j, s in zip(obs.jacobian, self.prior_sd.tolist(), strict=True))
        if effect <= MIN_EFFECT_LOG:
            return ("rejected: thickness insensitive to every parameter (all-zero Jacobian); "
                    "the result says nothing about the tool")
        return ""

    def _prep(self, obs: KalmanObservation) -> _Prep:
        jac = _ro(np.array(obs.jacobian, dtype=np.float64))
        y0 = math.log(obs.measured_nm) - obs.predicted_log + float(jac @ np.array(obs.theta_ref))
        return _Prep(obs, jac, y0, obs.lab_sd_log**2 / obs.confirmations)

    def _merge_retest(self, obs: KalmanObservation) -> _Prep:
        """A re-measurement of a batch: averaged (in ln) with the kept value when they agree
        (then it confirms it), else it replaces it (the first was a lab error). The newer
        linearisation is kept: it was made at a more recent estimate."""
        old = self._obs.get(obs.batch_id)
        if old is None:
            return self._prep(obs)
        o = old.obs
        if abs(math.log(obs.measured_nm / o.measured_nm)) > RETEST_AGREE_LOG:
            return self._prep(obs)
        n = o.confirmations + obs.confirmations
        ln = (math.log(o.measured_nm) * o.confirmations
              + math.log(obs.measured_nm) * obs.confirmations) / n
        return self._prep(replace(obs, measured_nm=math.exp(ln), confirmations=n))

    # -- the filter step -----------------------------------------------------------------
    def _grown(self, s: KalmanState, t_s: float) -> np.ndarray:
        """``s.cov`` grown by the random walk from ``s.time_s`` to ``t_s`` (never shrunk)."""
        if s.n_used == 0 or not self._has_q or t_s <= s.time_s:
            return s.cov
        return s.cov + self._q * ((t_s - s.time_s) / 3600.0)

    def _update(self, mean: np.ndarray, cov: np.ndarray, p: _Prep, r: float,
                pj: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Kalman update with one result (Joseph form, symmetrised, kept positive definite);
        ``pj`` is ``cov @ J`` when the caller has it."""
        j = p.jac
        if pj is None:
            pj = cov @ j
        rr = p.lab_var + r
        gain = pj / (float(j @ pj) + rr)
        m = mean + gain * (p.y0 - float(j @ mean))
        g = gain[:, None]  # column: broadcasting is cheaper than np.outer for k <= 4
        a = self._eye - g * j
        c = a @ cov @ a.T + rr * (g * gain)
        c = 0.5 * (c + c.T)
        if not c.diagonal().min() > 0:  # round-off only: clip the eigenvalues
            w, v = np.linalg.eigh(c)
            c = (v * np.maximum(w, 1e-12 * float(np.max(np.abs(w))) + 1e-300)) @ v.T
        return _ro(m), _ro(c)

    def _shift(self, s: KalmanState, preps: Sequence[_Prep]) -> KalmanState:
        """Level shift: add the prior covariance, then update with the confirming results."""
        m, c = s.mean, self._grown(s, preps[0].obs.batch_time_s) + np.diag(self._prior_var)
        t = preps[0].obs.batch_time_s
        for p in preps:
            if self._has_q and p.obs.batch_time_s > t:
                c = c + self._q * ((p.obs.batch_time_s - t) / 3600.0)
                t = p.obs.batch_time_s
            m, c = self._update(m, c, p, s.resid_var)
        return replace(s, mean=m, cov=c, time_s=t, n_used=s.n_used + len(preps))

    def _values(self, m: np.ndarray) -> str:
        return ", ".join(f"{n} {x:+.4g}" for n, x in zip(self.names, m.tolist(), strict=True))

    def _changes(self, a: np.ndarray, b: np.ndarray) -> str:
        return ", ".join(f"{n} {x:+.4g} -> {y:+.4g}"
                         for n, x, y in zip(self.names, a.tolist(), b.tolist(), strict=True))

    def _step(self, s: KalmanState, p: _Prep, suspect: _Suspect | None
              ) -> tuple[KalmanState, dict[str, Outcome], _Suspect | None]:
        """One result in batch-time order: used, suspect, or a level shift with the pending
        suspect (the result just before, not used); resolves that suspect in every case."""
        o = p.obs
        cov = self._grown(s, o.batch_time_s)
        j = p.jac
        pj = cov @ j
        jpj = float(j @ pj)
        e = p.y0 - float(j @ s.mean)
        ss = jpj + p.lab_var + s.resid_var  # innovation variance
        z = e / math.sqrt(ss)
        bid = o.batch_id
        if s.n_used > 0 and abs(z) > self.outlier_sigma:
            out: dict[str, Outcome] = {}
            if o.confirmations >= 2:
                new = self._shift(s, [p])
                why = (f"level shift confirmed by a retest of {bid} (innovation {z:+.1f} "
                       f"sigma): covariance widened by the prior and refitted; "
                       f"{self._changes(s.mean, new.mean)}")
                out[bid] = Outcome(bid, "used", why, z)
                if suspect is not None:
                    sid = suspect[0].obs.batch_id
                    out[sid] = Outcome(sid, "rejected", f"outlier: superseded by {bid}",
                                       suspect[1])
                return new, out, None
            if suspect is not None:
                sp, sz = suspect
                sid = sp.obs.batch_id
                shifted = self._confirms(s, sp, p, e)
                if shifted is not None:
                    why = (f"level shift confirmed by batches {sid} and {bid}: covariance "
                           f"widened by the prior and refitted; "
                           f"{self._changes(s.mean, shifted.mean)}")
                    return shifted, {sid: Outcome(sid, "reinstated", why, sz),
                                     bid: Outcome(bid, "used", why, z)}, None
                out[sid] = Outcome(sid, "rejected",
                                   f"outlier: not confirmed by the next result ({bid})", sz)
            pred = o.measured_nm * math.exp(-e)  # at the current estimate
            out[bid] = Outcome(
                bid, "suspect",
                f"innovation {z:+.1f} sigma beyond {self.outlier_sigma:g} sigma (measured "
                f"{o.measured_nm:.3g} nm vs predicted {pred:.3g} nm); not used unless a retest "
                "or the next result confirms a level shift; retest requested", z)
            return s, out, (p, z)
        out = {}
        if suspect is not None:
            sid = suspect[0].obs.batch_id
            out[sid] = Outcome(sid, "rejected",
                               f"outlier: the next result ({bid}) agrees with the model",
                               suspect[1])
        m, c = self._update(s.mean, cov, p, s.resid_var, pj)
        # Covariance matching: e^2 - J P J' - lab var is an unbiased sample of r, of variance
        # 2 S^2: weighted by 1 / S^2, so that early results (S dominated by the prior's J P J')
        # barely move it; old weights are forgotten at the rate RESID_LAMBDA.
        omega = 1.0 / (ss * ss)
        weight = (1.0 - RESID_LAMBDA) * s.resid_weight + omega
        ewma = ((1.0 - RESID_LAMBDA) * s.resid_weight * s.resid_ewma
                + omega * (e * e - jpj - p.lab_var)) / weight
        new = KalmanState(m, c, o.batch_time_s, s.n_used + 1, max(ewma, RESID_VAR_FLOOR), ewma,
                          weight)
        out[bid] = Outcome(bid, "used", f"innovation {z:+.1f} sigma; now {self._values(m)}", z)
        return new, out, None

    def _confirms(self, s: KalmanState, a: _Prep, b: _Prep, e_b: float) -> KalmanState | None:
        """The level-shift state when out-of-gate results ``a`` then ``b`` are on the same side
        and ``b`` is within the gate of the state refitted to ``a``; else ``None``."""
        e_a = a.y0 - float(a.jac @ s.mean)
        if e_a * e_b <= 0:
            return None
        fit_a = self._shift(s, [a])
        cov = self._grown(fit_a, b.obs.batch_time_s)
        var = float(b.jac @ cov @ b.jac) + b.lab_var + s.resid_var
        if abs(b.y0 - float(b.jac @ fit_a.mean)) > self.outlier_sigma * math.sqrt(var):
            return None
        return self._shift(s, [a, b])
