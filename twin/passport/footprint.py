"""Cradle-to-gate product carbon footprint of one batch (the passport's IDTA 02023 numbers).

The footprint is the sum of

* the **electrical energy of every production step** that went into the batch, as the twin's
  model computed it per step (the batch record's ``step_energy_kwh``), followed through the
  genealogy and allocated by mass (:func:`twin.report.energy.cradle_to_gate_energy`), times
  the plant file's grid factor (``passport.electricity_kg_co2e_per_kwh``);
* the **purchased materials** in the batch (the alloy's elements; for an electrode roll also
  the binder, the conductive carbon and the copper foil), times the plant file's upstream
  factors (``passport.materials``).

Each line keeps its factor's source and whether it is an estimate, so the passport says which
part of the number rests on estimates. Process gases, transport, packaging and capital goods
are not counted (stated in the passport as the boundary). Reported in total and per declared
unit: per kg of a powder charge, per m² of coated area of an electrode roll, a sputter run or
a sheet (:func:`declared`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from twin.config.passport import PassportConfig
from twin.errors import UsageError

#: Copper foil density, kg/m3 (handbook value).
CU_DENSITY_KG_M3 = 8960.0

BOUNDARY = ("cradle-to-gate (A1-A3): upstream production of the purchased metals and "
            "electrode components, and the electricity of melting, milling, oxidation and "
            "coating or sputtering as the twin's model computed it per step; process gases, "
            "transport, packaging and capital goods are not included")


@dataclass(frozen=True)
class FootprintLine:
    """One contribution: a step's electricity or a purchased material."""

    kind: str  # "electricity" or "material"
    name: str  # the step (melting, milling ...) or the material (Si, binder ...)
    unit_id: str  # the unit whose step it was ('' for materials)
    quantity: float  # kWh or kg allocated to this batch
    quantity_unit: str  # "kWh" or "kg"
    factor: float  # kg CO2e per kWh or per kg
    source: str
    estimate: bool

    @property
    def kg_co2e(self) -> float:
        return self.quantity * self.factor


@dataclass(frozen=True)
class Footprint:
    """A batch's footprint: its lines, total and per kg."""

    batch_id: str
    mass_kg: float
    lines: tuple[FootprintLine, ...]
    #: The declared unit: ``kg`` of powder for a charge, ``m2`` of coated area for an
    #: electrode roll, a sputter run or a sheet (a thin film's mass is micrograms: per kg it
    #: would read tens of tonnes of CO2e).
    declared_unit: str = "kg"
    declared_quantity: float = math.nan

    @property
    def total_kg_co2e(self) -> float:
        return sum(line.kg_co2e for line in self.lines)

    @property
    def per_unit(self) -> float:
        """kg CO2e per declared unit (kg or m2)."""
        return self.total_kg_co2e / self.declared_quantity

    @property
    def per_kg(self) -> float:
        return self.total_kg_co2e / self.mass_kg

    @property
    def energy_kwh(self) -> float:
        return sum(line.quantity for line in self.lines if line.kind == "electricity")

    def share_estimated(self) -> float:
        """Share of the total that rests on estimated factors."""
        total = self.total_kg_co2e
        est = sum(line.kg_co2e for line in self.lines if line.estimate)
        return est / total if total > 0 else 0.0


def _material_masses(row: Mapping[str, object], composition: Mapping[str, float] | None,
                     slurry: Mapping[str, float] | None, foil_um: float | None
                     ) -> dict[str, float]:
    """kg of each purchased material in the batch."""
    mass = float(row["mass_kg"])  # type: ignore[arg-type]
    out: dict[str, float] = {}
    for element, frac in (composition or {}).items():
        if element != "O" and frac > 0:
            out[element] = mass * frac
    if row.get("unit_kind") == "roll" and slurry is not None:
        # A roll's mass is its active material; the coating adds binder and carbon in the
        # recipe's proportions, and the roll is coated on copper foil.
        active = slurry["active_fraction"]
        for name, key in (("binder", "binder_fraction"),
                          ("conductive_carbon", "conductive_fraction")):
            if slurry[key] > 0:
                out[name] = out.get(name, 0.0) + mass * slurry[key] / active
        area = row.get("area_m2")
        if foil_um is not None and isinstance(area, int | float) and math.isfinite(area):
            out["Cu"] = out.get("Cu", 0.0) + float(area) * foil_um * 1e-6 * CU_DENSITY_KG_M3
    return out


def carbon_footprint(units: pd.DataFrame, batch_id: str, passport: PassportConfig, *,
                     composition: Mapping[str, float] | None,
                     slurry: Mapping[str, float] | None = None,
                     foil_um: float | None = None,
                     sheet_area_cm2: float | None = None) -> Footprint:
    """The footprint of ``batch_id`` (a row of ``units``, the run's batch table).

    Parameters
    ----------
    units : pandas.DataFrame
        Every unit of the run (batch record schema), for the genealogy.
    batch_id : str
    passport : PassportConfig
        Emission factors.
    composition : mapping or None
        Element mass fractions of the batch's alloy (its nominal composition).
    slurry : mapping, optional
        A roll's coating recipe fractions (``active_fraction``, ``binder_fraction``,
        ``conductive_fraction``).
    foil_um : float, optional
        A roll's copper foil thickness, µm.
    sheet_area_cm2 : float, optional
        A sputter run's sheet area (its declared unit is the area of its sheets).

    Raises
    ------
    UsageError
        The batch has no mass, a step of its genealogy has no energy in the record, or a
        material has no factor in the plant file (the message names the key).
    """
    from twin.report.energy import cradle_to_gate_energy

    rows = units[units["unit_id"].astype(str) == batch_id]
    if rows.empty:
        raise UsageError(f"no batch {batch_id!r} in the batch record")
    row = {str(k): v for k, v in rows.iloc[0].to_dict().items()}
    mass = float(row.get("mass_kg", math.nan))
    if not (math.isfinite(mass) and mass > 0):
        raise UsageError(f"batch {batch_id}: no mass_kg in the batch record")
    lines: list[FootprintLine] = []
    for step in cradle_to_gate_energy(units, batch_id):
        kwh = float(step["energy_kwh"])
        if not math.isfinite(kwh):
            raise UsageError(f"batch {batch_id}: {step['step']} of {step['unit_id']} has no "
                             "step_energy_kwh in the batch record")
        lines.append(FootprintLine("electricity", str(step["step"]), str(step["unit_id"]),
                                   kwh, "kWh", passport.electricity_kg_co2e_per_kwh,
                                   passport.electricity_source, passport.electricity_estimate))
    for name, kg in sorted(_material_masses(row, composition, slurry, foil_um).items()):
        factor = passport.materials.get(name)
        if factor is None:
            raise UsageError(f"passport.materials.{name}: no emission factor in the plant file")
        lines.append(FootprintLine("material", name, "", kg, "kg", factor.kg_co2e_per_kg,
                                   factor.source, factor.estimate))
    unit, quantity = declared(row, sheet_area_cm2)
    return Footprint(batch_id, mass, tuple(lines), unit, quantity)


def declared(row: Mapping[str, object], sheet_area_cm2: float | None = None
             ) -> tuple[str, float]:
    """The declared unit and quantity of a batch: its mass for a powder charge, its coated
    area for an electrode roll, a sputter run (its sheets' area) or a sheet."""
    kind = row.get("unit_kind")

    def num(key: str) -> float:
        v = row.get(key)
        return float(v) if isinstance(v, int | float) else math.nan

    if kind == "roll":
        area = num("area_m2")
    elif kind == "sheet":
        area = num("area_cm2") / 1e4
    elif kind == "run" and sheet_area_cm2 is not None:
        area = num("sheets") * sheet_area_cm2 / 1e4
    else:
        return "kg", float(row["mass_kg"])  # type: ignore[arg-type]
    if not (math.isfinite(area) and area > 0):
        raise UsageError(f"batch {row.get('unit_id')}: no coated area in the batch record")
    return "m2", area
