"""The sputter tool's hidden truth evaluates the cap rate only while O2 bleeds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.config.schema import SputterLimits
from twin.errors import PhysicsError
from twin.hidden.config import SputterTruth
from twin.hidden.sputter import SputterState, TrueSputter
from twin.physics import coating

SP = {"power_w": 250.0, "pressure_mtorr": 8.0, "ar_sccm": 25.0, "o2_sccm": 3.5,
      "deposit_min": 100.0, "oxidize_min": 1.5}


def tool(**truth: float) -> TrueSputter:
    return TrueSputter(SputterTruth(thickness_spread_rel=0.0, **truth), SputterLimits(),
                       np.random.default_rng(0))


def test_the_coating_fit_itself_refuses_o2_off() -> None:
    # What made every deposit step fail before: the fit has no rate without O2.
    with pytest.raises(PhysicsError, match="o2_sccm"):
        coating.cap_rate_nm_min(25.0, 0.0)


def test_a_deposit_with_the_o2_valve_shut_does_not_raise() -> None:
    ts = tool()
    s = ts.step(SputterState(), {**SP, "o2_sccm": 0.0}, 60.0, mode="deposit")
    assert s.film_nm > 0 and s.cap_nm == 0.0
    idle = ts.step(s, {**SP, "o2_sccm": 0.0}, 60.0, mode="idle")
    assert idle.film_nm == s.film_nm and idle.cap_nm == 0.0
    # A film-only run (no oxidize part) with O2 off: the cap rate is never needed.
    run = ts.run_recipe({**SP, "o2_sccm": 0.0, "oxidize_min": 0.0}, 0.0)
    assert run["film_nm"] == pytest.approx(140.0, rel=1e-6) and run["cap_nm"] == 0.0


def test_stepping_a_whole_run_matches_the_closed_form() -> None:
    ts = tool()
    s = SputterState()
    for mode, minutes, o2 in (("deposit", SP["deposit_min"], 0.0),
                              ("oxidize", SP["oxidize_min"], SP["o2_sccm"])):
        for _ in range(int(round(minutes * 60.0 / 1.0))):
            s = ts.step(s, {**SP, "o2_sccm": o2}, 1.0, mode=mode)
    ref = ts.run_recipe(SP, 0.0)
    # The stepped run lags by the power supply's time constant at each start (5 s).
    assert s.film_nm == pytest.approx(ref["film_nm"], rel=0.01)
    assert s.cap_nm == pytest.approx(ref["cap_nm"], rel=0.07)


def test_inside_the_fitted_window_the_truth_is_the_fit_times_its_factor() -> None:
    ts = tool(rate_factor=0.9)
    act = ts.actual(SP)
    assert ts.cap_rate(act, 0.0) == pytest.approx(0.9 * coating.cap_rate_nm_min(25.0, 3.5))


@settings(max_examples=50, deadline=None)
@given(o2=st.floats(0.0, 20.0), ar=st.floats(5.0, 100.0))
def test_outside_the_fitted_window_the_truth_continues_without_raising(o2: float,
                                                                       ar: float) -> None:
    # A set flow at the window's edge plus a biased flow controller leaves the window: the
    # real chamber still grows a cap (less with more O2, none without O2).
    ts = tool(o2_flow_bias_rel=0.2)
    act = ts.actual({**SP, "ar_sccm": ar, "o2_sccm": o2})
    rate = ts.cap_rate(act, 0.0)
    assert np.isfinite(rate) and rate >= 0.0
    assert (rate == 0.0) == (o2 == 0.0)
    lo, hi = coating.CAP_RATIO_RANGE
    ratio = act["o2_sccm"] / act["ar_sccm"]
    if ratio > hi:  # poisoned further: slower than at the window's edge
        edge = ts.cap_rate({**act, "o2_sccm": hi * act["ar_sccm"]}, 0.0)
        assert rate < edge
    s = ts.step(SputterState(), {**SP, "ar_sccm": ar, "o2_sccm": o2}, 30.0, mode="oxidize")
    assert s.cap_nm >= 0.0 and s.film_nm == 0.0


def test_cap_rate_is_continuous_at_the_window_edges() -> None:
    ts = tool()
    lo, hi = coating.CAP_RATIO_RANGE
    for edge in (lo * 25.0, hi * 25.0):
        below = ts.cap_rate({**SP, "o2_sccm": edge * (1 - 1e-6)}, 0.0)
        above = ts.cap_rate({**SP, "o2_sccm": edge * (1 + 1e-6)}, 0.0)
        assert below == pytest.approx(above, rel=1e-4)
