"""Truth files: the hidden plant's own parameters, validated once at load.

A truth file (TOML, ``plant_config/truth/NAME.toml``) describes the process a plant file's
twin does not know: how its furnaces and sputter tools really behave. It is read only by the
hidden plant (:mod:`twin.hidden`); a plant file carries no truth. ``--truth NAME`` picks a
shipped file by name, ``--truth FILE`` any file.

The same rules as plant files: unknown keys are errors, values outside their physical range
are errors, and each error is one line naming the file, the key, what was expected and what was
given (exit 2). Afterwards the objects are frozen.
"""

from __future__ import annotations

import difflib
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from twin.config.load import CONFIG_DIR, read_toml, validate_model
from twin.config.schema import Frozen
from twin.errors import ConfigError, PhysicsError

if TYPE_CHECKING:
    from twin.hidden.kinetics import BedParams, Kinetics

#: Directory of the shipped truth files.
TRUTH_DIR = CONFIG_DIR / "truth"
#: The truth ``anode-twin simulate`` and the emulated PLCs run when none is named.
DEFAULT_TRUTH = TRUTH_DIR / "nominal.toml"


Facts = Frozen  # a truth section: facts about the plant the twin can only measure


class TruthInfo(Frozen):
    """What the file stands for."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""


class Disturbances(Frozen):
    """Seeded process disturbances of the plant (sizes are estimates; a site fits its own)."""

    furnace_temperature_sd_c: float = Field(
        default=2.0, ge=0, le=50,
        description="per-charge load/controller offset the furnace thermocouple shows")
    humidity_rh_sd_percent: float = Field(default=8.0, ge=0, le=50,
                                          description="day-to-day storage-room humidity")
    feed_d50_sd_rel: float = Field(default=0.05, ge=0, le=1,
                                   description="lot-to-lot size of the mill feed")


class Material(Facts):
    """What the mills really make, against the published milling model."""

    d50_bias_rel: float = Field(default=0.0, ge=-0.5, le=1.0,
                                description="true d50 relative to the milling model's")
    ssa_roughness: float = Field(default=1.0, ge=1.0, le=5.0,
                                 description="BET surface over the spheres' surface of the PSD")
    oxygen_factor: float = Field(default=1.0, gt=0, le=10,
                                 description="true milling O pickup over the model's")


class Sensors(Facts):
    """Biases and repeatabilities of the plant's instruments (the twin sees their readings).

    Repeatabilities: laser diffraction d50 within ~3 % (ISO 13320 repeatability for d50),
    BET 1–3 % within a lab (estimate, powder_bed.md §8), inert-gas-fusion O 1–2 % (estimate,
    §8); capacitive RH probes ±2–6 %RH (Vaisala, §9). Biases are estimates.
    """

    storage_rh_bias_percent: float = Field(default=2.0, ge=-20, le=20)
    storage_rh_sd_percent: float = Field(default=1.0, ge=0, le=20)
    laser_d50_bias_rel: float = Field(default=0.03, ge=-0.5, le=0.5,
                                      description="agglomerates read coarse")
    laser_d50_sd_rel: float = Field(default=0.03, ge=0, le=0.5)
    laser_gsd_sd_rel: float = Field(default=0.02, ge=0, le=0.5)
    bet_bias_rel: float = Field(default=0.0, ge=-0.5, le=0.5)
    bet_sd_rel: float = Field(default=0.02, ge=0, le=0.5)
    oxygen_sd_rel: float = Field(default=0.02, ge=0, le=0.5)


class LabTruth(Facts):
    """The metrology lab's systematic errors (its repeatability is the plant file's).

    Between-lab differences exceed within-lab ones (IEA round robin, powder_bed.md §8):
    simulated as fixed biases of this lab (estimates, 3-5 % between labs for O, 5-10 % for BET).
    """

    oxygen_bias_rel: float = Field(default=0.01, ge=-0.3, le=0.3)
    bet_bias_rel: float = Field(default=-0.02, ge=-0.3, le=0.3)
    xps_bias_nm: float = Field(default=0.05, ge=-1, le=1)


#: Events that change the furnace from ``start_h`` on, and gross faults of one charge.
EventKind = Literal["thermocouple_step", "thermocouple_drift", "tube_ageing",
                    "humidifier_wander", "thermocouple_failure", "wrong_gas",
                    "humidifier_stuck"]
#: Gross faults: they hit the one charge that starts first at or after ``start_h``.
GROSS_FAULTS = ("thermocouple_failure", "wrong_gas", "humidifier_stuck")


class FurnaceEvent(Frozen):
    """Something that happens to the furnace during a run (a scenario of the control bench).

    ``size`` by kind: ``thermocouple_step`` °C the wall runs above the indicated value from
    ``start_h`` on; ``thermocouple_drift`` °C per day from then; ``tube_ageing`` relative
    change of the tube's activity per day; ``humidifier_wander`` sd of the humidifier's
    wander from then (relative); ``thermocouple_failure`` °C the control thermocouple reads
    low in one charge (the charge runs that much hotter; the over-temperature thermocouple
    shows it); ``wrong_gas`` the O2 share of what flows instead of the set gas in one charge
    (0: nitrogen on the air line; the exhaust O2 analyser shows it); ``humidifier_stuck``
    the share of the set water delivered in one charge (0: dry; the dew point shows it).
    """

    kind: EventKind
    start_h: float = Field(ge=0, le=1e6)
    size: float = Field(ge=-200, le=200)


class FurnaceTruth(Frozen):
    """Hidden true process of every oxidation furnace of the plant: its thermocouples, its
    gas, its tube (the charge's physics is ``[kinetics]`` and ``[bed]``).

    Sensor figures follow powder_bed.md §9: type-K thermocouples drift 1-5 °C per 1000 h at
    1000 °C (estimate); good thermal MFCs ±0.5 %, zero drift a common fault; chilled-mirror
    dew points ±0.1 °C with 60-240 s response. Other values are estimates.
    """

    thermocouple_offset_c: float = Field(default=0.0, ge=-100, le=100,
                                         description="true wall minus indicated, °C")
    zone_offsets_c: tuple[float, ...] = Field(
        default=(), description="per heating zone, added to the offset (empty: none)")
    thermocouple_drift_c_per_1000h: float = Field(default=0.0, ge=-50, le=50)
    temperature_noise_c: float = Field(default=1.0, ge=0, le=50)
    o2_flow_bias_rel: float = Field(default=0.0, ge=-0.5, le=0.5,
                                    description="true gas flow over the MFC reading, minus 1")
    flow_drift_rel_per_day: float = Field(default=0.0, ge=-0.05, le=0.05)
    humidifier_bias_rel: float = Field(default=0.0, ge=-0.5, le=0.5)
    humidifier_wander_rel: float = Field(default=0.0, ge=0, le=1,
                                         description="sd of the humidifier's wander")
    humidifier_wander_h: float = Field(default=12.0, gt=0, le=1000,
                                       description="its correlation time, h")
    dew_point_bias_c: float = Field(default=0.0, ge=-10, le=10)
    rate_factor: float = Field(default=1.0, gt=0, le=10,
                               description="the tube's activity over the kinetics")
    tube_ageing_per_day: float = Field(default=0.0, ge=-0.05, le=0.05,
                                       description="relative change of that activity per day")
    events: tuple[FurnaceEvent, ...] = Field(
        default=(), description="changes and gross faults during the run ([[furnace.events]])")

    @field_validator("zone_offsets_c")
    @classmethod
    def _finite(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not (-100 <= x <= 100) for x in v):
            raise ValueError(f"zone offsets must be within -100..100 °C, got {list(v)}")
        return v


class KineticsTruth(Frozen):
    """The charge's oxidation kinetics: a published set and single constants changed.

    ``preset``: ``published`` (the Deal-Grove table with the SUPREM-IV thin regime) or
    ``spread_end`` (Massoud's thin-regime fits, dry B/A ∝ p^0.7, wet rates ∝ p^0.5: the other
    end of the published spread, powder_bed.md §5). ``set``: constants of
    :class:`twin.hidden.kinetics.Kinetics` by name (numbers only).
    """

    preset: Literal["published", "spread_end"] = "published"
    set: dict[str, float] = Field(default_factory=dict)

    @field_validator("set")
    @classmethod
    def _known(cls, v: dict[str, float]) -> dict[str, float]:
        from twin.hidden.kinetics import Kinetics

        names = sorted(f.name for f in fields(Kinetics)
                       if isinstance(getattr(Kinetics(), f.name), float))
        for key in v:
            if key not in names:
                hint = difflib.get_close_matches(key, names, n=1)
                raise ValueError(f"unknown kinetic constant {key!r}"
                                 + (f"; did you mean {hint[0]!r}?" if hint else
                                    f" (expected one of: {', '.join(names)})"))
        changes: dict[str, Any] = dict(v)
        try:
            Kinetics(**changes)
        except PhysicsError as exc:
            raise ValueError(str(exc)) from None
        return v

    def build(self) -> Kinetics:
        """The kinetics object."""
        from twin.hidden.kinetics import Kinetics

        base = Kinetics.spread_end() if self.preset == "spread_end" else Kinetics()
        changes: dict[str, Any] = dict(self.set)
        return replace(base, **changes)


class BedTruth(Frozen):
    """The trays the charge is spread on (heat and gas transport into the powder)."""

    tray_depth_mm: float = Field(default=6.0, gt=0, le=200)
    layers: int = Field(default=3, ge=1, le=20)
    bulk_density_kg_m3: float = Field(default=1000.0, gt=0, le=5000)
    k_eff_w_m_k: float = Field(default=0.25, gt=0, le=50)
    emissivity: float = Field(default=0.8, ge=0, le=1)
    porosity_over_tortuosity: float = Field(default=1 / 6, gt=0, le=1)

    def build(self) -> BedParams:
        """The bed object."""
        from twin.hidden.kinetics import BedParams

        return BedParams(tray_depth_m=self.tray_depth_mm / 1000.0, layers=self.layers,
                         bulk_density_kg_m3=self.bulk_density_kg_m3,
                         k_eff_w_m_k=self.k_eff_w_m_k, emissivity=self.emissivity,
                         porosity_over_tortuosity=self.porosity_over_tortuosity)


class SputterTruth(Frozen):
    """Hidden true process of every sputter tool of the plant."""

    rate_factor: float = Field(default=1.0, gt=0, le=10)
    rate_drift_per_day: float = Field(default=0.0, ge=-0.2, le=0.2)
    o2_flow_bias_rel: float = Field(default=0.0, ge=-0.5, le=0.5)
    thickness_spread_rel: float = Field(default=0.03, ge=0, le=1)


class TruthConfig(Frozen):
    """A whole truth file."""

    truth: TruthInfo
    disturbances: Disturbances = Disturbances()
    material: Material = Material()
    sensors: Sensors = Sensors()
    lab: LabTruth = LabTruth()
    furnace: FurnaceTruth = FurnaceTruth()
    kinetics: KineticsTruth = KineticsTruth()
    bed: BedTruth = BedTruth()
    sputter: SputterTruth = SputterTruth()


def truth_names() -> list[str]:
    """Names of the shipped truth files."""
    return sorted(p.stem for p in TRUTH_DIR.glob("*.toml"))


def truth_path(ref: str | Path | None) -> Path:
    """The file a ``--truth`` value names: a shipped name, or a path."""
    if ref is None:
        return DEFAULT_TRUTH
    text = str(ref)
    if "/" not in text and "\\" not in text and not text.endswith(".toml"):
        p = TRUTH_DIR / f"{text}.toml"
        if not p.is_file():
            raise ConfigError(f"--truth {text}: no shipped truth of that name (shipped: "
                              f"{', '.join(truth_names())}) and not a .toml file")
        return p
    return Path(text)


def load_truth(ref: str | Path | None = None) -> TruthConfig:
    """Load and validate a truth file (the default ``nominal`` when ``ref`` is None)."""
    p = truth_path(ref)
    return validate_model(TruthConfig, read_toml(p), str(p))
