"""Plant configuration schema: frozen, validated pydantic models.

A plant file (TOML) is validated once at load by :func:`twin.config.load_plant`; afterwards the
objects are frozen. Unknown keys are errors (``extra="forbid"``), so a typo never silently falls
back to a default.

Units are in the key names (``_c``, ``_s``, ``_min``, ``_h``, ``_kg``, ``_atm``, ``_nm``...).
Where the public record gives no number (MTBF/MTTR of these tools, disturbance sizes), the
defaults are plausible estimates and are marked as such; a site sets its own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ALLOYING_ELEMENTS: frozenset[str] = frozenset(
    {"Ti", "Co", "Ni", "Cu", "Mg", "Zr", "V", "Mo", "W", "Mn", "Fe"}
)
BASE_ELEMENTS: frozenset[str] = frozenset({"Si", "Sn"})

def _check_ranges(model: BaseModel) -> None:
    for name, value in model:
        if isinstance(value, tuple) and len(value) == 2 and value[0] > value[1]:
            raise ValueError(f"{name} must be (low, high), got {value}")


class Frozen(BaseModel):
    """Base of every config object: unknown keys are errors; immutable after load."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --------------------------------------------------------------------------------------------
# Material and recipes
# --------------------------------------------------------------------------------------------


class Alloy(Frozen):
    """Charge composition of the alloy melt (mass fractions summing to 1)."""

    composition_wt: dict[str, float] = Field(
        description="mass fraction per element: Si and/or Sn plus alloying elements"
    )

    @field_validator("composition_wt")
    @classmethod
    def _check_composition(cls, v: dict[str, float]) -> dict[str, float]:
        allowed = ALLOYING_ELEMENTS | BASE_ELEMENTS
        for element, fraction in v.items():
            if element not in allowed:
                raise ValueError(
                    f"element '{element}' is not allowed (expected Si, Sn or one of "
                    f"{', '.join(sorted(ALLOYING_ELEMENTS))})"
                )
            if fraction < 0:
                raise ValueError(f"fraction of {element} must be >= 0, got {fraction}")
        if not BASE_ELEMENTS & {e for e, f in v.items() if f > 0}:
            raise ValueError("composition needs Si or Sn")
        total = sum(v.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"fractions must sum to 1, got {total:.6g}")
        return v

    @property
    def base(self) -> Literal["Si", "Sn"]:
        """The oxidising base element: Si when the charge holds Si, else Sn."""
        return "Si" if self.composition_wt.get("Si", 0.0) > 0 else "Sn"

    @property
    def label(self) -> str:
        """Short label such as ``Si78Ti22`` (wt %)."""
        parts = sorted(self.composition_wt.items(), key=lambda kv: -kv[1])
        return "".join(f"{e}{round(100 * f):d}" for e, f in parts if f > 0)


class MeltRecipe(Frozen):
    heat_mass_kg: float = Field(gt=0, le=5000)
    superheat_c: float = Field(default=75.0, ge=0, le=400)
    remelts: int = Field(default=1, ge=1, le=10, description="melts per heat (arc buttons: 2-5)")


class MillRecipe(Frozen):
    feed_d50_um: float = Field(default=150.0, gt=0, le=10000)
    duration_h: float = Field(gt=0, le=500)
    mill_type: Literal["shaker", "planetary", "vibratory", "attritor"] = "attritor"
    media: Literal["steel", "zro2"] = "steel"
    atmosphere: Literal["ar", "air"] = "ar"
    lot_mass_kg: float = Field(gt=0, le=2000, description="one mill lot; a heat splits into lots")


class OxidationRecipe(Frozen):
    """Ramp-hold-cool profile of the controlled-oxidation furnace."""

    start_c: float = Field(default=25.0, ge=-20, le=200)
    hold_c: float = Field(gt=0, le=1300)
    ramp_c_per_min: float = Field(gt=0, le=100)
    hold_min: float = Field(ge=0, le=1440)
    cool_c_per_min: float = Field(gt=0, le=100)
    po2_atm: float = Field(ge=0, le=1.0)
    ph2o_atm: float = Field(default=0.0, ge=0, le=1.0)
    charge_kg: float = Field(gt=0, le=2000, description="powder per furnace charge")
    thin_model: Literal["suprem", "massoud"] = "suprem"
    orientation: Literal["100", "111", "110"] = Field(
        default="100", description="effective orientation of powder surfaces"
    )


class StorageRecipe(Frozen):
    """Handling and storage between steps (native oxide grows here)."""

    rh_percent: float = Field(default=40.0, ge=0, le=100)
    temperature_c: float = Field(default=22.0, ge=-20, le=60)
    passivation_po2_atm: float = Field(default=0.02, ge=0, le=0.21)


class SlurryRecipe(Frozen):
    loading_mg_cm2: float = Field(default=12.0, gt=0, le=50)
    active_fraction: float = Field(default=0.91, gt=0, le=1)
    binder_fraction: float = Field(default=0.09, ge=0, le=1)
    conductive_fraction: float = Field(default=0.0, ge=0, le=1)
    target_porosity: float = Field(default=0.30, gt=0, lt=1)
    solids_fraction: float = Field(default=0.45, gt=0, lt=1)
    foil_thickness_um: float = Field(default=15.0, gt=0, le=100)
    web_width_m: float = Field(default=0.6, gt=0, le=3)
    roll_length_m: float = Field(default=500.0, gt=0, le=20000)
    dry_temperature_c: float = Field(default=120.0, gt=0, le=250)

    @model_validator(mode="after")
    def _fractions_sum(self) -> SlurryRecipe:
        total = self.active_fraction + self.binder_fraction + self.conductive_fraction
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                "active_fraction + binder_fraction + conductive_fraction must be 1, "
                f"got {total:.6g}"
            )
        return self


class SputterRecipe(Frozen):
    film_nm: float = Field(default=500.0, gt=0, le=5000)
    cap_nm: float = Field(default=5.0, gt=0, le=1000, description="reactive oxide cap")
    power_w: float = Field(default=250.0, gt=0, le=2000)
    pressure_mtorr: float = Field(default=8.0, gt=0, le=50)
    ar_sccm: float = Field(default=25.0, gt=0, le=200)
    o2_sccm: float = Field(default=3.5, ge=0, le=50)
    substrate_temperature_c: float = Field(default=25.0, ge=0, le=500)
    rotation: bool = True
    sheets_per_run: int = Field(default=4, ge=1, le=100)
    sheet_area_cm2: float = Field(default=400.0, gt=0, le=20000)


class Recipes(Frozen):
    melt: MeltRecipe | None = None
    milling: MillRecipe | None = None
    oxidation: OxidationRecipe | None = None
    storage: StorageRecipe = StorageRecipe()
    slurry: SlurryRecipe | None = None
    sputter: SputterRecipe | None = None


# --------------------------------------------------------------------------------------------
# Stations and equipment
# --------------------------------------------------------------------------------------------


class Reliability(Frozen):
    """Breakdowns and planned maintenance (estimates: no public MTBF/MTTR for these tools)."""

    mtbf_h: float = Field(default=400.0, gt=0)
    mttr_h: float = Field(default=4.0, gt=0)
    maintenance_every_h: float = Field(default=0.0, ge=0, description="0: no planned maintenance")
    maintenance_duration_h: float = Field(default=8.0, ge=0)
    enabled: bool = True


class StationBase(Frozen):
    count: int = Field(default=1, ge=0, le=50)
    buffer_out: int = Field(
        default=4, ge=1, le=10000, description="units the output buffer holds; full blocks"
    )
    operators_needed: int = Field(default=1, ge=0, le=10)
    changeover_h: float = Field(default=0.5, ge=0, description="between different alloys/recipes")
    reliability: Reliability = Reliability()


class Calibration(Frozen):
    """The twin's per-tool rate factors on Deal–Grove B, B/A and the thin-oxide C."""

    b_factor: float = Field(default=1.0, gt=0, le=20)
    ba_factor: float = Field(default=1.0, gt=0, le=20)
    c_factor: float = Field(default=1.0, gt=0, le=20)


class FurnaceTruth(Frozen):
    """Hidden "true" process of an oxidation furnace: seeded, never shown to the twin's model.

    Used by the in-process simulated equipment and by the emulated PLC alike.
    """

    thermocouple_offset_c: float = Field(default=0.0, ge=-100, le=100,
                                         description="true minus indicated temperature")
    o2_flow_bias_rel: float = Field(default=0.0, ge=-0.5, le=0.5)
    rate_factor: float = Field(default=1.0, gt=0, le=10, description="true/twin rate at start")
    rate_drift_per_day: float = Field(default=0.0, ge=-0.2, le=0.2,
                                      description="relative drift of the true rate per day")
    temperature_noise_c: float = Field(default=1.0, ge=0, le=50)
    thickness_spread_rel: float = Field(default=0.08, ge=0, le=1,
                                        description="bed-position spread of the true oxide")


class FurnaceLimits(Frozen):
    temperature_c: tuple[float, float] = (20.0, 1100.0)
    ramp_c_per_min: tuple[float, float] = (0.5, 20.0)
    hold_min: tuple[float, float] = (0.0, 600.0)
    po2_atm: tuple[float, float] = (0.0, 1.0)
    ph2o_atm: tuple[float, float] = (0.0, 0.1)
    o2_flow_slm: tuple[float, float] = (0.0, 20.0)
    pressure_mbar: tuple[float, float] = (900.0, 1100.0)

    @model_validator(mode="after")
    def _ordered(self) -> FurnaceLimits:
        _check_ranges(self)
        return self


class MelterConfig(StationBase):
    power_kw: float = Field(default=250.0, gt=0, le=10000)
    efficiency: float = Field(default=0.6, gt=0, le=1)
    heat_up_h: float = Field(default=0.25, ge=0)
    cool_down_h: float = Field(default=0.75, ge=0)
    kind: Literal["induction", "arc"] = "induction"


class MillConfig(StationBase):
    power_kw: float = Field(default=15.0, gt=0, le=1000)
    capacity_kg: float = Field(default=30.0, gt=0)
    wear_per_lot: float = Field(default=0.002, ge=0, le=0.1,
                                description="relative loss of milling efficiency per lot")
    load_unload_h: float = Field(default=0.5, ge=0)


class OxidizerConfig(StationBase):
    capacity_kg: float = Field(default=60.0, gt=0)
    load_unload_h: float = Field(default=0.5, ge=0)
    limits: FurnaceLimits = FurnaceLimits()
    calibration: Calibration = Calibration()
    truth: FurnaceTruth = FurnaceTruth()


class CoaterConfig(StationBase):
    line_speed_m_min: float = Field(default=20.0, gt=0, le=200)
    dryer_length_m: float = Field(default=40.0, gt=0)
    roll_change_h: float = Field(default=0.3, ge=0)


class SputterTruth(Frozen):
    rate_factor: float = Field(default=1.0, gt=0, le=10)
    rate_drift_per_day: float = Field(default=0.0, ge=-0.2, le=0.2)
    o2_flow_bias_rel: float = Field(default=0.0, ge=-0.5, le=0.5)
    thickness_spread_rel: float = Field(default=0.03, ge=0, le=1)


class SputterLimits(Frozen):
    power_w: tuple[float, float] = (20.0, 600.0)
    pressure_mtorr: tuple[float, float] = (1.0, 20.0)
    ar_sccm: tuple[float, float] = (5.0, 100.0)
    o2_sccm: tuple[float, float] = (0.0, 20.0)
    substrate_temperature_c: tuple[float, float] = (20.0, 400.0)
    deposit_min: tuple[float, float] = (0.0, 600.0)

    @model_validator(mode="after")
    def _ordered(self) -> SputterLimits:
        _check_ranges(self)
        return self


class SputterConfig(StationBase):
    pump_down_min: float = Field(default=20.0, ge=0)
    vent_min: float = Field(default=5.0, ge=0)
    load_unload_h: float = Field(default=0.25, ge=0)
    limits: SputterLimits = SputterLimits()
    calibration: Calibration = Calibration()
    truth: SputterTruth = SputterTruth()


class LabConfig(Frozen):
    count: int = Field(default=1, ge=1, le=20)
    sample_every: int = Field(default=1, ge=1, le=1000, description="measure 1 of every n batches")
    turnaround_h: float = Field(default=4.0, ge=0)
    measure_h: float = Field(default=0.5, gt=0)
    noise_abs_nm: float = Field(default=0.15, ge=0, description="XPS inter-lab spread")
    noise_rel: float = Field(default=0.03, ge=0, le=1)


class Stations(Frozen):
    melter: MelterConfig | None = None
    mill: MillConfig | None = None
    oxidizer: OxidizerConfig | None = None
    coater: CoaterConfig | None = None
    sputter: SputterConfig | None = None
    lab: LabConfig = LabConfig()


# --------------------------------------------------------------------------------------------
# People, disturbances, control, release
# --------------------------------------------------------------------------------------------


class Shift(Frozen):
    start_h: float = Field(ge=0, lt=24)
    end_h: float = Field(gt=0, le=48, description="may pass midnight: 22 -> 30")

    @model_validator(mode="after")
    def _positive(self) -> Shift:
        if self.end_h <= self.start_h:
            raise ValueError(f"end_h ({self.end_h}) must be after start_h ({self.start_h})")
        return self


class Operators(Frozen):
    count: int = Field(default=3, ge=0, le=500)
    shifts: tuple[Shift, ...] = (Shift(start_h=0, end_h=24),)
    days_per_week: int = Field(default=7, ge=1, le=7)


class Disturbances(Frozen):
    """Seeded process disturbances (sizes are estimates; a site fits its own)."""

    furnace_temperature_sd_c: float = Field(default=2.0, ge=0, le=50)
    humidity_rh_sd_percent: float = Field(default=8.0, ge=0, le=50)
    feed_d50_sd_rel: float = Field(default=0.05, ge=0, le=1)


class ControlConfig(Frozen):
    aim_nm: float = Field(default=10.0, gt=0)
    window_nm: tuple[float, float] = (1.0, 100.0)
    mode: Literal["off", "advisory", "closed_loop"] = "closed_loop"
    knob_order: tuple[Literal["hold_time", "temperature", "po2"], ...] = (
        "hold_time",
        "temperature",
        "po2",
    )
    deadband_rel: float = Field(default=0.05, ge=0, le=1,
                                description="no correction while |log(pred/aim)| is below")
    ewma_lambda: float = Field(default=0.3, gt=0, le=1)
    drift_lambda: float = Field(default=0.1, ge=0, le=1, description="double-EWMA drift weight")

    @model_validator(mode="after")
    def _aim_in_window(self) -> ControlConfig:
        lo, hi = self.window_nm
        if not 0 < lo < hi:
            raise ValueError(f"window_nm must be 0 < low < high, got {self.window_nm}")
        if not lo <= self.aim_nm <= hi:
            raise ValueError(f"aim_nm {self.aim_nm} is outside window_nm {self.window_nm}")
        return self


class Release(Frozen):
    prepared_by: str = "Twin (automatic)"
    reviewed_by: str = "Quality engineer"
    site: str = "Plant 1"


class PlantInfo(Frozen):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                      description="root of the component tree, e.g. line1")
    form: Literal["powder", "thin_film"]
    description: str = ""


class PlantConfig(Frozen):
    """A whole plant: the root object every part of the twin is built from."""

    plant: PlantInfo
    alloy: Alloy
    recipes: Recipes
    stations: Stations = Stations()
    operators: Operators = Operators()
    disturbances: Disturbances = Disturbances()
    control: ControlConfig = ControlConfig()
    release: Release = Release()

    @model_validator(mode="after")
    def _form_consistent(self) -> PlantConfig:
        # Which stations and recipes each product form needs (the line's routing).
        needs = POWDER_NEEDS if self.plant.form == "powder" else THIN_FILM_NEEDS
        for section, name in needs:
            if getattr(getattr(self, section), name) is None:
                raise ValueError(f"a {self.plant.form} plant needs [{section}.{name}]")
        ox = self.recipes.oxidation
        if self.alloy.base == "Sn" and ox is not None and ox.hold_c >= 231.9:
            raise ValueError(f"recipes.oxidation.hold_c {ox.hold_c} melts tin (231.9 °C)")
        return self


POWDER_NEEDS: tuple[tuple[str, str], ...] = (
    ("stations", "melter"), ("stations", "mill"), ("stations", "oxidizer"),
    ("stations", "coater"), ("recipes", "melt"), ("recipes", "milling"),
    ("recipes", "oxidation"), ("recipes", "slurry"),
)
THIN_FILM_NEEDS: tuple[tuple[str, str], ...] = (("stations", "sputter"), ("recipes", "sputter"))
