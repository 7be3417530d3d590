"""Oxide growth on Si and Sn surfaces and powders over any furnace profile.

Laws (constants and sources in :mod:`twin.physics.oxidation_rates`):

* **Si** – Deal–Grove ``dx/dt = B / (2x + A)`` (Deal & Grove, J. Appl. Phys. 36, 3770 (1965))
  with Arrhenius B and B/A for dry O2 and H2O as parallel channels (humid air), orientation
  factors for (100), (111), (110), ``B ∝ p`` and ``B/A ∝ p^0.75`` (O2) or ``∝ p`` (H2O), plus
  the thin-oxide term ``C exp(-x/L)`` (SUPREM-IV, default) or Massoud, Plummer & Irene's
  enhancement (J. Electrochem. Soc. 132, 2685 (1985)), or none (pure Deal–Grove).
* **Sn** – logarithmic growth at low temperature and parabolic growth above ~180 °C
  (Ea 0.34 eV); a tin charge at or above its melting point (231.9 °C) is refused.
* **Particles** – the same laws in spherical geometry (oxide volume expansion 2.27 for SiO2,
  1.31 for SnO2), averaged over a particle-size distribution.
* **Alloys** – the Si (or Sn) phase covers ``si_area_fraction`` of the surface; the rest
  (silicide / intermetallic) oxidises with all rate constants times ``silicide_factor``.
  ``copper=True`` adds the Cu3Si-catalysed channel (Harper et al., Appl. Phys. Lett. 56, 2519
  (1990)).
* **Native oxide** – :func:`native_oxide_nm`, logarithmic growth in room air that needs O2 and
  water and saturates near 2 nm on Si (Morita et al., J. Appl. Phys. 68, 1272 (1990)).

Thicknesses are in nm, times in s, temperatures in °C, pressures in atm. All functions are
pure; :func:`grow_particles_batch` vectorises across batches for the plant model and the bench.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twin.errors import PhysicsError
from twin.physics import oxidation_rates as rates
from twin.physics.oxidation_native import native_oxide_nm
from twin.physics.oxidation_profile import BatchProfile, Profile
from twin.physics.oxidation_solver import (
    DEFAULT_SPHERE_STEPS,
    DEFAULT_STEPS,
    FlatSolution,
    solve_flat,
    solve_spheres,
)
from twin.physics.oxidation_stats import area_statistics, stack_psds
from twin.physics.psd import SizeDistribution

FloatArray = NDArray[np.float64]

__all__ = [
    "BatchProfile",
    "Calibration",
    "CalibrationCase",
    "OxideDistribution",
    "Profile",
    "fit_calibration",
    "growth_regime",
    "grow_flat",
    "grow_particles",
    "grow_particles_batch",
    "native_oxide_nm",
]


@dataclass(frozen=True)
class Calibration:
    """Per-tool multipliers on the rate constants B, B/A and C (dimensionless, > 0)."""

    b_factor: float = 1.0
    ba_factor: float = 1.0
    c_factor: float = 1.0

    def __post_init__(self) -> None:
        # Plain-float checks (a calibration is built per prediction in a simulated year).
        for name, v in (("b_factor", self.b_factor), ("ba_factor", self.ba_factor),
                        ("c_factor", self.c_factor)):
            if not (math.isfinite(v) and v > 0):
                raise PhysicsError(f"calibration: {name} must be a finite number > 0, got {v}")

    def as_array(self) -> FloatArray:
        """``[b_factor, ba_factor, c_factor]``."""
        return np.array([self.b_factor, self.ba_factor, self.c_factor])


@dataclass(frozen=True)
class OxideDistribution:
    """Oxide thickness over a powder.

    Attributes
    ----------
    mean_nm : float
        Area-weighted mean thickness, nm.
    p5_nm, p50_nm, p95_nm : float
        Area-weighted percentiles of thickness, nm.
    within_50pct_share : float
        Share of the surface area whose thickness is within ±50 % of ``mean_nm``.
    fully_oxidised_share : float
        Volume share of the powder in particles oxidised through.
    thickness_nm : ndarray, shape (n_bins,)
        Thickness per size bin, nm (a particle oxidised through reports its radius).
    """

    mean_nm: float
    p5_nm: float
    p50_nm: float
    p95_nm: float
    within_50pct_share: float
    fully_oxidised_share: float
    thickness_nm: FloatArray = field(repr=False)


@dataclass(frozen=True)
class CalibrationCase:
    """One measurement for :func:`fit_calibration`.

    ``measured_nm`` is a flat-surface thickness, or the area-weighted mean over ``psd`` when a
    size distribution is given. The other fields are the keyword arguments of
    :func:`grow_flat`.
    """

    profile: Profile
    measured_nm: float
    psd: SizeDistribution | None = None
    material: str = "Si"
    orientation: str = "100"
    initial_nm: float = 0.0
    thin_model: str = "suprem"
    si_area_fraction: float = 1.0
    copper: bool = False
    silicide_factor: float = 1.0
    weight: float = 1.0


@dataclass(frozen=True)
class _Setup:
    params: rates.RateParams
    si_area_fraction: float
    silicide_factor: float


def _setup(material: str, orientation: str, thin_model: str, si_area_fraction: float,
           copper: bool, silicide_factor: float) -> _Setup:
    if not 0.0 <= si_area_fraction <= 1.0:
        raise PhysicsError(f"oxidation: si_area_fraction must be within 0..1, got "
                           f"{si_area_fraction}")
    if not (np.isfinite(silicide_factor) and silicide_factor >= 0):
        raise PhysicsError(f"oxidation: silicide_factor must be >= 0, got {silicide_factor}")
    params = rates.RateParams(material, str(orientation), thin_model, bool(copper))
    return _Setup(params, float(si_area_fraction), float(silicide_factor))


def _check_profiles(bp: BatchProfile, material: str) -> None:
    if material == "Sn":
        hot = float(np.max(bp.temperature_c))
        if hot >= rates.SN_MELT_C:
            raise PhysicsError(f"oxidation: tin melts at {rates.SN_MELT_C} °C but the profile "
                               f"reaches {hot:g} °C; a molten charge cannot be oxidised as "
                               "powder or film")


def _phases(setup: _Setup, cal: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Calibration rows for the metal phase and (if present) the silicide phase, and weights."""
    f = setup.si_area_fraction
    if f >= 1.0 or setup.silicide_factor == 1.0:
        return cal, np.array([1.0])
    sil = cal * setup.silicide_factor
    return np.concatenate([cal, np.maximum(sil, 1e-300)]), np.array([f, 1.0 - f])


def _solve(bp: BatchProfile, setup: _Setup, initial_nm: FloatArray, cal: FloatArray,
           n_steps: int, supply: FloatArray | None = None
           ) -> tuple[FlatSolution, FloatArray, BatchProfile, FloatArray]:
    """Solve the flat law for every batch row and phase; returns rows stacked phase-major.

    ``supply`` (per batch row, nm/s per atm) caps each phase's growth at the oxidant the gas
    delivers (so their area-weighted mean is capped too).
    """
    _check_profiles(bp, setup.params.material)
    cal_rows, weights = _phases(setup, cal)
    reps = weights.size
    if reps > 1:
        bp = BatchProfile(*(np.tile(getattr(bp, n), (reps, 1)) for n in
                            ("time_s", "temperature_c", "po2_atm", "ph2o_atm")))
        initial_nm = np.tile(initial_nm, reps)
        if supply is not None:
            supply = np.tile(supply, reps)

    def coef_fn(t: FloatArray, tc: FloatArray, po2: FloatArray,
                ph2o: FloatArray) -> rates.Coefficients:
        return rates.coefficients(setup.params, t, tc, po2, ph2o, cal_rows)

    flat = solve_flat(bp, coef_fn, initial_nm, n_steps, supply_nm_s_atm=supply)
    return flat, weights, bp, initial_nm


def _supply(nb: int, supply_nm_s_atm: ArrayLike | None) -> FloatArray | None:
    """The oxidant-supply limit per batch (None: unlimited)."""
    if supply_nm_s_atm is None:
        return None
    sup = np.broadcast_to(np.asarray(supply_nm_s_atm, dtype=float), (nb,)).copy()
    if np.any(~(sup > 0)):
        raise PhysicsError("oxidation: supply_nm_s_atm must be > 0 (use None for no limit)")
    return sup


def _combine(values: FloatArray, weights: FloatArray) -> FloatArray:
    """Area-weighted sum over phases stacked phase-major along axis 0."""
    parts = np.split(values, weights.size, axis=0)
    return sum((w * p for w, p in zip(weights, parts, strict=True)), np.zeros_like(parts[0]))


def grow_flat(profile: Profile, *, material: str = "Si", orientation: str = "100",
              initial_nm: float = 0.0, calibration: Calibration = Calibration(),
              thin_model: str = "suprem", si_area_fraction: float = 1.0,
              copper: bool = False, silicide_factor: float = 1.0,
              n_steps: int = DEFAULT_STEPS, supply_nm_s_atm: float | None = None) -> float:
    """Oxide thickness grown on a flat surface over a profile.

    Parameters
    ----------
    profile : Profile
        Time–temperature–atmosphere profile (s, °C, atm).
    material : {"Si", "Sn"}
        Metal.
    orientation : {"100", "111", "110"}
        Si crystal face (ignored for Sn).
    initial_nm : float
        Oxide present at the start, nm.
    calibration : Calibration
        Tool factors on B, B/A and C.
    thin_model : {"suprem", "massoud", "none"}
        Thin-oxide law for Si in O2: SUPREM-IV ``C exp(-x/L)``, Massoud et al. (1985), or
        pure Deal–Grove.
    si_area_fraction : float
        Share of the surface that is the metal phase (0..1); the rest oxidises with the rate
        constants times ``silicide_factor``.
    copper : bool
        Add the Cu3Si-catalysed channel (Harper et al. 1990; Si only).
    silicide_factor : float
        Rate multiplier for the silicide / intermetallic part of the surface.
    n_steps : int
        Integrator steps (the default keeps the error below 0.1 %).
    supply_nm_s_atm : float, optional
        Oxidant-supply limit: the growth rate can be no higher than this times the
        O2-equivalent pressure ``po2 + ph2o/2`` of the profile (nm/s per atm); the gas flow over
        the oxidant demand of the surface, ``F / (n_O2 m)`` (powder_bed.md §1). None: no limit.

    Returns
    -------
    float
        Area-weighted oxide thickness at the end of the profile, nm.

    Raises
    ------
    PhysicsError
        Unknown material/orientation/model, bad fractions, or molten tin.
    """
    return float(grow_flat_batch(BatchProfile.stack([profile]), material=material,
                                 orientation=orientation, initial_nm=initial_nm,
                                 calibration=calibration, thin_model=thin_model,
                                 si_area_fraction=si_area_fraction, copper=copper,
                                 silicide_factor=silicide_factor, n_steps=n_steps,
                                 supply_nm_s_atm=supply_nm_s_atm)[0])


def grow_flat_batch(profiles: Sequence[Profile] | BatchProfile, *, material: str = "Si",
                    orientation: str = "100", initial_nm: ArrayLike = 0.0,
                    calibration: Calibration | Sequence[Calibration] = Calibration(),
                    thin_model: str = "suprem", si_area_fraction: float = 1.0,
                    copper: bool = False, silicide_factor: float = 1.0,
                    n_steps: int = DEFAULT_STEPS,
                    supply_nm_s_atm: ArrayLike | None = None) -> FloatArray:
    """Vectorised :func:`grow_flat` over many profiles.

    ``initial_nm``, ``calibration`` and ``supply_nm_s_atm`` may be given per profile. Returns
    thickness, nm, shape (n_profiles,).
    """
    bp = profiles if isinstance(profiles, BatchProfile) else BatchProfile.stack(list(profiles))
    setup = _setup(material, orientation, thin_model, si_area_fraction, copper,
                   silicide_factor)
    x0, cal = _per_batch(bp.n_batches, initial_nm, calibration)
    flat, weights, _, _ = _solve(bp, setup, x0, cal, n_steps,
                                 _supply(bp.n_batches, supply_nm_s_atm))
    return _combine(flat.thickness_nm[:, -1], weights)


def _per_batch(nb: int, initial_nm: ArrayLike,
               calibration: Calibration | Sequence[Calibration]) -> tuple[FloatArray, FloatArray]:
    x0 = np.broadcast_to(np.asarray(initial_nm, dtype=float), (nb,)).copy()
    if np.any(~np.isfinite(x0)) or np.any(x0 < 0):
        raise PhysicsError("oxidation: initial_nm must be finite and >= 0")
    if isinstance(calibration, Calibration):
        cal = np.tile(calibration.as_array(), (nb, 1))
    else:
        cal = np.array([c.as_array() for c in calibration])
        if cal.shape != (nb, 3):
            raise PhysicsError(f"oxidation: {len(calibration)} calibrations for {nb} profiles")
    return x0, cal


def grow_particles(profile: Profile, psd: SizeDistribution, *, material: str = "Si",
                   orientation: str = "100", initial_nm: float = 0.0,
                   calibration: Calibration = Calibration(), thin_model: str = "suprem",
                   si_area_fraction: float = 1.0, copper: bool = False,
                   silicide_factor: float = 1.0,
                   supply_nm_s_atm: float | None = None) -> OxideDistribution:
    """Oxide thickness over a powder of spheres.

    Parameters are those of :func:`grow_flat` plus ``psd``, the particle-size distribution
    (bin diameters are the particle diameters at the start of the profile, µm).

    Returns
    -------
    OxideDistribution
        Area-weighted mean, percentiles, uniformity share and through-oxidised share.
    """
    return grow_particles_batch([profile], psd, material=material, orientation=orientation,
                                initial_nm=initial_nm, calibration=calibration,
                                thin_model=thin_model, si_area_fraction=si_area_fraction,
                                copper=copper, silicide_factor=silicide_factor,
                                supply_nm_s_atm=supply_nm_s_atm)[0]


@overload
def grow_particles_batch(profiles: Sequence[Profile] | BatchProfile,
                         psds: SizeDistribution | Sequence[SizeDistribution], *,
                         as_arrays: Literal[False] = ..., material: str = ...,
                         orientation: str = ..., initial_nm: ArrayLike = ...,
                         calibration: Calibration | Sequence[Calibration] = ...,
                         thin_model: str = ..., si_area_fraction: float = ...,
                         copper: bool = ..., silicide_factor: float = ...,
                         n_steps: int = ..., sphere_steps: int = ...,
                         supply_nm_s_atm: ArrayLike | None = ...
                         ) -> list[OxideDistribution]: ...


@overload
def grow_particles_batch(profiles: Sequence[Profile] | BatchProfile,
                         psds: SizeDistribution | Sequence[SizeDistribution], *,
                         as_arrays: Literal[True], material: str = ...,
                         orientation: str = ..., initial_nm: ArrayLike = ...,
                         calibration: Calibration | Sequence[Calibration] = ...,
                         thin_model: str = ..., si_area_fraction: float = ...,
                         copper: bool = ..., silicide_factor: float = ...,
                         n_steps: int = ..., sphere_steps: int = ...,
                         supply_nm_s_atm: ArrayLike | None = ...
                         ) -> dict[str, FloatArray]: ...


def grow_particles_batch(profiles: Sequence[Profile] | BatchProfile,
                         psds: SizeDistribution | Sequence[SizeDistribution], *,
                         as_arrays: bool = False, material: str = "Si",
                         orientation: str = "100", initial_nm: ArrayLike = 0.0,
                         calibration: Calibration | Sequence[Calibration] = Calibration(),
                         thin_model: str = "suprem", si_area_fraction: float = 1.0,
                         copper: bool = False, silicide_factor: float = 1.0,
                         n_steps: int = DEFAULT_STEPS, sphere_steps: int = DEFAULT_SPHERE_STEPS,
                         supply_nm_s_atm: ArrayLike | None = None
                         ) -> list[OxideDistribution] | dict[str, FloatArray]:
    """Vectorised :func:`grow_particles` across batches (one profile per batch).

    Parameters
    ----------
    profiles : sequence of Profile or BatchProfile
        One profile per batch.
    psds : SizeDistribution or sequence of SizeDistribution
        One distribution shared by all batches, or one per batch (same number of bins).
    as_arrays : bool
        Return a dict of arrays (keys as the :class:`OxideDistribution` fields, ``thickness_nm``
        of shape (nb, n_bins)) instead of a list of objects; faster for large batches.
    initial_nm, calibration
        Scalars or one value per batch.
    n_steps, sphere_steps : int
        Flat-surface steps per profile and Heun steps for the particles.
    supply_nm_s_atm : float or array_like, optional
        Oxidant-supply limit per batch (see :func:`grow_flat`); it caps the growth of the
        flat-surface solution that the particles follow, so every size slows together.
    Other parameters are those of :func:`grow_flat`.
    """
    bp = profiles if isinstance(profiles, BatchProfile) else BatchProfile.stack(list(profiles))
    nb = bp.n_batches
    setup = _setup(material, orientation, thin_model, si_area_fraction, copper,
                   silicide_factor)
    x0, cal = _per_batch(nb, initial_nm, calibration)
    radius, area, volume = stack_psds(psds, nb)
    flat, weights, _, x0_rep = _solve(bp, setup, x0, cal, n_steps, _supply(nb, supply_nm_s_atm))
    z = rates.VOLUME_EXPANSION[material]
    reps = weights.size
    x, full = solve_spheres(flat, np.tile(radius, (reps, 1)), x0_rep, z, sphere_steps)
    thickness = _combine(x, weights)
    # A particle counts as oxidised through when its metal phase is.
    through = full[:nb]
    stats = area_statistics(thickness, area, volume, through)
    if as_arrays:
        return stats
    return [OxideDistribution(float(stats["mean_nm"][i]), float(stats["p5_nm"][i]),
                              float(stats["p50_nm"][i]), float(stats["p95_nm"][i]),
                              float(stats["within_50pct_share"][i]),
                              float(stats["fully_oxidised_share"][i]),
                              stats["thickness_nm"][i]) for i in range(nb)]


def growth_regime(profile: Profile, thickness_nm: float, *, material: str = "Si",
                  orientation: str = "100", thin_model: str = "suprem",
                  calibration: Calibration = Calibration(), copper: bool = False) -> str:
    """Dominant growth regime at the end of the profile's hottest point.

    Returns ``"logarithmic"`` (Sn, exponential term dominant), ``"thin"`` (Si thin-oxide term
    dominant), ``"linear"`` (``2x < A``, interface-reaction limited) or ``"parabolic"``
    (diffusion limited); ``"none"`` if nothing oxidises.
    """
    setup = _setup(material, orientation, thin_model, 1.0, copper, 1.0)
    i = int(np.argmax(profile.temperature_c))
    def at_peak(values: FloatArray) -> FloatArray:
        return np.array([[values[i]]])

    co = rates.coefficients(setup.params, at_peak(profile.time_s),
                            at_peak(profile.temperature_c), at_peak(profile.po2_atm),
                            at_peak(profile.ph2o_atm), calibration.as_array()[None, :])
    x = float(thickness_nm)
    thin = float(co.c[0, 0]) * np.exp(-x / co.length_nm)
    dg = [(float(p[0, 0]), float(q[0, 0])) for p, q in co.channels]
    dg_rate = sum(p / (2 * x + q) for p, q in dg)
    if thin <= 0 and dg_rate <= 0:
        return "none"
    if thin > dg_rate:
        return "logarithmic" if material == "Sn" else "thin"
    p, q = max(dg, key=lambda pq: pq[0] / (2 * x + pq[1]))
    return "linear" if 2 * x < q else "parabolic"


def fit_calibration(cases: Sequence[CalibrationCase], *, max_iter: int = 30,
                    prior_weight: float = 1e-3) -> Calibration:
    """Least-squares tool calibration from measured (profile, thickness) pairs.

    Minimises ``Σ w_i (ln model_i - ln measured_i)² + λ Σ_k (ln f_k)²`` over the log factors
    ``ln f_k`` of B, B/A and C with Levenberg–Marquardt (finite-difference Jacobian,
    numpy only). Logs make the fit relative (a 10 % error weighs the same at 3 nm and 300 nm)
    and keep factors positive; the small ridge ``λ`` keeps factors the data cannot see
    (e.g. C when every oxide is thick) at 1 instead of drifting.

    Parameters
    ----------
    cases : sequence of CalibrationCase
        Measurements; at least one, thicknesses > 0.
    max_iter : int
        Iteration limit.
    prior_weight : float
        Ridge weight λ on the log factors.

    Returns
    -------
    Calibration
    """
    if not cases:
        raise PhysicsError("fit_calibration: no cases given")
    meas = np.array([c.measured_nm for c in cases], dtype=float)
    if np.any(~np.isfinite(meas)) or np.any(meas <= 0):
        raise PhysicsError("fit_calibration: measured thicknesses must be finite and > 0 nm")
    w = np.sqrt(np.array([c.weight for c in cases], dtype=float))
    sq_prior = np.sqrt(prior_weight)

    def residual(theta: FloatArray) -> FloatArray:
        model = _predict_cases(cases, np.exp(theta)[None, :])[:, 0]
        return np.concatenate([w * (np.log(np.maximum(model, 1e-6)) - np.log(meas)),
                               sq_prior * theta])

    theta = np.zeros(3)
    lam = 1e-2
    res = residual(theta)
    cost = float(res @ res)
    for _ in range(max_iter):
        jac = _jacobian(cases, theta, w, sq_prior)
        g = jac.T @ res
        hess = jac.T @ jac
        improved = False
        for _ in range(10):
            step = np.linalg.solve(hess + lam * np.diag(np.diag(hess) + 1e-12), -g)
            trial = theta + step
            r_trial = residual(trial)
            c_trial = float(r_trial @ r_trial)
            if c_trial < cost:
                theta, res, improved = trial, r_trial, True
                lam = max(lam / 3.0, 1e-9)
                break
            lam *= 4.0
        if not improved:
            break
        converged = cost - c_trial < 1e-12 * max(cost, 1e-30) or np.max(np.abs(step)) < 1e-7
        cost = c_trial
        if converged:
            break
    f = np.exp(theta)
    return Calibration(float(f[0]), float(f[1]), float(f[2]))


def _jacobian(cases: Sequence[CalibrationCase], theta: FloatArray, w: FloatArray,
              sq_prior: float, eps: float = 1e-4) -> FloatArray:
    # Central differences of ln(model) in ln(factor); all perturbations in one batched solve.
    pts = np.exp(theta[None, :] + eps * np.vstack([np.eye(3), -np.eye(3)]))
    model = np.log(np.maximum(_predict_cases(cases, pts), 1e-6))
    jac = (model[:, :3] - model[:, 3:]) / (2 * eps) * w[:, None]
    return np.vstack([jac, sq_prior * np.eye(3)])


def _predict_cases(cases: Sequence[CalibrationCase], factors: FloatArray) -> FloatArray:
    """Model thickness (n_cases, n_factor_sets) for each calibration factor set (rows)."""
    out = np.empty((len(cases), factors.shape[0]))
    groups: dict[tuple[object, ...], list[int]] = {}
    for i, c in enumerate(cases):
        key = (c.material, c.orientation, c.thin_model, c.si_area_fraction, c.copper,
               c.silicide_factor, None if c.psd is None else c.psd.diameter_um.size)
        groups.setdefault(key, []).append(i)
    nf = factors.shape[0]
    for idx in groups.values():
        first = cases[idx[0]]
        profiles = [cases[i].profile for i in idx for _ in range(nf)]
        x0 = np.repeat([cases[i].initial_nm for i in idx], nf)
        cal = [Calibration(*f) for _ in idx for f in factors]
        if first.psd is None:
            vals = grow_flat_batch(profiles, material=first.material,
                                   orientation=first.orientation, initial_nm=x0,
                                   calibration=cal, thin_model=first.thin_model,
                                   si_area_fraction=first.si_area_fraction,
                                   copper=first.copper, silicide_factor=first.silicide_factor)
        else:
            psds = [cases[i].psd or first.psd for i in idx for _ in range(nf)]
            vals = grow_particles_batch(profiles, psds, as_arrays=True,
                                        material=first.material,
                                        orientation=first.orientation, initial_nm=x0,
                                        calibration=cal, thin_model=first.thin_model,
                                        si_area_fraction=first.si_area_fraction,
                                        copper=first.copper,
                                        silicide_factor=first.silicide_factor)["mean_nm"]
        out[idx, :] = np.asarray(vals).reshape(len(idx), nf)
    return out
