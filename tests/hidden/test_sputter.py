"""The hidden true sputter tool."""

from __future__ import annotations

import numpy as np
import pytest

from twin.config import CONFIG_DIR, load_plant
from twin.config.schema import SputterLimits
from twin.hidden.config import SputterTruth, load_truth
from twin.hidden.sputter import SputterState, TrueSputter


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
