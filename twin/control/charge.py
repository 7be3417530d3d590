"""The twin's reduced model of a powder charge in its furnace: bed lag and oxidant supply.

What the furnace thermocouple reads is not what the powder sees. The twin estimates the bed's
temperature from the recorded process values with a first-order lag (a charge's thermal model:
:class:`twin.config.schema.ChargeModel`, its time constant scaled with the charge mass) and an
effective offset (the lab reveals both; the calibration learns them), and caps the growth at the
oxidant the gas delivers (the flow PVs against the oxidant demand of the charge's measured
surface, powder_bed.md §1). The parameters the calibration learns are a vector ``theta``:

``theta[0]``  log rate factor (every rate constant times ``exp``)
``theta[1]``  bed temperature offset over the thermocouple, K
``theta[2]``  log of the bed lag over the configured one
``theta[3]``  log of the gas utilisation over the configured one (when growth is limited by
              the oxidant the gas delivers, this is what sets the layer, not the kinetics)

A plain float is the log rate factor alone (offset 0, configured lag and utilisation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from twin.config.schema import ChargeModel
from twin.physics.composition import o2_mol_per_kg_nm
from twin.physics.oxidation_profile import Profile
from twin.physics.thermal import lag_profile

#: Standard litres per mole (0 °C, 1 atm: the reference of slm here).
SL_PER_MOL = 22.414
#: Grid of a bed profile, s (the furnace record's own step).
BED_DT_S = 60.0
#: Parameter names, in order.
PARAMS = ("log_rate", "offset_c", "log_lag", "log_supply")

Theta = float | Sequence[float]


def unpack(theta: Theta) -> tuple[float, float, float, float]:
    """``(log_rate, offset_c, log_lag, log_supply)`` of a parameter vector or a plain log
    rate."""
    if isinstance(theta, (int, float)):
        return float(theta), 0.0, 0.0, 0.0
    t = [float(v) for v in theta] + [0.0, 0.0, 0.0]
    return t[0], t[1], t[2], t[3]


def supply_nm_s_atm(flow_slm: float, mass_kg: float, ssa_m2_g: float,
                    utilisation: float) -> float | None:
    """Oxidant-supply limit of a charge, nm/s of mean oxide per atm of O2-equivalent pressure.

    ``utilisation * F / (n_O2 m)``: the gas flow ``F`` (mol/s) against the O2 a nanometre of
    oxide needs on the charge (``n_O2`` per kg per nm from the surface area). None when any
    input is unknown (no limit is then applied).
    """
    if not (flow_slm > 0 and mass_kg > 0 and ssa_m2_g > 0):
        return None
    flow_mol_s = flow_slm / SL_PER_MOL / 60.0
    demand = float(o2_mol_per_kg_nm(ssa_m2_g)) * mass_kg  # mol O2 per nm of mean oxide
    return utilisation * flow_mol_s / demand


class ChargeThermal:
    """Bed temperature of a charge from the thermocouple record (cached per record).

    Parameters
    ----------
    cfg : ChargeModel
        The configured charge model.
    """

    def __init__(self, cfg: ChargeModel) -> None:
        self.cfg = cfg
        self._cache: dict[tuple[int, float, float, float], tuple[Profile, Profile]] = {}

    def lag_s(self, mass_kg: float, log_lag: float = 0.0) -> float:
        """Bed lag time constant of a charge of ``mass_kg``, s."""
        c = self.cfg
        m = mass_kg if mass_kg > 0 and math.isfinite(mass_kg) else c.ref_mass_kg
        return 60.0 * c.lag_min * (m / c.ref_mass_kg) ** c.lag_mass_exponent * math.exp(log_lag)

    def bed(self, record: Profile, mass_kg: float, offset_c: float,
            log_lag: float) -> Profile:
        """The bed's estimated temperature over ``record`` (the thermocouple's)."""
        key = (id(record), round(mass_kg, 9), round(offset_c, 9), round(log_lag, 9))
        hit = self._cache.get(key)
        if hit is not None and hit[0] is record:
            return hit[1]
        lagged = lag_profile(record, self.lag_s(mass_kg, log_lag), dt_s=BED_DT_S)
        if offset_c:
            # A uniform offset of what the powder sees (a thermocouple that reads low, a
            # hotter tray position); applied to the elevation only, so a cold furnace at
            # its start temperature stays at it.
            t = lagged.temperature_c
            rise = t - t[0]
            top = float(rise.max())
            temp = t + offset_c * (rise / top if top > 1.0 else 0.0 * rise)
            lagged = Profile.trusted(lagged.time_s, temp, lagged.po2_atm, lagged.ph2o_atm)
        if len(self._cache) >= 256:
            self._cache.pop(next(iter(self._cache)))
        # The record is kept with its entry so that its id is not reused while cached.
        self._cache[key] = (record, lagged)
        return lagged
