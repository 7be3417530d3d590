"""Calibration from the lab: learning, order independence, outliers, retests, missing data."""

from __future__ import annotations

import math

import numpy as np

from twin.config.schema import ControlConfig
from twin.control.calibration import (
    RATE_WALK_VAR_PER_H,
    LabObservation,
    Outcome,
    ToolCalibration,
    _invalid,
)

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


class FullReplay(ToolCalibration):
    """The reference: every result replays the whole history from scratch."""

    def add(self, obs: LabObservation) -> list[Outcome]:
        if _invalid(obs):
            return super().add(obs)  # an invalid result never replays
        self._obs[obs.batch_id] = self._merge_retest(obs)
        before = dict(self.outcomes)
        self.state, self.outcomes = self.replayed()
        return [o for k, o in self.outcomes.items() if before.get(k) != o]


def _late_sequence(rng: np.random.Generator, n: int) -> list[LabObservation]:
    """Results of ``n`` batches arriving late and out of order, with outliers (single and
    level shifts), retests that agree or not, and invalid results."""
    seq = []
    level = 0.0
    for i in range(n):
        if rng.random() < 0.05:
            level += float(rng.choice([-1.0, 1.0])) * 0.8  # a level shift
        theta = level + 0.01 * i + 0.03 * float(rng.standard_normal())
        if rng.random() < 0.08:
            theta += 1.5  # a lab blunder
        sens = float(rng.uniform(0.4, 1.0))
        seq.append(LabObservation(f"B{i}", i * 4 * H + float(rng.uniform(0, 60)),
                                  10.0 * math.exp(sens * theta), 10.0, 0.0, sens, theta))
        if rng.random() < 0.1:  # a retest, agreeing or not
            again = theta + float(rng.choice([0.01, 0.5]))
            seq.append(LabObservation(f"B{i}", seq[-1].batch_time_s,
                                      10.0 * math.exp(sens * again), 10.0, 0.0, sens, again))
        if rng.random() < 0.05:  # an unusable result of a batch
            seq.append(LabObservation(f"B{int(rng.integers(0, i + 1))}", i * 4 * H, -1.0,
                                      10.0, 0.0, 1.0, 0.0))
    # Late and out of order: each result is delayed by a random number of positions.
    delay = np.arange(len(seq)) + rng.exponential(3.0, len(seq))
    delay[rng.random(len(seq)) < 0.05] += 40.0  # some very late
    return [seq[int(j)] for j in np.argsort(delay, kind="stable")]


def test_incremental_replay_equals_full_replay_on_late_out_of_order_results() -> None:
    for seed in range(12):
        rng = np.random.default_rng(seed)
        cfg = ControlConfig(outlier_sigma=3.0)
        inc, ref = ToolCalibration(cfg), FullReplay(cfg)
        for o in _late_sequence(rng, 80):
            assert inc.add(o) == ref.add(o)
            assert inc.state == ref.state
            assert list(inc.outcomes.items()) == list(ref.outcomes.items())
        assert {o.status for o in inc.outcomes.values()} >= {"used", "rejected"}
        state, outcomes = inc.replayed()
        assert state == inc.state and list(outcomes.items()) == list(inc.outcomes.items())
