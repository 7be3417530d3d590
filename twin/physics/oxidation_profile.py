"""Time–temperature–atmosphere profiles for the oxidation model.

A :class:`Profile` is a piecewise-linear list of knots (ramps and holds); a
:class:`BatchProfile` stacks many profiles with the same number of knots so that the
integrator can work on all of them at once.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from twin.errors import PhysicsError, UsageError

FloatArray = NDArray[np.float64]

ABSOLUTE_ZERO_C = -273.15


@dataclass(frozen=True)
class Profile:
    """Piecewise-linear furnace profile.

    Attributes
    ----------
    time_s : ndarray, shape (k,)
        Knot times, s; non-decreasing (a repeated time is a step change), shifted to start at 0.
    temperature_c : ndarray, shape (k,)
        Temperature at each knot, °C.
    po2_atm, ph2o_atm : ndarray, shape (k,)
        O2 and H2O partial pressures at each knot, atm (>= 0).
    """

    time_s: FloatArray
    temperature_c: FloatArray
    po2_atm: FloatArray
    ph2o_atm: FloatArray

    def __post_init__(self) -> None:
        arrays = [np.array(getattr(self, n), dtype=float, ndmin=1) for n in _FIELDS]
        t = arrays[0]
        if any(a.ndim != 1 or a.shape != t.shape for a in arrays) or t.size < 2:
            raise PhysicsError("profile: time_s, temperature_c, po2_atm and ph2o_atm must be "
                               "1-D arrays of the same length (at least 2 knots)")
        for name, a in zip(_FIELDS, arrays, strict=True):
            if not np.all(np.isfinite(a)):
                raise PhysicsError(f"profile: {name} holds a non-finite value")
        if np.any(np.diff(t) < 0):
            raise PhysicsError("profile: time_s must be non-decreasing")
        if np.any(arrays[1] <= ABSOLUTE_ZERO_C):
            raise PhysicsError("profile: temperature_c must be above -273.15 °C")
        if np.any(arrays[2] < 0) or np.any(arrays[3] < 0):
            raise PhysicsError("profile: partial pressures must be >= 0 atm")
        arrays[0] = t - t[0]
        for name, a in zip(_FIELDS, arrays, strict=True):
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @classmethod
    def trusted(cls, time_s: FloatArray, temperature_c: FloatArray, po2_atm: FloatArray,
                ph2o_atm: FloatArray) -> Profile:
        """Build a profile without validation, for trusted internal callers only.

        The public constructor checks every knot (about 0.1 ms); a simulation that makes a
        profile per batch from arrays it built itself (a furnace record on its own grid)
        already guarantees what the checks test. The caller promises: four 1-D float64
        arrays of one length >= 2, finite, ``time_s`` non-decreasing and starting at 0,
        temperatures above absolute zero, partial pressures >= 0. The arrays are taken as
        they are (no copy) and made read-only, so the caller must not write to them later;
        read-only arrays may be shared between profiles.
        """
        prof = object.__new__(cls)
        for name, a in zip(_FIELDS, (time_s, temperature_c, po2_atm, ph2o_atm), strict=True):
            a.flags.writeable = False
            object.__setattr__(prof, name, a)
        return prof

    @classmethod
    def constant(cls, temperature_c: float, duration_s: float, po2_atm: float = 1.0,
                 ph2o_atm: float = 0.0) -> Profile:
        """Isothermal profile at fixed atmosphere.

        Parameters
        ----------
        temperature_c : float
            Temperature, °C.
        duration_s : float
            Duration, s (>= 0).
        po2_atm, ph2o_atm : float
            O2 and H2O partial pressures, atm.
        """
        if not duration_s >= 0:
            raise PhysicsError(f"profile: duration must be >= 0 s, got {duration_s}")
        two = np.ones(2)
        return cls(np.array([0.0, float(duration_s)]), two * temperature_c, two * po2_atm,
                   two * ph2o_atm)

    @classmethod
    def ramp_hold(cls, *, start_c: float, hold_c: float, ramp_c_per_min: float, hold_s: float,
                  cool_c_per_min: float, end_c: float | None = None, po2_atm: float,
                  ph2o_atm: float) -> Profile:
        """Ramp from ``start_c`` to ``hold_c``, hold, cool to ``end_c`` (default ``start_c``).

        Parameters
        ----------
        start_c, hold_c, end_c : float
            Temperatures, °C.
        ramp_c_per_min, cool_c_per_min : float
            Heating and cooling rates, °C/min (> 0).
        hold_s : float
            Hold time, s (>= 0).
        po2_atm, ph2o_atm : float
            Atmosphere during the whole profile, atm.
        """
        if ramp_c_per_min <= 0 or cool_c_per_min <= 0 or hold_s < 0:
            raise PhysicsError("profile: ramp and cool rates must be > 0 °C/min and the hold "
                               f">= 0 s, got ramp {ramp_c_per_min}, cool {cool_c_per_min}, "
                               f"hold {hold_s}")
        end = start_c if end_c is None else end_c
        t1 = abs(hold_c - start_c) / ramp_c_per_min * 60.0
        t2 = t1 + hold_s
        t3 = t2 + abs(hold_c - end) / cool_c_per_min * 60.0
        n = 4
        return cls(np.array([0.0, t1, t2, t3]), np.array([start_c, hold_c, hold_c, end]),
                   np.full(n, po2_atm), np.full(n, ph2o_atm))

    @classmethod
    def from_csv(cls, path: str | Path) -> Profile:
        """Read a profile from CSV.

        Columns: ``time_s`` (or ``time_min`` / ``minutes``), ``temperature_c``, ``po2_atm``,
        ``ph2o_atm``. Errors raise :class:`~twin.errors.UsageError` naming file and column.
        """
        return _read_csv(Path(path))

    @property
    def duration_s(self) -> float:
        """Total duration, s."""
        return float(self.time_s[-1])

    @property
    def max_temperature_c(self) -> float:
        """Highest temperature anywhere in the profile, °C (the knots bound it)."""
        return float(np.max(self.temperature_c))


_FIELDS = ("time_s", "temperature_c", "po2_atm", "ph2o_atm")


@dataclass(frozen=True)
class BatchProfile:
    """Profiles stacked as arrays of shape (n_batches, n_knots) (same fields as Profile)."""

    time_s: FloatArray
    temperature_c: FloatArray
    po2_atm: FloatArray
    ph2o_atm: FloatArray

    @classmethod
    def stack(cls, profiles: Sequence[Profile]) -> BatchProfile:
        """Stack profiles, padding shorter ones by repeating their last knot."""
        if not profiles:
            raise PhysicsError("batch profile: no profiles given")
        sizes = [p.time_s.size for p in profiles]
        k = max(sizes)
        cols = []
        for name in _FIELDS:
            out = np.empty((len(profiles), k))
            for i, p in enumerate(profiles):
                row = getattr(p, name)
                out[i, :row.size] = row
                out[i, row.size:] = row[-1]  # zero-length segments change nothing
            cols.append(out)
        return cls(*cols)

    @property
    def n_batches(self) -> int:
        """Number of profiles."""
        return int(self.time_s.shape[0])

    def row(self, i: int) -> Profile:
        """The i-th profile."""
        return Profile(self.time_s[i], self.temperature_c[i], self.po2_atm[i], self.ph2o_atm[i])


def _read_csv(path: Path) -> Profile:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read profile ({exc.strerror or exc})") from None
    if not rows:
        raise UsageError(f"{path}: profile has no data rows")
    header = set(rows[0])
    time_col = next((c for c in ("time_s", "time_min", "minutes") if c in header), None)
    if time_col is None:
        raise UsageError(f"{path}: missing column 'time_s' (or 'time_min' / 'minutes')")
    scale = 1.0 if time_col == "time_s" else 60.0
    cols = {"time_s": _column(path, rows, time_col, scale)}
    for name in _FIELDS[1:]:
        if name not in header:
            raise UsageError(f"{path}: missing column {name!r}")
        cols[name] = _column(path, rows, name, 1.0)
    try:
        return Profile(**cols)
    except PhysicsError as exc:
        raise UsageError(f"{path}: {exc}") from None


def _column(path: Path, rows: list[dict[str, str]], name: str, scale: float) -> FloatArray:
    out = np.empty(len(rows))
    for i, row in enumerate(rows):
        text = (row.get(name) or "").strip()
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"{path}: column {name!r}, data row {i + 1}: not a number: "
                             f"{text!r}") from None
        if not math.isfinite(value):
            raise UsageError(f"{path}: column {name!r}, data row {i + 1}: not finite")
        out[i] = value * scale
    return out
