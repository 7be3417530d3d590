"""The hidden true furnace and sputter tool."""

from __future__ import annotations

import numpy as np
import pytest

from twin.config import CONFIG_DIR, load_plant
from twin.config.schema import FurnaceLimits, SputterLimits
from twin.hidden.config import FurnaceTruth, SputterTruth, load_truth
from twin.hidden.furnace import FurnaceState, TrueFurnace
from twin.hidden.sputter import SputterState, TrueSputter
from twin.physics.oxidation import Profile
from twin.plant.prediction import LognormalPsd

SP = Profile.ramp_hold(start_c=25, hold_c=875, ramp_c_per_min=10, hold_s=3000,
                       cool_c_per_min=15, po2_atm=0.21, ph2o_atm=0.02)


def _furnace(seed: int = 0, **truth) -> TrueFurnace:
    return TrueFurnace(FurnaceTruth(**truth), FurnaceLimits(), np.random.default_rng(seed))


def test_step_settles_on_setpoint_plus_offset():
    f = _furnace(thermocouple_offset_c=4.0, temperature_noise_c=0.0, o2_flow_bias_rel=0.1)
    s = f.initial_state(temperature_c=800.0)
    for _ in range(200):
        s = f.step(s, {"temperature_c": 850.0, "po2_atm": 0.2}, 30.0)
    assert s.indicated_c == pytest.approx(850.0, abs=1e-6)
    assert s.true_c == pytest.approx(854.0, abs=1e-6)
    assert s.po2_atm == pytest.approx(0.22)
    assert s.time_s == pytest.approx(6000.0)


def test_step_respects_the_ramp_limit_and_clips_setpoints():
    f = _furnace(temperature_noise_c=0.0)
    s = f.initial_state()
    s2 = f.step(s, {"temperature_c": 5000.0, "ramp_c_per_min": 5.0}, 60.0)
    assert s2.indicated_c - s.indicated_c == pytest.approx(5.0)
    for _ in range(2000):
        s2 = f.step(s2, {"temperature_c": 5000.0}, 60.0)
    assert s2.indicated_c == pytest.approx(FurnaceLimits().temperature_c[1])


def test_noise_has_the_configured_stationary_spread():
    for dt in (10.0, 60.0):
        f = _furnace(seed=3, temperature_noise_c=2.0)
        s = f.initial_state(temperature_c=700.0)
        xs = []
        for _ in range(6000):
            s = f.step(s, {"temperature_c": 700.0}, dt)
            xs.append(s.indicated_c)
        assert np.std(xs[500:]) == pytest.approx(2.0, rel=0.15)


def test_run_profile_has_the_same_dynamics_as_step():
    dt = 60.0
    a = _furnace(seed=5, thermocouple_offset_c=3.0, temperature_noise_c=1.5)
    ind, true = a.run_profile(SP, dt)
    b = _furnace(seed=5, thermocouple_offset_c=3.0, temperature_noise_c=1.5)
    b.rng.standard_normal()  # run_profile draws one value for its first knot, unused
    s = b.initial_state(temperature_c=float(SP.temperature_c[0]))
    for i, t in enumerate(ind.time_s[1:], start=1):
        sp_c = float(np.interp(t, SP.time_s, SP.temperature_c))
        s = b.step(s, {"temperature_c": sp_c, "po2_atm": 0.21, "ph2o_atm": 0.02},
                   float(t - ind.time_s[i - 1]))
        assert s.indicated_c == pytest.approx(float(ind.temperature_c[i]), abs=1e-6)
    assert np.allclose(true.temperature_c - ind.temperature_c, 3.0)
    assert ind.duration_s == pytest.approx(SP.duration_s)


def test_true_oxide_follows_rate_factor_and_seed():
    psd = LognormalPsd(0.26, 2.2).build()
    kw = {"material": "Si", "initial_nm": 0.5, "t_s": 0.0, "si_area_fraction": 0.565}
    slow = _furnace(seed=1, rate_factor=0.5, thickness_spread_rel=0.0)
    fast = _furnace(seed=1, rate_factor=1.5, thickness_spread_rel=0.0)
    _, t = slow.run_profile(SP)
    assert slow.true_oxide(t, psd, **kw).mean_nm < fast.true_oxide(t, psd, **kw).mean_nm
    a = _furnace(seed=2, thickness_spread_rel=0.1).true_oxide(t, psd, **kw)
    b = _furnace(seed=2, thickness_spread_rel=0.1).true_oxide(t, psd, **kw)
    c = _furnace(seed=3, thickness_spread_rel=0.1).true_oxide(t, psd, **kw)
    assert a.mean_nm == b.mean_nm != c.mean_nm
    assert a.p5_nm <= a.p50_nm <= a.p95_nm


def test_rate_factor_drifts_per_day():
    f = _furnace(rate_factor=0.8, rate_drift_per_day=0.01)
    assert f.rate_factor(0.0) == pytest.approx(0.8)
    assert f.rate_factor(10 * 86400.0) == pytest.approx(0.88)


def test_step_can_grow_a_witness_oxide():
    f = _furnace(temperature_noise_c=0.0)
    s = FurnaceState(indicated_c=900.0, true_c=900.0)
    for _ in range(20):
        s = f.step(s, {"temperature_c": 900.0, "po2_atm": 1.0}, 60.0, track_oxide=True)
    assert 1.0 < s.oxide_nm < 50.0


def test_sputter_truth_biases_flow_and_scales_rates():
    cfg = load_plant(CONFIG_DIR / "thin_film_line.toml").stations.sputter
    assert cfg is not None
    sp = {"power_w": 250.0, "pressure_mtorr": 8.0, "ar_sccm": 25.0, "o2_sccm": 3.5,
          "deposit_min": 100.0, "oxidize_min": 1.0}
    nominal = TrueSputter(SputterTruth(thickness_spread_rel=0.0), SputterLimits(),
                          np.random.default_rng(0)).run_recipe(sp, 0.0)
    assert nominal["film_nm"] == pytest.approx(140.0, rel=1e-6)  # 1.4 nm/min reference
    truth = load_truth("nominal").sputter
    biased = TrueSputter(truth, cfg.limits, np.random.default_rng(0)).run_recipe(sp, 0.0)
    assert biased["o2_sccm"] == pytest.approx(3.5 * (1 + truth.o2_flow_bias_rel))
    assert biased["film_nm"] != nominal["film_nm"]
    ts = TrueSputter(SputterTruth(thickness_spread_rel=0.0), SputterLimits(),
                     np.random.default_rng(0))
    s = ts.step(ts_state := SputterState(),
                sp, 60.0, mode="deposit")
    assert s.film_nm > 0 and ts_state.film_nm == 0
    with pytest.raises(ValueError, match="mode"):
        ts.step(s, sp, 1.0, mode="etch")
