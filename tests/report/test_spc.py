"""Individuals chart, Western Electric rules and capability indices."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.report.spc import Limits, cpk, individuals_limits, ppk, western_electric

UNIT = Limits(center=0.0, sigma=1.0, mr_bar=1.128)


def rules(x: list[float]) -> set[tuple[int, int]]:
    return {(v.index, v.rule) for v in western_electric(x, UNIT)}


def test_rule1_one_point_beyond_3_sigma() -> None:
    assert (3, 1) in rules([0.1, -0.2, 0.3, 3.4, 0.0])
    assert (1, 1) in rules([0.0, -3.2])


def test_rule2_two_of_three_beyond_2_sigma_same_side() -> None:
    found = rules([0.0, 2.3, 0.5, 2.4, 0.0])
    assert (3, 2) in found
    assert not any(r == 2 for _, r in rules([0.0, 2.3, 0.5, -2.4, 0.0]))  # opposite sides


def test_rule3_four_of_five_beyond_1_sigma_same_side() -> None:
    assert (5, 3) in rules([0.0, -1.2, -1.5, 0.2, -1.1, -1.3])
    assert not any(r == 3 for _, r in rules([0.0, -1.2, -1.5, 0.2, 1.1, -1.3]))


def test_rule4_eight_in_a_row_on_one_side() -> None:
    x = [0.0] + [0.3] * 8
    assert (8, 4) in rules(x)
    assert not any(r == 4 for _, r in rules([0.3] * 7 + [-0.3]))


def test_in_control_sequences_fire_nothing() -> None:
    assert rules([0.4, -0.5, 0.8, -0.2, 0.6, -0.9, 0.1, -0.3, 0.5, -0.4] * 3) == set()
    # A seeded in-control process with its own limits: 40 points, no alarm.
    x = np.random.default_rng(3).normal(2.0, 0.3, 40)
    lim = individuals_limits(x)
    assert western_electric(x, lim) == []


def test_limits_from_moving_range() -> None:
    lim = individuals_limits([1.0, 2.0, 1.0, 2.0])
    assert lim.center == 1.5 and lim.mr_bar == 1.0
    assert lim.sigma == pytest.approx(1 / 1.128)
    assert lim.ucl == pytest.approx(1.5 + 3 / 1.128)
    assert lim.mr_ucl == pytest.approx(3.267)


def test_cpk_and_ppk_near_true_value_with_covering_interval() -> None:
    # ln(thickness) ~ N(ln 10, 0.5) against ln 1 .. ln 100: true Cpk = ln 10 / 1.5.
    rng = np.random.default_rng(11)
    x = rng.normal(math.log(10.0), 0.5, 2000)
    true = math.log(10.0) / 1.5
    for c in (cpk(x, 0.0, math.log(100.0)), ppk(x, 0.0, math.log(100.0))):
        assert c.n == 2000
        assert c.value == pytest.approx(true, rel=0.05)
        assert c.low < true < c.high
        assert c.high - c.low < 0.15


def test_bissell_interval_narrows_with_n() -> None:
    rng = np.random.default_rng(5)
    small = ppk(rng.normal(0, 1, 20), -3, 3)
    large = ppk(rng.normal(0, 1, 500), -3, 3)
    assert (small.high - small.low) > 3 * (large.high - large.low)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        individuals_limits([1.0])
    with pytest.raises(ValueError, match="non-finite"):
        cpk([1.0, float("nan"), 2.0], 0, 3)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-2.9, 2.9), min_size=1, max_size=30))
def test_rule1_never_fires_inside_3_sigma(x: list[float]) -> None:
    assert not any(v.rule == 1 for v in western_electric(x, UNIT))


def test_capability_is_against_the_internal_band() -> None:
    from twin.report.spc import band_capability, cpk

    vals = [9.0, 10.5, 10.0, 11.2, 9.6, 10.1, 12.8, 9.9]
    c = band_capability(vals, (7.0, 13.0), (1.0, 100.0))
    logs = np.log(vals)
    assert c.cpk.value == pytest.approx(cpk(logs, np.log(7.0), np.log(13.0)).value)
    assert c.band_share == pytest.approx(1.0) and c.spec_share == pytest.approx(1.0)
    narrow = band_capability(vals, (9.5, 10.5), (1.0, 100.0))
    assert narrow.cpk.value < c.cpk.value and narrow.band_share == pytest.approx(5 / 8)
