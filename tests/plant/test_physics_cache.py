"""The anchored expansion of the oxide physics against the full solve."""

from __future__ import annotations

import numpy as np
import pytest

from twin.config import load_plant
from twin.equipment.truth import TrueFurnace
from twin.physics.oxidation import Calibration, Profile
from twin.plant.physics_cache import OxidePhysics
from twin.plant.prediction import LognormalPsd, predict_oxide

GROWTH = {"orientation": "100", "thin_model": "suprem", "si_area_fraction": 0.565,
          "copper": False}


def _records(n: int, seed: int) -> list[tuple[Profile, LognormalPsd, float, Calibration]]:
    cfg = load_plant()
    ox = cfg.stations.oxidizer
    furnace = TrueFurnace(ox.truth, ox.limits, np.random.default_rng(seed))
    sp = Profile.ramp_hold(start_c=25, hold_c=875, ramp_c_per_min=10, hold_s=3000,
                           cool_c_per_min=15, po2_atm=0.21, ph2o_atm=0.02)
    rng = np.random.default_rng(seed + 1)
    out = []
    for _ in range(n):
        ind, _true = furnace.run_profile(sp, 60.0, offset_c=float(rng.normal(0, 3)))
        psd = LognormalPsd(0.26 * float(np.exp(rng.normal(0, 0.08))), 2.2)
        rf = float(np.exp(rng.normal(0, 0.08)))
        out.append((ind, psd, float(rng.uniform(0, 1.2)), Calibration(rf, rf, rf)))
    return out


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


def test_mode_is_checked():
    with pytest.raises(ValueError, match="fast"):
        OxidePhysics("quick")
