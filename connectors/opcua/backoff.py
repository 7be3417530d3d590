"""Exponential reconnect back-off with optional, seeded jitter."""

from __future__ import annotations

import numpy as np


class Backoff:
    """Delays ``min_s, 2 min_s, 4 min_s, ...`` capped at ``max_s``, optionally jittered.

    Jitter spreads the reconnects of many clients after a PLC or network restart so they do
    not all hit the server in the same instant. It is off by default and, when on, drawn
    from the ``numpy.random.Generator`` passed in, so a run is reproducible.

    Parameters
    ----------
    min_s, max_s : float
        First and largest delay, seconds.
    jitter : float
        Relative spread: each delay is multiplied by a uniform factor in
        ``[1 - jitter, 1 + jitter]`` (then capped at ``max_s``).
    rng : numpy.random.Generator, optional
        Source of the jitter (required when ``jitter > 0``).
    factor : float
        Growth per failed attempt.
    """

    def __init__(self, min_s: float, max_s: float, jitter: float = 0.0,
                 rng: np.random.Generator | None = None, factor: float = 2.0) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(f"need 0 < min_s <= max_s, got {min_s}, {max_s}")
        if jitter > 0 and rng is None:
            raise ValueError("jitter needs a seeded numpy Generator (rng)")
        self.min_s, self.max_s, self.jitter, self.factor = min_s, max_s, jitter, factor
        self._rng = rng
        self._attempt = 0

    def next(self) -> float:
        """The delay before the next attempt, seconds; grows with each call."""
        base = min(self.min_s * self.factor ** self._attempt, self.max_s)
        self._attempt += 1
        if self.jitter > 0 and self._rng is not None:
            base *= 1.0 + self.jitter * float(self._rng.uniform(-1.0, 1.0))
        return min(base, self.max_s)

    def reset(self) -> None:
        """Start again from ``min_s`` (after a successful connect)."""
        self._attempt = 0
