"""The hidden charge physics in its fast form against the exact solve, and its lab sample."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.config.schema import LabConfig
from twin.hidden.charge import STEPS, TRUST, ChargeOxidation, ChargeTruth, Recipe
from twin.hidden.config import LabTruth, load_truth
from twin.physics import composition

RECIPE = Recipe(25.0, 825.0, 15.0, 150.0, 15.0, 0.21, 0.02)
CHARGE = ChargeTruth(58.0, 0.27, 2.2, 13.8, 0.6, 0.57, 0.085)
FLOW = 250.0 / 22.414 / 60.0


def _oxidation(truth: str = "nominal") -> ChargeOxidation:
    t = load_truth(truth)
    return ChargeOxidation(t.kinetics.build(), t.bed.build(), t.lab,
                           zone_offsets_c=(3.0, 0.0, -3.0))


def _x(rng: np.random.Generator, span: float = 0.5) -> np.ndarray:
    """Scalars of a charge: each input drawn within ``span`` of its trust radius (every
    input away from the anchor at once, more than a plant's charges differ)."""
    base = np.array([4.0, 150.0, math.log(FLOW), math.log(0.02), math.log(58.0),
                     math.log(0.27), math.log(13.8), 0.6, 0.0])
    return base + span * TRUST * rng.uniform(-1, 1, base.size) * (np.arange(base.size) != 1) \
        + np.where(np.arange(base.size) == 1, rng.uniform(-12, 12), 0.0)


@pytest.mark.parametrize("truth", ["nominal", "other_kinetics"])
def test_fast_matches_exact_within_two_percent(truth: str) -> None:
    ox = _oxidation(truth)
    rng = np.random.default_rng(1)
    xs = [_x(rng) for _ in range(12)]
    for x in xs:
        fast = ox.fast(RECIPE, x, CHARGE)
        exact = ox.exact_scalars(RECIPE, x, CHARGE)
        assert fast.mean_nm == pytest.approx(exact.mean_nm, rel=0.02)
        # The tails are quantiles over the classes: rougher to expand than the mean (the
        # fast mode's stated accuracy: mean 2 %, tray means 4 %, tails 8 %, share 0.06).
        assert fast.p5_nm == pytest.approx(exact.p5_nm, rel=0.08)
        assert fast.p95_nm == pytest.approx(exact.p95_nm, rel=0.08)
        assert fast.within_50pct_share == pytest.approx(exact.within_50pct_share, abs=0.06)
        np.testing.assert_allclose(fast.cell_nm, exact.cell_nm, rtol=0.04)
    # A few anchors serve them all (the point of the fast form).
    assert sum(len(v) for v in ox.anchors.values()) <= 4


def test_a_new_recipe_shape_gets_an_anchor_of_its_own() -> None:
    ox = _oxidation()
    x = _x(np.random.default_rng(2), 0.0)
    ox.fast(RECIPE, x, CHARGE)
    ox.fast(Recipe(25.0, 900.0, 15.0, 150.0, 15.0, 0.21, 0.02), x, CHARGE)
    assert sum(len(v) for v in ox.anchors.values()) == 2


def test_outside_the_trust_region_a_new_anchor_is_made() -> None:
    ox = _oxidation()
    x = _x(np.random.default_rng(3), 0.0)
    ox.fast(RECIPE, x, CHARGE)
    far = x.copy()
    far[0] += 2 * TRUST[0]
    ox.fast(RECIPE, far, CHARGE)
    assert sum(len(v) for v in ox.anchors.values()) == 2
    assert STEPS[0] < TRUST[0]


def _lab(**kw: object) -> LabConfig:
    return LabConfig(**kw)  # type: ignore[arg-type]


def test_oxygen_and_bet_give_the_sample_thickness_within_the_methods_noise() -> None:
    ox = _oxidation()
    true = ox.fast(RECIPE, _x(np.random.default_rng(4), 0.0), CHARGE)
    exact_lab = LabTruth(oxygen_bias_rel=0.0, bet_bias_rel=0.0)
    rng = np.random.default_rng(5)
    clean = type(true)(**{**true.__dict__, "lab_truth": exact_lab})
    vals = [clean.analyse(_lab(method="o_bet", increments=50), rng) for _ in range(400)]
    x = np.array([v.thickness_nm for v in vals])
    assert all(v.method == "o_bet" and v.o_wt_pct > 10 for v in vals)  # ~14 wt % O
    # The inversion with the BET sphere undoes the forward geometry: no bias left...
    assert np.mean(x) == pytest.approx(true.mean_nm, rel=0.02)
    # ... and the spread is the methods' (1.5 % O, 2 % BET) and the trays'.
    sd_method = float(composition.thickness_sigma_rel_o_bet(0.015, 0.02))
    assert np.std(np.log(x)) == pytest.approx(sd_method, rel=0.35)


def test_the_labs_bias_reaches_its_results() -> None:
    true = _oxidation().fast(RECIPE, _x(np.random.default_rng(6), 0.0), CHARGE)
    biased = type(true)(**{**true.__dict__, "lab_truth": LabTruth(oxygen_bias_rel=0.05,
                                                                  bet_bias_rel=0.0)})
    rng = np.random.default_rng(7)
    x = [biased.analyse(_lab(increments=50, oxygen_rsd=0.0, bet_rsd=0.0), rng).thickness_nm
         for _ in range(20)]
    assert np.mean(x) > true.mean_nm * 1.04


def test_xps_only_inside_its_range() -> None:
    true = _oxidation().fast(RECIPE, _x(np.random.default_rng(8), 0.0), CHARGE)
    assert true.mean_nm > composition.XPS_MAX_NM
    res = true.analyse(_lab(method="xps"), np.random.default_rng(9))
    assert math.isnan(res.thickness_nm) and "XPS range" in res.note
