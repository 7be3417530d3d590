"""Invariants (Hypothesis) and calibration fitting of the oxidation model."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.errors import PhysicsError
from twin.physics.oxidation import (
    Calibration,
    CalibrationCase,
    Profile,
    fit_calibration,
    grow_flat,
    grow_particles,
    native_oxide_nm,
)
from twin.physics.oxidation_native import native_oxide_scalar
from twin.physics.psd import SizeDistribution

FAST = settings(max_examples=25, deadline=None)
temps = st.floats(20.0, 1200.0)
minutes = st.floats(0.0, 600.0)
pressures = st.floats(0.0, 1.0)
# Relative slack for the fixed-step integrator: two nearly equal inputs may be solved on
# slightly different grids, so "monotone" is checked to well below any physical resolution.
SLACK = 1e-6


@FAST
@given(temps, minutes, pressures, pressures, st.floats(0.0, 30.0))
def test_thickness_never_negative_nor_below_initial(t_c: float, minutes: float, po2: float,
                                                    ph2o: float, x0: float) -> None:
    x = grow_flat(Profile.constant(t_c, minutes * 60, po2, ph2o), initial_nm=x0)
    assert np.isfinite(x) and x >= x0 * (1 - SLACK) and x >= 0.0


@FAST
@given(temps, minutes, minutes, pressures)
def test_monotone_in_time(t_c: float, m1: float, m2: float, po2: float) -> None:
    lo, hi = sorted((m1, m2))
    a = grow_flat(Profile.constant(t_c, lo * 60, po2, 0.1))
    b = grow_flat(Profile.constant(t_c, hi * 60, po2, 0.1))
    assert b >= a * (1 - SLACK) - 1e-9


@FAST
@given(temps, temps, minutes, pressures)
def test_monotone_in_temperature(t1: float, t2: float, minutes: float, po2: float) -> None:
    lo, hi = sorted((t1, t2))
    a = grow_flat(Profile.constant(lo, minutes * 60, po2, 0.05), orientation="111")
    b = grow_flat(Profile.constant(hi, minutes * 60, po2, 0.05), orientation="111")
    assert b >= a * (1 - SLACK) - 1e-9


@FAST
@given(st.floats(600.0, 1150.0), minutes, pressures, pressures)
def test_monotone_in_po2(t_c: float, minutes: float, p1: float, p2: float) -> None:
    lo, hi = sorted((p1, p2))
    a = grow_flat(Profile.constant(t_c, minutes * 60, lo, 0.0))
    b = grow_flat(Profile.constant(t_c, minutes * 60, hi, 0.0))
    assert b >= a * (1 - SLACK) - 1e-9


@FAST
@given(st.floats(600.0, 1150.0), st.floats(1.0, 600.0), st.floats(2.0, 1e5), pressures,
       st.floats(0.0, 3.0))
def test_sphere_never_thicker_than_flat(t_c: float, minutes: float, radius: float, ph2o: float,
                                        x0: float) -> None:
    prof = Profile.constant(t_c, minutes * 60, 0.5, ph2o)
    psd = SizeDistribution(np.array([radius / 500.0]), np.array([1.0]))
    dist = grow_particles(prof, psd, initial_nm=x0)
    flat = grow_flat(prof, initial_nm=x0)
    if dist.fully_oxidised_share == 0.0:
        assert dist.mean_nm <= flat * (1 + 1e-4) + 1e-9
    assert dist.mean_nm >= 0.0


@FAST
@given(st.floats(231.9, 600.0), st.floats(1.0, 100.0))
def test_tin_refuses_molten(t_c: float, minutes: float) -> None:
    with pytest.raises(PhysicsError, match="tin melts"):
        grow_flat(Profile.constant(t_c, minutes * 60, 0.21), material="Sn")


def _synthetic_cases(true: Calibration, rng: np.random.Generator,
                     noise: float) -> list[CalibrationCase]:
    conditions = [(750, 30, 1.0, 0.0), (800, 120, 1.0, 0.0), (850, 10, 1.0, 0.0),
                  (900, 60, 1.0, 0.0), (950, 240, 1.0, 0.0), (1000, 30, 1.0, 0.0),
                  (1050, 480, 1.0, 0.0), (1100, 600, 1.0, 0.0), (900, 120, 0.0, 0.842),
                  (1000, 240, 0.0, 0.842), (1100, 300, 0.0, 0.842), (800, 20, 0.21, 0.0)]
    cases = []
    for t_c, minutes, po2, ph2o in conditions:
        prof = Profile.constant(t_c, minutes * 60.0, po2, ph2o)
        x = grow_flat(prof, calibration=true) * float(np.exp(rng.normal(0.0, noise)))
        cases.append(CalibrationCase(prof, x))
    return cases


def test_fit_calibration_recovers_known_factors() -> None:
    true = Calibration(b_factor=0.55, ba_factor=1.6, c_factor=1.4)
    cases = _synthetic_cases(true, np.random.default_rng(7), noise=0.01)
    got = fit_calibration(cases)
    assert got.b_factor == pytest.approx(true.b_factor, rel=0.08)
    assert got.ba_factor == pytest.approx(true.ba_factor, rel=0.08)
    assert got.c_factor == pytest.approx(true.c_factor, rel=0.15)


def test_fit_calibration_noise_free_is_exact_and_handles_particles() -> None:
    true = Calibration(b_factor=2.0, ba_factor=0.8, c_factor=1.0)
    cases = _synthetic_cases(true, np.random.default_rng(0), noise=0.0)
    got = fit_calibration(cases, prior_weight=0.0)
    np.testing.assert_allclose([got.b_factor, got.ba_factor, got.c_factor], [2.0, 0.8, 1.0],
                               rtol=5e-3)
    psd = SizeDistribution(np.array([0.05, 0.1]), np.array([0.5, 0.5]))
    prof = Profile.constant(1000, 7200)
    measured = grow_particles(prof, psd, calibration=Calibration(1.5, 1.5, 1.5)).mean_nm
    one = fit_calibration([CalibrationCase(prof, measured, psd=psd)])
    assert grow_particles(prof, psd, calibration=one).mean_nm == pytest.approx(measured,
                                                                               rel=1e-3)
    with pytest.raises(PhysicsError, match="no cases"):
        fit_calibration([])


@settings(max_examples=200, deadline=None)
@given(st.floats(-10.0, 1e8), st.floats(-5.0, 105.0), st.floats(-0.1, 1.0),
       st.floats(-70.0, 240.0), st.sampled_from(["Si", "Sn", "Cu"]), st.floats(-0.5, 5.0))
def test_scalar_native_oxide_is_the_same_law(t, rh, po2, temp, material, x0):
    """The plant's per-lot fast path gives exactly native_oxide_nm, or the same error."""
    kw = {"rh_percent": rh, "po2_atm": po2, "temperature_c": temp, "material": material,
          "initial_nm": x0}
    try:
        ref = float(native_oxide_nm(t, **kw))
    except PhysicsError as exc:
        with pytest.raises(PhysicsError, match=re.escape(str(exc))):
            native_oxide_scalar(t, **kw)
        return
    assert native_oxide_scalar(t, **kw) == ref
