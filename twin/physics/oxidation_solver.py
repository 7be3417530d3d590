"""Vectorised integrators for the generic oxide-growth law (flat surfaces and spheres).

Why this design (speed and accuracy both matter; the plant model calls it per batch):

* **Time grid.** Each profile gets its own grid of ``n_steps`` steps that puts half of the steps
  uniformly in time and half where the growth capacity (the rate at zero thickness) is large,
  so short hot spikes in long profiles are resolved.
* **Flat surface.** Strang splitting with the coefficients frozen at the step's mid-time:
  every sub-step (a Deal–Grove channel, or the exponential term) is solved in closed form, so
  the scheme is unconditionally stable (the thin-oxide and wet linear terms are stiff for an
  explicit Runge–Kutta step at 1100–1200 °C), exact for constant Deal–Grove conditions and
  second order in time otherwise.
* **Spheres.** Integrated in the flat thickness ``s`` as independent variable: the consumed
  depth ``d`` of each particle obeys ``dd/ds = R_sphere / (Z R_flat)``, a ratio close to
  ``1/Z`` and smooth, so a few Heun steps suffice; large particles reduce to the flat result
  exactly whatever the step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from twin.physics.oxidation_profile import BatchProfile
from twin.physics.oxidation_rates import Coefficients

FloatArray = NDArray[np.float64]
CoefFn = Callable[[FloatArray, FloatArray, FloatArray, FloatArray], Coefficients]

DEFAULT_STEPS = 96  # flat-surface steps per profile
DEFAULT_SPHERE_STEPS = 24  # Heun steps in s for particles
_PRELIM_POINTS = 97
_UNIFORM_SHARE = 0.5
_TINY = 1e-300


@dataclass(frozen=True)
class FlatSolution:
    """Flat-surface solution at the grid knots."""

    time_s: FloatArray  # (nb, G + 1)
    thickness_nm: FloatArray  # (nb, G + 1)
    knots: Coefficients  # coefficients at the knots, arrays (nb, G + 1)


def interp_rows(x: FloatArray, xp: FloatArray, fp: FloatArray) -> FloatArray:
    """Row-wise ``np.interp``: each row of ``x`` is interpolated in the same row of ``xp, fp``.

    Rows are mapped to disjoint intervals (row i to [2i, 2i + 1]) so that one flat
    ``np.interp`` call serves all rows; ``xp`` must be non-decreasing along each row.
    """
    lo = xp[:, :1]
    span = xp[:, -1:] - lo
    span = np.where(span > 0, span, 1.0)
    off = 2.0 * np.arange(xp.shape[0])[:, None]
    xn = np.clip((x - lo) / span, 0.0, 1.0) + off
    xpn = (xp - lo) / span + off
    return np.interp(xn.ravel(), xpn.ravel(), fp.ravel()).reshape(x.shape)


def conditions(bp: BatchProfile, t: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Temperature (°C), pO2 and pH2O (atm) of each profile at times ``t`` (nb, n)."""
    return (interp_rows(t, bp.time_s, bp.temperature_c), interp_rows(t, bp.time_s, bp.po2_atm),
            interp_rows(t, bp.time_s, bp.ph2o_atm))


def make_grid(bp: BatchProfile, coef_fn: CoefFn, n_steps: int) -> FloatArray:
    """Knot and mid-step times, shape (nb, 2 n_steps + 1): even columns knots, odd mid-steps."""
    duration = bp.time_s[:, -1:]
    u = np.linspace(0.0, 1.0, _PRELIM_POINTS)[None, :]
    t_pre = u * duration
    co = coef_fn(t_pre, *conditions(bp, t_pre))
    w = co.c + sum((p / np.maximum(q, 1e-30) for p, q in co.channels), np.zeros_like(t_pre))
    w = np.minimum(w, 1e30)
    cum = np.zeros_like(w)
    cum[:, 1:] = np.cumsum(0.5 * (w[:, 1:] + w[:, :-1]), axis=1)
    total = cum[:, -1:]
    share = np.where(total > 0, 1.0 - _UNIFORM_SHARE, 0.0)
    phi = (1.0 - share) * u + share * cum / np.where(total > 0, total, 1.0)
    q = np.broadcast_to(np.linspace(0.0, 1.0, n_steps + 1)[None, :], (bp.n_batches, n_steps + 1))
    knots = interp_rows(q, phi, np.broadcast_to(t_pre, phi.shape))
    knots[:, 0] = 0.0
    knots[:, -1] = duration[:, 0]
    grid = np.empty((bp.n_batches, 2 * n_steps + 1))
    grid[:, 0::2] = knots
    grid[:, 1::2] = 0.5 * (knots[:, 1:] + knots[:, :-1])
    return grid


def solve_flat(bp: BatchProfile, coef_fn: CoefFn, x0_nm: FloatArray,
               n_steps: int = DEFAULT_STEPS, *,
               supply_nm_s_atm: FloatArray | None = None) -> FlatSolution:
    """Integrate the flat-surface law over each profile.

    Parameters
    ----------
    bp : BatchProfile
        Profiles, nb rows.
    coef_fn : callable
        ``(time_s, temperature_c, po2_atm, ph2o_atm) -> Coefficients`` on (nb, n) grids.
    x0_nm : ndarray, shape (nb,)
        Initial oxide thickness, nm.
    n_steps : int
        Steps per profile.
    supply_nm_s_atm : ndarray, shape (nb,), optional
        Oxidant supply limit: growth can be no faster than this times the O2-equivalent
        pressure ``po2 + ph2o / 2`` (nm/s per atm; one O2 or two H2O per SiO2). Each step's
        growth is capped at the oxidant the gas delivers in it (powder_bed.md §1: ``dx/dt =
        min(kinetic rate, F_O2 / (n_O2 m))``). None: no limit.
    """
    grid = make_grid(bp, coef_fn, n_steps)
    cond = conditions(bp, grid)
    co = coef_fn(grid, *cond)
    h = np.diff(grid[:, 0::2], axis=1)
    mid_ch = [(p[:, 1::2], q[:, 1::2]) for p, q in co.channels if np.any(p > 0)]
    c_mid = co.c[:, 1::2]
    use_c = bool(np.any(c_mid > 0))
    length = co.length_nm
    # Every step's sub-step inputs are formed for all steps at once, time-major (one
    # contiguous row per step), so the loop only runs the closed-form sub-steps: the same
    # products in the same order as forming them per step, with fewer Python-level calls.
    n_ch = len(mid_ch)
    c_half = (c_mid * 0.5 * h).T.copy() if use_c else None
    ph_first = [_dg_inputs(p * (1.0 if i == n_ch - 1 else 0.5) * h)
                for i, (p, _) in enumerate(mid_ch)]
    ph_back = [_dg_inputs(p * 0.5 * h) for p, _ in mid_ch[:-1]]
    qs = [q.T.copy() for _, q in mid_ch]
    x = np.array(x0_nm, dtype=float)
    out = np.empty((n_steps + 1, x.shape[0]))
    out[0] = x
    cap = None
    if supply_nm_s_atm is not None:
        # The oxidant each step delivers, as nm of mean oxide (mid-step pressures).
        o2_eq = cond[1][:, 1::2] + 0.5 * cond[2][:, 1::2]
        cap = (np.asarray(supply_nm_s_atm, dtype=float)[:, None] * o2_eq * h).T.copy()
    for j in range(n_steps):
        x_prev = x
        if c_half is not None:
            x = _exp_step(x, c_half[j], length)
        for i in range(n_ch):
            # Symmetric composition D1(h/2) .. Dn(h) .. D1(h/2) keeps second order.
            x = _dg_step(x, ph_first[i][0][j], ph_first[i][1][j], qs[i][j])
        for i in range(n_ch - 2, -1, -1):
            x = _dg_step(x, ph_back[i][0][j], ph_back[i][1][j], qs[i][j])
        if c_half is not None:
            x = _exp_step(x, c_half[j], length)
        if cap is not None:
            x = np.minimum(x, x_prev + cap[j])
        out[j + 1] = x
    knots = Coefficients(tuple((p[:, 0::2], q[:, 0::2]) for p, q in co.channels),
                         co.c[:, 0::2], length)
    return FlatSolution(grid[:, 0::2], out.T.copy(), knots)


def _dg_inputs(ph: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``2 P h`` and ``4 P h`` for :func:`_dg_step`, time-major, for all steps at once."""
    return (2.0 * ph).T.copy(), (4.0 * ph).T.copy()


def _dg_step(x: FloatArray, ph2: FloatArray, ph4: FloatArray, q: FloatArray) -> FloatArray:
    """Exact Deal–Grove step: solve (x+Δ)² + Q(x+Δ) = x² + Qx + P h for Δ >= 0.

    ``ph2`` and ``ph4`` are ``2 P h`` and ``4 P h`` (formed for all steps beforehand).
    """
    g = 2.0 * x + q
    return x + ph2 / np.maximum(g + np.sqrt(g * g + ph4), _TINY)


def _exp_step(x: FloatArray, ch: FloatArray, length: float) -> FloatArray:
    """Exact step of dx/dt = C exp(-x/L): x + L ln(1 + C h e^{-x/L} / L)."""
    return x + length * np.log1p(ch / length * np.exp(-x / length))


def rate(co: Coefficients, j: int | slice, x: FloatArray, x_eff: FloatArray) -> FloatArray:
    """Growth rate (nm/s of oxide per interface area) at knot column ``j``."""
    r = co.c[:, j, None] * np.exp(-x / co.length_nm) if np.any(co.c) else np.zeros_like(x)
    for p, q in co.channels:
        r = r + p[:, j, None] / np.maximum(2.0 * x_eff + q[:, j, None], _TINY)
    return r


def solve_spheres(flat: FlatSolution, radius_nm: FloatArray, x0_nm: FloatArray, z: float,
                  n_steps: int = DEFAULT_SPHERE_STEPS
                  ) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Oxide thickness on spheres of outer radius ``radius_nm`` (nb, nbins) at the end.

    Quasi-steady Deal–Grove in spherical geometry (no stress retardation): the oxidant flux
    through a shell of inner radius a and outer b gives the flat law with the diffusion
    length x_eff = a (b - a) / b; Si consumed at the interface makes Z times its volume of
    oxide. Returns ``(thickness_nm, fully_oxidised)``; a fully oxidised particle reports its
    whole radius as thickness.
    """
    x0 = np.minimum(np.asarray(x0_nm, dtype=float)[:, None], radius_nm)
    a0 = radius_nm - x0
    r0 = np.cbrt(a0**3 + (radius_nm**3 - a0**3) / z)  # metal radius before any oxide
    d = r0 - a0  # consumed metal depth, the state variable (precise for large particles)
    idx = _coarse_knots(flat.thickness_nm, n_steps)
    s = np.take_along_axis(flat.thickness_nm, idx, axis=1)
    co = flat.knots
    # The coefficients at the coarse knots, and the flat rate there, for all knots at once.
    length = co.length_nm
    c_k = np.take_along_axis(co.c, idx, axis=1) if np.any(co.c) else None
    chans = [(np.take_along_axis(p, idx, axis=1), np.take_along_axis(q, idx, axis=1))
             for p, q in co.channels]
    flat_rate = _rate(c_k, chans, length, s, s)
    positive = flat_rate > 0
    flat_safe = np.maximum(flat_rate, _TINY)
    r0_sq = r0 * r0

    def slope(k: int, dd: FloatArray) -> FloatArray:
        x, xe = _shell(r0, dd, z, r0_sq)
        col = slice(k, k + 1)
        r = _rate(c_k[:, col] if c_k is not None else None,
                  [(p[:, col], q[:, col]) for p, q in chans], length, x, xe)
        ratio = np.where(positive[:, col], r / flat_safe[:, col], 1.0)
        return ratio / z

    k1 = slope(0, d)
    for k in range(n_steps):
        hs = s[:, k + 1:k + 2] - s[:, k:k + 1]
        pred = np.minimum(d + hs * k1, r0)
        k2 = slope(k + 1, pred)
        d = np.minimum(d + 0.5 * hs * (k1 + k2), r0)
        k1 = slope(k + 1, d) if k + 1 < n_steps else k1
    x, _ = _shell(r0, d, z)
    return x, d >= r0 * (1.0 - 1e-12)


def _rate(c: FloatArray | None, chans: list[tuple[FloatArray, FloatArray]], length: float,
          x: FloatArray, x_eff: FloatArray) -> FloatArray:
    """:func:`rate` on coefficient columns already picked (``c`` None: no thin-oxide term)."""
    r = c * np.exp(-x / length) if c is not None else np.zeros_like(x)
    for p, q in chans:
        r = r + p / np.maximum(2.0 * x_eff + q, _TINY)
    return r


def _shell(r0: FloatArray, d: FloatArray, z: float,
           r0_sq: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
    """Oxide thickness and diffusion length of a sphere of metal radius r0 consumed by d
    (``r0_sq``: ``r0 * r0`` when the caller has it)."""
    a = np.maximum(r0 - d, 0.0)
    if r0_sq is None:
        r0_sq = r0 * r0
    vol = z * d * (r0_sq + r0 * a + a * a)  # = Z (r0³ - a³), without cancellation
    b = np.cbrt(a * a * a + vol)
    x = vol / np.maximum(b * b + a * b + a * a, _TINY)
    return x, x * a / np.maximum(b, _TINY)


def _coarse_knots(s: FloatArray, n_steps: int) -> NDArray[np.intp]:
    """Knot indices (nb, n_steps + 1) spreading the flat growth s evenly over the steps."""
    nb, n = s.shape
    lo, span = s[:, :1], s[:, -1:] - s[:, :1]
    sn = (s - lo) / np.where(span > 0, span, 1.0) + 2.0 * np.arange(nb)[:, None]
    targets = np.linspace(0.0, 1.0, n_steps + 1)[None, :] + 2.0 * np.arange(nb)[:, None]
    idx = np.searchsorted(sn.ravel(), targets.ravel()).reshape(nb, -1) - n * np.arange(nb)[:, None]
    idx = np.clip(idx, 0, n - 1)
    idx[:, 0] = 0
    idx[:, -1] = n - 1
    return np.maximum.accumulate(idx, axis=1)
