"""The plant file's ``[passport]`` section: who makes the material, and the emission factors of
its carbon footprint.

Defaults are placeholders and published orders of magnitude, each marked ``estimate = true``
with its source: a site sets its own (its electricity contract's factor, its suppliers'
product footprints), and the passport says which numbers are estimates.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Frozen(BaseModel):
    """As :class:`twin.config.schema.Frozen` (unknown keys are errors; immutable); the schema
    imports this module, so the base is restated rather than imported."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

#: Grid electricity, EU-27 2023 average, kg CO2e/kWh: EEA, "Greenhouse gas emission intensity
#: of electricity generation in Europe" (indicator, 2023 value ~0.24 kg CO2e/kWh).
EU_GRID_KG_PER_KWH = 0.24
EU_GRID_SOURCE = ("EEA indicator 'Greenhouse gas emission intensity of electricity "
                  "generation in Europe', EU-27 2023 (estimate: set the site's contract)")

_NUSS = ("order of magnitude after Nuss & Eckelman (2014), 'Life cycle assessment of metals: "
         "a scientific synthesis', PLoS ONE 9(7): e101298 (cradle-to-gate GWP, rounded; "
         "estimate: set the supplier's product footprint)")


class MaterialFactor(Frozen):
    """Cradle-to-gate footprint of one purchased material, kg CO2e per kg."""

    kg_co2e_per_kg: float = Field(ge=0, le=10_000, allow_inf_nan=False)
    source: str = Field(min_length=1)
    estimate: bool = True


def _f(value: float, source: str = _NUSS) -> MaterialFactor:
    return MaterialFactor(kg_co2e_per_kg=value, source=source, estimate=True)


#: Upstream factors of the feed metals and the electrode's other components (estimates).
DEFAULT_MATERIALS: dict[str, MaterialFactor] = {
    "Si": _f(11.0), "Sn": _f(17.0), "Ti": _f(8.0), "Co": _f(8.0), "Ni": _f(6.5),
    "Cu": _f(3.0), "Mg": _f(5.0), "Zr": _f(1.0), "V": _f(33.0), "Mo": _f(6.0),
    "W": _f(13.0), "Mn": _f(1.0), "Fe": _f(1.5),
    "binder": _f(3.0, "estimate for a polyacrylate binder (no public product footprint)"),
    "conductive_carbon": _f(2.0, "estimate for carbon black (industry ranges 1.5-2.5)"),
}


class Manufacturer(Frozen):
    """Digital Nameplate data (IDTA 02006-3) of the site that makes the material."""

    name: str = Field(default="Example Anode Materials GmbH", min_length=1)
    product_designation: str = Field(default="Si/Sn-alloy anode material with oxide skin",
                                     min_length=1)
    product_family: str = "anode-twin alloy anode material"
    street: str = "Industriestrasse 1"
    zip_code: str = "00000"
    city: str = "Example City"
    country_code: str = Field(default="DE", pattern=r"^[A-Z]{2}$",
                              description="ISO 3166-1 alpha-2")
    url: str = ""


class PassportConfig(Frozen):
    """``[passport]``: nameplate data and the carbon footprint's factors."""

    manufacturer: Manufacturer = Manufacturer()
    electricity_kg_co2e_per_kwh: float = Field(default=EU_GRID_KG_PER_KWH, ge=0, le=5,
                                               allow_inf_nan=False)
    electricity_source: str = Field(default=EU_GRID_SOURCE, min_length=1)
    electricity_estimate: bool = True
    materials: dict[str, MaterialFactor] = Field(default_factory=lambda: dict(DEFAULT_MATERIALS))

    @field_validator("materials")
    @classmethod
    def _known(cls, v: dict[str, MaterialFactor]) -> dict[str, MaterialFactor]:
        # Only what a batch can contain; a misspelt name would silently count as zero.
        from twin.config.schema import ALLOYING_ELEMENTS, BASE_ELEMENTS

        known = set(ALLOYING_ELEMENTS) | set(BASE_ELEMENTS) | {"binder", "conductive_carbon"}
        for name in v:
            if name not in known:
                raise ValueError(f"unknown material '{name}' (expected an element of the "
                                 "alloy, 'binder' or 'conductive_carbon')")
        return {**DEFAULT_MATERIALS, **v}
