"""The (double-)EWMA stability condition: derivation vs. simulation, and config validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.config import load_plant
from twin.control.stability import characteristic_roots, stability_problem
from twin.errors import ConfigError


def simulate_offset_error(lam: float, mu: float, xi: float, n: int = 400) -> float:
    """Closed loop of the offset estimate with a gain mismatch; final |error|."""
    a, d = 0.0, 0.0
    target, disturbance = 0.0, 1.0
    for _ in range(n):
        p = a + d
        u = target - p  # model gain 1
        y = xi * u + disturbance
        obs = y - u  # observed offset with the model's gain
        e = obs - p
        a, d = p + lam * e, d + mu * e
    return abs((xi * (target - a - d) + disturbance) - target)


@settings(max_examples=200, deadline=None)
@given(lam=st.floats(0.05, 1.0), mu=st.floats(0.01, 1.0), xi=st.floats(0.1, 5.0))
def test_condition_matches_roots_and_simulation(lam: float, mu: float, xi: float) -> None:
    roots = characteristic_roots(lam, mu, xi)
    radius = max(abs(r) for r in roots)
    if abs(radius - 1.0) < 0.02:
        return  # too close to the boundary to tell in finite time
    stable = stability_problem(lam, mu, xi) is None
    assert stable == (radius < 1.0)
    err = simulate_offset_error(lam, mu, xi)
    if radius < 0.97:
        assert err < 1e-3
    elif radius > 1.03:
        assert err > 1.0 or not np.isfinite(err)


def test_plain_ewma_condition() -> None:
    assert stability_problem(0.5, 0.0, 3.9) is None
    assert "ewma_lambda" in (stability_problem(0.5, 0.0, 4.1) or "")


def test_config_load_rejects_unstable_gains() -> None:
    with pytest.raises(ConfigError, match=r"control.*unstable.*2 \* ewma_lambda"):
        load_plant(overrides=["control.ewma_lambda=0.9", "control.drift_lambda=0.5"])
    with pytest.raises(ConfigError, match="gain_ratio_max"):
        load_plant(overrides=["control.ewma_lambda=0.8", "control.gain_ratio_max=3"])
    assert load_plant(overrides=["control.ewma_lambda=0.5"]).control.ewma_lambda == 0.5
