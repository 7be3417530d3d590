"""Output analysis of terminating replications: means, Student-t intervals, paired
differences, MSER-5 warm-up detection and the precision-mode stopping rule.

All functions are pure and work on plain numpy arrays, so the runner, the report and the tests
share one definition of every number.

References
----------
Law, A. M. (2015). *Simulation Modeling and Analysis*, 5th ed., ch. 9 (replication/deletion,
paired-t comparisons with common random numbers, sequential precision procedure).
White, K. P., Cobb, M. J., Spratt, S. C. (2000). A comparison of five steady-state truncation
heuristics for simulation. *Proc. Winter Simulation Conference*, 755-760 (MSER-5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _sps

#: Confidence level used throughout the studies.
LEVEL: float = 0.95


@dataclass(frozen=True)
class Interval:
    """A sample mean with its Student-t confidence interval.

    Attributes
    ----------
    n : int
        Number of finite observations used.
    mean : float
        Sample mean (NaN when ``n == 0``).
    sd : float
        Sample standard deviation, ``ddof=1`` (NaN when ``n < 2``).
    half_width : float
        Half-width of the two-sided interval (NaN when ``n < 2``; 0 for a constant sample).
    level : float
        Confidence level, e.g. 0.95.
    """

    n: int
    mean: float
    sd: float
    half_width: float
    level: float = LEVEL

    @property
    def low(self) -> float:
        """Lower end of the interval."""
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        """Upper end of the interval."""
        return self.mean + self.half_width

    def excludes_zero(self) -> bool:
        """True when the interval lies entirely on one side of 0 (a significant difference)."""
        return bool(self.n >= 2 and (self.low > 0 or self.high < 0))


def t_quantile(n: int, level: float = LEVEL) -> float:
    """Two-sided Student-t critical value for ``n`` observations (``n - 1`` degrees of freedom).

    Parameters
    ----------
    n : int
        Sample size, >= 2.
    level : float
        Confidence level in (0, 1).

    Returns
    -------
    float
        :math:`t_{n-1, 1-(1-level)/2}`.
    """
    if n < 2:
        raise ValueError(f"need at least 2 observations for a t interval, got {n}")
    return float(_sps.t.ppf(0.5 + level / 2.0, n - 1))


def mean_ci(x: ArrayLike, level: float = LEVEL) -> Interval:
    """Mean and Student-t confidence interval of independent observations.

    NaN values (a KPI undefined in a replication, e.g. no batch finished) are dropped.

    Parameters
    ----------
    x : array_like
        One value per replication.
    level : float
        Confidence level.

    Returns
    -------
    Interval
    """
    a = np.asarray(x, dtype=float).ravel()
    a = a[np.isfinite(a)]
    n = int(a.size)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, level)
    mean = float(a.mean())
    if n == 1:
        return Interval(1, mean, math.nan, math.nan, level)
    sd = float(a.std(ddof=1))
    return Interval(n, mean, sd, t_quantile(n, level) * sd / math.sqrt(n), level)


def mean_ci_rows(x: ArrayLike, level: float = LEVEL
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`mean_ci` for every row of a matrix at once (NaNs dropped per row).

    Parameters
    ----------
    x : array_like, shape (rows, replications)
    level : float

    Returns
    -------
    n, mean, sd, half_width : ndarray
        Per row; NaN where undefined, as in :func:`mean_ci`.
    """
    a = np.atleast_2d(np.asarray(x, dtype=float))
    ok = np.isfinite(a)
    n = ok.sum(axis=1)
    s1 = np.where(ok, a, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s1 / np.maximum(n, 1), np.nan)
        dev = np.where(ok, a - mean[:, None], 0.0)
        sd = np.where(n > 1, np.sqrt((dev * dev).sum(axis=1) / np.maximum(n - 1, 1)), np.nan)
        t = np.where(n > 1, _sps.t.ppf(0.5 + level / 2.0, np.maximum(n - 1, 1)), np.nan)
        hw = t * sd / np.sqrt(np.maximum(n, 1))
    return n, mean, sd, hw


def paired_diff_ci(x: ArrayLike, base: ArrayLike, level: float = LEVEL) -> Interval:
    """Paired-t interval of ``x - base``, replication by replication.

    With common random numbers replication ``r`` of every scenario sees the same random
    streams, so the differences ``x_r - base_r`` are independent across ``r`` and their
    variance is smaller than the sum of the two variances (Law 2015, sec. 10.2).

    Parameters
    ----------
    x, base : array_like
        Equal-length arrays indexed by replication.
    level : float
        Confidence level.

    Returns
    -------
    Interval
        Of the mean difference; pairs with a NaN on either side are dropped.
    """
    a = np.asarray(x, dtype=float).ravel()
    b = np.asarray(base, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.size} vs {b.size}")
    return mean_ci(a - b, level)


def mser_truncation(y: ArrayLike, batch: int = 5, max_fraction: float = 0.5) -> int:
    """Warm-up length by MSER-*m* (MSER-5 for ``batch=5``).

    The series is cut into batch means of ``batch`` observations; the truncation ``d`` (in
    batches) minimises the marginal standard error
    :math:`\\sum_{i>d}(\\bar z_i - \\bar z_d)^2 / (k-d)^2`. Only ``d`` up to ``max_fraction``
    of the series is considered: a minimum beyond that means the run is too short to have
    a steady state, and the caller should lengthen it (White et al. 2000).

    Parameters
    ----------
    y : array_like
        One output series in time order (e.g. throughput per time bucket, averaged over
        replications).
    batch : int
        Observations per batch mean (5 for MSER-5).
    max_fraction : float
        Largest admissible truncation as a fraction of the series.

    Returns
    -------
    int
        Number of leading observations to delete (a multiple of ``batch``).
    """
    a = np.asarray(y, dtype=float).ravel()
    k = a.size // batch
    if k < 2:
        return 0
    z = a[: k * batch].reshape(k, batch).mean(axis=1)
    # Suffix sums give every candidate's mean and sum of squares in O(k).
    rev = z[::-1]
    s1 = np.cumsum(rev)[::-1]
    s2 = np.cumsum(rev * rev)[::-1]
    m = np.arange(k, 0, -1, dtype=float)  # observations kept for d = 0 .. k-1
    sse = np.maximum(s2 - s1 * s1 / m, 0.0)
    stat = sse / (m * m)
    d_max = max(0, min(k - 2, int(max_fraction * k)))
    d = int(np.argmin(stat[: d_max + 1]))
    return d * batch


def replications_needed(n: int, half_width: float, target: float,
                        level: float = LEVEL) -> int:
    """Replications expected to bring a half-width down to ``target``.

    Uses :math:`n^* = \\lceil n (h t^*_{\\infty} / (t_{n-1}\\,target))^2 \\rceil` with the current
    sample standard deviation (Law 2015, eq. 9.3 approximation), at least ``n + 1`` when the
    target is not met yet.

    Parameters
    ----------
    n : int
        Replications so far (>= 2).
    half_width : float
        Current half-width.
    target : float
        Wanted half-width (> 0).
    level : float
        Confidence level.

    Returns
    -------
    int
        Total replications estimated to be enough (``n`` when already met).
    """
    if target <= 0:
        raise ValueError(f"target half-width must be > 0, got {target}")
    if not math.isfinite(half_width) or n < 2:
        return max(n + 1, 2)
    if half_width <= target:
        return n
    z = float(_sps.norm.ppf(0.5 + level / 2.0))
    ratio = half_width * z / (t_quantile(n, level) * target)
    return max(n + 1, math.ceil(n * ratio * ratio))
