"""Tests for twin.physics.metrology: XPS thickness, inverse, and noise model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.errors import PhysicsError
from twin.physics.metrology import (
    measure_thickness_nm,
    ratio_from_thickness,
    sigma_nm,
    thickness_from_ratio_nm,
)


def test_ratio_equal_r0_gives_l_ln2() -> None:
    assert float(thickness_from_ratio_nm(0.9329)) == pytest.approx(2.96 * math.log(2.0))


def test_zero_ratio_is_zero_thickness() -> None:
    assert float(thickness_from_ratio_nm(0.0)) == 0.0


def test_emission_angle_reduces_thickness_by_cos() -> None:
    assert float(thickness_from_ratio_nm(1.0, angle_deg=60.0)) == pytest.approx(
        0.5 * float(thickness_from_ratio_nm(1.0)))


def test_tin_oxide_uses_its_own_constants() -> None:
    assert float(thickness_from_ratio_nm(1.0, system="SnO2/Sn")) != pytest.approx(
        float(thickness_from_ratio_nm(1.0)))


def test_vectorised() -> None:
    d = thickness_from_ratio_nm(np.array([0.1, 1.0, 10.0]))
    assert d.shape == (3,)
    assert np.all(np.diff(d) > 0)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 30.0), st.sampled_from(["SiO2/Si", "SnO2/Sn"]), st.floats(0.0, 70.0))
def test_inverse_round_trip(d: float, system: str, angle: float) -> None:
    r = ratio_from_thickness(d, system=system, angle_deg=angle)  # type: ignore[arg-type]
    back = float(thickness_from_ratio_nm(r, system=system, angle_deg=angle))  # type: ignore[arg-type]
    assert back == pytest.approx(d, abs=1e-9, rel=1e-9)


def test_sigma_model() -> None:
    assert float(sigma_nm(0.0)) == pytest.approx(0.15)
    assert float(sigma_nm(10.0)) == pytest.approx(math.sqrt(0.15**2 + 0.3**2))


def test_measurement_statistics_at_5nm() -> None:
    rng = np.random.default_rng(42)
    draws = measure_thickness_nm(np.full(20000, 5.0), rng)
    assert draws.mean() == pytest.approx(5.0, abs=0.01)
    assert draws.std() == pytest.approx(float(sigma_nm(5.0)), rel=0.03)


def test_measurement_never_negative_near_zero() -> None:
    rng = np.random.default_rng(0)
    draws = measure_thickness_nm(np.zeros(5000), rng)
    assert np.all(draws >= 0)
    assert draws.mean() > 0.05  # truncated, not clipped to a spike at zero
    assert np.mean(draws == 0.0) < 0.01


def test_same_seed_same_measurements_and_scalar_shape() -> None:
    a = measure_thickness_nm(3.0, np.random.default_rng(7))
    b = measure_thickness_nm(3.0, np.random.default_rng(7))
    assert a.shape == ()
    assert float(a) == float(b)


def test_rng_must_be_passed_in() -> None:
    with pytest.raises(PhysicsError, match="rng"):
        measure_thickness_nm(3.0, 7)  # type: ignore[arg-type]


@pytest.mark.parametrize(("call", "needle"), [
    (lambda: thickness_from_ratio_nm(-0.1), "ratio"),
    (lambda: ratio_from_thickness(-1.0), "thickness_nm"),
    (lambda: thickness_from_ratio_nm(1.0, system="Al2O3/Al"), "system"),  # type: ignore[arg-type]
    (lambda: thickness_from_ratio_nm(1.0, angle_deg=85.0), "angle_deg"),
])
def test_bad_input(call: object, needle: str) -> None:
    with pytest.raises(PhysicsError, match=needle):
        call()  # type: ignore[operator]


@settings(max_examples=50, deadline=None)
@given(true_nm=st.floats(0.0, 200.0), sigma_abs=st.floats(0.0, 2.0), sigma_rel=st.floats(0.0, 0.5),
       seed=st.integers(0, 2**32 - 1))
def test_one_number_is_measured_as_an_array_of_one(true_nm: float, sigma_abs: float,
                                                   sigma_rel: float, seed: int) -> None:
    """The plain-number path draws and computes exactly what the array path does."""
    one = measure_thickness_nm(true_nm, np.random.default_rng(seed), sigma_abs_nm=sigma_abs,
                               sigma_rel=sigma_rel)
    arr = measure_thickness_nm(np.array([true_nm]), np.random.default_rng(seed),
                               sigma_abs_nm=sigma_abs, sigma_rel=sigma_rel)
    assert one.shape == () and float(one) == float(arr[0]) and float(one) >= 0.0
