"""Dew point and water partial pressure (what a humidity sensor shows, what the physics uses).

Magnus formula over water (Alduchov & Eskridge, J. Appl. Meteor. 35, 601 (1996)), good to
about 0.1 % between -40 and 50 °C.
"""

from __future__ import annotations

import math

_MAGNUS_A_HPA = 6.1094
_MAGNUS_B = 17.625
_MAGNUS_C = 243.04
_ATM_HPA = 1013.25
#: Dew point shown for a dry gas (a partial pressure of zero has no dew point).
DRY_DEW_POINT_C = -60.0


def dew_point_to_ph2o_atm(dew_point_c: float) -> float:
    """Water partial pressure at a dew point, atm (0 at or below :data:`DRY_DEW_POINT_C`)."""
    if dew_point_c <= DRY_DEW_POINT_C:
        return 0.0
    e_hpa = _MAGNUS_A_HPA * math.exp(_MAGNUS_B * dew_point_c / (_MAGNUS_C + dew_point_c))
    return e_hpa / _ATM_HPA


def ph2o_atm_to_dew_point(ph2o_atm: float) -> float:
    """Dew point of a water partial pressure, °C (:data:`DRY_DEW_POINT_C` for a dry gas)."""
    if ph2o_atm <= dew_point_to_ph2o_atm(DRY_DEW_POINT_C + 1e-9):
        return DRY_DEW_POINT_C
    g = math.log(ph2o_atm * _ATM_HPA / _MAGNUS_A_HPA)
    return _MAGNUS_C * g / (_MAGNUS_B - g)


