"""Statistics of the study runner: intervals, paired differences, MSER-5, precision rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.studies.stats import (
    mean_ci,
    mser_truncation,
    paired_diff_ci,
    replications_needed,
    t_quantile,
)


def test_t_quantile_matches_tables() -> None:
    # Student-t table values: t_{0.975, 4} = 2.776, t_{0.975, 9} = 2.262, t_{0.975, 29} = 2.045.
    assert t_quantile(5) == pytest.approx(2.776, abs=1e-3)
    assert t_quantile(10) == pytest.approx(2.262, abs=1e-3)
    assert t_quantile(30) == pytest.approx(2.045, abs=1e-3)


def test_mean_ci_by_hand() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    iv = mean_ci(x)
    assert iv.n == 5 and iv.mean == 3.0
    assert iv.half_width == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    assert iv.low < 3.0 < iv.high


def test_mean_ci_drops_nan_and_handles_small_samples() -> None:
    assert mean_ci([2.0, float("nan"), 4.0]).n == 2
    one = mean_ci([7.0])
    assert one.mean == 7.0 and math.isnan(one.half_width)
    assert math.isnan(mean_ci([]).mean)


def test_ci_covers_true_mean_about_95_percent() -> None:
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(2000):
        iv = mean_ci(rng.normal(10.0, 2.0, 8))
        hits += iv.low <= 10.0 <= iv.high
    assert 0.93 < hits / 2000 < 0.97


def test_ci_shrinks_with_more_replications() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(100.0, 5.0, 400)
    widths = [mean_ci(x[:n]).half_width for n in (5, 20, 80, 320)]
    assert widths == sorted(widths, reverse=True)
    # ~1/sqrt(n): 64x the replications gives about 1/8 of the width (t shrinks too).
    assert widths[-1] < widths[0] / 6


def test_paired_difference_beats_independent_under_crn() -> None:
    rng = np.random.default_rng(3)
    common = rng.normal(0.0, 10.0, 30)  # the shared randomness of replication r
    base = 100.0 + common + rng.normal(0, 1, 30)
    alt = 103.0 + common + rng.normal(0, 1, 30)
    paired = paired_diff_ci(alt, base)
    assert paired.excludes_zero() and paired.low < 3.0 < paired.high
    naive = math.hypot(mean_ci(alt).half_width, mean_ci(base).half_width)
    assert paired.half_width < naive / 3


def test_paired_requires_equal_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        paired_diff_ci([1.0, 2.0], [1.0])


def test_mser5_finds_a_known_warmup() -> None:
    rng = np.random.default_rng(4)
    n, warm = 600, 100
    t = np.arange(n)
    # An empty plant filling up: exponential approach over the first ~100 observations.
    y = 50.0 * (1 - np.exp(-t / 20.0)) + rng.normal(0.0, 2.0, n)
    d = mser_truncation(y)
    assert d % 5 == 0
    assert 0.5 * warm <= d <= 1.6 * warm


def test_mser5_keeps_a_stationary_series() -> None:
    rng = np.random.default_rng(5)
    assert mser_truncation(rng.normal(0, 1, 500)) <= 100


def test_mser5_step_transient() -> None:
    y = np.concatenate([np.zeros(50), np.full(450, 10.0)]) + \
        np.random.default_rng(6).normal(0, 0.5, 500)
    assert mser_truncation(y) == 50


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=0, max_size=40))
def test_mser_bounds(values: list[float]) -> None:
    d = mser_truncation(values)
    assert 0 <= d <= max(0, len(values) // 2) and d % 5 == 0


def test_replications_needed() -> None:
    assert replications_needed(10, 1.0, 2.0) == 10
    n = replications_needed(10, 4.0, 1.0)
    # (4/1)^2 * 10 scaled by (z/t9)^2 = (1.96/2.262)^2 ~ 0.75 -> about 120.
    assert 100 <= n <= 130
    assert replications_needed(10, 1.0001, 1.0) >= 11
    with pytest.raises(ValueError):
        replications_needed(10, 1.0, 0.0)
