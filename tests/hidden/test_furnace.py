"""The hidden true furnace: thermocouples, gas, tube, and what the PLC shows of them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.config.schema import FurnaceLimits
from twin.hidden.config import FurnaceTruth
from twin.hidden.furnace import TrueFurnace
from twin.physics.oxidation import Profile
from twin.physics.psychrometry import dew_point_to_ph2o_atm, ph2o_atm_to_dew_point

SP = Profile.ramp_hold(start_c=25, hold_c=825, ramp_c_per_min=15, hold_s=9000,
                       cool_c_per_min=15, po2_atm=0.21, ph2o_atm=0.02)


def _furnace(seed: int = 0, **truth: object) -> TrueFurnace:
    return TrueFurnace(FurnaceTruth(**truth), FurnaceLimits(),  # type: ignore[arg-type]
                       np.random.default_rng(seed))


def test_each_zone_settles_on_its_setpoint_plus_its_offset() -> None:
    f = _furnace(thermocouple_offset_c=4.0, zone_offsets_c=(3.0, 0.0, -4.0),
                 temperature_noise_c=0.0)
    for zone, extra in enumerate((3.0, 0.0, -4.0)):
        s = f.initial_state(temperature_c=800.0, zone=zone)
        for _ in range(200):
            s = f.step(s, {"temperature_c": 850.0, "po2_atm": 0.2}, 30.0, zone=zone)
        assert s.indicated_c == pytest.approx(850.0, abs=1e-6)
        assert s.true_c == pytest.approx(854.0 + extra, abs=1e-6)
        assert s.po2_atm == pytest.approx(0.2)  # air is air; the MFC's bias is in the flow


def test_thermocouple_drifts_with_the_furnace_hours() -> None:
    f = _furnace(thermocouple_offset_c=2.0, thermocouple_drift_c_per_1000h=5.0)
    assert f.offset_c(0.0) == pytest.approx(2.0)
    assert f.offset_c(2000 * 3600.0) == pytest.approx(12.0)


def test_step_respects_the_ramp_limit_and_clips_setpoints() -> None:
    f = _furnace(temperature_noise_c=0.0)
    s = f.initial_state()
    s2 = f.step(s, {"temperature_c": 5000.0, "ramp_c_per_min": 5.0}, 60.0)
    assert s2.indicated_c - s.indicated_c == pytest.approx(5.0)
    for _ in range(2000):
        s2 = f.step(s2, {"temperature_c": 5000.0}, 60.0)
    assert s2.indicated_c == pytest.approx(FurnaceLimits().temperature_c[1])


def test_noise_has_the_configured_stationary_spread() -> None:
    for dt in (10.0, 60.0):
        f = _furnace(seed=3, temperature_noise_c=2.0)
        s = f.initial_state(temperature_c=700.0)
        xs = []
        for _ in range(6000):
            s = f.step(s, {"temperature_c": 700.0}, dt)
            xs.append(s.indicated_c)
        assert np.std(xs[500:]) == pytest.approx(2.0, rel=0.15)


def test_run_profile_has_the_same_dynamics_as_step() -> None:
    dt = 60.0
    a = _furnace(seed=5, thermocouple_offset_c=3.0, temperature_noise_c=1.5)
    ind, run = a.run_profile(SP, dt, flow_slm=250.0)
    b = _furnace(seed=5, thermocouple_offset_c=3.0, temperature_noise_c=1.5)
    b.rng.standard_normal()  # run_profile draws one value for its first knot, unused
    s = b.initial_state(temperature_c=float(SP.temperature_c[0]))
    for i, t in enumerate(ind.time_s[1:], start=1):
        sp_c = float(np.interp(t, SP.time_s, SP.temperature_c))
        s = b.step(s, {"temperature_c": sp_c, "po2_atm": 0.21, "ph2o_atm": 0.02},
                   float(t - ind.time_s[i - 1]))
        assert s.indicated_c == pytest.approx(float(ind.temperature_c[i]), abs=1e-6)
    # Every zone's wall sits at the thermocouple plus the offset (no zone pattern here).
    assert np.allclose(run.wall_c - ind.temperature_c, 3.0)
    assert ind.duration_s == pytest.approx(SP.duration_s)


def test_the_gas_delivered_is_not_what_the_meters_read() -> None:
    f = _furnace(o2_flow_bias_rel=0.05, humidifier_bias_rel=0.1, dew_point_bias_c=1.0)
    ind, run = f.run_profile(SP, 60.0, flow_slm=250.0)
    flow = 250.0 / 22.414 / 60.0
    assert run.total_mol_s == pytest.approx(np.full(run.time_s.size, 1.05 * flow))
    assert run.o2_mol_s == pytest.approx(run.total_mol_s * 0.21)
    assert run.h2o_mol_s == pytest.approx(run.total_mol_s * 0.022)
    # The record shows the O2 share as set and the water through the biased dew point.
    assert np.allclose(ind.po2_atm, 0.21)
    read = dew_point_to_ph2o_atm(ph2o_atm_to_dew_point(0.022) + 1.0)
    assert np.allclose(ind.ph2o_atm, read)


def test_humidifier_wander_has_its_size_and_memory() -> None:
    f = _furnace(seed=4, humidifier_wander_rel=0.1, humidifier_wander_h=12.0)
    h = np.array([f.humidity_factor(3600.0 * i) for i in range(20000)])
    assert np.std(h) == pytest.approx(0.1, rel=0.15)
    lag1 = np.corrcoef(h[:-1], h[1:])[0, 1]
    assert lag1 == pytest.approx(math.exp(-1.0 / 12.0), abs=0.03)
    # Asked again, the same hour gives the same value (a fixed series, grown in order).
    assert f.humidity_factor(3600.0 * 123) == h[123]


def test_the_tube_ages() -> None:
    f = _furnace(rate_factor=0.9, tube_ageing_per_day=-0.01)
    assert f.rate_factor(0.0) == pytest.approx(0.9)
    assert f.rate_factor(10 * 86400.0) == pytest.approx(0.81)
