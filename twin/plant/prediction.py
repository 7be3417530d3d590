"""The twin's prediction of a batch's oxide, from the process values the equipment reported.

This is the one place the plant model predicts oxide; the virtual-metrology issue replaces or
extends :func:`predict_oxide` and :func:`predict_cap` (with an uncertainty and learning from
the lab). Both take the *actual* record (indicated temperatures and gas, read-back sputter
values), never the setpoints, and never the equipment's hidden truth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from twin.config.schema import Calibration as CalibrationConfig
from twin.physics import coating
from twin.physics.oxidation import Calibration, OxideDistribution, grow_particles
from twin.physics.oxidation_profile import Profile
from twin.physics.psd import DEFAULT_BINS, SizeDistribution, lognormal


def calibration(cfg: CalibrationConfig) -> Calibration:
    """The physics' calibration object from a tool's configured factors."""
    return Calibration(b_factor=cfg.b_factor, ba_factor=cfg.ba_factor, c_factor=cfg.c_factor)


def predict_oxide(actual: Profile, psd: SizeDistribution | LognormalPsd, *, material: str,
                  calibration: Calibration, initial_nm: float,
                  growth: Mapping[str, Any] | None = None,
                  supply_nm_s_atm: float | None = None) -> OxideDistribution:
    """Predicted oxide of a powder charge from the furnace's reported profile.

    Parameters
    ----------
    actual : Profile
        Indicated temperature and gas record of the charge (s, °C, atm).
    psd : SizeDistribution or LognormalPsd
        Particle sizes of the charge.
    material : {'Si', 'Sn'}
        Oxidising base element.
    calibration : Calibration
        The twin's current rate factors for this furnace.
    initial_nm : float
        Oxide on the powder when loaded (native oxide from storage), nm.
    growth : Mapping, optional
        Other :func:`~twin.physics.oxidation.grow_particles` options (``orientation``,
        ``thin_model``, ``si_area_fraction``, ``copper``).
    supply_nm_s_atm : float, optional
        Oxidant-supply limit (see :func:`twin.physics.oxidation.grow_flat`).

    Returns
    -------
    OxideDistribution
    """
    return grow_particles(actual, as_distribution(psd), material=material, initial_nm=initial_nm,
                          calibration=calibration, supply_nm_s_atm=supply_nm_s_atm,
                          **dict(growth or {}))


def predict_cap(values: Mapping[str, float], *, material: str,
                calibration: Calibration) -> dict[str, float]:
    """Predicted film and oxide cap of a sputter run from the tool's read-back values.

    Parameters
    ----------
    values : Mapping[str, float]
        ``power_w``, ``pressure_mtorr``, ``ar_sccm``, ``o2_sccm``, ``deposit_min``,
        ``oxidize_min`` as reported.
    material : {'Si', 'Sn'}
    calibration : Calibration
        ``b_factor`` scales the film rate, ``c_factor`` the cap rate (the twin's factors).

    Returns
    -------
    dict
        ``film_nm`` and ``cap_nm``.
    """
    w, p = values["power_w"], values["pressure_mtorr"]
    m: Literal["Si", "Sn"] = "Si" if material == "Si" else "Sn"
    film = coating.deposition_rate_nm_min(w, p, material=m) * calibration.b_factor
    cap = coating.cap_rate_nm_min(values["ar_sccm"], values["o2_sccm"], power_w=w,
                                  pressure_mtorr=p, material=m) * calibration.c_factor
    return {"film_nm": film * values["deposit_min"], "cap_nm": cap * values["oxidize_min"]}


@dataclass(frozen=True)
class LognormalPsd:
    """A log-normal particle-size distribution held by its two numbers.

    Milled powder is log-normal in the milling physics; holding ``(d50, gsd)`` and building
    the binned :class:`~twin.physics.psd.SizeDistribution` only when a model needs the bins
    keeps thousands of lots cheap. The bins are exact: a log-normal on bins centred on its
    median is the unit-median shape scaled by ``d50``.

    Attributes
    ----------
    d50_um : float
        Volume-median diameter, µm.
    gsd : float
        Geometric standard deviation (> 1).
    """

    d50_um: float
    gsd: float

    def build(self) -> SizeDistribution:
        """The binned distribution (:func:`twin.physics.psd.lognormal`)."""
        shape = unit_shape(self.gsd)
        return SizeDistribution(shape.diameter_um * self.d50_um, shape.volume_fraction)


@lru_cache(maxsize=4096)
def _unit_shape(gsd_key: int) -> SizeDistribution:
    return lognormal(1.0, gsd_key / GSD_RESOLUTION, DEFAULT_BINS)


#: gsd is resolved to 1e-5 when shapes are cached (far below any measurable difference).
GSD_RESOLUTION = 100000


def unit_shape(gsd: float) -> SizeDistribution:
    """Log-normal of median 1 µm and geometric standard deviation ``gsd`` (cached)."""
    return _unit_shape(round(gsd * GSD_RESOLUTION))


def blend(psds: Sequence[LognormalPsd], masses_kg: Sequence[float]) -> LognormalPsd:
    """A blend of log-normal lots as one log-normal (mass-weighted in log space).

    Lots of one recipe differ in d50 by a few per cent; the blend of such near-identical
    log-normals is log-normal to well within the bins' resolution.
    """
    w = np.asarray(masses_kg, dtype=float)
    w = w / w.sum()
    ln_d = float(np.dot(w, [math.log(p.d50_um) for p in psds]))
    ln_s = float(np.dot(w, [math.log(p.gsd) for p in psds]))
    return LognormalPsd(math.exp(ln_d), math.exp(ln_s))


def as_distribution(psd: SizeDistribution | LognormalPsd) -> SizeDistribution:
    """The binned distribution of either form."""
    return psd.build() if isinstance(psd, LognormalPsd) else psd
