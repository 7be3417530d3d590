"""Area-weighted statistics of oxide thickness over particle-size distributions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from twin.errors import PhysicsError
from twin.physics.psd import SizeDistribution

FloatArray = NDArray[np.float64]


def stack_psds(psds: SizeDistribution | Sequence[SizeDistribution],
               nb: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Radius (nm), area fraction and volume fraction per bin, arrays (nb, n_bins)."""
    if isinstance(psds, SizeDistribution):
        one = (psds.radius_nm[None, :], psds.area_fraction[None, :],
               psds.volume_fraction[None, :])
        return tuple(np.repeat(a, nb, axis=0) for a in one)  # type: ignore[return-value]
    items = list(psds)
    if len(items) != nb:
        raise PhysicsError(f"oxidation: {len(items)} size distributions for {nb} profiles")
    if len({p.diameter_um.size for p in items}) != 1:
        raise PhysicsError("oxidation: batched size distributions need the same number of bins")
    return (np.stack([p.radius_nm for p in items]), np.stack([p.area_fraction for p in items]),
            np.stack([p.volume_fraction for p in items]))


def area_statistics(x: FloatArray, area: FloatArray, volume: FloatArray,
                    through: NDArray[np.bool_]) -> dict[str, FloatArray]:
    """Area-weighted statistics per row of ``x`` (nb, n_bins)."""
    mean = np.sum(area * x, axis=1)
    order = np.argsort(x, axis=1)
    xs = np.take_along_axis(x, order, axis=1)
    ws = np.take_along_axis(area, order, axis=1)
    # Percentile of a weighted sample: each bin holds its weight centred on its value.
    cdf = np.cumsum(ws, axis=1) - 0.5 * ws
    out: dict[str, FloatArray] = {"mean_nm": mean}
    for name, q in (("p5_nm", 0.05), ("p50_nm", 0.50), ("p95_nm", 0.95)):
        out[name] = weighted_quantile(cdf, xs, q)
    within = np.abs(x - mean[:, None]) <= 0.5 * mean[:, None]
    out["within_50pct_share"] = np.sum(area * within, axis=1)
    out["fully_oxidised_share"] = np.sum(volume * through, axis=1)
    out["thickness_nm"] = x
    return out


def weighted_quantile(cdf: FloatArray, xs: FloatArray, q: float) -> FloatArray:
    """Row-wise ``np.interp(q, cdf_row, xs_row)`` (cdf non-decreasing along rows)."""
    n = cdf.shape[1]
    hi = np.clip(np.sum(cdf < q, axis=1), 1, n - 1)[:, None]
    lo = hi - 1
    c0, c1 = np.take_along_axis(cdf, lo, 1), np.take_along_axis(cdf, hi, 1)
    x0, x1 = np.take_along_axis(xs, lo, 1), np.take_along_axis(xs, hi, 1)
    frac = np.clip((q - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.0, 1.0)
    return (x0 + frac * (x1 - x0))[:, 0]
