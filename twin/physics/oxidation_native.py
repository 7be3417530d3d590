"""Native oxide grown during handling and storage (room air).

Logarithmic growth, ``x_log = l ln(1 + k t / t0)`` (a slope of ``l ln 10`` nm per decade of
time), mapped through a soft minimum ``x = x_log / (1 + (x_log / x_sat)^4)^(1/4)`` so the
layer self-limits while keeping the logarithmic slope below the ceiling. The speed factor
``k`` needs both O2 and water on Si (Langmuir factors that vanish without either), and grows
with temperature.

Sources: Si 0.5–0.7 nm per decade, needs O2 and H2O, self-limits near 2 nm (Archer,
J. Electrochem. Soc. 1957; Morita et al., J. Appl. Phys. 68, 1272 (1990)); native tin oxide
2–4 nm. Time constants, humidity half-saturation and activation energies are estimates
(plant parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twin.errors import PhysicsError

FloatArray = NDArray[np.float64]

K_B_EV = 8.617333262e-5
SN_MELT_C = 231.9


@dataclass(frozen=True)
class NativeLaw:
    """Constants of the native-oxide law for one metal."""

    nm_per_decade: float  # logarithmic slope, nm
    t0_s: float  # time scale at reference conditions, s
    x_sat_nm: float  # soft ceiling, nm
    ea_ev: float  # activation energy of the speed factor (estimate), eV
    rh_half_percent: float  # RH giving half the humidity effect (estimate), %
    dry_share: float  # share of the speed without water (0 for Si: water is needed)


NATIVE_LAWS = {
    "Si": NativeLaw(0.6, 600.0, 2.0, 0.5, 20.0, 0.0),
    "Sn": NativeLaw(1.0, 60.0, 4.0, 0.34, 20.0, 0.3),
}
_SOFT_MIN_POWER = 4.0
_RH_REF, _PO2_REF, _PO2_HALF, _T_REF_C = 50.0, 0.21, 0.02, 25.0


def native_oxide_nm(duration_s: ArrayLike, *, rh_percent: float, po2_atm: float = 0.21,
                    temperature_c: float = 25.0, material: str = "Si",
                    initial_nm: float = 0.0) -> float | FloatArray:
    """Native oxide thickness after storage or handling in air.

    Parameters
    ----------
    duration_s : float or array_like
        Exposure time, s (>= 0).
    rh_percent : float
        Relative humidity, % (0..100).
    po2_atm : float
        O2 partial pressure, atm (0.21 in air).
    temperature_c : float
        Storage temperature, °C (below 150 °C; tin below its melting point).
    material : {"Si", "Sn"}
        Metal.
    initial_nm : float
        Oxide present at the start, nm; growth continues from the equivalent age.

    Returns
    -------
    float or ndarray
        Oxide thickness, nm (same shape as ``duration_s``).
    """
    law = NATIVE_LAWS.get(material)
    if law is None:
        raise PhysicsError(f"native oxide: unknown material {material!r}; expected Si or Sn")
    t = np.asarray(duration_s, dtype=float)
    _check(t, rh_percent, po2_atm, temperature_c, material, initial_nm)
    return _grow(law, t, rh_percent, po2_atm, temperature_c, initial_nm)


def native_oxide_scalar(duration_s: float, *, rh_percent: float, po2_atm: float = 0.21,
                        temperature_c: float = 25.0, material: str = "Si",
                        initial_nm: float = 0.0) -> float:
    """:func:`native_oxide_nm` for one duration, with the input checks in plain floats.

    The same law and arithmetic (results are identical); the plant calls it per mill lot,
    where the array checks of :func:`native_oxide_nm` cost more than the law. Inputs that
    fail a check go through :func:`native_oxide_nm`, which raises its error.
    """
    law = NATIVE_LAWS.get(material)
    if (law is None or not (0.0 <= duration_s < math.inf) or not 0.0 <= rh_percent <= 100.0
            or not 0.0 <= po2_atm < math.inf or not 0.0 <= initial_nm < math.inf
            or not -60.0 <= temperature_c <= 150.0
            or (material == "Sn" and temperature_c >= SN_MELT_C)):
        return float(native_oxide_nm(duration_s, rh_percent=rh_percent, po2_atm=po2_atm,
                                     temperature_c=temperature_c, material=material,
                                     initial_nm=initial_nm))
    return float(_grow(law, np.asarray(float(duration_s)), rh_percent, po2_atm,
                       temperature_c, initial_nm))


def _grow(law: NativeLaw, t: FloatArray, rh_percent: float, po2_atm: float,
          temperature_c: float, initial_nm: float) -> float | FloatArray:
    """The law on checked inputs (``t`` an array of durations, s)."""
    speed = _speed(law, rh_percent, po2_atm, temperature_c)
    ell = law.nm_per_decade / np.log(10.0)
    if initial_nm >= law.x_sat_nm:
        x = np.full_like(t, float(initial_nm))
    else:
        # Equivalent age of the initial oxide on the same curve (inverse of the soft minimum).
        n, xs = _SOFT_MIN_POWER, law.x_sat_nm
        xlog0 = initial_nm / (1.0 - (initial_nm / xs) ** n) ** (1.0 / n)
        age = np.expm1(xlog0 / ell)  # in units of t0 / speed
        xlog = ell * np.log1p(age + speed * t / law.t0_s)
        x = xlog / (1.0 + (xlog / xs) ** n) ** (1.0 / n)
        x = np.maximum(x, initial_nm)
    return float(x) if x.ndim == 0 else x


def _speed(law: NativeLaw, rh: float, po2: float, t_c: float) -> float:
    f_rh = rh * (_RH_REF + law.rh_half_percent) / ((rh + law.rh_half_percent) * _RH_REF)
    f_o2 = po2 * (_PO2_REF + _PO2_HALF) / ((po2 + _PO2_HALF) * _PO2_REF)
    f_t = np.exp(-law.ea_ev / K_B_EV * (1.0 / (t_c + 273.15) - 1.0 / (_T_REF_C + 273.15)))
    return float(f_o2 * (law.dry_share + (1.0 - law.dry_share) * f_rh) * f_t)


def _check(t: FloatArray, rh: float, po2: float, t_c: float, material: str,
           initial_nm: float) -> None:
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise PhysicsError("native oxide: duration_s must be finite and >= 0")
    if not 0.0 <= rh <= 100.0:
        raise PhysicsError(f"native oxide: rh_percent must be within 0..100, got {rh}")
    if not (np.isfinite(po2) and po2 >= 0):
        raise PhysicsError(f"native oxide: po2_atm must be >= 0, got {po2}")
    if not (np.isfinite(initial_nm) and initial_nm >= 0):
        raise PhysicsError(f"native oxide: initial_nm must be >= 0, got {initial_nm}")
    if material == "Sn" and t_c >= SN_MELT_C:
        raise PhysicsError(f"native oxide: tin melts at {SN_MELT_C} °C, got {t_c} °C")
    if not -60.0 <= t_c <= 150.0:
        raise PhysicsError("native oxide: the room-air law holds for -60..150 °C, got "
                           f"{t_c} °C; use grow_flat for furnace profiles")
