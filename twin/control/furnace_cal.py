"""A furnace's calibration: the charge model's three parameters, learnt by a Kalman filter.

The furnace loop learns ``theta = (log_rate, offset_c, log_lag)`` (:mod:`twin.control.charge`)
from the lab with :class:`twin.control.kalman.KalmanCalibration`, its priors and random walks
from the plant file's ``[stations.oxidizer.charge]``. This module gives it the small interface
the VM and the loop use (the same names as the one-parameter
:class:`twin.control.calibration.ToolCalibration` of the sputter loop), plus the lab method's
own spread in log thickness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from twin.config.schema import ChargeModel, ControlConfig, LabConfig
from twin.control.calibration import Outcome
from twin.control.charge import PARAMS
from twin.control.kalman import Identifiability, KalmanCalibration, KalmanObservation
from twin.physics import composition

#: Steps of the numerical Jacobian: log rate, offset (K), log lag, log utilisation.
JACOBIAN_STEPS = (0.05, 2.0, 0.1, 0.05)


@dataclass(frozen=True)
class FurnaceState:
    """What the audit trail shows of the estimate."""

    level: float          # log rate factor
    offset_c: float
    log_lag: float
    log_supply: float = 0.0
    drift_per_h: float = 0.0


def lab_sd_log(lab: LabConfig | None, form: str = "powder") -> float:
    """The lab method's own sd of ln(thickness) (its stated repeatability, no sampling)."""
    if lab is None:
        return 0.03
    method = lab.method if lab.method != "auto" else ("o_bet" if form == "powder" else "xps")
    if method == "o_bet":
        return float(composition.thickness_sigma_rel_o_bet(lab.oxygen_rsd, lab.bet_rsd))
    return math.hypot(lab.noise_rel, lab.noise_abs_nm / 10.0)


class FurnaceCalibration:
    """Kalman calibration of a furnace's charge model (see the module notes).

    Parameters
    ----------
    cfg : ControlConfig
        ``outlier_sigma``.
    charge : ChargeModel
        Priors and random walks of the three parameters.
    lab : LabConfig, optional
        The lab's method and repeatability (the filter's measurement noise).
    """

    def __init__(self, cfg: ControlConfig, charge: ChargeModel,
                 lab: LabConfig | None = None,
                 start: Sequence[float] = (0.0, 0.0, 0.0, 0.0)) -> None:
        self.cfg = cfg
        self.charge = charge
        full = (tuple(float(v) for v in start) + (0.0,) * len(PARAMS))[:len(PARAMS)]
        self.filter = KalmanCalibration(
            PARAMS, full,
            (charge.rate_prior_sd_log, charge.offset_prior_sd_c, charge.lag_prior_sd_log,
             charge.supply_prior_sd_log),
            (charge.rate_walk_log_per_sqrt_h, charge.offset_walk_c_per_sqrt_h, 0.0,
             charge.supply_walk_log_per_sqrt_h),
            cfg=cfg)
        self.lab_sd_log = lab_sd_log(lab)

    def restart(self, start: Sequence[float]) -> None:
        """Forget every result and start again from the parameters ``start`` (with the
        configured prior spread): a tool whose calibration comes from elsewhere (its own
        record of an earlier run)."""
        sd = self.lab_sd_log
        self.__init__(self.cfg, self.charge, None, start)  # type: ignore[misc]
        self.lab_sd_log = sd

    # -- queries (the ToolCalibration names) ------------------------------------------------
    def theta_at(self, t_s: float) -> tuple[float, ...]:
        """The parameters at process time ``t_s``."""
        return tuple(float(v) for v in self.filter.mean_at(t_s))

    def sigma_log_at(self, t_s: float, jacobian: Sequence[float] | float = 1.0) -> float:
        """Standard deviation of a prediction of ln(mean thickness) with sensitivities
        ``jacobian`` (a float: the log rate's alone)."""
        jac = ((jacobian,) + (0.0,) * (len(PARAMS) - 1) if isinstance(jacobian, (int, float))
               else jacobian)
        return self.filter.sigma_log_at(t_s, jac)

    @property
    def n_used(self) -> int:
        """Lab results the estimate has used."""
        return self.filter.n_used

    @property
    def outcomes(self) -> dict[str, Outcome]:
        """What became of every result, by batch."""
        return self.filter.outcomes

    @property
    def state(self) -> FurnaceState:
        """The estimate after the last used result."""
        m = self.filter.state.mean
        return FurnaceState(float(m[0]), float(m[1]), float(m[2]), float(m[3]))

    def identifiability(self) -> Identifiability:
        """Which parameters the results so far can tell apart."""
        return self.filter.identifiability()

    def describe(self) -> dict[str, float | str]:
        """The estimate as audit columns (units in the names)."""
        s = self.state
        return {"log_rate_factor": s.level, "bed_offset_c": s.offset_c,
                "bed_lag_factor": math.exp(s.log_lag),
                "gas_utilisation_factor": math.exp(s.log_supply),
                "identifiability": self.identifiability().message}

    # -- learning --------------------------------------------------------------------------
    def observe(self, batch_id: str, batch_time_s: float, measured_nm: float,
                theta_ref: Sequence[float], predicted_nm: float, jacobian: Sequence[float],
                received_s: float) -> list[Outcome]:
        """Learn from one lab result, linearised where its prediction was made."""
        obs = KalmanObservation(
            batch_id, batch_time_s, measured_nm, tuple(float(v) for v in theta_ref),
            math.log(predicted_nm) if predicted_nm > 0 else math.nan,
            tuple(float(v) for v in jacobian), self.lab_sd_log, received_s)
        return self.filter.add(obs)


def jacobian(predict_log: object, theta: Sequence[float], base_log: float) -> tuple[float, ...]:
    """d ln(mean) / d theta by forward differences (``predict_log(theta) -> float``)."""
    f = predict_log
    assert callable(f)
    out = []
    for i, step in enumerate(JACOBIAN_STEPS):
        t = np.array(theta, dtype=float)
        t[i] += step
        out.append((float(f(tuple(t))) - base_log) / step)
    return tuple(out)
