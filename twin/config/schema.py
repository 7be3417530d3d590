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

from twin.config.passport import PassportConfig
from twin.config.tags import Endpoint, Tag, check_signal_name
from twin.physics import energy as _energy

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
    gas_flow_slm: float = Field(
        default=10.0, gt=0, le=20000,
        description="total process-gas flow, standard L/min at 0 °C and 1 atm (O2 and H2O are "
                    "their partial pressures' shares of it)")
    charge_kg: float = Field(gt=0, le=2000, description="powder per furnace charge")
    charge_kg_from: tuple[tuple[float, float], ...] = Field(
        default=(), description="production changes of the charge size: (from hour, kg) "
                                "pairs, in time order")

    def charge_kg_at(self, t_s: float) -> float:
        """The charge size planned at process time ``t_s``, kg."""
        kg = self.charge_kg
        for from_h, size in self.charge_kg_from:
            if t_s >= from_h * 3600.0:
                kg = size
        return kg
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
    solvent: Literal["water", "nmp"] = Field(
        default="water", description="slurry solvent the dryer evaporates (aqueous binders "
                                     "such as LiPAA or CMC/SBR: water; PVDF: nmp)")

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


class FurnaceLimits(Frozen):
    temperature_c: tuple[float, float] = (20.0, 1100.0)
    ramp_c_per_min: tuple[float, float] = (0.5, 20.0)
    hold_min: tuple[float, float] = (0.0, 600.0)
    po2_atm: tuple[float, float] = (0.0, 1.0)
    ph2o_atm: tuple[float, float] = (0.0, 0.1)
    o2_flow_slm: tuple[float, float] = (0.0, 1000.0)
    gas_flow_slm: tuple[float, float] = (0.0, 5000.0)
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
    cold_after_h: float = Field(default=2.0, ge=0,
                                description="idle longer than this and the next heat starts "
                                            "with heat_up_h")
    heat_up_power_share: float = Field(
        default=_energy.MELTER_HEAT_UP_POWER_SHARE, ge=0, le=1,
        description="share of power_kw drawn while a cold furnace heats up (step energy; "
                    "estimate)")


class MillConfig(StationBase):
    power_kw: float = Field(default=15.0, gt=0, le=1000)
    capacity_kg: float = Field(default=30.0, gt=0)
    wear_per_lot: float = Field(default=0.002, ge=0, le=0.1,
                                description="relative loss of milling efficiency per lot")
    load_unload_h: float = Field(default=0.5, ge=0)


class PlcEmulation(Frozen):
    """How ``anode-twin plc`` emulates a station's PLC (OPC UA server); ignored elsewhere.

    Times ending in ``_s`` are process seconds except ``heartbeat_timeout_s``, which is
    wall-clock (it supervises the client connection, not the process).
    """

    port: int = Field(default=4841, ge=0, le=65535, description="0: any free port")
    heartbeat_timeout_s: float = Field(
        default=10.0, gt=0, le=3600,
        description="wall-clock s without a Heartbeat write before the local recipe takes over")
    manufacturer: str = Field(default="anode-twin (emulated)", min_length=1)
    model: str = Field(default="Emulated PLC", min_length=1)
    serial_number: str = Field(default="EMU-0001", min_length=1)
    software_revision: str = Field(default="1.0.0", min_length=1)
    overtemp_band_c: float = Field(default=25.0, gt=0, le=500,
                                   description="over-temperature alarm: PV above SP by more")
    flow_deviation_rel: float = Field(default=0.10, gt=0, le=1,
                                      description="flow alarm: |PV - SP| above this share of SP")
    flow_deviation_s: float = Field(default=30.0, ge=0, description="... for longer than this")


class FurnacePlc(PlcEmulation):
    port: int = Field(default=4841, ge=0, le=65535, description="0: any free port")
    model: str = Field(default="Emulated controlled-oxidation furnace", min_length=1)
    zones: int = Field(default=3, ge=1, le=12, description="heating zones")
    tau_s: float = Field(default=120.0, gt=0, le=7200, description="temperature loop lag")
    unload_c: float = Field(default=100.0, ge=0, le=400, description="cooling ends below")
    pressure_mbar: float = Field(default=1013.25, gt=0, le=2000,
                                 description="local-recipe furnace pressure")
    charge_d50_um: float = Field(default=5.0, gt=0, le=1000,
                                 description="default charge particle size (client may write)")
    charge_gsd: float = Field(default=1.8, gt=1, le=10)
    initial_oxide_nm: float = Field(default=1.0, ge=0, le=100,
                                    description="native oxide of a loaded charge")


class SputterPlc(PlcEmulation):
    port: int = Field(default=4842, ge=0, le=65535, description="0: any free port")
    model: str = Field(default="Emulated magnetron sputter tool", min_length=1)
    tau_s: float = Field(default=5.0, gt=0, le=600, description="power and flow lag")
    substrate_tau_s: float = Field(default=120.0, gt=0, le=7200)
    base_pressure_mtorr: float = Field(default=0.001, gt=0, le=1)
    qcm_tooling_error_rel: float = Field(
        default=0.03, ge=0, le=0.5,
        description="sd of the thickness monitor's (hidden, seeded) tooling-factor error")
    qcm_noise_nm: float = Field(default=0.1, ge=0, le=10)


class ChargeModel(Frozen):
    """The twin's reduced model of a powder charge in its furnace, and the priors of what the
    calibration learns about it (the lab refines them per tool).

    The bed follows the furnace thermocouple with a first-order lag whose time constant grows
    with the charge: a powder slab heated from its faces has ``tau1 = 4 h^2 / (pi^2 alpha)``
    (powder_bed.md §2), and at a fixed tray area the depth ``h`` grows with the mass, hence
    ``lag = lag_min * (mass / ref_mass_kg) ** lag_mass_exponent``. Growth is limited by the
    oxidant the gas delivers (§1): ``dx/dt <= gas_utilisation * F / (n_O2 m)`` with ``F`` from
    the flow PVs and the surface from the lots' BET readings.
    """

    lag_min: float = Field(default=8.0, gt=0, le=600,
                           description="bed lag time constant at the reference mass, min")
    ref_mass_kg: float = Field(default=58.0, gt=0, le=5000)
    lag_mass_exponent: float = Field(default=2.0, ge=0, le=3)
    gas_utilisation: float = Field(default=0.8, gt=0, le=1,
                                   description="share of the delivered oxidant the powder takes")
    rate_prior_sd_log: float = Field(default=0.3, gt=0, le=3)
    offset_prior_sd_c: float = Field(default=8.0, gt=0, le=100,
                                     description="bed temperature offset the lab may reveal")
    lag_prior_sd_log: float = Field(default=0.5, gt=0, le=3)
    supply_prior_sd_log: float = Field(default=0.3, gt=0, le=3,
                                       description="how well the gas utilisation is known")
    rate_walk_log_per_sqrt_h: float = Field(default=0.01, ge=0, le=1,
                                            description="how fast the tube's rate wanders")
    offset_walk_c_per_sqrt_h: float = Field(default=0.1, ge=0, le=10,
                                            description="how fast a thermocouple drifts")
    supply_walk_log_per_sqrt_h: float = Field(default=0.005, ge=0, le=1,
                                              description="how fast the gas metering drifts")


class FurnaceEnergy(Frozen):
    """The oxidation furnace's electrical energy model (the charges' ``step_energy_kwh``,
    :func:`twin.physics.energy.furnace_step_energy`): heat stored in the charge, its trays
    and the furnace, wall and process-gas losses, less the reaction heat, over the heater
    efficiency. The defaults are estimates for a fibre-lined chamber furnace of ~0.7 m³
    (sources in :mod:`twin.physics.energy`); a site replaces them with its meter data."""

    heater_efficiency: float = Field(default=_energy.HEATER_EFFICIENCY, gt=0, le=1,
                                     description="heat delivered / electrical energy")
    loss_kw_per_k: float = Field(default=_energy.FURNACE_LOSS_KW_PER_K, ge=0, le=10,
                                 description="wall losses per kelvin above ambient, kW/K")
    thermal_mass_kj_per_k: float = Field(
        default=_energy.FURNACE_THERMAL_MASS_KJ_K, ge=0, le=100000,
        description="heat capacity of the furnace parts that heat with the charge, kJ/K")
    tray_kg_per_charge_kg: float = Field(default=_energy.TRAY_KG_PER_CHARGE_KG, ge=0, le=50,
                                         description="tray mass per kg of powder")
    ambient_c: float = Field(default=_energy.AMBIENT_C, ge=-20, le=60)
    credit_reaction_heat: bool = Field(
        default=True, description="the oxide's reaction heat (the twin's prediction of the "
                                  "layer grown) replaces heater power in the hold")


class OxidizerConfig(StationBase):
    capacity_kg: float = Field(default=60.0, gt=0)
    load_unload_h: float = Field(default=0.5, ge=0)
    limits: FurnaceLimits = FurnaceLimits()
    calibration: Calibration = Calibration()
    charge: ChargeModel = ChargeModel()
    plc: FurnacePlc = FurnacePlc()
    energy: FurnaceEnergy = FurnaceEnergy()


class CoaterConfig(StationBase):
    line_speed_m_min: float = Field(default=20.0, gt=0, le=200)
    dryer_length_m: float = Field(default=40.0, gt=0)
    roll_change_h: float = Field(default=0.3, ge=0)
    dryer_efficiency: float = Field(
        default=_energy.DRYER_EFFICIENCY, gt=0, le=1,
        description="dryer heat into evaporation / electrical energy (step energy; estimate)")
    drive_power_kw: float = Field(
        default=_energy.COATER_DRIVE_POWER_KW, ge=0, le=1000,
        description="drives and pumps while coating, kW (step energy; estimate)")


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
    generator_efficiency: float = Field(
        default=_energy.SPUTTER_GENERATOR_EFFICIENCY, gt=0, le=1,
        description="target power / mains power of the magnetron supply (step energy; "
                    "estimate)")
    base_load_kw: float = Field(
        default=_energy.SPUTTER_BASE_LOAD_KW, ge=0, le=1000,
        description="pumps, chiller and controls while a run is under vacuum (pump-down "
                    "to vent), kW (step energy; estimate)")
    limits: SputterLimits = SputterLimits()
    calibration: Calibration = Calibration()
    plc: SputterPlc = SputterPlc()


class LabConfig(Frozen):
    count: int = Field(default=1, ge=1, le=20)
    sample_every: int = Field(default=1, ge=1, le=1000, description="measure 1 of every n batches")
    turnaround_h: float = Field(default=4.0, ge=0)
    measure_h: float = Field(default=0.5, gt=0)
    noise_abs_nm: float = Field(default=0.15, ge=0, description="XPS inter-lab spread")
    noise_rel: float = Field(default=0.03, ge=0, le=1)
    sample_count: int = Field(default=1, ge=1, le=1000,
                              description="measure k (this) of every sample_every batches, "
                                          "chosen at random (seeded)")
    method: Literal["auto", "o_bet", "xps"] = Field(
        default="auto",
        description="oxide measurement: o_bet (oxygen by inert-gas fusion with the BET "
                    "surface: powders), xps (Si 2p ratio: films and layers within its "
                    "1-8 nm range); auto: o_bet for a powder line, xps for thin film")
    oxygen_rsd: float = Field(default=0.015, ge=0, le=0.5,
                              description="repeatability of the oxygen analysis (relative sd; "
                                          "1-2 %, powder_bed.md §8)")
    bet_rsd: float = Field(default=0.02, ge=0, le=0.5,
                           description="repeatability of the BET surface (relative sd; "
                                       "1-3 % within a lab, §8)")
    increments: int = Field(default=4, ge=1, le=100,
                            description="increments (trays) a powder sample is composed of")

    @model_validator(mode="after")
    def _k_of_n(self) -> LabConfig:
        if self.sample_count > self.sample_every:
            raise ValueError(f"sample_count ({self.sample_count}) must not exceed "
                             f"sample_every ({self.sample_every})")
        return self


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


class ControlConfig(Frozen):
    aim_nm: float = Field(default=10.0, gt=0)
    window_nm: tuple[float, float] = Field(
        default=(1.0, 100.0), description="release spec of the mean oxide, nm (the claim)")
    band_nm: tuple[float, float] | None = Field(
        default=None, description="the plant's internal band around the aim, nm: the "
                                  "controller's target, SPC limits and the report's band; "
                                  "default aim -30 % .. +30 %")
    mode: Literal["off", "advisory", "closed_loop"] = "closed_loop"
    strategy: Literal["twin", "ewma", "dewma"] = Field(
        default="twin", description="furnace controller: the twin's model inversion with "
                                    "in-batch endpoint control, or a textbook baseline (EWMA, "
                                    "double EWMA; twin.control.baseline)")
    knob_order: tuple[Literal["hold_time", "temperature", "po2"], ...] = (
        "hold_time",
        "temperature",
        "po2",
    )
    deadband_rel: float = Field(default=0.05, ge=0, le=1,
                                description="no correction while |log(pred/aim)| is below")
    ewma_lambda: float = Field(default=0.3, gt=0, le=1)
    drift_lambda: float = Field(default=0.1, ge=0, le=1, description="double-EWMA drift weight")
    # Added for twin/control (virtual metrology and run-to-run control).
    loop_modes: dict[str, Literal["off", "advisory", "closed_loop"]] = Field(
        default_factory=dict,
        description="mode per loop, overriding `mode`; key: tool path (line1.oxidizer1) or kind "
                    "(oxidizer, sputter)")
    gain_ratio_max: float = Field(default=2.0, gt=0, le=10,
                                  description="largest true/model gain ratio the loop must "
                                              "stay stable for (checked at load)")
    move_max_frac: float = Field(default=0.5, gt=0, le=1,
                                 description="largest knob change per batch, share of its range")
    interval_level: float = Field(default=0.90, gt=0.5, lt=1,
                                  description="coverage of the VM prediction interval")
    min_reliability: float = Field(default=0.6, ge=0, le=1,
                                   description="VM reliability below which a batch is held")
    min_lab_results: int = Field(default=3, ge=0, le=1000,
                                 description="lab results a tool needs before release on VM")
    outlier_sigma: float = Field(default=4.0, ge=2, le=50,
                                 description="lab residual beyond which a result is an outlier")
    max_gap_s: float = Field(default=120.0, ge=0,
                             description="longest hole in a process record still trusted, s")
    midstep: bool = Field(default=True,
                          description="in-batch endpoint control: re-predict during the hold "
                                      "and shorten or extend it")
    endpoint_checks: tuple[float, ...] = Field(
        default=(0.5, 0.85),
        description="when the endpoint controller re-predicts, as shares of the planned hold")
    fault_monitor_c: float = Field(
        default=25.0, gt=0, le=500,
        description="control and over-temperature thermocouples disagreeing by more than "
                    "this is a gross fault (the step is ended), °C")
    fault_gas_rel: float = Field(
        default=0.5, gt=0, le=10,
        description="an O2 or water reading off its setpoint by more than this share is a "
                    "gross fault (wrong gas, stuck humidifier)")

    @property
    def band(self) -> tuple[float, float]:
        """The internal band, nm (``band_nm`` or aim ±30 %)."""
        return self.band_nm if self.band_nm is not None else (0.7 * self.aim_nm,
                                                              1.3 * self.aim_nm)

    @model_validator(mode="after")
    def _knobs_listed_once(self) -> ControlConfig:
        if not self.knob_order:
            raise ValueError("knob_order is empty: list at least one knob "
                             "('hold_time', 'temperature', 'po2')")
        seen = [k for i, k in enumerate(self.knob_order) if k in self.knob_order[:i]]
        if seen:
            raise ValueError(f"knob_order lists {seen[0]!r} twice: {list(self.knob_order)}")
        return self

    @model_validator(mode="after")
    def _aim_in_window(self) -> ControlConfig:
        lo, hi = self.window_nm
        if not 0 < lo < hi:
            raise ValueError(f"window_nm must be 0 < low < high, got {self.window_nm}")
        if not lo <= self.aim_nm <= hi:
            raise ValueError(f"aim_nm {self.aim_nm} is outside window_nm {self.window_nm}")
        blo, bhi = self.band
        if not lo <= blo < self.aim_nm < bhi <= hi:
            raise ValueError(f"band_nm {list(self.band)} must hold aim_nm {self.aim_nm} and "
                             f"lie inside window_nm {list(self.window_nm)}")
        if any(not 0 < f < 1 for f in self.endpoint_checks):
            raise ValueError(f"endpoint_checks are shares of the hold, each in (0, 1); got "
                             f"{list(self.endpoint_checks)}")
        return self

    @model_validator(mode="after")
    def _stable(self) -> ControlConfig:
        # The closed-loop stability condition of the (double-)EWMA offset update, checked
        # once at load (see twin.control.stability for the derivation).
        from twin.control.stability import stability_problem

        problem = stability_problem(self.ewma_lambda, self.drift_lambda, self.gain_ratio_max)
        if problem:
            raise ValueError(problem)
        return self


class Disposition(Frozen):
    """Rules that release, hold, rework or scrap a batch (quality decisions)."""

    release_on_prediction: bool = Field(
        default=True, description="release unmeasured batches whose predicted oxide passes; "
                                  "false: every batch waits for a lab result")
    min_within_50pct_share: float = Field(
        default=0.9, ge=0, le=1,
        description="share of the surface within +-50 % of the mean oxide a batch needs")
    max_reworks: int = Field(default=1, ge=0, le=5,
                             description="re-oxidations of a too-thin charge before scrap")


class Campaign(Alloy):
    """One alloy campaign: ``heats`` heats of this composition, then the next campaign."""

    heats: int = Field(default=10, ge=1, le=100000)


class Production(Frozen):
    """Production plan and the run's calendar anchor."""

    start_iso: str = Field(
        default="2025-01-06T00:00:00",
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$",
        description="local time that simulation time 0 stands for (a Monday by default)")
    campaigns: tuple[Campaign, ...] = Field(
        default=(), description="alloy campaigns in rotation; empty: [alloy] only")


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
    control: ControlConfig = ControlConfig()
    release: Release = Release()
    disposition: Disposition = Disposition()
    production: Production = Production()
    passport: PassportConfig = PassportConfig()
    endpoints: dict[str, Endpoint] = Field(default_factory=dict,
                                           description="OPC UA servers (PLCs) by name")
    tags: dict[str, Tag] = Field(default_factory=dict,
                                 description="logical signal (dotted path) -> PLC node")

    @model_validator(mode="after")
    def _tags_consistent(self) -> PlantConfig:
        # A tag map is edited by hand per site: catch a misspelt endpoint or plant root here,
        # at load, rather than as a station that silently stays simulated.
        for name, tag in self.tags.items():
            check_signal_name(name)
            if name.split(".", 1)[0] != self.plant.name:
                raise ValueError(
                    f"tag {name!r}: must start with the plant name '{self.plant.name}.'"
                )
            if tag.endpoint not in self.endpoints:
                have = ", ".join(sorted(self.endpoints)) or "none defined"
                raise ValueError(
                    f"tag {name!r}: endpoint {tag.endpoint!r} is not in [endpoints] ({have})"
                )
        return self

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
        if ox is not None and ox.hold_c >= 231.9 and _free_tin(self.alloy):
            raise ValueError(f"recipes.oxidation.hold_c {ox.hold_c} melts the free Sn phase of "
                             f"alloy {self.alloy.label} (231.9 °C): a molten phase cannot be "
                             "oxidised as a powder")
        for i, camp in enumerate(self.production.campaigns):
            if ox is not None and ox.hold_c >= 231.9 and (camp.base == "Sn"
                                                          or _free_tin(camp)):
                raise ValueError(f"production.campaigns.{i}: a tin-bearing alloy with "
                                 f"recipes.oxidation.hold_c {ox.hold_c} melts (231.9 °C)")
        return self

    @model_validator(mode="after")
    def _knobs_fit_the_line(self) -> PlantConfig:
        # A thin-film line's only loop is the sputter tool's cap, whose knobs are the
        # oxidize time ('hold_time') and the O2 flow ('po2'); a knob it does not have would
        # be ignored without a word, so an explicit knob_order may not name one.
        if self.plant.form != "thin_film" or "knob_order" not in self.control.model_fields_set:
            return self
        from twin.control.model import SputterCapModel

        knobs = SputterCapModel.knobs
        for k in self.control.knob_order:
            if k not in knobs:
                have = ", ".join(f"{n!r} ({v})" for n, v in knobs.items())
                raise ValueError(f"control.knob_order: {k!r} is not a knob of the sputter "
                                 f"tool's oxide cap; a thin_film plant has {have}")
        return self


def _free_tin(alloy: Alloy) -> bool:
    """Whether the alloy solidifies with a free Sn phase (Sn not bound in intermetallics)."""
    if alloy.composition_wt.get("Sn", 0.0) <= 0:
        return False
    from twin.errors import PhysicsError
    from twin.physics.melting import solidify

    try:
        return solidify(alloy.composition_wt, 1.0).phases_kg.get("Sn", 0.0) > 0
    except PhysicsError:
        return False  # the melting physics refuses the alloy itself, with its own message


POWDER_NEEDS: tuple[tuple[str, str], ...] = (
    ("stations", "melter"), ("stations", "mill"), ("stations", "oxidizer"),
    ("stations", "coater"), ("recipes", "melt"), ("recipes", "milling"),
    ("recipes", "oxidation"), ("recipes", "slurry"),
)
THIN_FILM_NEEDS: tuple[tuple[str, str], ...] = (("stations", "sputter"), ("recipes", "sputter"))
