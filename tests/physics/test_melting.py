"""Tests for twin.physics.melting: liquidus, energy/time calibration, phases, errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.errors import PhysicsError
from twin.physics import melting
from twin.physics.melting import (
    ALLOYING_ELEMENTS,
    ATOMIC_MASS_G_MOL,
    liquidus_c,
    melt,
    solidify,
)

# ------------------------------------------------------------------ calibration examples


def test_250kw_melts_87kg_si_in_about_21_min() -> None:
    r = melt({"Si": 1.0}, 87.0, power_kw=250.0, superheat_c=75.0)
    assert r.duration_s / 60 == pytest.approx(21.0, abs=0.5)


def test_250kw_melts_130kg_si_in_about_32_min() -> None:
    # Independent of the calibration point: checks the model is linear in mass as the plant is.
    r = melt({"Si": 1.0}, 130.0, power_kw=250.0, superheat_c=75.0)
    assert r.duration_s / 60 == pytest.approx(32.0, abs=1.0)


def test_energy_and_duration_are_consistent_with_power() -> None:
    r = melt({"Si": 0.8, "Ti": 0.2}, 50.0, power_kw=100.0)
    assert r.energy_kwh == pytest.approx(100.0 * r.duration_s / 3600.0)
    assert r.heat_kwh < r.energy_kwh


def test_pure_si_heat_matches_hand_calculation() -> None:
    # 0.90 J/gK * (1489-25) K + 1787 J/g for 1 kg, in kWh.
    expected = (0.90 * (1414 + 75 - 25) + 1787.0) * 1000 / 3.6e6
    assert melting.heat_kwh({"Si": 1.0}, 1.0, 1489.0) == pytest.approx(expected)


def test_tin_melts_much_faster_than_silicon() -> None:
    si = melt({"Si": 1.0}, 50.0, power_kw=250.0)
    sn = melt({"Sn": 1.0}, 50.0, power_kw=250.0)
    assert sn.duration_s < 0.1 * si.duration_s


def test_more_superheat_costs_more_energy() -> None:
    a = melt({"Si": 1.0}, 10.0, power_kw=50.0, superheat_c=50.0)
    b = melt({"Si": 1.0}, 10.0, power_kw=50.0, superheat_c=100.0)
    assert b.energy_kwh > a.energy_kwh
    assert b.pour_temperature_c - a.pour_temperature_c == pytest.approx(50.0)


# ------------------------------------------------------------------ liquidus


def test_pure_elements_melt_at_their_melting_points() -> None:
    assert liquidus_c({"Si": 1.0}) == pytest.approx(1414.0)
    assert liquidus_c({"Sn": 1.0}) == pytest.approx(231.93)


def test_si_ti_eutectic_composition_gives_about_1330c() -> None:
    assert liquidus_c({"Si": 0.78, "Ti": 0.22}) == pytest.approx(1330.0, abs=10.0)


def test_liquidus_is_v_shaped_around_the_eutectic() -> None:
    low = liquidus_c({"Si": 0.9, "Ti": 0.1})
    eut = liquidus_c({"Si": 0.78, "Ti": 0.22})
    high = liquidus_c({"Si": 0.6, "Ti": 0.4})
    assert low > eut and high > eut


def test_ni_lowers_the_si_liquidus_more_than_ti_at_equal_atoms() -> None:
    # NiSi2/Si eutectic (966 C) lies far below TiSi2/Si (1330 C).
    x = 0.10
    wt_ni = x * ATOMIC_MASS_G_MOL["Ni"] / (x * ATOMIC_MASS_G_MOL["Ni"]
                                          + (1 - x) * ATOMIC_MASS_G_MOL["Si"])
    wt_ti = x * ATOMIC_MASS_G_MOL["Ti"] / (x * ATOMIC_MASS_G_MOL["Ti"]
                                          + (1 - x) * ATOMIC_MASS_G_MOL["Si"])
    assert liquidus_c({"Si": 1 - wt_ni, "Ni": wt_ni}) < liquidus_c({"Si": 1 - wt_ti, "Ti": wt_ti})


def test_cu_sn_eutectic_near_227c() -> None:
    assert liquidus_c({"Sn": 0.991, "Cu": 0.009}) == pytest.approx(227.0, abs=2.0)


def test_sn_in_si_lowers_liquidus() -> None:
    assert liquidus_c({"Si": 0.5, "Sn": 0.5}) < 1414.0


# ------------------------------------------------------------------ phases


def test_si_ti_phases_by_lever_rule() -> None:
    # 22 wt% Ti: TiSi2 mass = m_Ti * (M_Ti + 2 M_Si)/M_Ti.
    s = solidify({"Si": 0.78, "Ti": 0.22}, 100.0)
    m_ti = ATOMIC_MASS_G_MOL["Ti"]
    expected = 22.0 * (m_ti + 2 * ATOMIC_MASS_G_MOL["Si"]) / m_ti
    assert s.phases_kg["TiSi2"] == pytest.approx(expected)
    assert s.phases_kg["Si"] == pytest.approx(100.0 - expected)
    assert s.free_phase == "Si"


@pytest.mark.parametrize(("element", "si_phase", "sn_phase"), [
    ("Ti", "TiSi2", "Ti2Sn3"), ("Co", "CoSi2", "CoSn3"), ("Ni", "NiSi2", "Ni3Sn4"),
    ("Cu", "Cu3Si", "Cu6Sn5"), ("Mg", "Mg2Si", "Mg2Sn"), ("Zr", "ZrSi2", "ZrSn2"),
    ("V", "VSi2", "V2Sn3"), ("Mo", "MoSi2", "MoSn2"), ("W", "WSi2", "W"),
    ("Mn", "MnSi1.75", "MnSn2"), ("Fe", "FeSi2", "FeSn2"),
])
def test_alloy_phase_names(element: str, si_phase: str, sn_phase: str) -> None:
    si = melt({"Si": 0.95, element: 0.05}, 1.0, power_kw=10.0)
    sn = melt({"Sn": 0.95, element: 0.05}, 1.0, power_kw=10.0)
    assert (si.alloy_phase, si.free_phase) == (si_phase, "Si")
    assert (sn.alloy_phase, sn.free_phase) == (sn_phase, "Sn")


def test_tungsten_in_tin_stays_a_separate_w_phase_with_its_own_mass() -> None:
    s = solidify({"Sn": 0.9, "W": 0.1}, 10.0)
    assert s.phases_kg["W"] == pytest.approx(1.0)
    assert s.phases_kg["Sn"] == pytest.approx(9.0)


def test_mixed_si_sn_charge_binds_alloy_to_si_and_keeps_sn_free() -> None:
    s = solidify({"Si": 0.5, "Sn": 0.4, "Ni": 0.1}, 10.0)
    assert set(s.phases_kg) == {"Si", "Sn", "NiSi2"}
    assert s.phases_kg["Sn"] == pytest.approx(4.0)


def test_mixed_charge_with_little_si_falls_back_to_stannide() -> None:
    s = solidify({"Si": 0.01, "Sn": 0.79, "Cu": 0.20}, 1.0)
    assert "Si" not in s.phases_kg
    assert {"Cu3Si", "Cu6Sn5", "Sn"} <= set(s.phases_kg)
    assert s.free_phase == "Sn"


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(("composition", "mass", "needle"), [
    ({"Si": 0.9, "Al": 0.1}, 1.0, "'Al'"),
    ({"Si": 1.1, "Ti": -0.1}, 1.0, "Ti"),
    ({"Si": 0.9, "Ti": 0.05}, 1.0, "sum to 1"),
    ({"Ti": 1.0}, 1.0, "neither Si nor Sn"),
    ({"Si": 0.4, "Ti": 0.6}, 1.0, "Ti"),
    ({"Si": 1.0}, 0.0, "mass_kg"),
    ({"Si": 1.0}, -3.0, "mass_kg"),
])
def test_bad_input_gives_one_line_error_naming_it(composition: dict[str, float], mass: float,
                                                  needle: str) -> None:
    with pytest.raises(PhysicsError) as err:
        melt(composition, mass, power_kw=100.0)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_sum_tolerance_is_1e_minus_6() -> None:
    solidify({"Si": 0.9 + 5e-7, "Ti": 0.1}, 1.0)  # inside tolerance
    with pytest.raises(PhysicsError):
        solidify({"Si": 0.9 + 5e-6, "Ti": 0.1}, 1.0)


def test_exact_stoichiometric_silicide_has_no_free_si() -> None:
    m_ti, m_si = ATOMIC_MASS_G_MOL["Ti"], ATOMIC_MASS_G_MOL["Si"]
    w_ti = m_ti / (m_ti + 2 * m_si)
    with pytest.raises(PhysicsError, match="free Si or Sn"):
        solidify({"Si": 1 - w_ti, "Ti": w_ti}, 1.0)


def test_bad_power_efficiency_superheat() -> None:
    with pytest.raises(PhysicsError, match="power_kw"):
        melt({"Si": 1.0}, 1.0, power_kw=0.0)
    with pytest.raises(PhysicsError, match="efficiency"):
        melt({"Si": 1.0}, 1.0, power_kw=1.0, efficiency=1.5)
    with pytest.raises(PhysicsError, match="superheat"):
        melt({"Si": 1.0}, 1.0, power_kw=1.0, superheat_c=-1.0)


# ------------------------------------------------------------------ properties


@st.composite
def compositions(draw: st.DrawFn) -> dict[str, float]:
    """Valid charges: Si and/or Sn base with up to three alloying elements at modest levels."""
    bases = draw(st.sampled_from([("Si",), ("Sn",), ("Si", "Sn")]))
    alloys = draw(st.lists(st.sampled_from(ALLOYING_ELEMENTS), max_size=3, unique=True))
    # Sn intermetallics are Sn-rich (CoSn3 takes ~6 g Sn per g Co), so Sn-only charges get
    # less alloying element; larger amounts legitimately leave no free Sn (tested above).
    top = 0.03 if bases == ("Sn",) else 0.08
    weights = {el: draw(st.floats(0.001, top)) for el in alloys}
    rest = 1.0 - math.fsum(weights.values())
    if len(bases) == 2:
        share = draw(st.floats(0.2, 0.8))
        weights["Si"], weights["Sn"] = rest * share, rest * (1 - share)
    else:
        weights[bases[0]] = rest
    return weights


@settings(max_examples=200, deadline=None)
@given(compositions(), st.floats(0.001, 5000.0))
def test_mass_is_conserved_exactly(composition: dict[str, float], mass: float) -> None:
    s = solidify(composition, mass)
    total = math.fsum(s.phases_kg.values())
    assert math.isclose(total, mass, rel_tol=4 * 2.0**-52, abs_tol=0.0)
    assert all(m >= 0 for m in s.phases_kg.values())
    assert s.phases_kg[s.free_phase] > 0


@settings(max_examples=100, deadline=None)
@given(compositions())
def test_liquidus_between_lowest_eutectic_and_si(composition: dict[str, float]) -> None:
    t = liquidus_c(composition)
    assert 200.0 <= t <= 2200.0
    if "Si" not in composition:
        assert t < 1414.0


@settings(max_examples=100, deadline=None)
@given(compositions(), st.floats(1.0, 500.0), st.floats(10.0, 1000.0))
def test_duration_scales_linearly_with_mass(composition: dict[str, float], mass: float,
                                             power: float) -> None:
    a = melt(composition, mass, power_kw=power)
    b = melt(composition, 2 * mass, power_kw=power)
    assert b.duration_s == pytest.approx(2 * a.duration_s)
    assert sum(a.phase_mass_fraction.values()) == pytest.approx(1.0)
