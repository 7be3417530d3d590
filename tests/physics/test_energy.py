"""Tests for twin.physics.energy: the electrical energy of each production step."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.errors import PhysicsError
from twin.physics import energy
from twin.physics.energy import (
    AIR_CP_J_MOL_K,
    MOLAR_VOLUME_L_MOL,
    furnace_step_energy,
    melting_kwh,
    milling_kwh,
    slurry_coating_kwh,
    solvent_kg,
    sputtering_kwh,
)
from twin.physics.milling import specific_energy_kj_kg

FAST = settings(max_examples=40, deadline=None)
# Relative slack for records whose knots fall between the 60 s grid points: two nearly equal
# records are resampled on slightly different grids.
SLACK = 1e-4
#: Plain furnace parameters for hand-checked numbers.
PLAIN = {"charge_kg": 50.0, "charge_cp_kj_kg_k": 0.8, "tray_kg": 100.0, "tray_cp_kj_kg_k": 0.5,
         "thermal_mass_kj_k": 60.0, "loss_kw_per_k": 0.01, "ambient_c": 25.0,
         "heater_efficiency": 0.9}
C_KJ_K = 50.0 * 0.8 + 100.0 * 0.5 + 60.0  # 150 kJ/K


def ramp_hold_cool(hold_c: float = 825.0, ramp: float = 16.0, hold_min: float = 150.0,
                   cool: float = 16.0, start_c: float = 25.0, dt_s: float = 60.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A ramp-hold-cool record on a grid of ``dt_s`` (the furnace's planned profile; with the
    defaults the ramp ends at 3000 s, the hold at 12000 s, the cool-down at 15000 s, all on
    the 60 s grid the energy is computed on)."""
    heat_s = (hold_c - start_c) / ramp * 60.0
    cool_s = (hold_c - start_c) / cool * 60.0
    knots_t = [0.0, heat_s, heat_s + hold_min * 60.0, heat_s + hold_min * 60.0 + cool_s]
    knots_c = [start_c, hold_c, hold_c, start_c]
    t = np.arange(0.0, knots_t[-1] + dt_s / 2, dt_s)
    t[-1] = knots_t[-1]
    return t, np.interp(t, knots_t, knots_c)


# --------------------------------------------------------------------------- melting, milling


def test_melting_is_power_times_time_plus_a_share_of_the_heat_up() -> None:
    assert melting_kwh(250.0, 1800.0) == pytest.approx(125.0)
    assert melting_kwh(250.0, 1800.0, heat_up_s=900.0, heat_up_power_share=0.5) == \
        pytest.approx(125.0 + 31.25)
    assert melting_kwh(250.0, 1800.0, heat_up_s=900.0, heat_up_power_share=0.0) == \
        pytest.approx(125.0)


def test_milling_is_the_milling_models_specific_energy_times_the_mass() -> None:
    power, t, mass = 14.7, 8 * 3600.0, 29.0
    assert milling_kwh(power, t) == pytest.approx(
        specific_energy_kj_kg(power, t, mass) * mass / 3600.0, rel=1e-12)
    assert milling_kwh(15.0, 8 * 3600.0) == pytest.approx(120.0)


@pytest.mark.parametrize("call", [
    lambda: melting_kwh(-1.0, 10.0), lambda: melting_kwh(1.0, math.nan),
    lambda: melting_kwh(1.0, 1.0, heat_up_power_share=1.5), lambda: milling_kwh(1.0, -5.0),
])
def test_bad_melting_and_milling_inputs_are_errors(call) -> None:
    with pytest.raises(PhysicsError):
        call()


# --------------------------------------------------------------------------- furnace


def test_a_hold_costs_its_wall_and_gas_losses_over_the_heater_efficiency() -> None:
    t = np.array([0.0, 7200.0])
    temp = np.array([825.0, 825.0])
    flow = 250.0
    gas_kw_k = flow / MOLAR_VOLUME_L_MOL / 60.0 * AIR_CP_J_MOL_K / 1000.0
    e = furnace_step_energy(t, temp, gas_flow_slm=flow, **PLAIN)
    assert e.sensible_kwh == pytest.approx(0.0, abs=1e-9)
    assert e.wall_loss_kwh == pytest.approx(0.01 * 800.0 * 2.0)  # 16 kWh
    assert e.gas_kwh == pytest.approx(gas_kw_k * 800.0 * 2.0)
    assert e.electrical_kwh == pytest.approx((e.wall_loss_kwh + e.gas_kwh) / 0.9)
    assert e.heater_on_s == pytest.approx(7200.0)


def test_a_ramp_stores_the_sensible_heat_and_loses_at_its_mean_temperature() -> None:
    # 25 -> 825 C in 80 min: C·800 K + UA·400 K·80 min, exact for a linear ramp.
    t = np.linspace(0.0, 4800.0, 81)
    temp = 25.0 + 800.0 * t / 4800.0
    e = furnace_step_energy(t, temp, **PLAIN)
    assert e.sensible_kwh == pytest.approx(C_KJ_K * 800.0 / 3600.0)
    assert e.wall_loss_kwh == pytest.approx(0.01 * 400.0 * 4800.0 / 3600.0)
    assert e.electrical_kwh == pytest.approx((e.sensible_kwh + e.wall_loss_kwh) / 0.9)


def test_cooling_costs_nothing() -> None:
    t, temp = ramp_hold_cool()
    heated = t <= 12000.0  # to the end of the hold
    full = furnace_step_energy(t, temp, **PLAIN).electrical_kwh
    until_cool = furnace_step_energy(t[heated], temp[heated], **PLAIN).electrical_kwh
    assert full == pytest.approx(until_cool, rel=1e-9)
    # A cool-down slower than the furnace cools by itself needs the heaters.
    slow_t, slow_c = ramp_hold_cool(cool=0.05)
    assert furnace_step_energy(slow_t, slow_c, **PLAIN).electrical_kwh > full


def test_breakdown_terms_add_up_to_the_heat_delivered() -> None:
    t, temp = ramp_hold_cool()
    e = furnace_step_energy(t, temp, gas_flow_slm=250.0, reaction_heat_kwh=20.0, hold_c=825.0,
                            **PLAIN)
    assert e.heat_kwh == pytest.approx(e.sensible_kwh + e.wall_loss_kwh + e.gas_kwh
                                       - e.reaction_credit_kwh)
    assert e.electrical_kwh == pytest.approx(e.heat_kwh / 0.9)
    assert 0.0 < e.reaction_credit_kwh <= 20.0 + 1e-9


def test_the_reaction_heat_replaces_heater_power_in_the_hold_only() -> None:
    t, temp = ramp_hold_cool()
    base = furnace_step_energy(t, temp, gas_flow_slm=250.0, **PLAIN)
    ramp_only = furnace_step_energy(t[t <= 3000.0], temp[t <= 3000.0], gas_flow_slm=250.0,
                                    **PLAIN)
    # More heat than the hold needs: the heaters are off through the hold, the ramp remains.
    big = furnace_step_energy(t, temp, gas_flow_slm=250.0, reaction_heat_kwh=500.0,
                              hold_c=825.0, **PLAIN)
    assert big.electrical_kwh == pytest.approx(ramp_only.electrical_kwh, rel=1e-6)
    # Less: the hold costs what the reaction does not cover.
    hold_need = base.heat_kwh - ramp_only.heat_kwh
    small = furnace_step_energy(t, temp, gas_flow_slm=250.0, reaction_heat_kwh=5.0,
                                hold_c=825.0, **PLAIN)
    assert small.heat_kwh == pytest.approx(base.heat_kwh - 5.0, rel=1e-6)
    assert hold_need > 5.0
    # A record that never reaches the hold is credited nothing.
    cold = furnace_step_energy(t, np.minimum(temp, 700.0), reaction_heat_kwh=50.0,
                               hold_c=825.0, **PLAIN)
    assert cold.reaction_credit_kwh == 0.0


def test_noise_in_a_fast_sampled_record_is_not_counted_as_heating() -> None:
    # A PLC reporting every second with 0.5 K noise: thinned to 60 s, within 2 %.
    t = np.arange(0.0, 7200.0 + 1.0, 1.0)
    clean = np.full(t.size, 825.0)
    noisy = clean + np.random.default_rng(3).normal(0.0, 0.5, t.size)
    a = furnace_step_energy(t, clean, **PLAIN).electrical_kwh
    b = furnace_step_energy(t, noisy, **PLAIN).electrical_kwh
    assert b == pytest.approx(a, rel=0.02)


def test_the_shipped_powder_recipe_costs_about_a_kwh_per_kg() -> None:
    # 58 kg at 825 C for 150 min in 250 slm of humid air with the default furnace (estimates):
    # ~60 kWh to heat it all up and ~30 kWh of losses: 1.5-2 kWh/kg without reaction heat.
    t, temp = ramp_hold_cool(ramp=15.0, cool=15.0)
    e = furnace_step_energy(t, temp, charge_kg=58.0, tray_kg=116.0, gas_flow_slm=250.0)
    assert 1.3 < e.electrical_kwh / 58.0 < 2.0
    assert e.sensible_kwh == pytest.approx(
        (58.0 * energy.SI_CP_KJ_KG_K + 116.0 * energy.TRAY_CP_KJ_KG_K
         + energy.FURNACE_THERMAL_MASS_KJ_K) * 800.0 / 3600.0, rel=0.02)


@pytest.mark.parametrize(("t", "c"), [
    ([0.0], [25.0]), ([0.0, 1.0], [25.0]), ([0.0, 2.0, 1.0], [25.0, 30.0, 40.0]),
    ([0.0, math.nan], [25.0, 30.0]), ([[0.0, 1.0]], [[25.0, 30.0]]),
])
def test_a_malformed_record_is_an_error(t, c) -> None:
    with pytest.raises(PhysicsError, match="furnace record"):
        furnace_step_energy(t, c, charge_kg=1.0)


@pytest.mark.parametrize("kw", [{"charge_kg": -1.0}, {"heater_efficiency": 0.0},
                                {"loss_kw_per_k": math.inf}, {"min_step_s": 0.0},
                                {"reaction_heat_kwh": -1.0}, {"ambient_c": math.nan}])
def test_bad_furnace_parameters_are_errors(kw) -> None:
    args = {"charge_kg": 1.0, **kw}
    with pytest.raises(PhysicsError):
        furnace_step_energy([0.0, 60.0], [25.0, 100.0], **args)


def test_an_empty_record_costs_nothing() -> None:
    assert furnace_step_energy([5.0, 5.0], [25.0, 800.0], charge_kg=1.0).electrical_kwh == 0.0


temps = st.floats(20.0, 1100.0)
masses = st.floats(0.0, 500.0)


@FAST
@given(st.lists(temps, min_size=2, max_size=40), st.floats(1.0, 3600.0), masses,
       st.floats(0.0, 1000.0), st.floats(0.0, 200.0))
def test_energy_is_never_negative(temps_c, step_s, mass, flow, reaction) -> None:
    t = np.arange(len(temps_c)) * step_s
    e = furnace_step_energy(t, temps_c, charge_kg=mass, gas_flow_slm=flow,
                            reaction_heat_kwh=reaction)
    assert e.electrical_kwh >= 0.0 and math.isfinite(e.electrical_kwh)
    assert 0.0 <= e.reaction_credit_kwh <= reaction + 1e-9
    assert e.electrical_kwh * energy.HEATER_EFFICIENCY == pytest.approx(e.heat_kwh)


@FAST
@given(st.floats(0.0, 600.0), st.floats(0.0, 600.0), st.floats(100.0, 1000.0), masses)
def test_more_hold_time_costs_more(m1, m2, hold_c, mass) -> None:
    lo, hi = sorted((m1, m2))
    a = furnace_step_energy(*ramp_hold_cool(hold_c, hold_min=lo), charge_kg=mass).electrical_kwh
    b = furnace_step_energy(*ramp_hold_cool(hold_c, hold_min=hi), charge_kg=mass).electrical_kwh
    assert b >= a * (1 - SLACK)


@FAST
@given(st.floats(5.0, 600.0), st.floats(5.0, 600.0), st.floats(100.0, 1000.0), masses,
       st.floats(0.0, 100.0))
def test_more_hold_time_costs_more_with_the_same_reaction_heat(m1, m2, hold_c, mass,
                                                              reaction) -> None:
    # Spread over a longer hold, the same heat covers less of each interval. (A record with
    # no time in the hold band is credited nothing: hence holds of at least 5 min here.)
    lo, hi = sorted((m1, m2))
    a = furnace_step_energy(*ramp_hold_cool(hold_c, hold_min=lo), charge_kg=mass,
                            reaction_heat_kwh=reaction, hold_c=hold_c).electrical_kwh
    b = furnace_step_energy(*ramp_hold_cool(hold_c, hold_min=hi), charge_kg=mass,
                            reaction_heat_kwh=reaction, hold_c=hold_c).electrical_kwh
    assert b >= a * (1 - SLACK)


@FAST
@given(st.floats(100.0, 1000.0), st.floats(100.0, 1000.0), masses)
def test_a_hotter_hold_costs_more(t1, t2, mass) -> None:
    lo, hi = sorted((t1, t2))
    a = furnace_step_energy(*ramp_hold_cool(lo), charge_kg=mass).electrical_kwh
    b = furnace_step_energy(*ramp_hold_cool(hi), charge_kg=mass).electrical_kwh
    assert b >= a * (1 - SLACK)


@FAST
@given(masses, masses, st.floats(0.0, 0.1), st.floats(0.0, 0.1), st.floats(0.0, 300.0),
       st.floats(0.0, 300.0))
def test_more_mass_losses_or_reaction_heat_move_the_energy_the_right_way(
        m1, m2, ua1, ua2, r1, r2) -> None:
    rec = ramp_hold_cool(hold_min=60.0)

    def e(**kw: float) -> float:
        args = {"charge_kg": 50.0, "loss_kw_per_k": 0.01, "reaction_heat_kwh": 0.0,
                "hold_c": 825.0, **kw}
        return furnace_step_energy(*rec, **args).electrical_kwh

    for key, (x, y) in (("charge_kg", sorted((m1, m2))), ("loss_kw_per_k", sorted((ua1, ua2)))):
        assert e(**{key: y}) >= e(**{key: x}) * (1 - 1e-9)
    lo, hi = sorted((r1, r2))
    assert e(reaction_heat_kwh=hi) <= e(reaction_heat_kwh=lo) * (1 + 1e-9) + 1e-9


# --------------------------------------------------------------------------- electrodes


def test_the_dryer_evaporates_the_slurrys_solvent() -> None:
    # 36 kg of solids at 45 % solids carry 44 kg of water: 2382 kJ/kg over 0.35, plus 5 kW
    # of drives for 25 min.
    assert solvent_kg(36.0, 0.45) == pytest.approx(36.0 * 0.55 / 0.45)
    e = slurry_coating_kwh(36.0, 0.45, 1500.0, dryer_efficiency=0.35, drive_power_kw=5.0)
    assert e == pytest.approx(solvent_kg(36.0, 0.45) * 2382.0 / 0.35 / 3600.0 + 5.0 * 1500 / 3600)
    # NMP evaporates with less heat than water.
    assert slurry_coating_kwh(36.0, 0.45, 1500.0, solvent="nmp") < \
        slurry_coating_kwh(36.0, 0.45, 1500.0, solvent="water")


@FAST
@given(st.floats(0.0, 100.0), st.floats(0.0, 100.0), st.floats(0.05, 0.95),
       st.floats(0.0, 1e5))
def test_coating_energy_grows_with_the_solids_and_is_never_negative(a, b, s, coat_s) -> None:
    lo, hi = sorted((a, b))
    e_lo = slurry_coating_kwh(lo, s, coat_s)
    assert 0.0 <= e_lo <= slurry_coating_kwh(hi, s, coat_s) * (1 + 1e-12)


def test_bad_coating_inputs_are_errors() -> None:
    with pytest.raises(PhysicsError, match="solvent"):
        slurry_coating_kwh(1.0, 0.5, 1.0, solvent="acetone")  # type: ignore[arg-type]
    with pytest.raises(PhysicsError, match="solids_fraction"):
        slurry_coating_kwh(1.0, 1.0, 1.0)
    with pytest.raises(PhysicsError, match="dryer_efficiency"):
        slurry_coating_kwh(1.0, 0.5, 1.0, dryer_efficiency=0.0)


def test_sputtering_is_target_power_over_the_supply_plus_the_base_load() -> None:
    # 250 W for 3.6 h at 85 %, 3 kW for 4.1 h.
    e = sputtering_kwh(250.0, 3.6 * 3600, 4.1 * 3600, generator_efficiency=0.85,
                       base_load_kw=3.0)
    assert e == pytest.approx(0.25 * 3.6 / 0.85 + 3.0 * 4.1)
    assert sputtering_kwh(0.0, 100.0, 3600.0, base_load_kw=2.0) == pytest.approx(2.0)
    with pytest.raises(PhysicsError):
        sputtering_kwh(math.nan, 1.0, 1.0)
