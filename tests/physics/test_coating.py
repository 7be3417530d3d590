"""Tests for twin.physics.coating: slurry electrodes and sputtered films."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.errors import PhysicsError
from twin.physics.coating import (
    SlurryRecipe,
    cap_rate_nm_min,
    coat_slurry,
    coat_thickness_um,
    deposition_rate_nm_min,
    nonuniformity_pct,
    porosity_from_thickness,
    sputter,
)

# ------------------------------------------------------------------ slurry


def test_skeletal_density_of_91_9_si_lipaa() -> None:
    r = SlurryRecipe(0.91, 0.09, 0.0, 2.33, 1.4, 1.95)
    assert r.skeletal_density_g_cm3 == pytest.approx(1 / (0.91 / 2.33 + 0.09 / 1.4))


def test_12_mg_cm2_at_30pct_porosity_thickness() -> None:
    r = SlurryRecipe()
    # 12 mg/cm2 = 0.012 g/cm2; / (rho_s * 0.7) in cm, *1e4 for um.
    expected = 0.012 / (r.skeletal_density_g_cm3 * 0.7) * 1e4
    assert coat_thickness_um(12.0, 0.30, r) == pytest.approx(expected)
    assert 60.0 < expected < 90.0


def test_porosity_round_trips_through_thickness() -> None:
    r = SlurryRecipe(0.3, 0.1, 0.6, 2.33, 1.2, 2.2)
    t = coat_thickness_um(8.0, 0.42, r)
    assert porosity_from_thickness(8.0, t, r) == pytest.approx(0.42)


def test_calendering_thins_the_coat() -> None:
    res = coat_slurry(SlurryRecipe(), porosity=0.30, as_coated_porosity=0.50)
    assert res.thickness_um == pytest.approx(res.as_coated_thickness_um * 0.5 / 0.7)


def test_roll_time_at_requested_speed_when_dryer_is_long_enough() -> None:
    res = coat_slurry(SlurryRecipe(), roll_length_m=1200.0, line_speed_m_min=30.0,
                      dryer_length_m=60.0, evaporation_g_m2_s=3.0)
    assert not res.dryer_limited
    assert res.coat_time_s == pytest.approx(1200.0 / 30.0 * 60.0)
    assert res.solids_kg == pytest.approx(12.0 * 1e-6 * 1e4 * 1200.0 * 1.0)


def test_short_dryer_caps_line_speed() -> None:
    # 12 mg/cm2 at 45 % solids: 146.7 g/m2 of solvent; at 1 g/m2/s: 146.7 s in the dryer.
    res = coat_slurry(SlurryRecipe(), line_speed_m_min=80.0, dryer_length_m=20.0,
                      evaporation_g_m2_s=1.0)
    assert res.dryer_limited
    assert res.drying_time_s == pytest.approx(146.6667, rel=1e-4)
    assert res.line_speed_m_min == pytest.approx(20.0 / 146.6667 * 60.0, rel=1e-4)


def test_recipe_fractions_must_sum_to_one() -> None:
    with pytest.raises(PhysicsError, match="sum to 1"):
        SlurryRecipe(0.9, 0.2, 0.0)


def test_calender_cannot_open_porosity() -> None:
    with pytest.raises(PhysicsError, match="porosity"):
        coat_slurry(SlurryRecipe(), porosity=0.6, as_coated_porosity=0.5)


@settings(max_examples=100, deadline=None)
@given(st.floats(1.0, 30.0), st.floats(0.1, 0.6), st.floats(0.1, 0.6))
def test_thickness_increases_with_loading_and_porosity(load: float, e1: float, e2: float) -> None:
    r = SlurryRecipe()
    lo, hi = sorted((e1, e2))
    assert coat_thickness_um(load, hi, r) >= coat_thickness_um(load, lo, r)
    assert coat_thickness_um(load * 1.5, lo, r) > coat_thickness_um(load, lo, r)


# ------------------------------------------------------------------ sputtering


def test_si_rate_calibration_point() -> None:
    assert deposition_rate_nm_min(250.0, 8.0) == pytest.approx(1.4)


def test_rate_roughly_linear_in_power() -> None:
    assert deposition_rate_nm_min(125.0, 8.0) == pytest.approx(0.7)


def test_higher_pressure_thermalises_and_slows_deposition() -> None:
    assert deposition_rate_nm_min(250.0, 2.0) > 1.4 > deposition_rate_nm_min(250.0, 20.0)


def test_cap_rates_match_lab_tool_range() -> None:
    assert cap_rate_nm_min(25.0, 2.5) == pytest.approx(4.3)
    assert cap_rate_nm_min(25.0, 5.0) == pytest.approx(2.6)


@pytest.mark.parametrize("o2", [2.5, 3.5, 5.0])
@pytest.mark.parametrize("cap_nm", [1.0, 10.0])
def test_one_to_ten_nm_cap_takes_0_2_to_4_min(o2: float, cap_nm: float) -> None:
    minutes = sputter(100.0, cap_nm, o2_sccm=o2).cap_time_s / 60.0
    assert 0.2 <= minutes <= 4.0


def test_uniformity_with_and_without_rotation() -> None:
    assert nonuniformity_pct(50.0, rotation=True) < 0.3
    assert 1.0 < nonuniformity_pct(50.0, rotation=False) < 5.0
    assert nonuniformity_pct(25.0, rotation=False) < nonuniformity_pct(50.0, rotation=False)


def test_film_time_for_100_nm_si() -> None:
    res = sputter(100.0, 5.0)
    assert res.film_time_s == pytest.approx(100.0 / 1.4 * 60.0)
    assert res.duration_s == pytest.approx(res.film_time_s + res.cap_time_s)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"pressure_mtorr": 0.1}, "pressure_mtorr"),
    ({"o2_sccm": 20.0}, "O2/Ar"),
    ({"power_w": -5.0}, "power_w"),
    ({"material": "Ge"}, "material"),
])
def test_sputter_bad_input(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(PhysicsError, match=needle):
        sputter(100.0, 5.0, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(st.floats(10.0, 500.0), st.floats(1.0, 30.0), st.floats(0.1, 50.0))
def test_time_inverse_to_rate(power: float, p: float, nm: float) -> None:
    a = sputter(nm, nm, power_w=power, pressure_mtorr=p)
    b = sputter(nm, nm, power_w=2 * power, pressure_mtorr=p)
    assert b.film_time_s == pytest.approx(a.film_time_s / 2)
    assert a.film_rate_nm_min * a.film_time_s == pytest.approx(60.0 * nm)
