"""Tests for twin.physics.milling: size reduction, SSA, amorphisation, pickup."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.errors import PhysicsError
from twin.physics import milling
from twin.physics.milling import (
    amorphous_fraction,
    d50_um,
    media_pickup_wt_pct,
    mill,
    oxygen_wt_pct,
    specific_energy_kj_kg,
    ssa_m2_g,
)
from twin.physics.psd import lognormal

HOUR = 3600.0


def test_specific_energy_is_power_times_time_over_mass() -> None:
    assert specific_energy_kj_kg(2.0, 3600.0, 10.0) == pytest.approx(720.0)


def test_d50_follows_exponential_approach_to_floor() -> None:
    d = d50_um(40.0, 2000.0, floor_um=0.2, e0_kj_kg=2000.0)
    assert d == pytest.approx(0.2 + 39.8 * math.exp(-1.0))


def test_feed_finer_than_floor_is_not_coarsened() -> None:
    assert d50_um(0.05, 1e6, floor_um=0.2) == pytest.approx(0.05)


def test_ssa_of_monodisperse_like_1um_si_is_2_6_m2_g() -> None:
    # Nearly monodisperse: 6/(2.33 g/cm3 * 1 um) = 2.575 m2/g.
    psd = lognormal(1.0, 1.0001)
    assert ssa_m2_g(psd, 2.33) == pytest.approx(2.575, rel=1e-3)


def test_tin_has_lower_ssa_than_silicon_for_same_size() -> None:
    psd = lognormal(1.0, 1.8)
    assert ssa_m2_g(psd, 7.29) == pytest.approx(ssa_m2_g(psd, 2.33) * 2.33 / 7.29)


def test_ti_si_is_nearly_fully_amorphous_after_10h_in_shaker_not_in_vibratory() -> None:
    shaker = amorphous_fraction(10 * HOUR, mill_type="shaker")
    vib = amorphous_fraction(10 * HOUR, mill_type="vibratory")
    assert shaker == pytest.approx(0.95 * 0.86, rel=0.01)
    assert vib < 0.1 * shaker
    assert amorphous_fraction(200 * HOUR, mill_type="vibratory") > 0.95 * 0.86


def test_zro2_media_amorphise_more_slowly() -> None:
    assert (amorphous_fraction(5 * HOUR, media="zro2")
            < amorphous_fraction(5 * HOUR, media="steel"))


def test_amorphous_fraction_capped_at_86_percent_of_si_share() -> None:
    assert amorphous_fraction(1000 * HOUR, si_fraction=0.5) == pytest.approx(0.43)


def test_steel_pickup_more_than_3x_higher_in_argon_than_air() -> None:
    ar = media_pickup_wt_pct(1e5, media="steel", atmosphere="ar")
    air = media_pickup_wt_pct(1e5, media="steel", atmosphere="air")
    assert ar > 3 * air > 0


def test_zro2_media_pick_up_less_and_report_zr() -> None:
    steel = mill(20.0, duration_s=HOUR, power_kw=1.0, charge_kg=1.0, media="steel")
    zro2 = mill(20.0, duration_s=HOUR, power_kw=1.0, charge_kg=1.0, media="zro2")
    assert (steel.media_element, zro2.media_element) == ("Fe", "Zr")
    assert zro2.media_pickup_wt_pct < steel.media_pickup_wt_pct


def test_oxygen_saturates_at_sio0_37() -> None:
    o = oxygen_wt_pct(1e12, atmosphere="air", si_fraction=1.0)
    expected = 100 * 0.37 * 15.999 / (28.085 + 0.37 * 15.999)
    assert o == pytest.approx(expected, rel=1e-6)
    assert oxygen_wt_pct(1e5, atmosphere="air") > oxygen_wt_pct(1e5, atmosphere="ar")


def test_mill_result_fields_consistent() -> None:
    r = mill(30.0, duration_s=5 * HOUR, power_kw=5.0, charge_kg=50.0, mill_type="attritor")
    assert r.specific_energy_kj_kg == pytest.approx(5.0 * 5 * HOUR / 50.0)
    assert r.psd.d50_um == pytest.approx(r.d50_um, rel=0.02)
    assert len(r.psd.diameter_um) == 64
    assert r.duration_s == 5 * HOUR


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"mill_type": "ball"}, "mill_type"),
    ({"media": "wc"}, "media"),
    ({"atmosphere": "n2"}, "atmosphere"),
    ({"charge_kg": 0.0}, "charge_kg"),
    ({"duration_s": -1.0}, "duration_s"),
    ({"si_fraction": 1.5}, "si_fraction"),
    ({"density_g_cm3": 0.0}, "density_g_cm3"),
])
def test_bad_input_names_the_argument(kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {"duration_s": HOUR, "power_kw": 1.0, "charge_kg": 1.0}
    args.update(kwargs)
    with pytest.raises(PhysicsError, match=needle) as err:
        mill(10.0, **args)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ properties

times = st.lists(st.floats(0.0, 300 * HOUR), min_size=2, max_size=6).map(sorted)


@settings(max_examples=100, deadline=None)
@given(times, st.floats(0.5, 200.0), st.sampled_from(list(milling.AVRAMI_K_PER_S)),
       st.sampled_from(["steel", "zro2"]), st.floats(0.0, 1.0), st.floats(1.05, 3.0))
def test_monotone_in_time(ts: list[float], d0: float, mill_type: str, media: str,
                          si: float, gsd0: float) -> None:
    results = [mill(d0, duration_s=t, power_kw=0.5, charge_kg=2.0, mill_type=mill_type,  # type: ignore[arg-type]
                    media=media, si_fraction=si, gsd0=gsd0,  # type: ignore[arg-type]
                    gsd_milled=max(gsd0, 2.2)) for t in ts]
    for a, b in zip(results, results[1:], strict=False):
        assert b.d50_um <= a.d50_um
        assert b.ssa_m2_g >= a.ssa_m2_g * (1 - 1e-12)
        assert b.amorphous_fraction >= a.amorphous_fraction
        assert b.media_pickup_wt_pct >= a.media_pickup_wt_pct
        assert b.oxygen_wt_pct >= a.oxygen_wt_pct
    for r in results:
        assert r.d50_um >= min(milling.DEFAULT_FLOOR_UM, d0)
        assert r.amorphous_fraction <= 0.86 * si + 1e-15
