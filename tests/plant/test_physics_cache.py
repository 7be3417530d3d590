"""The anchored expansion of the oxide physics against the full solve."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.physics.oxidation import Calibration, Profile
from twin.physics.thermal import lag_profile
from twin.plant.physics_cache import _SHIFT_GRID, OxidePhysics, _interp_shift
from twin.plant.prediction import LognormalPsd, predict_oxide

GROWTH = {"orientation": "100", "thin_model": "suprem", "si_area_fraction": 0.565,
          "copper": False}


def _setpoints(hold_min: float = 50.0, hold_c: float = 875.0) -> Profile:
    return Profile.ramp_hold(start_c=25, hold_c=hold_c, ramp_c_per_min=10, hold_s=hold_min * 60,
                             cool_c_per_min=15, po2_atm=0.21, ph2o_atm=0.02)


def _records(n: int, seed: int, holds_min: Sequence[float] = (50.0,)
             ) -> list[tuple[Profile, LognormalPsd, float, Calibration]]:
    noise = np.random.default_rng(seed)
    rng = np.random.default_rng(seed + 1)
    out = []
    for i in range(n):
        sp = _setpoints(holds_min[i % len(holds_min)])
        ind = _record(sp, float(rng.normal(0, 3)), noise)
        psd = LognormalPsd(0.26 * float(np.exp(rng.normal(0, 0.08))), 2.2)
        rf = float(np.exp(rng.normal(0, 0.08)))
        out.append((ind, psd, float(rng.uniform(0, 1.2)), Calibration(rf, rf, rf)))
    return out


def _record(sp: Profile, offset_c: float, rng: np.random.Generator) -> Profile:
    """A furnace-like record of a setpoint profile: the loop's lag (120 s), a load offset that
    grows with the elevation, and the loop's noise (1 °C stationary, AR(1) at the loop's
    memory) on a 60 s grid."""
    lagged = lag_profile(sp, 120.0, dt_s=60.0)
    t = lagged.temperature_c
    rise = (t - t[0]) / max(float(t.max() - t[0]), 1.0)
    phi = float(np.exp(-60.0 / 120.0))
    noise = np.zeros(t.size)
    for i in range(1, t.size):
        noise[i] = phi * noise[i - 1] + np.sqrt(1 - phi**2) * rng.normal()
    temp = t + offset_c * rise + noise
    return Profile(lagged.time_s, temp, lagged.po2_atm, lagged.ph2o_atm)


def test_fast_matches_exact_within_two_percent():
    fast = OxidePhysics("fast")
    for prof, psd, x0, cal in _records(12, 4):
        got = fast.predict(prof, psd, material="Si", calibration=cal, initial_nm=x0,
                           growth=GROWTH)
        ref = predict_oxide(prof, psd, material="Si", calibration=cal, initial_nm=x0,
                            growth=GROWTH)
        assert got.mean_nm == pytest.approx(ref.mean_nm, rel=0.02)
        assert got.p5_nm == pytest.approx(ref.p5_nm, rel=0.03)
        assert got.p95_nm == pytest.approx(ref.p95_nm, rel=0.03)
        assert got.within_50pct_share == pytest.approx(ref.within_50pct_share, abs=0.02)
    # A couple of anchors serve all of them: the expansion is what makes a year cheap.
    assert 1 <= sum(len(v) for v in fast.anchors.values()) <= 3
    assert fast.exact_calls == 1


def test_a_new_recipe_shape_gets_its_own_solution():
    fast = OxidePhysics("fast")
    (prof, psd, x0, cal), = _records(1, 9)
    short = Profile(prof.time_s[:60], prof.temperature_c[:60], prof.po2_atm[:60],
                    prof.ph2o_atm[:60])
    a = fast.predict(prof, psd, material="Si", calibration=cal, initial_nm=x0, growth=GROWTH)
    b = fast.predict(short, psd, material="Si", calibration=cal, initial_nm=x0, growth=GROWTH)
    assert b.mean_nm < a.mean_nm
    assert fast.exact_calls == 2 and not fast.anchors


def test_hold_time_is_an_input_of_the_expansion():
    """Records over the controller's hold-time range (the recipe's 50 min, corrected by whole
    minutes from 30 to 70 min) share a few anchors and stay within 2 % of the full solve."""
    fast = OxidePhysics("fast")
    holds = [50.0, 50.0, *np.arange(30.0, 71.0, 3.0)]
    for prof, psd, x0, cal in _records(len(holds), 5, holds):
        got = fast.predict(prof, psd, material="Si", calibration=cal, initial_nm=x0,
                           growth=GROWTH)
        ref = predict_oxide(prof, psd, material="Si", calibration=cal, initial_nm=x0,
                            growth=GROWTH)
        assert got.mean_nm == pytest.approx(ref.mean_nm, rel=0.02)
        assert got.p5_nm == pytest.approx(ref.p5_nm, rel=0.03)
        assert got.p95_nm == pytest.approx(ref.p95_nm, rel=0.03)
        assert got.within_50pct_share == pytest.approx(ref.within_50pct_share, abs=0.02)
    # Before hold time was an input, each of the 15 durations needed a solve of its own and
    # then an anchor; now a hold more than the trust radius away starts a new shape (one
    # full solve, then an anchor).
    n_anchors = sum(len(v) for v in fast.anchors.values())
    assert n_anchors <= 4 and fast.exact_calls <= 3
    assert n_anchors + fast.exact_calls <= 6


@pytest.mark.parametrize("hold_c", [869.0, 875.0, 881.0])
def test_planned_profiles_with_hold_time_and_temperature_changes(hold_c: float):
    """The controller's own profiles: hold time and hold temperature both corrected."""
    fast = OxidePhysics("fast")
    psd, cal = LognormalPsd(0.26, 2.2), Calibration(0.8, 0.8, 0.8)
    for hold in [50.0, 50.0, *np.arange(38.0, 63.0, 4.0)]:
        prof = _setpoints(hold, hold_c if hold != 50.0 else 875.0)
        got = fast.predict(prof, psd, material="Si", calibration=cal, initial_nm=0.5,
                           growth=GROWTH)
        ref = predict_oxide(prof, psd, material="Si", calibration=cal, initial_nm=0.5,
                            growth=GROWTH)
        assert got.mean_nm == pytest.approx(ref.mean_nm, rel=0.02)
    assert sum(len(v) for v in fast.anchors.values()) == 1


def test_a_record_cut_short_is_not_taken_for_a_shorter_hold():
    """A breakdown minutes before the end of the cool: same duration as a shorter hold, but
    a different shape; it is solved on its own (and correctly)."""
    fast = OxidePhysics("fast")
    recs = _records(3, 11)
    for prof, psd, x0, cal in recs[:2]:
        fast.predict(prof, psd, material="Si", calibration=cal, initial_nm=x0, growth=GROWTH)
    assert sum(len(v) for v in fast.anchors.values()) == 1
    prof, psd, x0, cal = recs[2]
    keep = prof.time_s <= prof.duration_s - 300.0
    cut = Profile(prof.time_s[keep], prof.temperature_c[keep], prof.po2_atm[keep],
                  prof.ph2o_atm[keep])
    calls = fast.exact_calls
    got = fast.predict(cut, psd, material="Si", calibration=cal, initial_nm=x0, growth=GROWTH)
    ref = predict_oxide(cut, psd, material="Si", calibration=cal, initial_nm=x0, growth=GROWTH)
    assert fast.exact_calls == calls + 1
    assert got.mean_nm == pytest.approx(ref.mean_nm, rel=1e-12)


def test_mode_is_checked():
    with pytest.raises(ValueError, match="fast"):
        OxidePhysics("quick")


@settings(max_examples=200, deadline=None)
@given(budget=st.floats(-80.0, 80.0), lo=st.floats(-40.0, 0.0), width=st.floats(1e-3, 60.0))
def test_shift_interpolation_is_numpys(budget: float, lo: float, width: float) -> None:
    """The anchor's own interpolation gives np.interp's values, inside and outside."""
    grid = np.log(np.exp(np.linspace(lo, lo + width, _SHIFT_GRID.size)) + 1.0)
    assert _interp_shift(budget, grid) == float(np.interp(budget, grid, _SHIFT_GRID))
    for edge in (grid[0], grid[-1], grid[17]):
        assert _interp_shift(float(edge), grid) == float(np.interp(edge, grid, _SHIFT_GRID))
