"""Closed-loop stability of the run-to-run offset update (EWMA and double EWMA).

The controller estimates a (log) process offset ``a`` and a drift ``d`` per run:

.. math::

    p_t = a_{t-1} + d_{t-1}, \\quad e_t = o_t - p_t, \\quad
    a_t = p_t + \\lambda e_t, \\quad d_t = d_{t-1} + \\mu e_t

and sets the next run's input so that the model plus ``p`` hits the aim. When the true process
gain is ``xi`` times the gain the model assumes, the offset error obeys
``x_t = M x_{t-1}`` with characteristic polynomial

.. math::

    z^2 - (2 - (\\lambda + \\mu)\\xi) z + (1 - \\lambda\\xi) = 0.

By the Jury criterion both roots lie inside the unit circle iff

* ``0 < lambda * xi < 2``,
* ``mu * xi > 0`` (for ``mu = 0`` the drift mode is never excited: plain EWMA),
* ``(2 lambda + mu) * xi < 4``.

Every condition is monotone in ``xi``, so checking the largest gain ratio the site wants to
tolerate (``gain_ratio_max``) covers the whole range ``0 < xi <= gain_ratio_max``.

This module imports nothing from the twin so that the configuration schema can call it while
it is being imported.
"""

from __future__ import annotations

import numpy as np


def characteristic_roots(ewma_lambda: float, drift_lambda: float,
                         gain_ratio: float) -> tuple[complex, complex]:
    """Roots of the closed-loop characteristic polynomial of the offset error.

    Parameters
    ----------
    ewma_lambda : float
        Weight of the newest observation in the offset (level) update, dimensionless.
    drift_lambda : float
        Weight of the newest error in the drift update, dimensionless (0: plain EWMA).
    gain_ratio : float
        True process gain divided by the model's gain, dimensionless (> 0).

    Returns
    -------
    tuple of complex
        The two roots; the loop is stable when both have modulus < 1.
    """
    a1 = -(2.0 - (ewma_lambda + drift_lambda) * gain_ratio)
    a0 = 1.0 - ewma_lambda * gain_ratio
    r = np.roots([1.0, a1, a0]).astype(complex)
    return complex(r[0]), complex(r[1])


def stability_problem(ewma_lambda: float, drift_lambda: float,
                      gain_ratio_max: float) -> str | None:
    """Why the (double-)EWMA loop is not stable up to ``gain_ratio_max``; None when it is.

    Parameters
    ----------
    ewma_lambda : float
        Offset (level) weight ``lambda``, in (0, 1].
    drift_lambda : float
        Drift weight ``mu``, in [0, 1]; 0 is plain EWMA.
    gain_ratio_max : float
        Largest ratio of true to model process gain the loop must tolerate (> 0).

    Returns
    -------
    str or None
        A one-line reason naming the violated condition, or None when stable.
    """
    lam, mu, xi = ewma_lambda, drift_lambda, gain_ratio_max
    if xi <= 0:
        return f"gain_ratio_max must be > 0, got {xi}"
    if not 0 < lam * xi < 2:
        return (f"unstable: ewma_lambda * gain_ratio_max = {lam * xi:.3g} must be in (0, 2) "
                f"(ewma_lambda={lam}, gain_ratio_max={xi})")
    if mu > 0 and not (2 * lam + mu) * xi < 4:
        return (f"unstable: (2 * ewma_lambda + drift_lambda) * gain_ratio_max = "
                f"{(2 * lam + mu) * xi:.3g} must be < 4 (ewma_lambda={lam}, "
                f"drift_lambda={mu}, gain_ratio_max={xi})")
    return None
