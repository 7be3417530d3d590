"""Metrology lab: XPS oxide thickness and its measurement noise.

XPS overlayer thickness from the oxide/substrate intensity ratio ``R`` of one core level
(Si 2p for SiO2 on Si, Sn 3d for SnO2 on Sn):

    d = L·cosθ·ln(1 + R/R0)

with L the effective attenuation length of the photoelectrons in the oxide, θ the emission
angle from the surface normal, and R0 the ratio of the intensities of infinitely thick
oxide and substrate.

Constants
---------
* Si 2p in SiO2, Al Kα: L = 2.96 nm, R0 = 0.9329 (Seah & Spencer, "Ultrathin SiO2 on Si II.
  Issues in quantification of the oxide thickness", Surf. Interface Anal. 33, 640 (2002);
  later NPL work quotes L ≈ 2.99 nm, a 1 % difference).
* Sn 3d5/2 in SnO2, Al Kα (kinetic energy ~1000 eV): **estimate**. L ≈ 1.8 nm from a TPP-2M
  inelastic mean free path of ~2.0 nm scaled by ~0.9 for elastic scattering; R0 ≈ 0.80 from
  the ratio of Sn atom densities (SnO2 0.0461 mol/cm³, Sn 0.0614 mol/cm³) times the ratio of
  attenuation lengths (1.8/1.7 nm). No published calibration was found; calibrate per lab.

Noise: an inter-laboratory spread of about 0.15 nm (reference notes) plus a relative term
(3 %, estimate for peak-fitting and L uncertainty), added in quadrature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twin.errors import PhysicsError

OxideSystem = Literal["SiO2/Si", "SnO2/Sn"]


@dataclass(frozen=True)
class XpsConstants:
    """Overlayer constants of one oxide/substrate pair.

    Attributes
    ----------
    attenuation_length_nm : float
        Effective attenuation length L in the oxide, nm.
    r0 : float
        Intensity ratio of bulk oxide to bulk substrate.
    line : str
        The core level used.
    estimate : bool
        True when the constants are not from a published calibration.
    """

    attenuation_length_nm: float
    r0: float
    line: str
    estimate: bool


XPS_CONSTANTS: dict[str, XpsConstants] = {
    "SiO2/Si": XpsConstants(2.96, 0.9329, "Si 2p (Al Ka)", estimate=False),
    "SnO2/Sn": XpsConstants(1.8, 0.80, "Sn 3d5/2 (Al Ka)", estimate=True),
}

#: Absolute noise floor, nm (inter-laboratory spread, reference notes).
SIGMA_ABS_NM = 0.15
#: Relative noise term (estimate).
SIGMA_REL = 0.03


def _constants(system: str) -> XpsConstants:
    try:
        return XPS_CONSTANTS[system]
    except KeyError:
        raise PhysicsError(f"oxide system must be one of {', '.join(XPS_CONSTANTS)}, "
                           f"got {system!r}") from None


def _cos_theta(angle_deg: float) -> float:
    if not (0.0 <= angle_deg < 80.0):
        # Beyond ~80° elastic scattering and surface roughness break the straight-line model.
        raise PhysicsError(f"emission angle_deg must be in [0, 80), got {angle_deg}")
    return float(np.cos(np.radians(angle_deg)))


def thickness_from_ratio_nm(ratio: ArrayLike, *, system: OxideSystem = "SiO2/Si",
                            angle_deg: float = 0.0) -> NDArray[np.float64]:
    """Oxide thickness from the XPS oxide/substrate intensity ratio, nm.

    Parameters
    ----------
    ratio : array_like
        Oxide/substrate intensity ratio R (>= 0), dimensionless.
    system : {'SiO2/Si', 'SnO2/Sn'}
    angle_deg : float
        Emission angle from the surface normal, degrees.

    Returns
    -------
    ndarray
        ``L·cosθ·ln(1 + R/R0)``, nm (0-d array for scalar input).
    """
    c = _constants(system)
    r = np.asarray(ratio, dtype=float)
    if np.any(~np.isfinite(r)) or np.any(r < 0):
        raise PhysicsError("XPS intensity ratio must be finite and >= 0")
    return np.asarray(c.attenuation_length_nm * _cos_theta(angle_deg) * np.log1p(r / c.r0))


def ratio_from_thickness(thickness_nm: ArrayLike, *, system: OxideSystem = "SiO2/Si",
                         angle_deg: float = 0.0) -> NDArray[np.float64]:
    """XPS oxide/substrate intensity ratio expected for an oxide thickness (inverse), -."""
    c = _constants(system)
    d = _thickness(thickness_nm)
    return np.asarray(c.r0 * np.expm1(d / (c.attenuation_length_nm * _cos_theta(angle_deg))))


def _thickness(thickness_nm: ArrayLike) -> NDArray[np.float64]:
    d = np.asarray(thickness_nm, dtype=float)
    if np.any(~np.isfinite(d)) or np.any(d < 0):
        raise PhysicsError("thickness_nm must be finite and >= 0")
    return d


def sigma_nm(thickness_nm: ArrayLike, *, sigma_abs_nm: float = SIGMA_ABS_NM,
             sigma_rel: float = SIGMA_REL) -> NDArray[np.float64]:
    """Standard deviation of one XPS thickness measurement, nm: sqrt(a² + (r·d)²)."""
    if sigma_abs_nm < 0 or sigma_rel < 0:
        raise PhysicsError(f"noise terms must be >= 0, got sigma_abs_nm={sigma_abs_nm}, "
                           f"sigma_rel={sigma_rel}")
    d = _thickness(thickness_nm)
    return np.asarray(np.hypot(sigma_abs_nm, sigma_rel * d))


def measure_thickness_nm(true_nm: ArrayLike, rng: np.random.Generator, *,
                         sigma_abs_nm: float = SIGMA_ABS_NM,
                         sigma_rel: float = SIGMA_REL) -> NDArray[np.float64]:
    """Draw measured thicknesses around the true ones, nm (never negative).

    The noise is normal, truncated at zero by redrawing the negative draws (a lab never
    reports a negative thickness, and redrawing keeps the distribution's shape instead of
    piling values at zero). Acceptance is at least 50 % per draw, so the loop ends quickly.

    Parameters
    ----------
    true_nm : array_like
        True oxide thickness, nm (>= 0).
    rng : numpy.random.Generator
        The run's generator; never created here, so results follow the run seed.
    sigma_abs_nm, sigma_rel : float
        Noise model, see :func:`sigma_nm`.
    """
    if not isinstance(rng, np.random.Generator):
        raise PhysicsError("rng must be a numpy.random.Generator passed in by the caller")
    if type(true_nm) is float and math.isfinite(true_nm) and true_nm >= 0 and (
            sigma_abs_nm >= 0 and sigma_rel >= 0):
        # One plain number (a lab sample in the plant model): the same draws and arithmetic
        # as the array path below, without its array checks.
        sigma = float(np.hypot(sigma_abs_nm, sigma_rel * true_nm))
        one = true_nm + sigma * rng.standard_normal()
        while one < 0:
            one = true_nm + sigma * rng.standard_normal()
        return np.asarray(one)
    d_in = _thickness(true_nm)
    d = d_in.ravel()
    sigma = sigma_nm(d, sigma_abs_nm=sigma_abs_nm, sigma_rel=sigma_rel).ravel()
    out = d + sigma * rng.standard_normal(d.size)
    bad = out < 0
    while np.any(bad):
        out[bad] = d[bad] + sigma[bad] * rng.standard_normal(int(bad.sum()))
        bad = out < 0
    return out.reshape(d_in.shape)
