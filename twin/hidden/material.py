"""The hidden plant's powder: what the mills really make, and what the instruments read.

A mill lot's true sizes and surface come from the published milling model
(:mod:`twin.physics.milling`) at the lot's *true* feed size (a lot-to-lot disturbance the twin
never sees), with the plant's own departures from the model (a d50 bias, a BET roughness above
the spheres' surface, an oxygen pickup factor; truth file ``[material]``). The twin gets the
lot's quality-control readings instead: laser-diffraction d50 and spread, BET surface and
inert-gas-fusion oxygen, each with its instrument's bias and repeatability (``[sensors]``).

Storage: the room's relative humidity wanders from day to day (an AR(1) series around the
room's setpoint); the twin reads it through a humidity probe with a bias and noise. The true
native oxide a lot grows while it waits follows the saturating form of powder_bed.md §6,
``x = x_n (1 - exp(-t / tau_RH))`` with ``tau_RH`` falling with humidity (Niwano et al.;
characteristic times 3–170 h; ``x_n`` and the humidity law are estimates), a different form
from the twin's logarithmic law.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.config.schema import MillRecipe
from twin.hidden.charge import ChargeTruth
from twin.hidden.config import Material, Sensors
from twin.physics import composition, milling
from twin.plant.prediction import unit_shape

#: Native-oxide ceiling on Si in room air, nm (self-limits near 2 nm: Bohling & Sigmund 2015).
NATIVE_XN_NM = 1.8
#: Time constant of native growth at 100 %RH and at 10 %RH, h (inside the 3–170 h span).
NATIVE_TAU_WET_H, NATIVE_TAU_DRY_H = 4.0, 150.0


@dataclass(frozen=True)
class TrueLot:
    """A mill lot as it really is (an opaque handle: only the hidden plant reads it)."""

    d50_um: float
    gsd: float
    ssa_m2_g: float
    oxygen_wt_pct: float


def true_lot(feed_d50_um: float, *, duration_s: float, power_kw: float, mass_kg: float,
             recipe: MillRecipe, si_fraction: float, density_g_cm3: float,
             material: Material) -> TrueLot:
    """The true lot for a true feed size: the milling model plus the plant's departures."""
    e = milling.specific_energy_kj_kg(power_kw, duration_s, mass_kg)
    d50 = milling.d50_um(feed_d50_um, e) * (1.0 + material.d50_bias_rel)
    g = milling.gsd(e)
    ssa = milling.ssa_m2_g(unit_shape(g), density_g_cm3) / d50 * material.ssa_roughness
    oxygen = milling.oxygen_wt_pct(e, atmosphere=recipe.atmosphere,
                                   si_fraction=si_fraction) * material.oxygen_factor
    return TrueLot(d50, g, ssa, oxygen)


def lot_readings(lot: TrueLot, sensors: Sensors, rng: np.random.Generator) -> dict[str, float]:
    """The lot's quality-control readings: ``d50_um``, ``gsd``, ``ssa_m2_g``,
    ``oxygen_wt_pct`` (laser diffraction, BET, inert-gas fusion)."""
    z = rng.standard_normal(4)
    return {
        "d50_um": lot.d50_um * math.exp(sensors.laser_d50_bias_rel
                                        + sensors.laser_d50_sd_rel * float(z[0])),
        "gsd": 1.0 + (lot.gsd - 1.0) * math.exp(sensors.laser_gsd_sd_rel * float(z[1])),
        "ssa_m2_g": lot.ssa_m2_g * math.exp(sensors.bet_bias_rel
                                            + sensors.bet_sd_rel * float(z[2])),
        "oxygen_wt_pct": lot.oxygen_wt_pct * math.exp(sensors.oxygen_sd_rel * float(z[3])),
    }


def native_oxide_nm(wait_s: float, rh_percent: float) -> float:
    """True native oxide grown on a lot waiting ``wait_s`` seconds at ``rh_percent``, nm."""
    if wait_s <= 0:
        return 0.0
    rh = min(max(rh_percent, 10.0), 100.0)
    # tau falls log-linearly from 150 h at 10 %RH to 4 h at 100 %RH (estimate).
    frac = (math.log(rh) - math.log(10.0)) / (math.log(100.0) - math.log(10.0))
    tau_h = math.exp(math.log(NATIVE_TAU_DRY_H)
                     + frac * (math.log(NATIVE_TAU_WET_H) - math.log(NATIVE_TAU_DRY_H)))
    return NATIVE_XN_NM * (1.0 - math.exp(-wait_s / (tau_h * 3600.0)))


class StorageRoom:
    """The storage room's true humidity, day by day, and its probe's readings.

    Parameters
    ----------
    setpoint_percent : float
        The room's conditioned humidity, %RH (the plant file's storage recipe).
    sd_percent : float
        Day-to-day spread, %RH (AR(1), phi 0.7, clipped 5–95 %).
    sensors : Sensors
        The probe's bias and noise.
    rng, probe_rng : numpy.random.Generator
        Streams of the weather and of the probe.
    """

    PHI = 0.7

    def __init__(self, setpoint_percent: float, sd_percent: float, sensors: Sensors,
                 rng: np.random.Generator, probe_rng: np.random.Generator) -> None:
        self.setpoint = setpoint_percent
        self.sd = sd_percent
        self.sensors = sensors
        self.rng = rng
        self.probe_rng = probe_rng
        self._x: list[float] = []

    def true_rh(self, t_s: float) -> float:
        """True humidity on the day of ``t_s``, %RH (the series grows as days are asked)."""
        day = max(int(t_s // 86400.0), 0)
        while len(self._x) <= day:
            z = float(self.rng.standard_normal())
            prev = self._x[-1] if self._x else z
            self._x.append(self.PHI * prev + math.sqrt(1 - self.PHI**2) * z if self._x else z)
        return min(max(self.setpoint + self.sd * self._x[day], 5.0), 95.0)

    def reading(self, t_s: float) -> float:
        """What the humidity probe shows at ``t_s``, %RH."""
        s = self.sensors
        noise = s.storage_rh_sd_percent * float(self.probe_rng.standard_normal())
        return min(max(self.true_rh(t_s) + s.storage_rh_bias_percent + noise, 0.0), 100.0)


def charge_truth(lots: Sequence[tuple[TrueLot | None, float, float]], t_s: float,
                 storage: StorageRoom, *, phase_fraction: float, material: str,
                 previous: Any = None) -> ChargeTruth:
    """A charge's true powder when it is loaded at ``t_s``, from its lots.

    ``lots``: (true lot, mass, time milled) each. Sizes blend by mass in log space, surface
    and oxygen by mass; the native oxide each lot grew in storage (at the room's true
    humidity) and the milling pickup (counted as starting oxide) make the oxide at loading. A
    reworked charge (``previous``: its last pass's truth) starts from that oxide.
    """
    w = np.array([m for _, m, _ in lots], dtype=float)
    mass = float(w.sum())
    w = w / mass
    known = [lot for lot, _, _ in lots if lot is not None]
    if len(known) != len(lots):
        raise ValueError("charge_truth: every lot needs its truth")
    d50 = math.exp(float(sum(wi * math.log(lot.d50_um) for wi, lot in zip(w, known,
                                                                            strict=True))))
    gsd = math.exp(float(sum(wi * math.log(lot.gsd) for wi, lot in zip(w, known,
                                                                         strict=True))))
    ssa = float(sum(wi * lot.ssa_m2_g for wi, lot in zip(w, known, strict=True)))
    oxygen = float(sum(wi * lot.oxygen_wt_pct for wi, lot in zip(w, known, strict=True)))
    rh = storage.true_rh(t_s)
    native = float(sum(wi * native_oxide_nm(t_s - milled, rh)
                       for wi, (_, _, milled) in zip(w, lots, strict=True)))
    pickup = float(composition.thickness_from_oxygen_nm(oxygen, ssa, material=material))
    initial = native + max(pickup, 0.0)
    if previous is not None and math.isfinite(getattr(previous, "mean_nm", math.nan)):
        initial = float(previous.mean_nm)
    return ChargeTruth(mass, d50, max(gsd, 1.0), ssa, initial, phase_fraction, oxygen,
                       material)
