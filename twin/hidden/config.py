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

from pathlib import Path

from pydantic import Field

from twin.config.load import CONFIG_DIR, read_toml, validate_model
from twin.config.schema import Frozen
from twin.errors import ConfigError

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


class FurnaceTruth(Frozen):
    """Hidden true process of every oxidation furnace of the plant."""

    thermocouple_offset_c: float = Field(default=0.0, ge=-100, le=100,
                                         description="true minus indicated temperature")
    o2_flow_bias_rel: float = Field(default=0.0, ge=-0.5, le=0.5)
    rate_factor: float = Field(default=1.0, gt=0, le=10, description="true/textbook rate")
    rate_drift_per_day: float = Field(default=0.0, ge=-0.2, le=0.2,
                                      description="relative drift of the true rate per day")
    temperature_noise_c: float = Field(default=1.0, ge=0, le=50)
    thickness_spread_rel: float = Field(default=0.08, ge=0, le=1,
                                        description="bed-position spread of the true oxide")


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
