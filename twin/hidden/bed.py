"""The hidden plant's oxidation of powder charges on trays in a static batch furnace.

A richer process than the twin's own model (:mod:`twin.physics.oxidation`), used to simulate
the real plant. Each charge is split into classes: heating zone × depth layer × particle-size
bin × {(100), (111), (110) facets of the free Si (or Sn) phase, second phase}. Effects, with
their published forms (numbers and sources in :mod:`twin.hidden.kinetics` and
``/work/shared/notes/powder_bed.md``, "note §n"):

* **Furnace atmosphere** – a well-mixed tank, quasi-steady: ``p = p_in (1 - U / F)`` for O2
  and H2O (1 O2 or 2 H2O per SiO2), U the uptake of the whole charge (note §1: "dx̄/dt =
  min(kinetic rate, F_O2 / (n_O2 m))", estimate form). A bigger or finer charge gets a lower p
  (loading effect); at high demand growth is supply limited.
* **Gas into the bed** – quasi-steady diffusion-reaction slab fed from its top surface (Thiele
  modulus ``φ = h sqrt(k_v / D_eff)``, ``c(z)/c_s = cosh(φ (1 - z/h)) / cosh φ``; note §3),
  k_v the first-order uptake implied by each layer's demand, D_eff from note §3 (estimate).
  The slab solution is chained layer by layer (each layer its own k_v) and each layer sees its
  mean concentration: a saturated top layer passes gas to fresh layers below (a moving
  reaction front), and the bed's uptake equals the diffusive flux through its surface (a
  mid-depth value would not conserve it when φ is large).
* **Bed temperature** – 1-D conduction through L layers per zone, ``ρ_b c_p ∂T/∂t =
  ∂/∂z (k_e ∂T/∂z) + q_rxn`` (note §2), the top face coupled to the zone's true wall
  temperature by radiation and convection (estimate), the tray bottom insulated: the bed lags
  the wall during ramps by the slab's β (h z - z²/2)/α (β h²/(2α) at the bottom), its slowest
  mode decays with 4h²/(π²α), deeper layers lag more. The heat of reaction (note §1: 911 kJ
  per mol SiO2 from O2, 427 kJ from H2O) heats the layer where it is released, so the bed can
  run hotter than the wall while the oxide grows fast.
* **Oxide growth** – Deal–Grove O2 and H2O channels plus the thin-oxide term (SUPREM-IV or
  Massoud), in sphere geometry (``x_eff = a (b - a) / b``, ``b³ = a³ + E (a0³ - a³)``, note §4),
  with the stress retardation of small spheres (Kao et al. 1987: reaction rate and diffusivity
  times ``exp(-σ V / kT)``, σ growing with x/(x + r), relieved by viscous flow above
  ~975 °C, estimate) and a per-charge rate factor on all constants.
* **Tin** – SnO2 (expansion 1.31) with the logarithmic and parabolic laws of note §7; a tin
  phase whose bed reaches 231.9 °C is refused (:class:`~twin.errors.PhysicsError`).

Numerics: the march runs on a per-charge grid built from the input knots (coarse knots are
sub-stepped where the wall temperature or the expected growth changes fast; fine knots are
merged where nothing happens; corners of the wall profile are kept). Per step: bed
temperatures (backward Euler, stable for any step), then growth of every class by the exact
step of the Deal–Grove law fitted to the rate and its slope (second order, unconditionally
stable and monotone, ``Δ = 2 R h / (1 + sqrt(1 + 2 |R'| h))``), with the gas state by
predictor–corrector: the step's uptake per unit pressure (a chord linearisation of the rate
in p) sets the tank and slab state in closed form, and the growth is scaled to it, so O2
consumed equals oxide formed exactly and never exceeds the O2 fed. Each charge's computation
is independent of the others (one call for nb charges equals nb calls).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from twin.errors import PhysicsError
from twin.hidden.kinetics import (
    ATM_PA,
    K_B_J,
    N_CLASSES,
    R_GAS,
    SIGMA_SB,
    BedParams,
    Kinetics,
    RateLaw,
    coefficients,
    massoud_inverse_tau,
    rate_law,
)

FloatArray = NDArray[np.float64]

__all__ = ["ChargeInputs", "ChargeResult", "Numerics", "solve_charges"]

_TINY = 1e-300


@dataclass(frozen=True)
class ChargeInputs:
    """Charges to solve together (nb of them, Z zones, n time knots; arrays as floats).

    Attributes
    ----------
    time_s : (nb, n)
        Knot times, s: strictly increasing, starting at 0 (n >= 2, same n for all charges).
    wall_c : (nb, Z, n)
        True wall/atmosphere temperature of each heating zone, °C (linear between knots).
    o2_mol_s, h2o_mol_s, total_mol_s : (nb, n)
        O2 and H2O delivered into the furnace and the total gas flow, mol/s (>= 0, linear
        between knots; total >= O2 + H2O).
    mass_kg : (nb,)
        Charge mass, kg (>= 0).
    ssa_m2_g : (nb,)
        True BET surface area, m²/g (> 0): sets the oxygen demand; the spheres of the size
        distribution set the geometry (roughness multiplies demand).
    d50_um, gsd : (nb,)
        Volume-median diameter, µm, and geometric standard deviation (>= 1) of the log-normal
        particle sizes.
    initial_nm : (nb,)
        Oxide present when loaded (native + milling pickup), nm (>= 0).
    phase_area_fraction : (nb,)
        Area share of the free Si (or Sn) phase, 0..1; the rest is the second phase.
    rate_factor : (nb,)
        Multiplier on all rate constants (tube ageing, ...), > 0.
    """

    time_s: FloatArray
    wall_c: FloatArray
    o2_mol_s: FloatArray
    h2o_mol_s: FloatArray
    total_mol_s: FloatArray
    mass_kg: FloatArray
    ssa_m2_g: FloatArray
    d50_um: FloatArray
    gsd: FloatArray
    initial_nm: FloatArray
    phase_area_fraction: FloatArray
    rate_factor: FloatArray

    def __post_init__(self) -> None:
        for f in fields(self):
            a = np.array(getattr(self, f.name), dtype=float)
            if not np.all(np.isfinite(a)):
                raise PhysicsError(f"ChargeInputs.{f.name} must be finite")
            a.setflags(write=False)
            object.__setattr__(self, f.name, a)
        t = self.time_s
        if t.ndim != 2 or t.shape[1] < 2 or t.shape[0] < 1:
            raise PhysicsError(f"ChargeInputs.time_s must have shape (nb, n >= 2), got "
                               f"{t.shape}")
        nb, n = t.shape
        if self.wall_c.ndim != 3 or self.wall_c.shape[0] != nb or self.wall_c.shape[2] != n:
            raise PhysicsError(f"ChargeInputs.wall_c must have shape ({nb}, Z, {n}), got "
                               f"{self.wall_c.shape}")
        if np.any(t[:, 0] != 0.0) or np.any(np.diff(t, axis=1) <= 0):
            raise PhysicsError("ChargeInputs.time_s must start at 0 and increase strictly "
                               "along each row")
        if np.any(self.wall_c <= -273.15):
            raise PhysicsError("ChargeInputs.wall_c must be above -273.15 °C")
        for name in ("o2_mol_s", "h2o_mol_s", "total_mol_s"):
            a = getattr(self, name)
            if a.shape != (nb, n) or np.any(a < 0):
                raise PhysicsError(f"ChargeInputs.{name} must be >= 0 with shape ({nb}, {n}), "
                                   f"got shape {a.shape}, min {a.min():g}")
        excess = self.o2_mol_s + self.h2o_mol_s - self.total_mol_s
        if np.any(excess > 1e-9 * np.maximum(self.total_mol_s, 1e-30)):
            raise PhysicsError("ChargeInputs.total_mol_s must be >= o2_mol_s + h2o_mol_s")
        limits = {"mass_kg": (0.0, np.inf, False), "ssa_m2_g": (0.0, 1e4, True),
                  "d50_um": (0.0, 1e5, True), "gsd": (1.0, 20.0, False),
                  "initial_nm": (0.0, 1e5, False), "phase_area_fraction": (0.0, 1.0, False),
                  "rate_factor": (0.0, 1e6, True)}
        for name, (lo, hi, open_lo) in limits.items():
            a = getattr(self, name)
            bad = (a <= lo) if open_lo else (a < lo)
            if a.shape != (nb,) or np.any(bad) or np.any(a > hi):
                rng = f"{'(' if open_lo else '['}{lo:g}, {hi:g}]"
                raise PhysicsError(f"ChargeInputs.{name} must have shape ({nb},) with values "
                                   f"in {rng}, got shape {a.shape}, values {a.ravel()[:4]}")

    @property
    def n_charges(self) -> int:
        """Number of charges nb."""
        return int(self.time_s.shape[0])

    @property
    def n_zones(self) -> int:
        """Number of heating zones Z."""
        return int(self.wall_c.shape[1])


@dataclass(frozen=True)
class Numerics:
    """Discretisation of the solver (defaults keep the error near 1 % of the mean).

    A march step covers about one unit (at most two) of the measure
    ``dt / max_step_s + |ΔT_wall| / max_wall_change_k + Δx_est / max_growth_nm``, x_est being
    a flat-surface growth estimate at the wall temperature and inlet gas.
    """

    size_bins: int = 8
    size_span_sigmas: float = 2.5
    max_step_s: float = 900.0
    max_wall_change_k: float = 80.0
    max_growth_nm: float = 1.0
    corner_tolerance_k: float = 2.0
    cold_growth_nm: float = 1e-11  # steps where no class can grow more than this are skipped

    def __post_init__(self) -> None:
        if not (isinstance(self.size_bins, int) and 1 <= self.size_bins <= 64):
            raise PhysicsError(f"Numerics.size_bins must be an integer in [1, 64], got "
                               f"{self.size_bins!r}")
        for name in ("size_span_sigmas", "max_step_s", "max_wall_change_k", "max_growth_nm",
                     "corner_tolerance_k", "cold_growth_nm"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise PhysicsError(f"Numerics.{name} must be finite and > 0, got {v!r}")


@dataclass(frozen=True)
class ChargeResult:
    """Outcome per charge (first axis nb). Classes are (zone, layer, size bin, C) with C the
    (100), (111), (110) facets of the free phase and the second phase.

    Attributes
    ----------
    mean_nm, p5_nm, p50_nm, p95_nm : (nb,)
        Area-weighted mean and percentiles of the oxide thickness over all classes, nm.
    within_50pct_share : (nb,)
        Area share within ±50 % of the mean.
    fully_oxidised_share : (nb,)
        Volume share of particles oxidised through.
    zone_layer_mean_nm : (nb, Z, L)
        Area-weighted mean thickness per zone and depth layer (top layer first), nm.
    class_thickness_nm, class_weight : (nb, Z, L, K, C)
        Thickness of every class, nm, and its share of the charge's surface (sums to 1).
    bin_radius_nm : (nb, K)
        Particle radius of each size bin as loaded, nm.
    o2_consumed_mol, h2o_consumed_mol, oxide_formed_mol : (nb,)
        O2 and H2O taken up and oxide (SiO2 or SnO2) formed, mol: O2 + H2O/2 = oxide formed.
    o2_delivered_mol, h2o_delivered_mol : (nb,)
        Gas fed into the furnace over the run, mol.
    heat_mj : (nb,)
        Heat of reaction released, MJ.
    peak_excess_k : (nb,)
        Largest bed-minus-wall temperature over layers and time, K (includes the lag while
        the furnace cools).
    peak_self_heating_k : (nb,)
        Largest bed temperature rise caused by the heat of reaction, K.
    peak_bed_c : (nb,)
        Hottest bed layer over the run, °C (a runaway past ~1400 °C would melt or sinter Si:
        the model does not stop it, the caller should look).
    supply_limited_share : (nb,)
        Share of the run with the atmosphere's pO2 below half its inlet value.
    grid_time_s : (nb, N + 1)
        Times of the march grid, s (a charge's grid ends with repeated times when it needed
        fewer steps than the longest).
    bed_c : (nb, Z, L, N + 1)
        Bed temperature per zone and layer on the grid, °C.
    wall_grid_c : (nb, Z, N + 1)
        Wall temperature on the grid, °C.
    po2_atm : (nb, N)
        Atmosphere pO2 during each step, atm.
    """

    mean_nm: FloatArray
    p5_nm: FloatArray
    p50_nm: FloatArray
    p95_nm: FloatArray
    within_50pct_share: FloatArray
    fully_oxidised_share: FloatArray
    zone_layer_mean_nm: FloatArray
    class_thickness_nm: FloatArray
    class_weight: FloatArray
    bin_radius_nm: FloatArray
    o2_consumed_mol: FloatArray
    h2o_consumed_mol: FloatArray
    oxide_formed_mol: FloatArray
    o2_delivered_mol: FloatArray
    h2o_delivered_mol: FloatArray
    heat_mj: FloatArray
    peak_excess_k: FloatArray
    peak_self_heating_k: FloatArray
    peak_bed_c: FloatArray
    supply_limited_share: FloatArray
    grid_time_s: FloatArray
    bed_c: FloatArray
    wall_grid_c: FloatArray
    po2_atm: FloatArray


def solve_charges(inp: ChargeInputs, kin: Kinetics, bed: BedParams, *, material: str = "Si",
                  numerics: Numerics = Numerics()) -> ChargeResult:
    """Oxidise nb charges in the hidden furnace (see the module docstring).

    Parameters
    ----------
    inp : ChargeInputs
        Profiles, gas and powders of the charges.
    kin : Kinetics
        Rate constants of the process.
    bed : BedParams
        Tray bed; ``zone_weights`` (if given) must have one entry per zone of ``inp``.
    material : {"Si", "Sn"}
        Free phase of the powder; a tin phase whose bed reaches 231.9 °C is refused.
    numerics : Numerics
        Discretisation.

    Raises
    ------
    PhysicsError
        Unknown material, inconsistent zone weights, or molten tin.
    """
    law = rate_law(kin, material)
    nz = inp.n_zones
    if bed.zone_weights is not None and len(bed.zone_weights) != nz:
        raise PhysicsError(f"BedParams.zone_weights has {len(bed.zone_weights)} entries for "
                           f"{nz} zones")
    zone_w = np.full(nz, 1.0 / nz) if bed.zone_weights is None else np.array(bed.zone_weights)
    sizes = _size_bins(inp.d50_um, inp.gsd, numerics.size_bins, numerics.size_span_sigmas)
    grid = _grid(inp, law, numerics, bed.pressure_atm)
    return _march(inp, kin, bed, law, grid, sizes, zone_w, numerics.cold_growth_nm)


# --------------------------------------------------------------------------- size classes

@dataclass(frozen=True)
class _Sizes:
    radius_nm: FloatArray  # (nb, K)
    area_w: FloatArray  # (K,) surface share per bin (volume share ∝ area share × radius)


def _size_bins(d50_um: FloatArray, gsd: FloatArray, n_bins: int, span: float) -> _Sizes:
    """Log-normal bins in the surface-weighted distribution (equal widths in log d).

    The surface-weighted median of a log-normal volume distribution is d50 exp(-ln²σ); each
    bin is represented by the conditional mean of its standard-normal coordinate, so that the
    open-ended tail bins sit where their mass is.
    """
    edges = np.linspace(-span, span, n_bins + 1)
    cdf = np.array([0.5 * (1.0 + math.erf(z / math.sqrt(2.0))) for z in edges])
    pdf = np.exp(-0.5 * edges**2) / math.sqrt(2.0 * math.pi)
    cdf[0], cdf[-1], pdf[0], pdf[-1] = 0.0, 1.0, 0.0, 0.0
    w = np.diff(cdf)
    z = (pdf[:-1] - pdf[1:]) / w if n_bins > 1 else np.zeros(1)
    s = np.log(gsd)[:, None]
    return _Sizes(500.0 * d50_um[:, None] * np.exp(-s * s) * np.exp(s * z[None, :]), w)


# --------------------------------------------------------------------------- march grid

@dataclass(frozen=True)
class _Grid:
    time_s: FloatArray  # (nb, N + 1)
    wall_c: FloatArray  # (nb, Z, N + 1)
    flow_mol_s: FloatArray  # (3, nb, N): mean O2, H2O, total flow over each step


def _growth_estimate(inp: ChargeInputs, law: RateLaw, p_atm: float) -> FloatArray:
    """Flat growth (nm) reachable by each knot at the wall temperature and inlet gas, (nb, n).

    Closed forms on cumulative integrals: exact for the thin term alone and for Deal–Grove at
    constant temperature; summed over channels and maximised over zones and classes, so it
    bounds the real growth (which supply and bed diffusion only reduce) for step sizing.
    """
    tot = np.maximum(inp.total_mol_s, _TINY)
    # Every channel grows faster when hotter: the hottest zone bounds the others.
    b_d, a_d, b_w, a_w, c_t = coefficients(law, inp.wall_c.max(axis=1),
                                           p_atm * inp.o2_mol_s / tot,
                                           p_atm * inp.h2o_mol_s / tot, inp.rate_factor[:, None])
    x0 = inp.initial_nm[None, :, None]
    dt = np.diff(inp.time_s, axis=1)[None]

    def cum(r: FloatArray) -> FloatArray:
        out = np.zeros_like(r)
        out[..., 1:] = np.cumsum(0.5 * (r[..., 1:] + r[..., :-1]) * dt, axis=-1)
        return out

    growth = np.zeros_like(b_d)
    for b, a in ((b_d, a_d), (b_w, a_w)):
        i_b = cum(b)
        a_eff = i_b / np.maximum(cum(b / a), _TINY)
        g = 2.0 * x0 + a_eff
        growth += 2.0 * i_b / np.maximum(g + np.sqrt(g * g + 4.0 * i_b), _TINY)
    if law.has_thin:
        inv_l = law.inv_length_nm[:, None, None]
        growth += np.log1p(cum(c_t) * inv_l * np.exp(-x0 * inv_l)) / inv_l
    return np.asarray(growth.max(axis=0))


def _grid(inp: ChargeInputs, law: RateLaw, num: Numerics, p_atm: float) -> _Grid:
    """Per-charge march grids (see :class:`Numerics`), padded with zero-length steps."""
    x_est = _growth_estimate(inp, law, p_atm)
    flows = np.stack([inp.o2_mol_s, inp.h2o_mol_s, inp.total_mol_s])  # (3, nb, n)
    rows = []
    for i in range(inp.n_charges):
        t, w, f = inp.time_s[i], inp.wall_c[i], flows[:, i]
        dt = np.diff(t)
        measure = (dt / num.max_step_s + np.abs(np.diff(w, axis=1)).max(axis=0)
                   / num.max_wall_change_k + np.diff(x_est[i]) / num.max_growth_nm)
        nsub = np.maximum(1, np.ceil(measure - 1e-9)).astype(int)
        j = np.repeat(np.arange(dt.size), nsub)
        first = np.cumsum(nsub) - nsub  # refined index where original interval j starts
        tau = (np.arange(j.size) - first[j]) / nsub[j] * dt[j]
        t_ref = np.append(t[j] + tau, t[-1])
        w_ref = np.concatenate([w[:, j] + (np.diff(w, axis=1) / dt)[:, j] * tau, w[:, -1:]],
                               axis=1)
        # Cumulative gas fed (exact for flows linear between knots).
        cum_f = np.zeros_like(f)
        cum_f[:, 1:] = np.cumsum(0.5 * (f[:, 1:] + f[:, :-1]) * dt, axis=1)
        slope_f = np.diff(f, axis=1) / dt
        i_ref = np.concatenate([cum_f[:, j] + f[:, j] * tau + 0.5 * slope_f[:, j] * tau**2,
                                cum_f[:, -1:]], axis=1)
        m_cum = np.concatenate([[0.0], np.cumsum((measure / nsub)[j])])
        # Corners of the wall profile (knot off its neighbours' chord) always bound a step.
        reset = np.zeros(t_ref.size, dtype=bool)
        reset[0] = True
        if t.size > 2:
            chord = (w[:, :-2] * dt[1:] + w[:, 2:] * dt[:-1]) / (dt[:-1] + dt[1:])
            reset[first[1:]] = np.abs(w[:, 1:-1] - chord).max(axis=0) > num.corner_tolerance_k
        last = np.maximum.accumulate(np.where(reset, np.arange(t_ref.size), 0))
        level = np.floor(m_cum - m_cum[last] + 1e-9)
        keep = reset.copy()
        keep[-1] = True
        keep[1:] |= level[1:] > level[:-1]
        rows.append((t_ref[keep], w_ref[:, keep], i_ref[:, keep]))
    n_steps = max(r[0].size for r in rows) - 1
    nb, nz = inp.n_charges, inp.n_zones
    time = np.empty((nb, n_steps + 1))
    wall = np.empty((nb, nz, n_steps + 1))
    flow = np.zeros((3, nb, n_steps))
    for i, (t, w, cum) in enumerate(rows):
        m = t.size
        time[i, :m], time[i, m:] = t, t[-1]
        wall[i, :, :m], wall[i, :, m:] = w, w[:, -1:]
        flow[:, i, :m - 1] = np.diff(cum, axis=1) / np.diff(t)
    return _Grid(time, wall, flow)


# --------------------------------------------------------------------------- bed heat

@dataclass(frozen=True)
class _Heat:
    """Conduction through the tray bed: L finite-volume layers of a 1-D slab (note §2).

    ``ρ_b c_p ∂T/∂t = ∂/∂z (k_e ∂T/∂z) + q_rxn``. The top face exchanges heat with the wall
    through the surface conductance h_s = 4εσ T̄³ + h_conv (radiation linearised at the mean of
    wall and bed surface, plus convection; estimate) in series with half a layer; the tray
    bottom is insulated, or heated like the top with ``heated_faces=2``. Backward Euler in time:
    unconditionally stable, exact for the quasi-steady lag β (h z - z²/2)/α of a ramp and for a
    steady heat source; the slowest mode decays with the slab constant 4h²/(π²α). The
    tridiagonal system is eliminated from the bottom up (T_i = α_i T_{i-1} + β_i); with an
    insulated bottom the α_i depend on the step only and are computed before the march.
    Arrays are time-major, (N, nb, 1) or (N, L, nb, 1).
    """

    a_int: FloatArray  # k_e dt / (ρ_b c_p Δz²): conductance between layers per step
    c_dt: FloatArray  # dt / (ρ_b c_p Δz)
    alpha: FloatArray
    inv_d: FloatArray
    c_top: FloatArray
    r_half: float  # Δz / (2 k_e): top layer centre to surface, m² K / W
    four_eps_sigma: float
    h_conv: float
    faces: int


def _eliminate(a_int: FloatArray, a_bot: FloatArray | float, nl: int
               ) -> tuple[list[FloatArray], list[FloatArray], FloatArray]:
    """Bottom-up elimination factors α_i, 1/d_i (layers 1..L-1) and the top's a_int (1 - α_1)."""
    alpha = [np.zeros_like(a_int)] * nl
    inv_d = [np.ones_like(a_int)] * nl
    if nl == 1:
        return alpha, inv_d, np.zeros_like(a_int)
    inv = 1.0 / (1.0 + a_int + a_bot)
    alpha[-1], inv_d[-1] = a_int * inv, inv
    for i in range(nl - 2, 0, -1):
        inv = 1.0 / (1.0 + a_int * (2.0 - alpha[i + 1]))
        alpha[i], inv_d[i] = a_int * inv, inv
    return alpha, inv_d, a_int * (1.0 - alpha[1])


def _heat_model(bed: BedParams, dt: FloatArray) -> _Heat:
    nl = bed.layers
    dz = bed.tray_depth_m / nl
    inv_c = 1.0 / (bed.bulk_density_kg_m3 * bed.cp_j_kg_k * dz)
    a_int = (bed.k_eff_w_m_k / dz * inv_c * dt)[:, :, None]
    alpha, inv_d, c_top = _eliminate(a_int, 0.0, nl)
    return _Heat(a_int, (inv_c * dt)[:, :, None], np.stack(alpha, axis=1),
                 np.stack(inv_d, axis=1), c_top, 0.5 * dz / bed.k_eff_w_m_k,
                 4.0 * bed.emissivity * SIGMA_SB, bed.h_conv_w_m2_k, bed.heated_faces)


def _heat_step(heat: _Heat, k: int, temp: FloatArray, wall_c: FloatArray, t_half_k: FloatArray,
               src: FloatArray) -> FloatArray:
    """Bed temperatures (L, …, nb, Z) after step k; ``wall_c`` (nb, Z) at the end of the step,
    ``t_half_k`` = wall/2 + 273.15 K, ``src`` heat of reaction in K over the step."""
    nl = temp.shape[0]
    t_bar = 0.5 * temp[0] + t_half_k
    h_s = heat.four_eps_sigma * (t_bar * t_bar * t_bar) + heat.h_conv
    a_top = heat.c_dt[k] / (1.0 / h_s + heat.r_half)
    a_int = heat.a_int[k]
    rhs = temp + src
    alpha: FloatArray | list[FloatArray]
    inv_d: FloatArray | list[FloatArray]
    if heat.faces == 1:
        alpha, inv_d, c_top = heat.alpha[k], heat.inv_d[k], heat.c_top[k]
        a_bot: FloatArray | float = 0.0
    else:  # the bottom exchanges with the wall too: factors depend on the temperature
        a_bot = a_top
        alpha, inv_d, c_top = _eliminate(a_int, a_top, nl)
    out = np.empty_like(temp)
    if nl == 1:
        a_out = a_top + a_bot
        out[0] = (rhs[0] + a_out * wall_c) / (1.0 + a_out)
        return out
    beta = [rhs[-1]] * nl
    beta[-1] = (rhs[-1] + a_bot * wall_c) * inv_d[-1]
    for i in range(nl - 2, 0, -1):
        beta[i] = (rhs[i] + a_int * beta[i + 1]) * inv_d[i]
    top = (rhs[0] + a_top * wall_c + a_int * beta[1]) / (1.0 + a_top + c_top)
    out[0] = top
    for i in range(1, nl):
        top = alpha[i] * top + beta[i]
        out[i] = top
    return out


def _cold_temperature(law: RateLaw, inp: ChargeInputs, dt_max: float, p_atm: float,
                      cold_nm: float) -> float:
    """Bed temperature (°C) below which no class can grow ``cold_nm`` in a step of ``dt_max``
    at full pressure and the largest rate factor (rates only rise with T and p)."""
    t_c = np.linspace(-100.0, 1600.0, 341)
    b_d, a_d, b_w, a_w, c_t = coefficients(law, t_c, p_atm, p_atm, float(inp.rate_factor.max()))
    bound = (b_d / a_d + b_w / a_w + c_t).max(axis=0) * dt_max
    hot = np.nonzero(bound >= cold_nm)[0]
    if hot.size == 0:
        return math.inf
    return float(t_c[hot[0] - 1]) if hot[0] > 0 else -math.inf


# --------------------------------------------------------------------------- the march

def _march(inp: ChargeInputs, kin: Kinetics, bed: BedParams, law: RateLaw, grid: _Grid,
           sizes: _Sizes, zone_w: FloatArray, cold_nm: float) -> ChargeResult:
    """March all charges over their grids.

    Cells are (layer, charge, zone), M = L·nb·Z of them; class arrays are (K, C, M) with the
    cells last and contiguous, so that per-cell coefficients broadcast over whole blocks.
    """
    nb, nz = inp.n_charges, inp.n_zones
    nl, nk, nc = bed.layers, sizes.area_w.size, N_CLASSES
    n_cells = nl * nb * nz
    big_e = law.expansion
    time = grid.time_s
    n_steps = time.shape[1] - 1

    def per_class(v: FloatArray) -> FloatArray:
        """Values broadcastable to (K, C, L, nb, Z) as a contiguous (K, C, M) array."""
        return np.ascontiguousarray(
            np.broadcast_to(v, (nk, nc, nl, nb, nz))).reshape(nk, nc, n_cells)

    def per_cell(v: FloatArray) -> FloatArray:
        """Values broadcastable to (…, L, nb, Z) as a contiguous (…, M) array."""
        lead = v.shape[:-3]
        return np.ascontiguousarray(
            np.broadcast_to(v, lead + (nl, nb, nz))).reshape(lead + (n_cells,))

    # Geometry: outer radius as loaded, metal radius before any oxide r0, and the consumed
    # metal depth d (the state; x and x_eff follow from it).
    x0 = np.minimum(inp.initial_nm[:, None], sizes.radius_nm)
    a0 = sizes.radius_nm - x0
    r0_kb = np.cbrt(a0**3 + (sizes.radius_nm**3 - a0**3) / big_e)
    r_out = per_class(sizes.radius_nm.T[:, None, None, :, None])
    r0 = per_class(r0_kb.T[:, None, None, :, None])
    d = per_class((r0_kb - a0).T[:, None, None, :, None])
    e_r03 = big_e * r0**3
    ow = np.array(kin.orientation_weights)
    f_phase = inp.phase_area_fraction[None, :]
    phase_w = np.concatenate([ow[:, None] * f_phase, 1.0 - f_phase])  # (C, nb)
    weight = per_class(sizes.area_w[:, None, None, None, None] * phase_w[None, :, None, :, None]
                       * (zone_w / nl)[None, None, None, None, :])
    mol_nm = weight * per_class((inp.mass_kg * inp.ssa_m2_g * 1e3 * law.mol_m2_nm)
                                [None, None, None, :, None])
    q_fac = mol_nm / r_out**2  # × a²: mol oxide per nm grown at the interface (area 4π a²)
    m_fac = mol_nm * big_e / (3.0 * r_out**2)  # × Δ(a³): exact, from the metal consumed

    # Step inputs, time-major; cell arrays (…, M).
    dt_all = np.diff(time, axis=1).T.copy()  # (N, nb)
    dt_cell = per_cell(dt_all[:, None, :, None])  # (N, M)
    two_dt, four_dt = 2.0 * dt_cell, 4.0 * dt_cell
    inv_dt = np.where(dt_cell > 0, 1.0 / np.maximum(dt_cell, _TINY), 0.0)
    wall = np.moveaxis(grid.wall_c, 2, 0).copy()  # (N + 1, nb, Z)
    t_half = 0.5 * wall[1:] + 273.15
    fo, fw, ft = grid.flow_mol_s
    p_in_all = np.moveaxis(np.stack([fo, fw]) * (bed.pressure_atm / np.maximum(ft, _TINY)),
                           2, 0)  # (N, 2, nb)
    f_in_all = np.moveaxis(np.stack([fo, fw]), 2, 0).copy()  # (N, 2, nb) mol/s of species
    delivered = (grid.flow_mol_s[:2] * np.diff(time, axis=1)[None]).sum(axis=2)
    # Gas predictor: last step's layer pressures times the change of the inlet pressure.
    p_prev = np.concatenate([p_in_all[:1], p_in_all[:-1]])
    ratio = per_cell(np.where(p_prev > 0, p_in_all / np.maximum(p_prev, _TINY), 0.0)
                     [:, :, None, :, None])
    fresh = per_cell(np.where(p_prev > 0, 0.0, p_in_all)[:, :, None, :, None])
    p_in_cell = per_cell(p_in_all[:, :, None, :, None])
    # k_v (Δz)²/D per unit g T: k_v = g R T / (p0 V), D_eff per zone at the mean wall
    # temperature of the step (D_eff itself is an estimate).
    dz = bed.tray_depth_m / nl
    m_layer = inp.mass_kg[:, None] * zone_w[None, :] / nl  # (nb, Z)
    inv_vol = np.where(m_layer > 0, bed.bulk_density_kg_m3 / np.maximum(m_layer, _TINY), 0.0)
    d_eff = (bed.d_eff_m2_s(0.5 * (wall[1:] + wall[:-1]) + 273.15)[:, None]
             * np.array([1.0, bed.h2o_diffusivity_factor])[None, :, None, None])
    kvd = per_cell((R_GAS / ATM_PA * dz * dz * inv_vol / d_eff)[:, :, None])  # (N, 2, M)
    inv_mc = np.where(m_layer > 0, 1.0 / np.maximum(m_layer * bed.cp_j_kg_k, _TINY), 0.0)
    inv_mc_dt = inv_mc[None] * dt_all[:, :, None]  # (N, nb, Z): K per J
    rf = per_cell(inp.rate_factor[None, :, None])
    stress = kin.stress_sigma0_pa > 0 and (kin.stress_v_react_nm3 > 0
                                           or kin.stress_v_diff_nm3 > 0)
    inv_l = law.inv_length_nm[:, None]  # (C, 1)
    half_inv_l = 0.5 * inv_l
    inv_e = 1.0 / big_e
    heat = _heat_model(bed, dt_all)
    t_cold = _cold_temperature(law, inp, float(dt_all.max(initial=0.0)), bed.pressure_atm,
                               cold_nm)

    temp = np.broadcast_to(wall[0][None, None, :, :], (nl, 2, nb, nz)).copy()  # heated, ref
    src = np.zeros_like(temp)
    p_lay = p_in_cell[0].copy()  # (2, M)
    q_w = np.zeros(n_cells)
    theta = np.zeros((2, n_cells))
    g_now = np.empty((2, n_cells))
    mol_o_tot, mol_w_tot, limited_s = np.zeros(n_cells), np.zeros(n_cells), np.zeros(nb)
    a = r0 - d
    a2 = a * a
    a3 = a2 * a
    trace = np.empty((n_steps + 1, nl, 2, nb, nz))
    trace[0] = temp
    po2_trace = np.empty((n_steps, nb))

    for k in range(n_steps):
        # Bed temperature, heated by the previous step's reaction heat, and the same bed
        # without reaction heat (reference for the self-heating).
        src[:, 0] = q_w.reshape(nl, nb, nz) * inv_mc_dt[k]
        new_temp = _heat_step(heat, k, temp, wall[k + 1], t_half[k], src)
        tm = (0.5 * (temp[:, 0] + new_temp[:, 0])).reshape(n_cells)
        temp = new_temp
        trace[k + 1] = temp
        if tm.max() < t_cold:  # nothing can grow (a charge alone differs by < cold_nm)
            p_lay = p_in_cell[k].copy()
            q_w = np.zeros_like(q_w)
            po2_trace[k] = p_in_all[k, 0]
            continue

        p_pred = p_lay * ratio[k] + fresh[k]
        if law.massoud:
            dth = massoud_inverse_tau(law, tm) * dt_cell[k]
            coef = coefficients(law, tm, p_pred[0], p_pred[1], rf, theta + 0.5 * dth)
            theta = theta + dth
        else:
            coef = coefficients(law, tm, p_pred[0], p_pred[1], rf)
        b_d, a_d, b_w, a_w, c_t = coef  # (C, M)

        # --- growth of every class at the predicted pressures: exact step of the Deal-Grove
        # law matching the rate R and its slope R' in the flat-equivalent growth.
        b = np.cbrt(e_r03 - (big_e - 1.0) * a3)
        x = b - a
        u = a / b
        xe2 = 2.0 * (a - a * u)  # 2 x_eff, x_eff = a (b - a) / b
        if stress:
            # σ V / kT with σ = σ0 x/(x + r) relief(T); relief: viscous flow above the onset.
            relief = 1.0 / (1.0 + np.exp((tm - kin.relief_onset_c) / kin.relief_width_k))
            s_kt = kin.stress_sigma0_pa * 1e-27 * relief / (K_B_J * (tm + 273.15))
            sx = x / (x + r_out)
            f_k = np.exp(sx * (-kin.stress_v_react_nm3 * s_kt))
            f_d = np.exp(sx * (-kin.stress_v_diff_nm3 * s_kt))
            f_a = f_d / f_k
            g1 = xe2 + a_d * f_a
            g2 = xe2 + a_w * f_a
            r1 = b_d * f_d / g1
            r2 = b_w * f_d / g2
        else:
            g1 = xe2 + a_d
            g2 = xe2 + a_w
            r1 = b_d / g1
            r2 = b_w / g2
        # d x_eff / d(flat growth) ≈ u³ and dx / d(flat growth) ≈ u on a sphere (exact: 1 flat).
        slope = (u * u * u) * (r1 / g1 + r2 / g2)  # |R'| / 2 of the Deal-Grove channels
        if law.has_thin:
            rt = c_t * np.exp(x * -inv_l)
            if stress:
                rt = rt * f_k
            slope = slope + u * rt * half_inv_l
            r_o = r1 + rt
        else:
            r_o = r1
        eta = two_dt[k] / (1.0 + np.sqrt(1.0 + slope * four_dt[k]))  # Δ / R of the fit
        q_eta = (q_fac * a2) * eta
        u_o = (q_eta * r_o).sum(axis=(0, 1))  # mol oxide this step, (M,)
        u_w = (q_eta * r2).sum(axis=(0, 1))

        # --- gas corrector: tank and Thiele state from this step's uptake per local p.
        inv_dtp = inv_dt[k] / np.maximum(p_pred, _TINY)
        g_now[0] = u_o * inv_dtp[0]
        g_now[1] = 2.0 * u_w * inv_dtp[1]
        p_atm, f_lay = _gas(g_now.reshape(2, nl, nb, nz), tm.reshape(nl, nb, nz) + 273.15,
                            p_in_all[k], f_in_all[k], kvd[k].reshape(2, nl, nb, nz))
        p_new = (p_atm[:, None, :, None] * f_lay).reshape(2, n_cells)
        s_e = p_new / np.maximum(p_pred, _TINY) * inv_e  # rates were 0 where p_pred was
        d = np.minimum(d + eta * (s_e[0] * r_o + s_e[1] * r2), r0)
        a = r0 - d
        a2 = a * a
        a3_new = a2 * a
        mol = (m_fac * (a3 - a3_new)).sum(axis=(0, 1))
        a3 = a3_new
        # Book the oxide to O2 and H2O in proportion to the channels' uptake.
        part_o = u_o * s_e[0]
        mol_o = mol * part_o / np.maximum(part_o + u_w * s_e[1], _TINY)
        mol_w = mol - mol_o
        mol_o_tot += mol_o
        mol_w_tot += mol_w
        q_w = (mol_o * law.heat_o2_j_mol + mol_w * law.heat_h2o_j_mol) * inv_dt[k]
        limited_s += (p_atm[0] < 0.5 * p_in_all[k, 0]) * dt_all[k]
        po2_trace[k] = p_atm[0]
        p_lay = p_new

    if law.melt_c is not None:
        _check_melt(law, np.moveaxis(trace[:, :, 0], 1, 3), inp.phase_area_fraction > 0, time)
    x_cls, through = _thickness(r0, d, e_r03, big_e)

    def to_charges(v: FloatArray) -> FloatArray:
        """(K, C, M) -> (nb, Z, L, K, C)."""
        return np.ascontiguousarray(v.reshape(nk, nc, nl, nb, nz).transpose(3, 4, 2, 0, 1))

    o2 = mol_o_tot.reshape(nl, nb, nz).sum(axis=(0, 2))
    h2o_sio2 = mol_w_tot.reshape(nl, nb, nz).sum(axis=(0, 2))
    tot = _Totals(o2, 2.0 * h2o_sio2, o2 * law.heat_o2_j_mol + h2o_sio2 * law.heat_h2o_j_mol,
                  limited_s)
    return _result(inp, sizes, to_charges(weight), to_charges(x_cls),
                   to_charges(through.astype(float)), to_charges(r_out), time, grid,
                   np.moveaxis(trace, 1, 4), po2_trace, tot, delivered)


@dataclass
class _Totals:
    o2_mol: FloatArray
    h2o_mol: FloatArray
    heat_j: FloatArray
    limited_s: FloatArray


def _thickness(r0: FloatArray, d: FloatArray, e_r03: FloatArray,
               big_e: float) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Oxide thickness (nm) and 'oxidised through' of spheres consumed by d."""
    a = r0 - d
    return np.cbrt(e_r03 - (big_e - 1.0) * a**3) - a, d >= r0 * (1.0 - 1e-12)


def _check_melt(law: RateLaw, bed_c: FloatArray, sn_phase: NDArray[np.bool_],
                time: FloatArray) -> None:
    """Refuse a tin phase whose bed (trace (N + 1, nb, Z, L)) reaches the melting point."""
    assert law.melt_c is not None
    hot = bed_c.max(axis=(2, 3))  # (N + 1, nb)
    bad = sn_phase[None, :] & (hot >= law.melt_c)
    if np.any(bad):
        k, i = (int(v) for v in np.argwhere(bad)[0])
        raise PhysicsError(f"hidden bed: tin melts at {law.melt_c:.1f} °C but the bed of charge "
                           f"{i} reaches {hot[k, i]:.1f} °C at t = {time[i, k]:.0f} s; a molten "
                           "tin phase cannot be oxidised as powder")


def _gas(g: FloatArray, t_k: FloatArray, p_in: FloatArray, f_in: FloatArray,
         kvd: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Atmosphere pressures (2, nb) and layer-mean concentration factors c̄/c_s (2, L, nb, Z).

    ``g`` (2, L, nb, Z) is each layer's uptake per atm of its local pressure (mol/s/atm, O2
    and H2O): a first-order constant k_v = g R T / (p0 V); ``kvd`` = k_v (Δz)²/D_eff per g T.
    Gas enters a tray from its top surface and diffuses down (no flux through the bottom):
    the quasi-steady slab solution c(z)/c_s = cosh(φ (1 - z/h)) / cosh φ, φ = h sqrt(k_v /
    D_eff) (Thiele), applied layer by layer so that a saturated top layer lets gas pass to the
    fresh layers below (a reaction front; note §3). With m = Δz sqrt(k_v/D) and w = J Δz /
    (D c) the admittance of everything below, a layer maps w_bottom to w_top = (w_b + m tanh m)
    / (1 + w_b tanh(m)/m), passes c_bottom/c_top = sech m / (1 + w_b tanh(m)/m) and holds
    c̄/c_top = (tanh(m)/m + w_b (1 - sech m)/m²) / (1 + w_b tanh(m)/m). Exact for a uniform
    bed; each layer gets its mean concentration rather than its mid-depth value, so the bed's
    uptake equals the flux through its surface. The tank: p = p_in (1 - U/F) with
    U = p Σ g c̄/c_s, in closed form.
    """
    m = np.sqrt(g * t_k * kvd)
    # Clipped m: below 1e-3 a layer is uniform to 3e-7, above 300 it passes nothing.
    mc = np.minimum(np.maximum(m, 1e-3), 300.0)
    th = np.tanh(mc)
    t1 = th / mc  # tanh(m)/m
    sech = 1.0 / np.cosh(mc)
    s2 = (1.0 - sech) / (mc * mc)  # (1 - sech m)/m²
    mt = m * th
    nl = g.shape[1]
    mean_rel = [t1[:, -1]] * nl
    pass_rel = [sech[:, -1]] * nl
    w_b = mt[:, -1]
    for i in range(nl - 2, -1, -1):
        inv_den = 1.0 / (1.0 + w_b * t1[:, i])
        mean_rel[i] = (t1[:, i] + w_b * s2[:, i]) * inv_den
        pass_rel[i] = sech[:, i] * inv_den
        w_b = (w_b + mt[:, i]) * inv_den
    f = np.empty_like(g)
    f[:, 0] = mean_rel[0]
    c_top = pass_rel[0]
    for i in range(1, nl):
        f[:, i] = c_top * mean_rel[i]
        c_top = c_top * pass_rel[i]
    den = f_in + p_in * (g * f).sum(axis=(1, 3))
    return p_in * f_in / np.maximum(den, _TINY), f


def _result(inp: ChargeInputs, sizes: _Sizes, w: FloatArray, x: FloatArray, through: FloatArray,
            r_out: FloatArray, time: FloatArray, grid: _Grid, trace: FloatArray,
            po2_trace: FloatArray, tot: _Totals, delivered: FloatArray) -> ChargeResult:
    """Statistics over the classes; class arrays (nb, Z, L, K, C)."""
    nb = inp.n_charges
    wall = np.moveaxis(grid.wall_c, 2, 0)[..., None]
    peak = (trace[:, 0] - wall).max(axis=(0, 2, 3))
    peak_self = (trace[:, 0] - trace[:, 1]).max(axis=(0, 2, 3))  # trace (N+1, 2, nb, Z, L)
    flat_x, flat_w = x.reshape(nb, -1), w.reshape(nb, -1)
    mean = (flat_w * flat_x).sum(axis=1)
    p5, p50, p95 = (_weighted_quantile(flat_x, flat_w, q) for q in (0.05, 0.5, 0.95))
    within = (flat_w * (np.abs(flat_x - mean[:, None]) <= 0.5 * mean[:, None])).sum(axis=1)
    vol = (w * r_out).reshape(nb, -1)
    full = (vol * through.reshape(nb, -1)).sum(axis=1) / vol.sum(axis=1)
    zl_w = w.sum(axis=(3, 4))
    zl_mean = (w * x).sum(axis=(3, 4)) / np.maximum(zl_w, _TINY)
    return ChargeResult(
        mean_nm=mean, p5_nm=p5, p50_nm=p50, p95_nm=p95, within_50pct_share=within,
        fully_oxidised_share=full, zone_layer_mean_nm=zl_mean, class_thickness_nm=x,
        class_weight=w, bin_radius_nm=sizes.radius_nm, o2_consumed_mol=tot.o2_mol,
        h2o_consumed_mol=tot.h2o_mol, oxide_formed_mol=tot.o2_mol + 0.5 * tot.h2o_mol,
        o2_delivered_mol=delivered[0], h2o_delivered_mol=delivered[1],
        heat_mj=tot.heat_j * 1e-6, peak_excess_k=peak, peak_self_heating_k=peak_self,
        peak_bed_c=trace[:, 0].max(axis=(0, 2, 3)),
        supply_limited_share=tot.limited_s / inp.time_s[:, -1], grid_time_s=time,
        bed_c=np.moveaxis(trace[:, 0], 0, 3), wall_grid_c=grid.wall_c,
        po2_atm=po2_trace.T.copy())


def _weighted_quantile(x: FloatArray, w: FloatArray, q: float) -> FloatArray:
    """Row-wise weighted quantile: each class holds its weight centred on its value, classes
    of zero weight (absent facets or phases) take no part."""
    order = np.argsort(np.where(w > 0, x, np.inf), axis=1)
    xs = np.take_along_axis(x, order, axis=1)
    ws = np.take_along_axis(w, order, axis=1)
    cdf = np.where(ws > 0, np.cumsum(ws, axis=1) - 0.5 * ws, np.inf)
    last = np.maximum((ws > 0).sum(axis=1) - 1, 1)[:, None]
    hi = np.minimum(np.maximum(np.sum(cdf < q, axis=1)[:, None], 1), last)
    lo = hi - 1
    c0, c1 = np.take_along_axis(cdf, lo, 1), np.take_along_axis(cdf, hi, 1)
    x0, x1 = np.take_along_axis(xs, lo, 1), np.take_along_axis(xs, hi, 1)
    frac = np.clip((q - c0) / np.where((c1 > c0) & np.isfinite(c1), c1 - c0, 1.0), 0.0, 1.0)
    frac = np.where(np.isfinite(c1), frac, 0.0)
    return np.asarray((x0 + frac * (x1 - x0))[:, 0])
