"""Oxidation model: profiles, fast-path accuracy, tin, native oxide, alloys, particles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from twin.errors import PhysicsError, UsageError
from twin.physics import oxidation_rates as rates
from twin.physics.oxidation import (
    BatchProfile,
    Calibration,
    Profile,
    grow_flat,
    grow_flat_batch,
    grow_particles,
    grow_particles_batch,
    growth_regime,
    native_oxide_nm,
)
from twin.physics.oxidation_solver import _shell
from twin.physics.psd import SizeDistribution, lognormal

DAY_S = 86400.0


def fine_solution(profile: Profile, *, radius_nm: float | None = None, initial_nm: float = 0.0,
                  orientation: str = "100", material: str = "Si") -> float:
    """Independent reference: adaptive implicit ODE solve (scipy Radau, rtol 1e-9) in time."""
    params = rates.RateParams(material, orientation, "suprem")
    cal = np.ones((1, 3))
    z = rates.VOLUME_EXPANSION[material]

    def coeffs(t: float) -> rates.Coefficients:
        cols = [np.array([[np.interp(t, profile.time_s, getattr(profile, n))]])
                for n in ("temperature_c", "po2_atm", "ph2o_atm")]
        return rates.coefficients(params, np.array([[t]]), *cols, cal)

    def growth(co: rates.Coefficients, x: float, xe: float) -> float:
        r = float(co.c[0, 0]) * np.exp(-x / co.length_nm)
        return r + sum(float(p[0, 0]) / (2 * xe + float(q[0, 0])) for p, q in co.channels)

    if radius_nm is None:
        def rhs(t: float, y: np.ndarray) -> list[float]:
            return [growth(coeffs(t), y[0], y[0])]
        y0 = [initial_nm]
    else:
        a0 = radius_nm - initial_nm
        r0 = np.cbrt(a0**3 + (radius_nm**3 - a0**3) / z)
        r0a = np.array([r0])

        def rhs(t: float, y: np.ndarray) -> list[float]:
            x, xe = _shell(r0a, np.minimum(y, r0), z)
            return [growth(coeffs(t), float(x[0]), float(xe[0])) / z]
        y0 = [r0 - a0]
    y = np.array(y0, dtype=float)
    for t0, t1 in zip(profile.time_s[:-1], profile.time_s[1:], strict=True):
        if t1 > t0:  # integrate knot to knot so the profile's corners are exact
            y = solve_ivp(rhs, (t0, t1), y, method="Radau", rtol=1e-9, atol=1e-12).y[:, -1]
    if radius_nm is None:
        return float(y[0])
    x, _ = _shell(np.array([r0]), np.minimum(y, r0), z)
    return float(x[0])


RAMP = dict(start_c=25.0, ramp_c_per_min=10.0, cool_c_per_min=25.0)


@pytest.mark.parametrize(("hold_c", "po2", "ph2o", "initial"), [
    (650.0, 0.21, 0.03, 0.0), (900.0, 1.0, 0.0, 0.0), (1000.0, 0.21, 0.5, 1.5),
    (1150.0, 0.0, 0.842, 0.0), (800.0, 0.05, 0.0, 2.0),
])
def test_fast_flat_matches_fine_solution(hold_c: float, po2: float, ph2o: float,
                                         initial: float) -> None:
    prof = Profile.ramp_hold(hold_c=hold_c, hold_s=1800.0, po2_atm=po2, ph2o_atm=ph2o, **RAMP)
    fine = fine_solution(prof, initial_nm=initial)
    fast = grow_flat(prof, initial_nm=initial)
    assert fast == pytest.approx(fine, rel=3e-3, abs=1e-3)


@pytest.mark.parametrize(("radius", "hold_c", "ph2o"), [
    (8.0, 1000.0, 0.0), (20.0, 950.0, 0.3), (60.0, 1100.0, 0.842), (500.0, 900.0, 0.0),
    (5e4, 1000.0, 0.2),
])
def test_fast_sphere_matches_fine_solution(radius: float, hold_c: float, ph2o: float) -> None:
    prof = Profile.ramp_hold(hold_c=hold_c, hold_s=3600.0, po2_atm=0.5, ph2o_atm=ph2o, **RAMP)
    psd = SizeDistribution(np.array([radius / 500.0]), np.array([1.0]))
    fine = fine_solution(prof, radius_nm=radius, initial_nm=1.0)
    fast = grow_particles(prof, psd, initial_nm=1.0).thickness_nm[0]
    assert fast == pytest.approx(fine, rel=5e-3)


def test_ramp_hold_shape_and_duration() -> None:
    prof = Profile.ramp_hold(start_c=25, hold_c=650, ramp_c_per_min=10, hold_s=600,
                             cool_c_per_min=25, end_c=50, po2_atm=0.21, ph2o_atm=0.0)
    np.testing.assert_allclose(prof.time_s, [0, 3750, 4350, 4350 + 1440])  # 600 °C at 25 °C/min
    assert prof.duration_s == pytest.approx(4350 + 1440)
    assert prof.temperature_c[-1] == 50


def test_profile_validation() -> None:
    with pytest.raises(PhysicsError, match="non-decreasing"):
        Profile(np.array([0.0, 10, 5]), np.full(3, 500.0), np.ones(3), np.zeros(3))
    with pytest.raises(PhysicsError, match="partial pressures"):
        Profile.constant(500, 10, po2_atm=-1)
    with pytest.raises(PhysicsError, match="duration"):
        Profile.constant(500, -1)


def test_profile_from_csv_minutes_and_errors(tmp_path) -> None:
    good = tmp_path / "p.csv"
    good.write_text("minutes,temperature_c,po2_atm,ph2o_atm\n0,25,0.21,0\n60,900,0.21,0\n"
                    "120,900,0.21,0\n")
    prof = Profile.from_csv(good)
    assert prof.duration_s == 7200 and prof.temperature_c[1] == 900
    missing = tmp_path / "m.csv"
    missing.write_text("time_s,temperature_c,po2_atm\n0,25,1\n10,25,1\n")
    with pytest.raises(UsageError, match=r"m\.csv.*'ph2o_atm'"):
        Profile.from_csv(missing)
    bad = tmp_path / "b.csv"
    bad.write_text("time_s,temperature_c,po2_atm,ph2o_atm\n0,25,1,0\n10,hot,1,0\n")
    with pytest.raises(UsageError, match=r"b\.csv.*'temperature_c'.*row 2"):
        Profile.from_csv(bad)
    with pytest.raises(UsageError, match="nope.csv"):
        Profile.from_csv(tmp_path / "nope.csv")


def test_humid_air_channels_add() -> None:
    dry = grow_flat(Profile.constant(1000, 3600, po2_atm=0.21, ph2o_atm=0.0))
    wet = grow_flat(Profile.constant(1000, 3600, po2_atm=0.0, ph2o_atm=0.05))
    both = grow_flat(Profile.constant(1000, 3600, po2_atm=0.21, ph2o_atm=0.05))
    assert max(dry, wet) < both <= dry + wet


def test_orientation_order_in_linear_regime() -> None:
    prof = Profile.constant(850, 1800, ph2o_atm=0.0)
    x = {o: grow_flat(prof, orientation=o, thin_model="none") for o in ("100", "110", "111")}
    assert x["100"] < x["110"] < x["111"]


def test_calibration_factors_act_on_their_constants() -> None:
    thick = Profile.constant(1100, 4 * 3600, po2_atm=0.0, ph2o_atm=0.842)  # parabolic
    base = grow_flat(thick)
    assert grow_flat(thick, calibration=Calibration(b_factor=2.0)) > 1.3 * base
    assert grow_flat(thick, calibration=Calibration(ba_factor=2.0)) < 1.1 * base
    thin = Profile.constant(800, 600)  # thin-term dominated
    assert grow_flat(thin, calibration=Calibration(c_factor=2.0)) > 1.5 * grow_flat(thin)
    with pytest.raises(PhysicsError, match="b_factor"):
        Calibration(b_factor=0.0)


def test_regimes() -> None:
    assert growth_regime(Profile.constant(800, 600), grow_flat(Profile.constant(800, 600))) \
        == "thin"
    wet = Profile.constant(1100, 4 * 3600, po2_atm=0.0, ph2o_atm=0.842)
    assert growth_regime(wet, grow_flat(wet)) == "parabolic"
    lin = Profile.constant(1000, 3600, po2_atm=1.0)
    assert growth_regime(lin, grow_flat(lin, thin_model="none"), thin_model="none") == "linear"


def test_unknown_inputs_are_refused() -> None:
    prof = Profile.constant(900, 60)
    with pytest.raises(PhysicsError, match="orientation"):
        grow_flat(prof, orientation="211")
    with pytest.raises(PhysicsError, match="material"):
        grow_flat(prof, material="Ge")
    with pytest.raises(PhysicsError, match="thin_model"):
        grow_flat(prof, thin_model="magic")
    with pytest.raises(PhysicsError, match="si_area_fraction"):
        grow_flat(prof, si_area_fraction=1.5)


# --- tin -------------------------------------------------------------------------------------

def test_tin_molten_anywhere_in_profile_is_refused() -> None:
    prof = Profile(np.array([0.0, 600, 660, 1200]), np.array([25.0, 200, 232.0, 25]),
                   np.full(4, 0.21), np.zeros(4))
    with pytest.raises(PhysicsError, match=r"tin melts at 231\.9"):
        grow_flat(prof, material="Sn")
    with pytest.raises(PhysicsError, match="tin melts"):
        grow_particles(prof, lognormal(5.0, 1.5), material="Sn")
    grow_flat(prof, material="Si")  # silicon is fine at that temperature


def test_tin_logarithmic_at_room_temperature() -> None:
    x = [grow_flat(Profile.constant(25, t, po2_atm=0.21), material="Sn")
         for t in (1e3, 1e4, 1e5, 1e6)]
    steps = np.diff(x)
    assert np.all(steps > 0)
    # Logarithmic: roughly equal growth per decade of time, about 1 nm.
    assert steps.max() / steps.min() < 1.6 and 0.5 < steps.mean() < 1.5
    assert 2.0 <= x[2] <= 4.0  # a day in air gives the 2-4 nm native tin oxide


def test_tin_parabolic_above_180c() -> None:
    x1 = grow_flat(Profile.constant(225, 3600, po2_atm=0.21), material="Sn")
    x4 = grow_flat(Profile.constant(225, 4 * 3600, po2_atm=0.21), material="Sn")
    assert 1.7 < x4 / x1 < 2.1  # x ∝ √t
    assert growth_regime(Profile.constant(225, 3600, po2_atm=0.21), x1, material="Sn") \
        == "parabolic"
    low = Profile.constant(100, 3600, po2_atm=0.21)
    assert growth_regime(low, grow_flat(low, material="Sn"), material="Sn") == "logarithmic"


# --- native oxide ---------------------------------------------------------------------------

def test_native_si_logarithmic_and_saturating() -> None:
    t = np.array([60.0, 600, 3600, DAY_S, 7 * DAY_S, 365 * DAY_S, 1e4 * DAY_S])
    x = native_oxide_nm(t, rh_percent=50)
    assert isinstance(x, np.ndarray) and np.all(np.diff(x) > 0)
    per_decade = (x[3] - x[2]) / np.log10(24.0)  # Archer, Morita: 0.5-0.7 nm per decade
    assert 0.45 <= per_decade <= 0.7
    assert 0.8 <= x[3] <= 1.5 and 1.7 < x[-1] < 2.0  # self-limits near 2 nm


def test_native_needs_oxygen_and_water() -> None:
    assert native_oxide_nm(DAY_S, rh_percent=0.0) == 0.0
    assert native_oxide_nm(DAY_S, rh_percent=50, po2_atm=0.0) == 0.0
    assert native_oxide_nm(DAY_S, rh_percent=90) > native_oxide_nm(DAY_S, rh_percent=20)
    assert 2.0 <= native_oxide_nm(DAY_S, rh_percent=50, material="Sn") <= 4.0


def test_native_continues_from_initial_oxide() -> None:
    a = native_oxide_nm(DAY_S, rh_percent=50)
    b = native_oxide_nm(DAY_S, rh_percent=50, initial_nm=float(a))
    assert b == pytest.approx(native_oxide_nm(2 * DAY_S, rh_percent=50), rel=1e-9)
    assert native_oxide_nm(DAY_S, rh_percent=50, initial_nm=3.0) == 3.0
    with pytest.raises(PhysicsError, match="furnace"):
        native_oxide_nm(60, rh_percent=50, temperature_c=600)


# --- alloys and copper -----------------------------------------------------------------------

def test_silicide_area_fraction() -> None:
    prof = Profile.constant(900, 3600)
    pure = grow_flat(prof)
    assert grow_flat(prof, si_area_fraction=0.4) == pytest.approx(pure)  # factor 1: same
    assert grow_flat(prof, si_area_fraction=0.4, silicide_factor=0.0) \
        == pytest.approx(0.4 * pure)
    fast = grow_flat(prof, calibration=Calibration(2.0, 2.0, 2.0))
    assert grow_flat(prof, si_area_fraction=0.4, silicide_factor=2.0) \
        == pytest.approx(0.4 * pure + 0.6 * fast)


def test_copper_catalyses_room_temperature_oxidation() -> None:
    weeks = Profile.constant(25, 21 * DAY_S, po2_atm=0.21)
    with_cu = grow_flat(weeks, copper=True)
    assert 500.0 < with_cu < 2000.0  # Harper et al.: > 1 µm in weeks
    assert grow_flat(weeks) < 1e-3
    with pytest.raises(PhysicsError, match="copper"):
        grow_flat(weeks, material="Sn", copper=True)


# --- particles --------------------------------------------------------------------------------

def test_particle_distribution_statistics() -> None:
    psd = lognormal(0.05, 2.0)
    prof = Profile.constant(950, 4 * 3600)
    d = grow_particles(prof, psd, initial_nm=1.0)
    x = d.thickness_nm
    assert x.shape == (64,)
    assert d.mean_nm == pytest.approx(float(np.sum(psd.area_fraction * x)))
    assert x.min() <= d.p5_nm <= d.p50_nm <= d.p95_nm <= x.max()
    assert 0.0 < d.within_50pct_share <= 1.0
    assert 0.0 < d.fully_oxidised_share < 1.0  # the finest bins oxidise through
    flat = grow_flat(prof, initial_nm=1.0)
    big = x[psd.radius_nm > 5000]
    np.testing.assert_allclose(big, flat, rtol=2e-3)


def test_batch_matches_single_and_per_batch_inputs() -> None:
    profs = [Profile.constant(900, 3600), Profile.ramp_hold(hold_c=1000, hold_s=600,
                                                            po2_atm=0.21, ph2o_atm=0.1, **RAMP)]
    psds = [lognormal(0.1, 1.8), lognormal(1.0, 1.5)]
    cals = [Calibration(), Calibration(1.5, 0.8, 1.2)]
    batch = grow_particles_batch(profs, psds, initial_nm=[0.5, 1.0], calibration=cals)
    for i in range(2):
        one = grow_particles(profs[i], psds[i], initial_nm=[0.5, 1.0][i], calibration=cals[i])
        assert batch[i].mean_nm == pytest.approx(one.mean_nm, rel=1e-12)
    arrays = grow_particles_batch(BatchProfile.stack(profs), psds, as_arrays=True,
                                  initial_nm=[0.5, 1.0], calibration=cals)
    np.testing.assert_allclose(arrays["mean_nm"], [b.mean_nm for b in batch])
    flat = grow_flat_batch(profs, initial_nm=[0.5, 1.0], calibration=cals)
    assert flat[1] == pytest.approx(grow_flat(profs[1], initial_nm=1.0, calibration=cals[1]))
