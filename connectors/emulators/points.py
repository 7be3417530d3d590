"""Process-value declarations of the emulated tools (no OPC UA here).

A :class:`Point` is one process value after OPC 40001-2: a measured value (the 40001-2
``AnalogSignal``) and, when the operator or the twin may set it, a setpoint
(``ProcessValueSetpoint``), both with engineering units and a range. The tools
(:mod:`.furnace`, :mod:`.sputter`) step their process by point ``key``; the address-space
builder (:mod:`.address_space`) turns each point into nodes. Keeping the declaration free of
asyncua lets the process logic be tested without a server.

Units are described as OPC UA ``EUInformation`` with UNECE Recommendation 20 codes where one
exists; units without a UNECE code (sccm, slm, mTorr) carry ``UnitId = -1`` as Part 8 allows,
rather than a code that would mislead a client.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from twin.physics.psychrometry import (  # noqa: F401  (re-exported)
    DRY_DEW_POINT_C,
    dew_point_to_ph2o_atm,
    ph2o_atm_to_dew_point,
)

#: Namespace of the UNECE unit codes in ``EUInformation.NamespaceUri`` (OPC 10000-8).
UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"

ValueKind = Literal["Double", "Boolean"]


@dataclass(frozen=True)
class Unit:
    """An engineering unit: display symbol, description and UNECE code ('' when none)."""

    symbol: str
    description: str
    unece: str = ""

    @property
    def unit_id(self) -> int:
        """``EUInformation.UnitId``: the UNECE code packed as bytes, or -1 without a code."""
        if not self.unece:
            return -1
        value = 0
        for ch in self.unece:
            value = (value << 8) | ord(ch)
        return value


CELSIUS = Unit("°C", "degree Celsius", "CEL")
CELSIUS_PER_MIN = Unit("°C/min", "degree Celsius per minute", "H13")
MINUTE = Unit("min", "minute", "MIN")
SECOND = Unit("s", "second", "SEC")
ATMOSPHERE = Unit("atm", "standard atmosphere", "ATM")
MILLIBAR = Unit("mbar", "millibar", "MBR")
WATT = Unit("W", "watt", "WTT")
NANOMETRE = Unit("nm", "nanometre", "C45")
MICROMETRE = Unit("µm", "micrometre", "4H")
KILOGRAM = Unit("kg", "kilogram", "KGM")
SLM = Unit("slm", "standard litre per minute")
SCCM = Unit("sccm", "standard cubic centimetre per minute")
MILLITORR = Unit("mTorr", "millitorr")
NO_UNIT = Unit("", "dimensionless", "C62")


@dataclass(frozen=True)
class Point:
    """One process value of a tool.

    Attributes
    ----------
    key : str
        Internal name with the unit in it (``zone1_c``, ``po2_atm``); the tools use it.
    path : str
        Dotted browse path below the tool's ``ProcessValues`` folder (``Temperature.Zone1``);
        also the middle of the NodeIds (``<tool>.Temperature.Zone1.PV``).
    unit : Unit
        Engineering unit of both values.
    pv_range : tuple of float
        ``EURange`` of the measured value (what the instrument can show).
    sp_range : tuple of float or None
        Allowed setpoint range (the tool's limits); None: the point has no setpoint.
    kind : {'Double', 'Boolean'}
        Value type of both values.
    description : str
        One line for the ``Description`` attribute.
    """

    key: str
    path: str
    unit: Unit
    pv_range: tuple[float, float]
    sp_range: tuple[float, float] | None
    kind: ValueKind = "Double"
    description: str = ""

    @property
    def has_setpoint(self) -> bool:
        return self.sp_range is not None


# ---------------------------------------------------------------------------------------------
# Dew point <-> water partial pressure: the Magnus formula lives with the physics
# (twin.physics.psychrometry); the PLC shows a dew point, the physics wants a pressure.
# ---------------------------------------------------------------------------------------------


def dew_point_range(ph2o_range_atm: tuple[float, float]) -> tuple[float, float]:
    """Dew-point setpoint range matching a water partial-pressure range, °C (rounded out)."""
    lo, hi = ph2o_range_atm
    return (math.floor(ph2o_atm_to_dew_point(lo) * 10) / 10,
            math.ceil(ph2o_atm_to_dew_point(hi) * 10) / 10)
