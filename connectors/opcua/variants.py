"""Tag types <-> OPC UA variant and data types; value checks before a write.

Every write carries the tag's explicit variant type: asyncua would otherwise guess from the
Python type (an ``int`` becomes Int64) and the server answers BadTypeMismatch.
"""

from __future__ import annotations

import math
import struct
from datetime import datetime
from typing import Any

from asyncua import ua

from connectors.opcua.records import Value
from twin.config.tags import INTEGER_TYPES, NUMERIC_TYPES

#: Built-in data type NodeIds (namespace 0) that are abstract super types.
NUMBER, INTEGER, UINTEGER, ENUMERATION, BASE_DATA_TYPE = 26, 27, 28, 29, 24
_SIGNED = frozenset({"SByte", "Int16", "Int32", "Int64"})

INT_RANGE: dict[str, tuple[int, int]] = {
    "SByte": (-(2**7), 2**7 - 1), "Byte": (0, 2**8 - 1),
    "Int16": (-(2**15), 2**15 - 1), "UInt16": (0, 2**16 - 1),
    "Int32": (-(2**31), 2**31 - 1), "UInt32": (0, 2**32 - 1),
    "Int64": (-(2**63), 2**63 - 1), "UInt64": (0, 2**64 - 1),
}
FLOAT32_MAX = 3.4028234663852886e38


def variant_type(tag_type: str) -> ua.VariantType:
    """The variant type a value of ``tag_type`` is sent as (``Double`` -> VariantType.Double)."""
    return ua.VariantType[tag_type]


def builtin_id(tag_type: str) -> int:
    """Namespace-0 numeric id of the built-in data type ``tag_type`` (Double -> 11)."""
    return int(getattr(ua.ObjectIds, tag_type))


def type_name_of(datatype_id: int) -> str:
    """Readable name of a built-in data type id (11 -> 'Double'), for error messages."""
    for name in dir(ua.ObjectIds):
        if not name.startswith("_") and getattr(ua.ObjectIds, name) == datatype_id:
            return name
    return f"i={datatype_id}"


def datatype_matches(tag_type: str, base_id: int) -> bool:
    """True if a node whose built-in base data type is ``base_id`` holds ``tag_type`` values.

    Abstract bases are accepted when they admit the type (a ``Number`` node takes a Double);
    an enumeration is transported as Int32; ``BaseDataType`` accepts anything.
    """
    if base_id == builtin_id(tag_type):
        return True
    if base_id == BASE_DATA_TYPE:
        return True
    if base_id == NUMBER:
        return tag_type in NUMERIC_TYPES
    if base_id == INTEGER:
        return tag_type in _SIGNED
    if base_id == UINTEGER:
        return tag_type in INTEGER_TYPES - _SIGNED
    if base_id == ENUMERATION:
        return tag_type == "Int32"
    return False


def coerce(tag_type: str, value: Any) -> Value:
    """Convert ``value`` to the Python value sent as ``tag_type``; ``ValueError`` if unfit.

    Booleans are not numbers here (``True`` is not written as 1.0), integer types reject
    fractions and values outside their range, Float rejects values beyond 32-bit range, and
    NaN/inf are never written as setpoints.
    """
    if tag_type == "Boolean":
        if not isinstance(value, bool):
            raise ValueError(f"expected a bool for Boolean, got {value!r}")
        return value
    if tag_type in ("String", "LocalizedText"):
        if not isinstance(value, str):
            raise ValueError(f"expected a str for {tag_type}, got {value!r}")
        return value
    if tag_type == "DateTime":
        if not isinstance(value, datetime):
            raise ValueError(f"expected a datetime for DateTime, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number for {tag_type}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    if tag_type in INTEGER_TYPES:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{value!r} is not an integer ({tag_type})")
            value = int(value)
        lo, hi = INT_RANGE[tag_type]
        if not lo <= value <= hi:
            raise ValueError(f"{value} is outside the {tag_type} range [{lo}, {hi}]")
        return int(value)
    out = float(value)
    if tag_type == "Float" and abs(out) > FLOAT32_MAX:
        raise ValueError(f"{value!r} is outside the Float (32-bit) range")
    return out


def same_value(tag_type: str, written: Value, readback: Any) -> bool:
    """True if the read-back equals what was written (Float compared after 32-bit rounding)."""
    if tag_type == "Float" and isinstance(written, float) and isinstance(readback, float):
        rounded = struct.unpack("<f", struct.pack("<f", written))[0]
        return bool(rounded == readback)
    if isinstance(written, bool) != isinstance(readback, bool):
        return False
    return bool(written == readback)


def status_name(code: int) -> str:
    """Name of an OPC UA status code (``0x803C0000`` -> ``BadOutOfRange``)."""
    return ua.StatusCode(ua.UInt32(code)).name


def dv_status(dv: ua.DataValue) -> ua.StatusCode:
    """Status of a DataValue (an absent status means Good)."""
    return dv.StatusCode if dv.StatusCode is not None else ua.StatusCode()


def dv_value(dv: ua.DataValue) -> Any:
    """Python value of a DataValue, or None."""
    return dv.Value.Value if dv.Value is not None else None


def plain(value: Any) -> Any:
    """A value as plain Python: LocalizedText -> its text, StatusCode -> its name.

    Samples and results carry no asyncua types, so their consumers need not import asyncua.
    """
    if isinstance(value, ua.LocalizedText):
        return value.Text or ""
    if isinstance(value, ua.StatusCode):
        return value.name
    return value


def to_variant(tag_type: str, value: Value, vtype: ua.VariantType) -> ua.Variant:
    """The variant sent for a checked value (LocalizedText wraps the string)."""
    if tag_type == "LocalizedText":
        return ua.Variant(ua.LocalizedText(str(value)), vtype)
    return ua.Variant(value, vtype)


def variant_for_datatype(datatype: ua.NodeId) -> ua.VariantType | None:
    """Variant type for a method argument's built-in DataType, or None for other types."""
    if datatype.NamespaceIndex == 0 and isinstance(datatype.Identifier, int):
        try:
            return ua.VariantType(datatype.Identifier)
        except ValueError:
            return None
    return None
