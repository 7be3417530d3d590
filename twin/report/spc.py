"""Statistical process control of the oxide thickness: individuals chart and capability.

Thickness is log-normal-ish (growth laws are multiplicative in rate), so the charts and the
capability indices work on ``ln(thickness_nm)`` against ``ln`` of the specification limits.

* Individuals / moving-range chart (Montgomery, *Introduction to Statistical Quality Control*,
  ch. 6): centre x̄, short-term sigma ``MR̄/d2`` with ``d2 = 1.128``, limits x̄ ± 3 sigma; the
  moving-range chart's upper limit is ``D4·MR̄`` with ``D4 = 3.267``.
* Western Electric rules (Western Electric *Statistical Quality Control Handbook*, 1956), each
  reported at the point that completes the pattern:
  1. one point beyond 3 sigma;
  2. two of three successive points beyond 2 sigma on the same side;
  3. four of five successive points beyond 1 sigma on the same side;
  4. eight successive points on the same side of the centre line.
* Capability is judged against the plant's **internal band** (``control.band_nm``, default
  aim ±30 %: the limits the process is run to), beside the share of batches inside the
  release specification (``control.window_nm``, 1–100 nm): :func:`band_capability`. A Cpk
  against the 1–100 nm claim says little (any stable process clears it by far).
* Cpk uses the short-term (moving-range) sigma, Ppk the overall sample standard deviation.
  Their approximate confidence intervals are Bissell's (1990, *J. Quality Technology* 22,
  pp. 152–160): ``C ± z·sqrt(1/(9n) + C²/(2(n−1)))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

D2 = 1.128
D4 = 3.267

WE_RULES: dict[int, str] = {
    1: "1 point beyond 3σ",
    2: "2 of 3 beyond 2σ, same side",
    3: "4 of 5 beyond 1σ, same side",
    4: "8 in a row on one side of the centre",
}


@dataclass(frozen=True)
class Limits:
    """Individuals-chart limits (in the charted unit)."""

    center: float
    sigma: float
    mr_bar: float

    @property
    def ucl(self) -> float:
        """Upper control limit, centre + 3 sigma."""
        return self.center + 3 * self.sigma

    @property
    def lcl(self) -> float:
        """Lower control limit, centre − 3 sigma."""
        return self.center - 3 * self.sigma

    @property
    def mr_ucl(self) -> float:
        """Upper limit of the moving-range chart, ``D4·MR̄``."""
        return D4 * self.mr_bar


@dataclass(frozen=True)
class Violation:
    """A Western Electric rule that fired at ``index`` (0-based point of the series)."""

    index: int
    rule: int

    @property
    def text(self) -> str:
        """Rule number and wording."""
        return f"WE{self.rule}: {WE_RULES[self.rule]}"


@dataclass(frozen=True)
class Capability:
    """A capability index with its sample size and two-sided confidence interval."""

    value: float
    low: float
    high: float
    n: int
    confidence: float


def individuals_limits(x: ArrayLike) -> Limits:
    """Centre line and moving-range sigma of an individuals chart.

    Parameters
    ----------
    x : array_like, shape (n,)
        Observations in time order, n >= 2, finite.

    Returns
    -------
    Limits
    """
    a = _finite(x, minimum=2)
    mr = np.abs(np.diff(a))
    mr_bar = float(mr.mean())
    return Limits(float(a.mean()), mr_bar / D2, mr_bar)


def western_electric(x: ArrayLike, limits: Limits) -> list[Violation]:
    """Points at which Western Electric rules 1–4 fire.

    Parameters
    ----------
    x : array_like, shape (n,)
        Observations in time order.
    limits : Limits
        Chart limits (from :func:`individuals_limits` or a Phase I baseline).

    Returns
    -------
    list of Violation
        Sorted by index, then rule; a rule fires at each point that completes its pattern.
    """
    a = _finite(x, minimum=0)
    if limits.sigma <= 0:
        return []
    z = (a - limits.center) / limits.sigma
    out: list[Violation] = []
    for i in range(len(z)):
        if abs(z[i]) > 3:
            out.append(Violation(i, 1))
        if _k_of_m(z, i, 2, 3, 2.0):
            out.append(Violation(i, 2))
        if _k_of_m(z, i, 4, 5, 1.0):
            out.append(Violation(i, 3))
        if i >= 7:
            w = z[i - 7:i + 1]
            if np.all(w > 0) or np.all(w < 0):
                out.append(Violation(i, 4))
    return out


def _k_of_m(z: NDArray[np.float64], i: int, k: int, m: int, level: float) -> bool:
    # The pattern must include point i itself (so a rule fires where it completes).
    if i < m - 1:
        return False
    w = z[i - m + 1:i + 1]
    return any(float(side * z[i]) > level and int(np.sum(side * w > level)) >= k
               for side in (1.0, -1.0))


def cpk(x: ArrayLike, lsl: float, usl: float, *, sigma: float | None = None,
        confidence: float = 0.95) -> Capability:
    """Process capability ``min(USL − μ, μ − LSL) / 3σ`` with Bissell's interval.

    Parameters
    ----------
    x : array_like, shape (n,)
        Observations (n >= 2).
    lsl, usl : float
        Specification limits in the unit of ``x``.
    sigma : float, optional
        Short-term sigma; default the moving-range estimate ``MR̄/d2`` (Cpk). Pass the
        overall standard deviation for Ppk (:func:`ppk`).
    confidence : float
        Two-sided confidence level of the interval.

    Returns
    -------
    Capability
    """
    a = _finite(x, minimum=2)
    s = individuals_limits(a).sigma if sigma is None else float(sigma)
    mu = float(a.mean())
    value = min(usl - mu, mu - lsl) / (3 * s) if s > 0 else math.inf
    return _bissell(value, len(a), confidence)


def ppk(x: ArrayLike, lsl: float, usl: float, *, confidence: float = 0.95) -> Capability:
    """Process performance: like :func:`cpk` with the overall sample standard deviation."""
    a = _finite(x, minimum=2)
    return cpk(a, lsl, usl, sigma=float(a.std(ddof=1)), confidence=confidence)


@dataclass(frozen=True)
class BandCapability:
    """Capability against the internal band, with the share inside the release spec.

    Attributes
    ----------
    band_nm, window_nm : (float, float)
        Internal band (the capability's limits) and release specification, nm.
    cpk, ppk : Capability
        On ln(thickness) against ln(band).
    band_share, spec_share : float
        Shares of the values inside the band and inside the specification.
    n : int
    """

    band_nm: tuple[float, float]
    window_nm: tuple[float, float]
    cpk: Capability
    ppk: Capability
    band_share: float
    spec_share: float
    n: int


def band_capability(values_nm: ArrayLike, band_nm: tuple[float, float],
                    window_nm: tuple[float, float], *,
                    confidence: float = 0.95) -> BandCapability:
    """Cpk and Ppk of ln(thickness) against ln(band), and the shares in band and in spec.

    Parameters
    ----------
    values_nm : array_like, shape (n,)
        Thicknesses in time order, nm (n >= 2, positive).
    band_nm : (float, float)
        Internal band (``control.band``), nm.
    window_nm : (float, float)
        Release specification (``control.window_nm``), nm.
    confidence : float
        Two-sided confidence level of the intervals.
    """
    v = _finite(values_nm, minimum=2)
    if np.any(v <= 0):
        raise ValueError("thicknesses must be positive")
    logs = np.log(v)
    lsl, usl = math.log(band_nm[0]), math.log(band_nm[1])
    return BandCapability(
        (float(band_nm[0]), float(band_nm[1])), (float(window_nm[0]), float(window_nm[1])),
        cpk(logs, lsl, usl, confidence=confidence), ppk(logs, lsl, usl, confidence=confidence),
        float(np.mean((v >= band_nm[0]) & (v <= band_nm[1]))),
        float(np.mean((v >= window_nm[0]) & (v <= window_nm[1]))), int(v.size))


def _bissell(value: float, n: int, confidence: float) -> Capability:
    if not math.isfinite(value):
        return Capability(value, math.nan, math.nan, n, confidence)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * math.sqrt(1 / (9 * n) + value**2 / (2 * (n - 1)))
    return Capability(value, value - half, value + half, n, confidence)


def _finite(x: ArrayLike, *, minimum: int) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=float).ravel()
    if not np.all(np.isfinite(a)):
        raise ValueError("SPC input holds a non-finite value")
    if a.size < minimum:
        raise ValueError(f"SPC needs at least {minimum} points, got {a.size}")
    return a
