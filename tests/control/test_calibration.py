"""Calibration from the lab: learning, order independence, outliers, retests, missing data."""

from __future__ import annotations

import math

import numpy as np

from twin.config.schema import ControlConfig
from twin.control.calibration import RATE_WALK_VAR_PER_H, LabObservation, ToolCalibration

H = 3600.0


def obs(i: int, theta: float, *, sens: float = 0.7) -> LabObservation:
    measured = 10.0 * math.exp(sens * theta)
    return LabObservation(f"B{i}", i * 4 * H, measured, 10.0, 0.0, sens, theta)


def test_learns_a_constant_rate_factor() -> None:
    cal = ToolCalibration(ControlConfig())
    rng = np.random.default_rng(1)
    for i in range(15):
        cal.add(obs(i, math.log(0.8) + 0.03 * float(rng.standard_normal())))
    assert abs(cal.theta_at(15 * 4 * H) - math.log(0.8)) < 0.05
    assert cal.n_used == 15


def test_tracks_a_drift() -> None:
    cal = ToolCalibration(ControlConfig(ewma_lambda=0.3, drift_lambda=0.1))
    slope = 0.01  # per hour
    for i in range(40):
        cal.add(obs(i, slope * i * 4))
    predicted = cal.theta_at(40 * 4 * H)
    assert abs(predicted - slope * 160) < 0.05
    assert abs(cal.state.drift_per_h - slope) < 0.003


def test_late_and_out_of_order_results_give_the_same_estimate() -> None:
    thetas = [0.1 * math.sin(i) for i in range(12)]
    in_order = ToolCalibration(ControlConfig())
    for i, t in enumerate(thetas):
        in_order.add(obs(i, t))
    shuffled = ToolCalibration(ControlConfig())
    for i in [3, 0, 7, 1, 11, 2, 5, 4, 10, 6, 9, 8]:
        shuffled.add(obs(i, thetas[i]))
    assert math.isclose(in_order.state.level, shuffled.state.level, abs_tol=1e-12)
    assert math.isclose(in_order.state.drift_per_h, shuffled.state.drift_per_h, abs_tol=1e-12)


def test_missing_results_widen_the_uncertainty() -> None:
    cal = ToolCalibration(ControlConfig())
    for i in range(8):
        cal.add(obs(i, 0.0))
    soon = cal.sigma_log_at(8 * 4 * H)
    later = cal.sigma_log_at(8 * 4 * H + 72 * H)  # three days without a lab result
    assert later > soon
    assert math.isclose(later**2 - soon**2, RATE_WALK_VAR_PER_H * 72, rel_tol=1e-9)


def test_single_outlier_is_rejected_with_reason() -> None:
    cal = ToolCalibration(ControlConfig(outlier_sigma=4.0))
    for i in range(8):
        cal.add(obs(i, 0.0))
    level = cal.state.level
    out = cal.add(obs(8, math.log(5.0)))
    assert out[0].status == "suspect" and "sigma" in out[0].reason
    assert cal.state.level == level
    out = cal.add(obs(9, 0.0))  # the next result agrees with the model: it was an outlier
    status = {o.batch_id: o for o in out}
    assert status["B8"].status == "rejected" and "outlier" in status["B8"].reason
    assert abs(cal.state.level) < 0.05


def test_level_shift_confirmed_by_retest() -> None:
    cal = ToolCalibration(ControlConfig())
    for i in range(8):
        cal.add(obs(i, 0.0))
    shift = math.log(3.0)
    assert cal.add(obs(8, shift))[0].status == "suspect"
    again = obs(8, shift + 0.01)
    out = cal.add(again)
    assert out[0].status == "used" and "retest" in out[0].reason
    assert abs(cal.state.level - shift) < 0.02


def test_level_shift_confirmed_by_next_batch() -> None:
    cal = ToolCalibration(ControlConfig())
    for i in range(8):
        cal.add(obs(i, 0.0))
    cal.add(obs(8, 1.0))
    out = {o.batch_id: o.status for o in cal.add(obs(9, 1.02))}
    assert out == {"B8": "reinstated", "B9": "used"}
    assert abs(cal.state.level - 1.01) < 0.02


def test_invalid_results_are_rejected() -> None:
    cal = ToolCalibration(ControlConfig())
    bad = LabObservation("B0", 0.0, -1.0, 10.0, 0.0, 1.0, 0.0)
    assert cal.add(bad)[0].status == "rejected" and "positive" in cal.add(bad)[0].reason
    flat = LabObservation("B1", 0.0, 2.0, 2.0, 0.0, 0.001, 0.0)
    assert "insensitive" in cal.add(flat)[0].reason
    assert cal.n_used == 0
