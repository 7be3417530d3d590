"""First-order thermal lag: what a body sees of a temperature it follows.

A furnace's temperature loop following its setpoint, and a powder charge following the
furnace thermocouple, both behave to first order like ``dy/dt = (u - y) / tau`` (a lumped body
with one time constant; for a slab of powder heated from its faces the slowest mode has
``tau1 = 4 h^2 / (pi^2 alpha)``, Carslaw & Jaeger, *Conduction of Heat in Solids*, 1959, §3.4;
see ../shared/notes/powder_bed.md §2). During a ramp of ``beta`` K/s the body lags by
``beta * tau`` once settled.

The response is computed exactly for a piecewise-linear input (a first-order hold: the input
is linear between knots), on a uniform grid, by one recursive filter call.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from twin.physics.oxidation_profile import Profile

FloatArray = NDArray[np.float64]


def lag_uniform(values: FloatArray, dt_s: float, tau_s: float,
                initial: float | None = None) -> FloatArray:
    """First-order lag of a piecewise-linear input sampled every ``dt_s`` seconds.

    Parameters
    ----------
    values : ndarray, shape (n,)
        Input at ``t = 0, dt_s, 2 dt_s ...`` (linear in between), e.g. °C.
    dt_s : float
        Sample step, s (> 0).
    tau_s : float
        Time constant, s (>= 0; 0 returns the input).
    initial : float, optional
        Output at t = 0 (default: the first input, a body in equilibrium).

    Returns
    -------
    ndarray, shape (n,)
        The output at the same times, exact for the piecewise-linear input.
    """
    u = np.asarray(values, dtype=float)
    if tau_s <= 0 or u.size < 2:
        return u.copy()
    if not dt_s > 0:
        raise ValueError(f"dt_s must be > 0, got {dt_s}")
    a = math.exp(-dt_s / tau_s)
    k = tau_s * (1.0 - a) / dt_s
    # y[i+1] = a y[i] + (1 - k) u[i+1] + (k - a) u[i]: the exact step for a linear segment.
    b = np.array([1.0 - k, k - a])
    y0 = float(u[0]) if initial is None else float(initial)
    zi = np.array([a * y0 + (k - a) * float(u[0])])
    out = np.empty(u.size)
    out[0] = y0
    out[1:] = lfilter(b, np.array([1.0, -a]), u[1:], zi=zi)[0]
    return out


def lag_profile(profile: Profile, tau_s: float, *, dt_s: float = 60.0,
                initial_c: float | None = None) -> Profile:
    """The profile's temperature as seen through a first-order lag of ``tau_s`` seconds.

    The result is on a uniform grid of at most ``dt_s`` seconds spanning the profile (the
    input resampled linearly); the gas pressures are resampled unchanged.

    Parameters
    ----------
    profile : Profile
        Temperature (°C) and atmosphere record.
    tau_s : float
        Time constant, s.
    dt_s : float
        Largest grid step, s.
    initial_c : float, optional
        Lagged temperature at the start (default: the profile's first temperature).
    """
    t = profile.time_s
    end = float(t[-1]) - float(t[0])
    n = max(1, int(math.ceil(end / dt_s)))
    grid = float(t[0]) + np.linspace(0.0, end, n + 1)
    temp = np.interp(grid, t, profile.temperature_c)
    lagged = lag_uniform(temp, end / n if end > 0 else dt_s, tau_s, initial_c)
    return Profile.trusted(grid, lagged, np.interp(grid, t, profile.po2_atm),
                           np.interp(grid, t, profile.ph2o_atm))
