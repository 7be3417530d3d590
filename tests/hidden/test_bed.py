"""The hidden plant's powder-bed oxidation (twin.hidden.bed): physics limits and invariants.

Each test states the physics it guards; tolerances are those the numerics honestly reach.
"""

from __future__ import annotations

import csv
import math
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from twin.errors import PhysicsError
from twin.hidden.bed import ChargeInputs, ChargeResult, Numerics, solve_charges
from twin.hidden.kinetics import K_B_EV, BedParams, Kinetics
from twin.physics.oxidation import Calibration, Profile, grow_flat

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "oxidation_reference.csv"
SLM_MOL_S = 1.0 / 22.414 / 60.0  # standard litre per minute (0 °C) in mol/s
# A bed that follows the wall and never runs short of gas: 0.1 mm trays, huge conductivity
# and surface transfer, one layer.
NO_LAG = BedParams(tray_depth_m=1e-4, k_eff_w_m_k=1e3, h_conv_w_m2_k=1e6, layers=1)
FACET_100 = (1.0, 0.0, 0.0)


def _inputs(time_s: np.ndarray, wall_c: np.ndarray, *, o2: float, h2o: float, total: float,
            mass: float = 58.0, ssa: float = 13.0, d50: float = 0.27, gsd: float = 2.2,
            x0: float = 1.0, phase: float = 1.0, rate: float = 1.0) -> ChargeInputs:
    """One charge; ``wall_c`` (Z, n) or (n,) for one zone; flows in mol/s."""
    wall = np.atleast_2d(wall_c)
    n = time_s.size
    return ChargeInputs(time_s[None, :], wall[None], np.full((1, n), o2), np.full((1, n), h2o),
                        np.full((1, n), total), np.array([mass]), np.array([ssa]),
                        np.array([d50]), np.array([gsd]), np.array([x0]), np.array([phase]),
                        np.array([rate]))


def _stack(charges: list[ChargeInputs]) -> ChargeInputs:
    return ChargeInputs(*(np.concatenate([getattr(c, f.name) for c in charges])
                          for f in fields(ChargeInputs)))


def _recipe(hold_c: float = 850.0, hold_min: float = 240.0, *, ramp: float = 10.0,
            cool: float = 15.0, start: float = 25.0, knot_s: float = 60.0
            ) -> tuple[np.ndarray, np.ndarray]:
    """Ramp - hold - cool profile on regular knots: (time_s, wall_c)."""
    t1 = (hold_c - start) / ramp * 60.0
    t2 = t1 + hold_min * 60.0
    t3 = t2 + (hold_c - start) / cool * 60.0
    t = np.append(np.arange(0.0, t3, knot_s), t3)
    return t, np.interp(t, [0.0, t1, t2, t3], [start, hold_c, hold_c, start])


def _plant(slm: float = 120.0, hold_c: float = 850.0, hold_min: float = 240.0, zones: int = 3,
           **kw: float) -> ChargeInputs:
    """The default-like charge: 58 kg, 13 m²/g, d50 0.27 µm, humid air 0.21/0.02 atm."""
    t, wall = _recipe(hold_c, hold_min)
    f = slm * SLM_MOL_S
    return _inputs(t, np.tile(wall, (zones, 1)), o2=0.21 * f, h2o=0.02 * f, total=f, **kw)


def _isothermal(temp_c: float, minutes: float, *, po2: float = 1.0, ph2o: float = 0.0,
                d50: float = 2000.0, x0: float = 0.0, mass: float = 1e-6) -> ChargeInputs:
    """A tiny charge at constant temperature in an ample gas flow (10 mol/s)."""
    t = np.array([0.0, minutes * 60.0])
    return _inputs(t, np.full(2, temp_c), o2=po2 * 10.0, h2o=ph2o * 10.0, total=10.0,
                   mass=mass, ssa=1.0, d50=d50, gsd=1.0, x0=x0)


# --------------------------------------------------------------------------- flat limits

@pytest.mark.parametrize("thin_model", ["suprem", "none"])
@pytest.mark.parametrize("orientation,weights", [("100", FACET_100), ("111", (0.0, 1.0, 0.0))])
@pytest.mark.parametrize("temp_c,minutes", [(800.0, 240.0), (900.0, 60.0), (1000.0, 60.0)])
def test_flat_limit_reproduces_the_twins_flat_law(thin_model: str, orientation: str,
                                                 weights: tuple[float, float, float],
                                                 temp_c: float, minutes: float) -> None:
    # 4 mm spheres, no stress, no lag, ample O2, one facet: the standard-constant Deal-Grove
    # (+ SUPREM-IV thin term) law of the twin, to 1 %.
    kin = Kinetics(thin_model=thin_model, orientation_weights=weights, stress_sigma0_pa=0.0)
    res = solve_charges(_isothermal(temp_c, minutes), kin, NO_LAG, numerics=Numerics(size_bins=1))
    ref = grow_flat(Profile.constant(temp_c, minutes * 60.0, 1.0, 0.0), orientation=orientation,
                    thin_model=thin_model)
    assert res.mean_nm[0] == pytest.approx(ref, rel=0.01)


def test_rate_factor_multiplies_every_rate_constant() -> None:
    # The per-charge factor (tube ageing) scales B, B/A and the thin term alike: the twin's
    # flat law with the same factor on all three calibration constants.
    kin = Kinetics(orientation_weights=FACET_100, stress_sigma0_pa=0.0)
    inp = replace(_isothermal(900.0, 60.0, po2=0.3, ph2o=0.1), rate_factor=np.array([0.45]))
    res = solve_charges(inp, kin, NO_LAG, numerics=Numerics(size_bins=1))
    ref = grow_flat(Profile.constant(900.0, 3600.0, 0.3, 0.1), orientation="100",
                    calibration=Calibration(0.45, 0.45, 0.45))
    assert res.mean_nm[0] == pytest.approx(ref, rel=0.02)


def _reference_rows() -> list[dict[str, str]]:
    with REFERENCE.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    # Massoud's (111) and (110) fits are not the hidden law's (it scales (100) by facet).
    return [r for r in rows if not ("Massoud" in r["kind"] and r["orientation"] != "100")
            and r["ambient"] != "dry_air"]


def test_published_reference_cases_in_the_flat_and_sphere_limits() -> None:
    # Every published-constant case of the shared reference (flat Deal-Grove dry and wet,
    # SUPREM-IV and Massoud (100) thin regimes, spheres without stress), solved together as
    # one batch per law: within the team's 5 % (0.3 nm below 6 nm).
    rows = _reference_rows()
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    for r in rows:
        thin = ("massoud" if "Massoud" in r["kind"] else "none" if r["case"].startswith("dg")
                else "suprem")
        groups.setdefault((thin, r["orientation"]), []).append(r)
    checked = 0
    for (thin, orient), grp in groups.items():
        weights = (float(orient == "100"), float(orient == "111"), float(orient == "110"))
        kin = Kinetics(thin_model=thin, orientation_weights=weights, stress_sigma0_pa=0.0)
        charges = []
        for r in grp:
            radius = float(r["radius_nm"]) if r["radius_nm"] else 2e6
            charges.append(_isothermal(float(r["temperature_c"]), float(r["minutes"]),
                                       po2=float(r["po2_atm"]), ph2o=float(r["ph2o_atm"]),
                                       d50=2.0 * radius / 1000.0, x0=float(r["initial_nm"])))
        res = solve_charges(_stack(charges), kin, NO_LAG, numerics=Numerics(size_bins=1))
        for i, r in enumerate(grp):
            if r["thickness_nm"] == "fully_oxidized":
                assert res.fully_oxidised_share[i] == 1.0, r["case"]
            else:
                want = float(r["thickness_nm"])
                tol = 0.3 if want < 6.0 else 0.05 * want
                assert abs(res.mean_nm[i] - want) <= tol, (r["case"], res.mean_nm[i], want)
            checked += 1
    assert checked >= 200


def _sphere_ode(kin: Kinetics, radius_nm: float, x0_nm: float, temp_c: float,
                minutes: float) -> float:
    """Reference: the documented sphere law with stress at 1 atm O2, integrated by scipy."""
    e = 2.27
    kt = K_B_EV * (temp_c + 273.15)
    b = kin.dry_b0_nm2_s * math.exp(-kin.dry_eb_ev / kt)
    ba = kin.dry_ba0_111_nm_s * kin.ba_orientation[0] * math.exp(-kin.dry_eba_ev / kt)
    c0, ec, length = kin.suprem_thin[0]
    c = c0 * math.exp(-ec / kt)
    relief = 1.0 / (1.0 + math.exp((temp_c - kin.relief_onset_c) / kin.relief_width_k))
    s_kt = kin.stress_sigma0_pa * 1e-27 * relief / (1.380649e-23 * (temp_c + 273.15))
    a0 = radius_nm - x0_nm
    r0 = (a0**3 + (radius_nm**3 - a0**3) / e) ** (1.0 / 3.0)

    def shell(d: float) -> tuple[float, float, float]:
        a = max(r0 - d, 0.0)
        outer = (a**3 + e * (r0**3 - a**3)) ** (1.0 / 3.0)
        return a, outer - a, a * (outer - a) / outer

    def rhs(_t: float, y: np.ndarray) -> list[float]:
        a, x, x_eff = shell(float(y[0]))
        if a <= 0.0:
            return [0.0]
        sigma = x / (x + radius_nm) * s_kt
        f_k = math.exp(-sigma * kin.stress_v_react_nm3)
        f_d = math.exp(-sigma * kin.stress_v_diff_nm3)
        rate = b * f_d / (2.0 * x_eff + b / ba * f_d / f_k) + c * f_k * math.exp(-x / length)
        return [rate / e]

    sol = solve_ivp(rhs, (0.0, minutes * 60.0), [r0 - a0], method="LSODA", rtol=1e-10,
                    atol=1e-12)
    return shell(float(sol.y[0, -1]))[1]


@pytest.mark.parametrize("radius_nm,temp_c,minutes", [(15.0, 850.0, 120.0), (40.0, 950.0, 60.0),
                                                      (8.0, 800.0, 240.0)])
def test_stressed_sphere_matches_an_ode_reference(radius_nm: float, temp_c: float,
                                                  minutes: float) -> None:
    # The solver's large closed-form steps on a small stressed sphere agree with a tight ODE
    # integration of the same law (sphere geometry, Kao stress, thin term) to 1 %.
    kin = Kinetics(orientation_weights=FACET_100)
    inp = _isothermal(temp_c, minutes, d50=2.0 * radius_nm / 1000.0, x0=1.0)
    res = solve_charges(inp, kin, NO_LAG, numerics=Numerics(size_bins=1))
    assert res.mean_nm[0] == pytest.approx(_sphere_ode(kin, radius_nm, 1.0, temp_c, minutes),
                                           rel=0.01)


# --------------------------------------------------------------------------- gas and mass

def test_oxygen_consumed_equals_oxide_formed() -> None:
    # O2 + H2O/2 taken up = SiO2 formed; on coarse (flat-like) particles that is thickness ×
    # area × 3.66e-5 mol/(m² nm) (note §1), here to 1 %; never more O2 than delivered.
    inp = _plant(slm=60.0, hold_c=900.0, hold_min=120.0, mass=20.0, ssa=1.0, d50=20.0, gsd=1.3,
                 x0=0.0)
    res = solve_charges(inp, Kinetics(), BedParams())
    formed = res.o2_consumed_mol + 0.5 * res.h2o_consumed_mol
    assert formed == pytest.approx(res.oxide_formed_mol, rel=1e-12)
    area_m2 = 20.0 * 1.0 * 1e3
    grown_nm = (res.class_weight * res.class_thickness_nm).sum()  # x0 = 0
    assert formed[0] == pytest.approx(grown_nm * area_m2 * 3.66e-5, rel=0.01)
    assert res.o2_consumed_mol[0] <= res.o2_delivered_mol[0]
    assert res.h2o_consumed_mol[0] <= res.h2o_delivered_mol[0]
    assert res.o2_consumed_mol[0] > 0 and res.h2o_consumed_mol[0] > 0


def test_loading_effect_more_surface_grows_thinner() -> None:
    # Same recipe: twice the mass or twice the BET surface takes more gas from the same
    # supply and gets a thinner mean shell (note §3).
    base = solve_charges(_plant(), Kinetics(), BedParams())
    heavy = solve_charges(_plant(mass=116.0), Kinetics(), BedParams())
    fine = solve_charges(_plant(ssa=26.0), Kinetics(), BedParams())
    assert heavy.mean_nm[0] < 0.85 * base.mean_nm[0]
    assert fine.mean_nm[0] < 0.85 * base.mean_nm[0]
    # Loading acts through the gas: with an ample supply in a thin bed it vanishes.
    ample = [solve_charges(_plant(slm=1e5, mass=m), Kinetics(), NO_LAG).mean_nm[0]
             for m in (0.01, 0.02)]
    assert ample[1] == pytest.approx(ample[0], rel=1e-3)


def test_supply_limited_growth_rate_is_the_oxygen_feed() -> None:
    # A big, fine, hot charge on 2 slm of dry air: growth is supply limited, the mean rate
    # is F_O2 / (n_O2 m) with n_O2 = 3.66e-5 · 1000 S mol per kg and nm (note §1).
    minutes = 120.0
    t = np.linspace(0.0, minutes * 60.0, 121)
    f = 2.0 * SLM_MOL_S
    inp = _inputs(t, np.full((3, t.size), 950.0), o2=0.21 * f, h2o=0.0, total=f, mass=58.0,
                  ssa=12.0, d50=10.0, gsd=1.5, x0=0.0)
    res = solve_charges(inp, Kinetics(), BedParams())
    n_o2 = 3.66e-5 * 1e3 * 12.0
    rate_nm_s = 0.21 * f / (n_o2 * 58.0)
    assert res.supply_limited_share[0] > 0.95
    assert res.o2_consumed_mol[0] == pytest.approx(res.o2_delivered_mol[0], rel=0.03)
    assert res.mean_nm[0] / (minutes * 60.0) == pytest.approx(rate_nm_s, rel=0.03)


def test_deep_trays_oxidise_the_top_first() -> None:
    # Gas reaches the bed by diffusion from its surface: deeper layers get a thinner oxide,
    # more so in deeper trays (Thiele slab, note §3).
    def spread(depth_m: float) -> float:
        res = solve_charges(_plant(), Kinetics(), replace(BedParams(), tray_depth_m=depth_m))
        zl = res.zone_layer_mean_nm[0, 0]
        assert np.all(np.diff(zl) < 0)
        return float(zl[0] / zl[-1])

    assert spread(0.024) > spread(0.012) > spread(0.004) > 1.0


# --------------------------------------------------------------------------- heat

def _ramp_lag(depth_m: float, k_e: float = 0.25, h_conv: float = 10.0, layers: int = 3,
              faces: int = 1) -> tuple[np.ndarray, float]:
    """Layer lags (K) behind the wall near the end of a 10 K/min ramp without gas."""
    t = np.arange(0.0, 5401.0, 60.0)
    wall = 25.0 + t / 6.0
    inp = _inputs(t, wall, o2=0.0, h2o=0.0, total=0.0)
    bed = BedParams(tray_depth_m=depth_m, k_eff_w_m_k=k_e, h_conv_w_m2_k=h_conv, layers=layers,
                    heated_faces=faces)
    res = solve_charges(inp, Kinetics(), bed)
    k = int(np.argmin(np.abs(res.grid_time_s[0] - 5000.0)))
    lag = res.wall_grid_c[0, 0, k] - res.bed_c[0, 0, :, k]
    return lag, float(res.wall_grid_c[0, 0, k])


def test_bed_lags_the_wall_during_a_ramp() -> None:
    # Deeper layers lag more; the conduction lag grows as the tray depth squared (note §2),
    # the surface resistance adds a part growing as the depth.
    lag12, _ = _ramp_lag(0.012)
    lag24, _ = _ramp_lag(0.024)
    assert np.all(lag12 > 0) and np.all(np.diff(lag12) > 0)
    assert 2.5 < lag24[-1] / lag12[-1] < 4.0
    cond12, _ = _ramp_lag(0.012, h_conv=1e7)
    cond24, _ = _ramp_lag(0.024, h_conv=1e7)
    assert cond24 / cond12 == pytest.approx(np.full(3, 4.0), rel=0.03)


def test_ramp_lag_matches_the_slab_formula() -> None:
    # Quasi-steady lag of a slab heated on its top face: β (h z - z²/2) / α at depth z,
    # β h² / (2α) at the bottom: 84 K for h = 15 mm, α = 2.2e-7 m²/s at 10 K/min (note §2).
    k_e = 2.2e-7 * 1000.0 * 940.0
    lag, _ = _ramp_lag(0.015, k_e=k_e, h_conv=1e7, layers=12)
    z = (np.arange(12) + 0.5) / 12 * 0.015
    expected = (10.0 / 60.0) * (0.015 * z - 0.5 * z * z) / 2.2e-7
    assert lag == pytest.approx(expected, rel=0.02, abs=0.3)
    assert expected[-1] == pytest.approx(84.0, rel=0.02)
    # Heated from both faces: β z (h - z) / (2α), a quarter of the one-face maximum.
    both, _ = _ramp_lag(0.015, k_e=k_e, h_conv=1e7, layers=12, faces=2)
    assert both == pytest.approx((10.0 / 60.0) * z * (0.015 - z) / (2 * 2.2e-7), rel=0.02,
                                 abs=0.3)


def test_reaction_heats_the_bed_and_heat_equals_the_reaction_enthalpy() -> None:
    # High demand: the bed runs hotter than the wall in the hold; heat released = 911 kJ per
    # mol SiO2 from O2 + 427 kJ per mol from H2O (note §1).
    res = solve_charges(_plant(slm=250.0, hold_min=120.0), Kinetics(), BedParams())
    assert res.peak_self_heating_k[0] > 10.0
    t = res.grid_time_s[0]
    hold = (t > 90 * 60.0) & (t < 190 * 60.0)
    excess = res.bed_c[0, :, 0, hold] - res.wall_grid_c[0, :, hold]
    assert excess.max() > 10.0
    expect_mj = 0.911 * res.o2_consumed_mol[0] + 0.427 * 0.5 * res.h2o_consumed_mol[0]
    assert res.heat_mj[0] == pytest.approx(expect_mj, rel=2e-3)
    # Without gas there is no heat and the bed only lags.
    cold = solve_charges(_plant(slm=0.0), Kinetics(), BedParams())
    assert cold.heat_mj[0] == 0.0 and cold.peak_self_heating_k[0] == 0.0


# --------------------------------------------------------------------------- particles

def test_stress_retards_small_spheres_below_the_viscous_relief() -> None:
    # Kao-type stress: 10 nm particles grow less than 1 µm ones at 800 °C, and the stress
    # part of the difference vanishes above ~1000 °C (viscous relief, note §4).
    def mean(d50_um: float, temp_c: float, minutes: float, sigma0: float) -> float:
        kin = Kinetics(orientation_weights=FACET_100, stress_sigma0_pa=sigma0)
        inp = _isothermal(temp_c, minutes, d50=d50_um, x0=0.5)
        return float(solve_charges(inp, kin, NO_LAG, numerics=Numerics(size_bins=1)).mean_nm[0])

    s0 = Kinetics().stress_sigma0_pa
    assert mean(0.01, 800.0, 120.0, s0) < 0.7 * mean(1.0, 800.0, 120.0, s0)
    low = mean(0.02, 800.0, 120.0, s0) / mean(0.02, 800.0, 120.0, 0.0)
    high = mean(0.02, 1050.0, 5.0, s0) / mean(0.02, 1050.0, 5.0, 0.0)
    big = mean(1.0, 800.0, 120.0, s0) / mean(1.0, 800.0, 120.0, 0.0)
    assert low < 0.93 and high > 0.99 and big > 0.99


def test_orientation_mix_widens_and_second_phase_shifts() -> None:
    # Mixed facets (B/A and the thin term depend on the facet) spread the thickness of
    # equal particles; a second phase with its own rate moves the mean.
    t = np.array([0.0, 3600.0])

    def run(weights: tuple[float, float, float], phase: float) -> ChargeResult:
        inp = _inputs(t, np.full(2, 850.0), o2=10.0, h2o=0.0, total=10.0, mass=1e-6,
                      d50=2.0, gsd=1.0, x0=0.0, phase=phase)
        kin = Kinetics(orientation_weights=weights, stress_sigma0_pa=0.0)
        return solve_charges(inp, kin, NO_LAG, numerics=Numerics(size_bins=1))

    one = run(FACET_100, 1.0)
    mix = run(Kinetics().orientation_weights, 1.0)
    assert one.p95_nm[0] / one.p5_nm[0] == pytest.approx(1.0, abs=1e-9)
    assert mix.p95_nm[0] / mix.p5_nm[0] > 1.2
    alloy = run(Kinetics().orientation_weights, 0.6)
    assert abs(alloy.mean_nm[0] / mix.mean_nm[0] - 1.0) > 0.05
    assert alloy.class_weight[0, ..., 3].sum() == pytest.approx(0.4)


def test_zones_follow_their_own_wall_and_mass_share() -> None:
    # Each zone's trays see their own wall temperature; zone weights set the mass shares.
    t, wall = _recipe(850.0, 120.0)
    f = 500.0 * SLM_MOL_S
    inp = _inputs(t, np.stack([wall - 30.0, wall, wall + 30.0]), o2=0.21 * f, h2o=0.02 * f,
                  total=f)
    bed = BedParams(zone_weights=(0.5, 0.3, 0.2))
    res = solve_charges(inp, Kinetics(), bed)
    zone_mean = res.zone_layer_mean_nm[0].mean(axis=1)
    assert zone_mean[0] < zone_mean[1] < zone_mean[2]
    np.testing.assert_allclose(res.class_weight[0].sum(axis=(1, 2, 3)), [0.5, 0.3, 0.2])
    with pytest.raises(PhysicsError, match="zone_weights"):
        solve_charges(inp, Kinetics(), BedParams(zone_weights=(0.5, 0.5)))


def test_size_distribution_spreads_and_fines_oxidise_through() -> None:
    res = solve_charges(_plant(slm=2000.0, hold_c=1000.0, hold_min=240.0, d50=0.05, gsd=2.5),
                        Kinetics(), BedParams())
    assert res.p95_nm[0] > res.p50_nm[0] > res.p5_nm[0]
    assert 0.0 < res.fully_oxidised_share[0] < 1.0
    assert np.all(res.class_thickness_nm <= 1.001 * (2.27 ** (1 / 3))
                  * res.bin_radius_nm[0][None, None, None, :, None])


# --------------------------------------------------------------------------- tin

def test_tin_that_melts_is_refused() -> None:
    t = np.linspace(0.0, 3600.0, 61)
    hot = _inputs(t, np.full(t.size, 250.0), o2=0.1, h2o=0.0, total=0.5, mass=1.0, d50=5.0,
                  gsd=1.5)
    with pytest.raises(PhysicsError, match=r"tin melts at 231\.9 °C"):
        solve_charges(hot, Kinetics(), BedParams(), material="Sn")
    # The same profile is fine for Si, and for an alloy without a free tin phase.
    assert np.isfinite(solve_charges(hot, Kinetics(), BedParams()).mean_nm[0])
    no_sn = replace(hot, phase_area_fraction=np.array([0.0]))
    assert np.isfinite(solve_charges(no_sn, Kinetics(), BedParams(), material="Sn").mean_nm[0])


def test_tin_below_its_melting_point_grows_sno2() -> None:
    t = np.linspace(0.0, 3600.0, 61)
    # Coarse tin (0.2 m²/g, about its geometric surface): fine tin powder at 13 m²/g heats
    # itself past the melting point at 210 °C in this model, and is refused.
    inp = _inputs(t, np.full(t.size, 210.0), o2=0.1, h2o=0.01, total=0.5, mass=1.0, ssa=0.2,
                  d50=5.0, gsd=1.5, x0=2.0)
    res = solve_charges(inp, Kinetics(), BedParams(), material="Sn")
    assert res.peak_bed_c[0] < 231.9
    assert 2.0 < res.mean_nm[0] < 100.0 and res.o2_consumed_mol[0] > 0
    assert res.heat_mj[0] == pytest.approx(0.57763 * res.o2_consumed_mol[0]
                                           + 0.09399 * 0.5 * res.h2o_consumed_mol[0], rel=1e-3)
    with pytest.raises(PhysicsError, match="material"):
        solve_charges(inp, Kinetics(), BedParams(), material="Ge")


# --------------------------------------------------------------------------- numerics

def test_charges_solved_together_equal_charges_solved_alone() -> None:
    t, wall = _recipe(850.0, 120.0)
    shift = np.array([0.0, 40.0, -60.0, 10.0])
    charges = [_inputs(t * (1.0 + 0.2 * i), np.tile(wall + shift[i], (3, 1)),
                       o2=0.21 * f, h2o=0.02 * f, total=f, mass=m, ssa=s, d50=d, gsd=g,
                       x0=x0, phase=ph, rate=rf)
               for i, (f, m, s, d, g, x0, ph, rf) in enumerate([
                   (2.0 * SLM_MOL_S * 60, 58.0, 13.0, 0.27, 2.2, 1.0, 1.0, 1.0),
                   (0.5 * SLM_MOL_S * 60, 30.0, 20.0, 0.15, 1.8, 0.5, 0.8, 0.6),
                   (8.0 * SLM_MOL_S * 60, 80.0, 8.0, 1.0, 2.5, 2.0, 0.9, 1.5),
                   (0.0, 10.0, 13.0, 0.27, 2.2, 1.0, 1.0, 1.0)])]
    together = solve_charges(_stack(charges), Kinetics(), BedParams())
    for i, c in enumerate(charges):
        alone = solve_charges(c, Kinetics(), BedParams())
        for name in ("mean_nm", "p5_nm", "p95_nm", "o2_consumed_mol", "h2o_consumed_mol",
                     "heat_mj", "peak_self_heating_k", "supply_limited_share",
                     "zone_layer_mean_nm", "class_thickness_nm"):
            a, b = getattr(alone, name)[0], getattr(together, name)[i]
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12, err_msg=name)


def test_default_numerics_converge() -> None:
    # The default grid (a few hundred steps at most) against a 10x finer one: 2 %.
    inp = _plant(slm=250.0, hold_min=120.0)
    coarse = solve_charges(inp, Kinetics(), BedParams())
    fine = solve_charges(inp, Kinetics(), BedParams(),
                         numerics=Numerics(max_step_s=60.0, max_growth_nm=0.1,
                                           max_wall_change_k=8.0))
    assert coarse.grid_time_s.shape[1] < fine.grid_time_s.shape[1] / 5
    for name in ("mean_nm", "p95_nm", "o2_consumed_mol", "peak_self_heating_k"):
        assert getattr(coarse, name)[0] == pytest.approx(getattr(fine, name)[0], rel=0.02)


def test_coarse_knots_are_sub_stepped() -> None:
    # A ramp-hold-cool given by its 4 corners equals the same profile on 60 s knots.
    t, wall = _recipe(900.0, 120.0)
    corners = np.array([0.0, 87.5 * 60, 207.5 * 60, t[-1]])
    f = 120.0 * SLM_MOL_S
    fine = _inputs(t, np.tile(wall, (3, 1)), o2=0.21 * f, h2o=0.02 * f, total=f)
    coarse = _inputs(corners, np.tile(np.interp(corners, t, wall), (3, 1)), o2=0.21 * f,
                     h2o=0.02 * f, total=f)
    a = solve_charges(fine, Kinetics(), BedParams())
    b = solve_charges(coarse, Kinetics(), BedParams())
    assert b.grid_time_s.shape[1] > 20
    assert b.mean_nm[0] == pytest.approx(a.mean_nm[0], rel=0.01)
    assert b.o2_consumed_mol[0] == pytest.approx(a.o2_consumed_mol[0], rel=0.01)


def test_edge_cases_stay_finite() -> None:
    # No gas: nothing grows. No mass: kinetic growth, no uptake, no heat. Tiny particles
    # oxidise through and stop. All finite, never below the initial oxide.
    none = solve_charges(_plant(slm=0.0, x0=1.5), Kinetics(), BedParams())
    assert none.mean_nm[0] == pytest.approx(1.5, rel=1e-12) and none.o2_consumed_mol[0] == 0.0
    empty = solve_charges(_plant(mass=0.0), Kinetics(), BedParams())
    assert empty.mean_nm[0] > 5.0 and empty.o2_consumed_mol[0] == 0.0
    assert empty.heat_mj[0] == 0.0 and empty.supply_limited_share[0] == 0.0
    dust = solve_charges(_isothermal(1000.0, 600.0, d50=0.004, x0=0.5), Kinetics(), NO_LAG,
                         numerics=Numerics(size_bins=1))
    assert dust.fully_oxidised_share[0] == 1.0
    for res in (none, empty, dust):
        for f in fields(ChargeResult):
            assert np.all(np.isfinite(getattr(res, f.name))), f.name
        assert np.all(res.class_thickness_nm >= 0.0)


def test_spread_end_kinetics_grow_a_different_oxide() -> None:
    std = solve_charges(_plant(slm=2000.0, hold_min=60.0), Kinetics(), BedParams())
    other = solve_charges(_plant(slm=2000.0, hold_min=60.0), Kinetics.spread_end(), BedParams())
    assert abs(other.mean_nm[0] / std.mean_nm[0] - 1.0) > 0.05


@pytest.mark.parametrize("make,field", [
    (lambda: Kinetics(n_wet=1.5), "n_wet"),
    (lambda: Kinetics(thin_model="fast"), "thin_model"),
    (lambda: Kinetics(orientation_weights=(0.5, 0.5, 0.5)), "orientation_weights"),
    (lambda: BedParams(tray_depth_m=-0.01), "tray_depth_m"),
    (lambda: BedParams(layers=0), "layers"),
    (lambda: BedParams(zone_weights=(0.5, 0.6)), "zone_weights"),
    (lambda: Numerics(size_bins=0), "size_bins"),
    (lambda: replace(_plant(), gsd=np.array([0.5])), "gsd"),
    (lambda: replace(_plant(), time_s=_plant().time_s[:, ::-1]), "time_s"),
])
def test_bad_parameters_name_the_field(make: object, field: str) -> None:
    with pytest.raises(ValueError, match=field) as err:
        make()  # type: ignore[operator]
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- properties

PROPS = settings(max_examples=25, deadline=None)
# A fixed grid (no growth-driven steps) so that two profiles are integrated alike.
FIXED = Numerics(max_step_s=300.0, max_growth_nm=1e9, max_wall_change_k=1e9, size_bins=4)


def _kinetic_charge(offset_k: float, hold_min: float) -> ChargeInputs:
    t, wall = _recipe(850.0 + offset_k, hold_min, knot_s=300.0)
    return _inputs(t, np.tile(wall, (2, 1)), o2=2.0, h2o=0.2, total=10.0, mass=1e-3,
                   d50=0.1, gsd=2.0, x0=0.7)


@PROPS
@given(st.floats(-150.0, 150.0), st.floats(0.0, 60.0), st.floats(5.0, 240.0),
       st.floats(0.0, 120.0))
def test_thickness_rises_with_temperature_and_hold(offset: float, more_k: float, hold: float,
                                                   more_min: float) -> None:
    kin = Kinetics()
    base = solve_charges(_kinetic_charge(offset, hold), kin, NO_LAG, numerics=FIXED)
    hotter = solve_charges(_kinetic_charge(offset + more_k, hold), kin, NO_LAG, numerics=FIXED)
    longer = solve_charges(_kinetic_charge(offset, hold + more_min), kin, NO_LAG,
                           numerics=FIXED)
    x = base.class_thickness_nm
    assert np.all(np.isfinite(x)) and np.all(x >= 0.7 * (1 - 1e-12))
    assert np.all(hotter.class_thickness_nm >= x * (1 - 1e-6))
    assert np.all(longer.class_thickness_nm >= x * (1 - 1e-6))


@PROPS
@given(st.floats(10.0, 2000.0), st.floats(1.0, 100.0), st.floats(-100.0, 150.0))
def test_coupled_charge_stays_physical(slm: float, mass: float, offset: float) -> None:
    # Any flow, load and temperature: finite, oxide never below the initial, O2 taken up
    # never above the O2 fed, the heat booked to the oxide formed.
    t, wall = _recipe(850.0 + offset, 60.0, knot_s=120.0)
    f = slm * SLM_MOL_S
    res = solve_charges(_inputs(t, np.tile(wall, (3, 1)), o2=0.21 * f, h2o=0.02 * f, total=f,
                                mass=mass), Kinetics(), BedParams())
    assert np.all(np.isfinite(res.class_thickness_nm))
    assert np.all(res.class_thickness_nm >= 1.0 * (1 - 1e-12))
    assert res.o2_consumed_mol[0] <= res.o2_delivered_mol[0] * (1 + 1e-9)
    assert res.h2o_consumed_mol[0] <= res.h2o_delivered_mol[0] * (1 + 1e-9)
    assert 0.0 <= res.supply_limited_share[0] <= 1.0
