"""Oxidised composition, O2 and heat, and the lab's O + BET inversion (twin.physics.composition).

Worked examples are those of shared/notes/powder_bed.md §1 and §8.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.errors import PhysicsError
from twin.physics import composition as comp
from twin.physics.oxidation_rates import VOLUME_EXPANSION

FAST = settings(max_examples=60, deadline=None)
SI = comp.OXIDES["Si"]
SN = comp.OXIDES["Sn"]


# --------------------------------------------------------------------------- constants (§1)


def test_constants_match_the_note() -> None:
    mol_per_m2_nm, si_per_nm = comp.SIO2_MOL_PER_M2_NM, comp.SI_NM_PER_SIO2_NM
    assert mol_per_m2_nm == pytest.approx(3.66e-5, rel=1e-3)
    assert si_per_nm == pytest.approx(0.441, abs=5e-4)
    assert SI.expansion == pytest.approx(2.27, abs=0.01)
    # The growth model's SiO2/Si volume ratio is the one of the 2.2 g/cm³ oxide used here.
    assert SI.expansion == pytest.approx(VOLUME_EXPANSION["Si"], rel=5e-3)
    assert 1.0 / SI.o_g_per_m2_nm == pytest.approx(854, abs=1)  # §8: 854 = 1000/1.171
    assert comp.o2_mol_per_kg_nm(12) == pytest.approx(0.439, abs=5e-4)
    assert SI.dh_dry_kj_mol == pytest.approx(-911, abs=0.5)
    assert SI.dh_wet_kj_mol == pytest.approx(-427, abs=0.5)
    # At the thermal-oxide density the note's Si per nm would be 0.455.
    thermal = comp.SIO2_THERMAL_DENSITY_G_CM3 / comp.SIO2_DENSITY_G_CM3
    assert si_per_nm * thermal == pytest.approx(0.455, abs=1e-3)


def test_tin_constants() -> None:
    mol_per_m2_nm = comp.SNO2_MOL_PER_M2_NM
    assert mol_per_m2_nm == pytest.approx(6.95e-3 / 150.71, rel=1e-12)
    assert SN.expansion == pytest.approx(VOLUME_EXPANSION["Sn"], rel=0.02)
    assert SN.dh_dry_kj_mol == pytest.approx(-577.63)
    assert SN.dh_wet_kj_mol == pytest.approx(-577.63 + 2 * 241.82)


# --------------------------------------------------------------------------- worked examples


def test_oxygen_content_of_a_10_nm_shell_at_14_m2_g() -> None:
    assert comp.oxide_per_kg(10, 14) == pytest.approx(5.13, abs=0.01)
    assert comp.oxygen_wt_pct(10, 14) == pytest.approx(14.1, abs=0.05)  # flat, starting basis
    # 16.4 wt % if S was measured on the oxidised powder (§1).
    assert comp.oxygen_wt_pct(10, 14, basis="oxidised") == pytest.approx(16.4, abs=0.05)


def test_native_oxide_oxygen_contents() -> None:
    # §1: a native 1.5 nm oxide gives 2.4 wt % O at S = 14 and 5.0 wt % at S = 30.
    assert comp.oxygen_wt_pct(1.5, 14) == pytest.approx(2.4, abs=0.05)
    assert comp.oxygen_wt_pct(1.5, 30) == pytest.approx(5.0, abs=0.05)


def test_oxide_share_of_the_product() -> None:
    # §1: a 10 nm shell at S = 12 is 0.264 kg SiO2 per kg, ~23 % of the product mass.
    n = comp.oxide_per_kg(10, 12)
    assert n * comp.M_SIO2 / 1000 == pytest.approx(0.264, abs=1e-3)
    u = 2 * comp.M_O * n / 1000
    assert n * comp.M_SIO2 / 1000 / (1 + u) == pytest.approx(0.23, abs=0.005)


def test_o2_demand_and_heat_of_the_58_kg_charge() -> None:
    mol = comp.o2_demand_mol(10, 12, 58)
    assert mol == pytest.approx(255, abs=0.5)
    assert mol * 31.998 / 1000 == pytest.approx(8.2, abs=0.05)  # kg O2
    assert mol * 22.414 / 1000 == pytest.approx(5.71, abs=0.01)  # m³ at 0 °C, 1 atm
    assert comp.reaction_heat_mj(10, 12, 58) == pytest.approx(232, abs=0.5)
    assert comp.reaction_heat_mj(10, 12, 58, oxidant="H2O") == pytest.approx(109, abs=0.5)
    assert comp.o2_demand_mol(10, 12, 58, oxidant="H2O") == pytest.approx(2 * mol)  # 510 H2O
    # Heat per kg per nm at S = 12: 400 kJ.
    assert comp.reaction_heat_mj(1, 12, 1) * 1000 == pytest.approx(400, abs=1)


def test_demand_from_an_initial_oxide_is_the_difference() -> None:
    full = comp.o2_demand_mol(10, 12, 58)
    assert comp.o2_demand_mol(10, 12, 58, initial_nm=2) == pytest.approx(
        full - comp.o2_demand_mol(2, 12, 58))
    # §1 gas supply: 22.3 mol O2 is 0.87 nm mean on 58 kg at S = 12.
    assert 22.3 / (comp.o2_mol_per_kg_nm(12) * 58) == pytest.approx(0.87, abs=0.01)


def test_si_consumed() -> None:
    # 0.441 nm Si per nm SiO2 on S·x of surface: 14.4 % of the Si at 10 nm, S = 14.
    expected = 100 * comp.SI_NM_PER_SIO2_NM * 10e-9 * 14 * comp.SI_DENSITY_G_CM3 * 1e6
    assert comp.si_consumed_wt_pct(10, 14) == pytest.approx(expected, rel=1e-9)
    assert comp.si_consumed_wt_pct(10, 14) == pytest.approx(14.4, abs=0.05)
    # Per Si mass in an 80 % Si alloy powder the share is 1/0.8 larger.
    assert comp.si_consumed_wt_pct(10, 14, metal_fraction=0.8) == pytest.approx(14.4 / 0.8,
                                                                                 abs=0.1)


def test_lab_inversion_and_basis_error() -> None:
    w = comp.oxygen_wt_pct(10, 14)
    assert comp.thickness_from_oxygen_nm(w, 14) == pytest.approx(10, rel=1e-12)
    assert comp.thickness_from_oxygen_nm(14.1, 14) == pytest.approx(
        854 * 0.141 / (0.859 * 14), rel=2e-3)  # §8's formula
    # The product-basis S of the same powder (flat: area kept, mass 1 + u).
    u = (w / 100) / (1 - w / 100)
    s_product = 14 / (1 + u)
    assert comp.ssa_starting_m2_g(s_product, w) == pytest.approx(14, rel=1e-12)
    assert comp.thickness_from_oxygen_nm(w, s_product, basis="oxidised") == pytest.approx(
        10, rel=1e-12)
    # Using it in the starting-basis formula reads 16 % thick (§8).
    wrong = comp.thickness_from_oxygen_nm(w, s_product)
    assert wrong / 10 == pytest.approx(1.164, abs=0.002)


def test_feed_oxygen_is_subtracted_exactly() -> None:
    w = comp.oxygen_wt_pct(10, 14, feed_oxygen_wt_pct=2.0)
    assert w == pytest.approx(100 * (0.02 + 0.16404) / 1.16404, rel=1e-4)
    assert comp.thickness_from_oxygen_nm(w, 14, feed_oxygen_wt_pct=2.0) == pytest.approx(
        10, rel=1e-12)
    # Naive subtraction of the wt % is not the same (the uptake dilutes the feed O).
    naive = comp.thickness_from_oxygen_nm(w - 2.0, 14)
    assert abs(naive - 10) > 0.1


def test_sphere_factor_of_the_note() -> None:
    # §8: d_BET = 184 nm, x = 10 nm: factor 0.90 on the oxidised particle's outer radius,
    # so the flat formula reads ~10 % low there.
    s = 14.0
    w = comp.oxygen_wt_pct(10, s, radius_nm=92, basis="oxidised")
    flat = comp.thickness_from_oxygen_nm(w, s, basis="oxidised")
    assert flat / 10 == pytest.approx(1 - 10 / 92 + 100 / (3 * 92**2), rel=1e-9)
    assert flat / 10 == pytest.approx(0.90, abs=0.01)
    # On the starting radius the shell straddles the old surface: ~1 % more than flat.
    w0 = comp.oxygen_wt_pct(10, s, radius_nm=92)
    assert comp.thickness_from_oxygen_nm(w0, s) / 10 == pytest.approx(1.008, abs=0.002)


def test_sphere_starting_basis_matches_shell_geometry() -> None:
    r0, x = 50.0, 12.0
    y = comp.oxide_per_kg(x, 1.0, radius_nm=r0) / (comp.SIO2_MOL_PER_M2_NM * 1000)
    a3 = r0**3 - 3 * r0**2 * y / SI.expansion
    b3 = a3 + 3 * r0**2 * y
    assert np.cbrt(b3) - np.cbrt(a3) == pytest.approx(x, rel=1e-10)
    assert b3 - a3 == pytest.approx(SI.expansion * (r0**3 - a3), rel=1e-10)


# --------------------------------------------------------------------------- caps


def test_fully_oxidised_particle_is_capped() -> None:
    r0 = 92.0
    s = 3.0 / (comp.SI_DENSITY_G_CM3 * r0 * 1e-3)  # m²/g of spheres of radius r0
    x_full = np.cbrt(SI.expansion) * r0
    n_full = comp.oxide_per_kg(x_full, s, radius_nm=r0)
    assert n_full == pytest.approx(1000 / comp.M_SI, rel=1e-9)  # all Si oxidised
    assert comp.oxide_per_kg(5 * x_full, s, radius_nm=r0) == n_full
    assert comp.si_consumed_wt_pct(5 * x_full, s, radius_nm=r0) == pytest.approx(100)
    assert comp.oxygen_wt_pct(5 * x_full, s, radius_nm=r0) == pytest.approx(
        100 * 2 * comp.M_O / (comp.M_SI + 2 * comp.M_O))  # SiO2: 53.3 wt % O
    # The inversion returns the oxidised-through thickness, and refuses more O than that.
    w = comp.oxygen_wt_pct(x_full, s, radius_nm=r0)
    assert comp.thickness_from_oxygen_nm(w, s, radius_nm=r0) == pytest.approx(x_full, rel=1e-9)
    with pytest.raises(PhysicsError, match="oxidised through|complete oxidation"):
        comp.thickness_from_oxygen_nm(w + 1, s, radius_nm=r0)
    # On the oxidised basis the shell stops at the outer radius.
    assert comp.oxide_per_kg(200, 5, radius_nm=r0, basis="oxidised") == comp.oxide_per_kg(
        r0, 5, radius_nm=r0, basis="oxidised")


def test_flat_cap_is_complete_conversion_of_the_metal() -> None:
    assert comp.oxide_per_kg(1e6, 14) == pytest.approx(1000 / comp.M_SI)
    assert comp.oxide_per_kg(1e6, 14, metal_fraction=0.5) == pytest.approx(500 / comp.M_SI)
    assert comp.oxide_per_kg(1e6, 14, material="Sn") == pytest.approx(1000 / comp.M_SN)
    with pytest.raises(PhysicsError, match="complete oxidation"):
        comp.thickness_from_oxygen_nm(60, 14)  # SiO2 is 53.3 wt % O


# --------------------------------------------------------------------------- composition


def test_oxidised_composition_of_an_alloy() -> None:
    out = comp.oxidised_composition({"Si": 0.8, "Ti": 0.2}, 10, 14, feed_oxygen_wt_pct=1.0)
    assert list(out) == ["Si", "Ti", "O"]
    assert sum(out.values()) == pytest.approx(1.0, abs=1e-12)
    assert out["Si"] / out["Ti"] == pytest.approx(4.0)  # the alloy elements keep their ratio
    assert 100 * out["O"] == pytest.approx(comp.oxygen_wt_pct(10, 14, feed_oxygen_wt_pct=1.0))
    # The same powder given with its O in the composition.
    same = comp.oxidised_composition({"Si": 0.792, "Ti": 0.198, "O": 0.01}, 10, 14)
    for element, fraction in out.items():
        assert same[element] == pytest.approx(fraction, rel=1e-9)


def test_oxidised_composition_tin_and_cap() -> None:
    out = comp.oxidised_composition({"Sn": 0.6, "Cu": 0.4}, 3, 5)
    assert 100 * out["O"] == pytest.approx(comp.oxygen_wt_pct(3, 5, material="Sn"))
    # A thick layer cannot oxidise more Si than the alloy holds (20 % Si here).
    capped = comp.oxidised_composition({"Si": 0.2, "Fe": 0.8}, 1e4, 14)
    o_max = (2 * comp.M_O / comp.M_SI) * 0.2
    assert capped["O"] == pytest.approx(o_max / (1 + o_max))


def test_composition_vectorised() -> None:
    out = comp.oxidised_composition({"Si": 1.0}, np.array([0.0, 5.0, 10.0]), 14)
    o = np.asarray(out["O"])
    assert o.shape == (3,) and o[0] == 0 and np.all(np.diff(o) > 0)
    assert np.allclose(np.asarray(out["Si"]) + o, 1.0)


# --------------------------------------------------------------------------- properties

thickness = st.floats(0.0, 60.0)
ssa = st.floats(0.5, 40.0)
feed = st.floats(0.0, 5.0)
radius = st.floats(20.0, 2000.0)


@FAST
@given(thickness, ssa, feed, st.sampled_from(["Si", "Sn"]), st.sampled_from(["starting",
                                                                            "oxidised"]))
def test_round_trip_flat(x: float, s: float, w_f: float, material: str, basis: str) -> None:
    w = comp.oxygen_wt_pct(x, s, feed_oxygen_wt_pct=w_f, material=material, basis=basis)
    if comp.oxide_per_kg(x, s, material=material, basis=basis) >= 1000 / comp.OXIDES[
            material].m_metal * (1 - 1e-9):
        return  # capped at complete conversion: no unique thickness
    back = comp.thickness_from_oxygen_nm(w, s, feed_oxygen_wt_pct=w_f, material=material,
                                         basis=basis)
    assert back == pytest.approx(x, rel=1e-9, abs=1e-9)


@FAST
@given(st.floats(0.0, 1.0), radius, feed, st.sampled_from(["Si", "Sn"]),
       st.sampled_from(["starting", "oxidised"]))
def test_round_trip_sphere(share: float, r: float, w_f: float, material: str,
                           basis: str) -> None:
    sysm = comp.OXIDES[material]
    x_full = np.cbrt(sysm.expansion) * r if basis == "starting" else r
    x = share * x_full * 0.999
    s = 3.0 / (sysm.rho_metal * r * 1e-3)  # BET-consistent spheres
    w = comp.oxygen_wt_pct(x, s, radius_nm=r, feed_oxygen_wt_pct=w_f, material=material,
                           basis=basis)
    back = comp.thickness_from_oxygen_nm(w, s, radius_nm=r, feed_oxygen_wt_pct=w_f,
                                         material=material, basis=basis)
    assert back == pytest.approx(x, rel=1e-7, abs=1e-7)


@FAST
@given(thickness, thickness, ssa, st.one_of(st.none(), radius))
def test_monotone_in_thickness(x1: float, x2: float, s: float, r: float | None) -> None:
    lo, hi = sorted((x1, x2))
    assert comp.oxygen_wt_pct(lo, s, radius_nm=r) <= comp.oxygen_wt_pct(hi, s, radius_nm=r)
    assert comp.oxide_per_kg(lo, s, radius_nm=r) <= comp.oxide_per_kg(hi, s, radius_nm=r)


@FAST
@given(st.floats(0.1, 40.0), st.floats(0.1, 40.0), ssa)
def test_inversion_monotone(w1: float, w2: float, s: float) -> None:
    lo, hi = sorted((w1, w2))
    assert comp.thickness_from_oxygen_nm(lo, s) <= comp.thickness_from_oxygen_nm(hi, s)
    assert comp.thickness_from_oxygen_nm(hi, s * 1.1) < comp.thickness_from_oxygen_nm(hi, s)


def test_monotone_in_surface_area_and_vectorised() -> None:
    s = np.linspace(1, 40, 20)
    w = np.asarray(comp.oxygen_wt_pct(10, s))
    assert w.shape == (20,) and np.all(np.diff(w) > 0)
    x = np.asarray(comp.thickness_from_oxygen_nm(w, s))
    assert np.allclose(x, 10, rtol=1e-12)


def test_sn_variant() -> None:
    x, s = 3.0, 5.0
    n = comp.oxide_per_kg(x, s, material="Sn")
    assert n == pytest.approx(6.95e-3 / 150.71 * 1000 * s * x, rel=1e-12)
    w = comp.oxygen_wt_pct(x, s, material="Sn")
    assert comp.thickness_from_oxygen_nm(w, s, material="Sn") == pytest.approx(x, rel=1e-12)
    # SnO2 per nm holds more O per area than SiO2, so the same O reads thinner as SnO2.
    assert comp.thickness_from_oxygen_nm(w, s) > x
    assert comp.reaction_heat_mj(x, s, 1, material="Sn") == pytest.approx(577.63 * n / 1000)
    assert comp.si_consumed_wt_pct(x, s, material="Sn") == pytest.approx(
        100 * n * comp.M_SN / 1000)


# --------------------------------------------------------------------------- precision


def test_error_propagation_defaults_to_the_note() -> None:
    assert comp.thickness_sigma_rel_o_bet(0.02, 0.03) == pytest.approx(np.hypot(0.02, 0.03))
    lo = comp.thickness_sigma_rel_o_bet(comp.OXYGEN_IGF.repeatability_rel[0],
                                        comp.BET.repeatability_rel[0])
    hi = comp.thickness_sigma_rel_o_bet(comp.OXYGEN_IGF.repeatability_rel[1],
                                        comp.BET.repeatability_rel[1])
    assert 0.01 < lo < hi < 0.04  # within §8's 3-6 % once between-sample effects are added
    assert comp.OXYGEN_IGF.estimate and comp.BET.estimate
    assert comp.OXYGEN_IGF.nominal_repeatability_rel == pytest.approx(0.015)


def _log_sensitivity(fn, value: float, h: float = 1e-6) -> float:  # type: ignore[no-untyped-def]
    return float((np.log(fn(value * (1 + h))) - np.log(fn(value * (1 - h)))) / (2 * h))


@pytest.mark.parametrize("basis", ["starting", "oxidised"])
@pytest.mark.parametrize("w_f", [0.0, 1.5])
def test_error_propagation_is_exact(basis: str, w_f: float) -> None:
    w, s = 14.09, 14.0

    def by_w(v: float) -> float:
        return float(comp.thickness_from_oxygen_nm(v, s, feed_oxygen_wt_pct=w_f, basis=basis))

    def by_s(v: float) -> float:
        return float(comp.thickness_from_oxygen_nm(w, v, feed_oxygen_wt_pct=w_f, basis=basis))

    s_w, s_s = _log_sensitivity(by_w, w), _log_sensitivity(by_s, s)
    expected = np.hypot(s_w * 0.02, s_s * 0.03)
    got = comp.thickness_sigma_rel_o_bet(0.02, 0.03, o_wt_pct=w, feed_oxygen_wt_pct=w_f,
                                         basis=basis)
    assert got == pytest.approx(expected, rel=1e-6)
    if w_f == 0 and basis == "starting":
        assert s_w == pytest.approx(1 / (1 - w / 100), rel=1e-6)  # the 1/(1 - w) term
    if w_f > 0:
        s_f = _log_sensitivity(lambda v: float(comp.thickness_from_oxygen_nm(
            w, s, feed_oxygen_wt_pct=v, basis=basis)), w_f)
        got_f = comp.thickness_sigma_rel_o_bet(0, 0, o_wt_pct=w, feed_oxygen_wt_pct=w_f,
                                               feed_rel_sd=0.05, basis=basis)
        assert got_f == pytest.approx(abs(s_f) * 0.05, rel=1e-6)


@pytest.mark.parametrize("basis", ["starting", "oxidised"])
def test_error_propagation_sphere_factor(basis: str) -> None:
    r, x, s = 92.0, 10.0, 14.0
    w = comp.oxygen_wt_pct(x, s, radius_nm=r, basis=basis)
    s_s = _log_sensitivity(lambda v: float(comp.thickness_from_oxygen_nm(
        w, v, radius_nm=r, basis=basis)), s)
    got = comp.thickness_sigma_rel_o_bet(0, 0.03, thickness_nm=x, radius_nm=r, basis=basis)
    assert got == pytest.approx(abs(s_s) * 0.03, rel=1e-5)
    if basis == "oxidised":
        assert abs(s_s) == pytest.approx(1.12, abs=0.01)


def test_xps_validity() -> None:
    assert comp.xps_valid(3.0) is True
    assert comp.xps_valid(0.5) is False and comp.xps_valid(12.0) is False
    assert comp.xps_valid(np.array([0.9, 1.0, 8.0, 8.1])).tolist() == [False, True, True, False]


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(("call", "message"), [
    (lambda: comp.oxide_per_kg(-1, 14), "thickness_nm"),
    (lambda: comp.oxide_per_kg(10, 0), "ssa_m2_g"),
    (lambda: comp.oxide_per_kg(10, [14, float("nan")]), "ssa_m2_g"),
    (lambda: comp.oxide_per_kg(10, 14, radius_nm=0), "radius_nm"),
    (lambda: comp.oxide_per_kg(10, 14, material="Ge"), "unknown material"),
    (lambda: comp.oxide_per_kg(10, 14, basis="final"), "basis"),
    (lambda: comp.oxide_per_kg(10, 14, metal_fraction=1.5), "metal_fraction"),
    (lambda: comp.oxide_per_kg("ten", 14), "thickness_nm"),
    (lambda: comp.oxygen_wt_pct(10, 14, feed_oxygen_wt_pct=100), "feed_oxygen_wt_pct"),
    (lambda: comp.o2_demand_mol(10, 12, -58), "mass_kg"),
    (lambda: comp.o2_demand_mol(10, 12, 58, oxidant="N2O"), "oxidant"),
    (lambda: comp.o2_demand_mol(1, 12, 58, initial_nm=2), "initial_nm"),
    (lambda: comp.thickness_from_oxygen_nm(-1, 14), "o_wt_pct_product"),
    (lambda: comp.thickness_from_oxygen_nm(100, 14), "o_wt_pct_product"),
    (lambda: comp.oxidised_composition({"Si": 0.8, "Ti": 0.3}, 10, 14), "sum to 1"),
    (lambda: comp.oxidised_composition({}, 10, 14), "non-empty"),
    (lambda: comp.oxidised_composition({"Fe": 1.0}, 10, 14), "no Sn"),
    (lambda: comp.oxidised_composition({"Si": 0.99, "O": 0.01}, 10, 14,
                                       feed_oxygen_wt_pct=1), "once"),
    (lambda: comp.thickness_sigma_rel_o_bet(-0.1, 0.02), "o_rel_sd"),
    (lambda: comp.thickness_sigma_rel_o_bet(0.01, 0.02, o_wt_pct=1, feed_oxygen_wt_pct=2),
     "o_wt_pct"),
    (lambda: comp.thickness_sigma_rel_o_bet(0.01, 0.02, radius_nm=50), "thickness_nm"),
    (lambda: comp.xps_valid(-1), "thickness_nm"),
])
def test_bad_inputs_raise_one_line(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PhysicsError, match=message) as info:
        call()
    assert "\n" not in str(info.value) and str(info.value).startswith("composition: ")


def test_noise_below_the_feed_gives_a_negative_thickness() -> None:
    x = comp.thickness_from_oxygen_nm(1.9, 14, feed_oxygen_wt_pct=2.0)
    assert x < 0
    assert comp.thickness_from_oxygen_nm(1.9, 14, feed_oxygen_wt_pct=2.0, radius_nm=92) < 0
