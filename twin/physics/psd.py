"""Particle-size distributions on log-spaced bins (shared by milling and oxidation).

A distribution is held as bin-centre diameters and the *volume* (= mass) fraction in each bin,
which is what laser diffraction reports and what mass balances need. Number and surface
weightings are derived from it for spheres: the number of particles in a bin is proportional to
``v / d**3`` and their surface to ``v / d``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from twin.errors import PhysicsError

FloatArray = NDArray[np.float64]

DEFAULT_BINS = 64


@dataclass(frozen=True)
class SizeDistribution:
    """Particle-size distribution of spheres.

    Attributes
    ----------
    diameter_um : ndarray, shape (n,)
        Bin-centre diameters, µm, strictly increasing.
    volume_fraction : ndarray, shape (n,)
        Volume (mass) fraction of the powder in each bin; non-negative, sums to 1.
    """

    diameter_um: FloatArray
    volume_fraction: FloatArray

    def __post_init__(self) -> None:
        d = np.asarray(self.diameter_um, dtype=float)
        v = np.asarray(self.volume_fraction, dtype=float)
        if d.ndim != 1 or d.shape != v.shape or d.size == 0:
            raise PhysicsError("size distribution: diameter_um and volume_fraction must be 1-D "
                               "arrays of the same, non-zero length")
        if np.any(d <= 0) or np.any(np.diff(d) <= 0):
            raise PhysicsError("size distribution: diameters must be positive and increasing")
        if np.any(v < 0) or not np.isclose(v.sum(), 1.0, rtol=0, atol=1e-9):
            raise PhysicsError("size distribution: volume fractions must be >= 0 and sum to 1")
        object.__setattr__(self, "diameter_um", d)
        object.__setattr__(self, "volume_fraction", v)

    @property
    def radius_nm(self) -> FloatArray:
        """Bin-centre radii, nm."""
        return self.diameter_um * 500.0

    @property
    def number_fraction(self) -> FloatArray:
        """Number fraction of particles per bin (spheres)."""
        n = self.volume_fraction / self.diameter_um**3
        return n / n.sum()

    @property
    def area_fraction(self) -> FloatArray:
        """Share of the powder's surface area in each bin (spheres)."""
        a = self.volume_fraction / self.diameter_um
        return a / a.sum()

    def percentile_um(self, q: float) -> float:
        """Volume-weighted percentile diameter (q in 0..100), µm; ``percentile_um(50)`` is d50."""
        # Cumulative fraction at each bin centre (half of the bin counted below its centre).
        cdf = np.cumsum(self.volume_fraction) - 0.5 * self.volume_fraction
        logd = np.log(self.diameter_um)
        return float(np.exp(np.interp(q / 100.0, cdf, logd)))

    @property
    def d50_um(self) -> float:
        """Volume-median diameter, µm."""
        return self.percentile_um(50.0)


def lognormal(d50_um: float, gsd: float, n_bins: int = DEFAULT_BINS,
              span_sigmas: float = 4.0) -> SizeDistribution:
    """Log-normal volume distribution on ``n_bins`` log-spaced bins.

    Parameters
    ----------
    d50_um : float
        Volume-median diameter, µm (> 0).
    gsd : float
        Geometric standard deviation (> 1), dimensionless.
    n_bins : int
        Number of bins.
    span_sigmas : float
        Half-width of the bin range in log-standard deviations.
    """
    if d50_um <= 0 or gsd <= 1.0 or n_bins < 2:
        raise PhysicsError(f"log-normal size distribution needs d50_um > 0 and gsd > 1, "
                           f"got d50_um={d50_um}, gsd={gsd}")
    s = np.log(gsd)
    edges = np.exp(np.linspace(np.log(d50_um) - span_sigmas * s,
                               np.log(d50_um) + span_sigmas * s, n_bins + 1))
    centres = np.sqrt(edges[:-1] * edges[1:])
    z = (np.log(edges) - np.log(d50_um)) / s
    cdf = 0.5 * (1.0 + _erf(z / np.sqrt(2.0)))
    v = np.diff(cdf)
    return SizeDistribution(centres, v / v.sum())


def _erf(x: FloatArray) -> FloatArray:
    # math.erf vectorised; avoids a scipy dependency for one function.
    from math import erf

    return np.vectorize(erf, otypes=[float])(x)
