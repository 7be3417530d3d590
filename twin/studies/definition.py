"""Study files: what-if scenarios on a base plant, validated once into frozen objects.

A study file (TOML, in ``plant_config/studies/``) looks like::

    [study]
    name = "add_mill"
    plant = "../powder_line.toml"      # relative to this file
    days = 60.0                        # horizon of one replication
    warmup_days = "auto"               # MSER-5 on the base scenario, or a number of days
    seed = 20240601                    # study seed: replication r uses child r of it
    replications = 10                  # fixed mode (ignored when [precision] is given)
    kpis = ["throughput_kg_per_day", "utilisation", ...]

    [precision]                        # optional: add replications until the CIs are narrow
    half_width = { throughput_kg_per_day = 2.0 }
    max_replications = 60

    [scenarios.base]
    set = []
    [scenarios.four_mills]
    set = ["stations.mill.count=4"]    # the keys of `--set`, checked the same way

Every scenario's overrides are applied to the base plant and validated at load, so a misspelt
key is a one-line error naming the study file, the scenario and the plant key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from twin.config.load import CONFIG_DIR, apply_overrides, read_toml, validate_model
from twin.config.schema import PlantConfig
from twin.errors import ConfigError

#: Directory of the shipped example studies.
STUDY_DIR = CONFIG_DIR / "studies"

KpiName = Literal[
    "throughput_kg_per_day", "throughput_batches_per_day", "cycle_time_h", "wip_kg",
    "utilisation", "state_shares", "oee", "oxide_in_window_share",
]
#: KPI families in report order; ``utilisation``, ``state_shares`` and ``oee`` are per station.
ALL_KPIS: tuple[str, ...] = KpiName.__args__  # type: ignore[attr-defined]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ScenarioSpec(_Frozen):
    """One scenario: overrides on the base plant."""

    description: str = ""
    set: tuple[str, ...] = Field(default=(), description="key=value overrides, as --set")


class StudyInfo(_Frozen):
    """The ``[study]`` table."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    description: str = ""
    plant: str = Field(default="", description="plant file, relative to the study file; "
                                                "empty: the default plant")
    truth: str = Field(default="nominal",
                       description="the hidden plant the scenarios run on: a shipped truth "
                                   "name or a truth file relative to the study file")
    set: tuple[str, ...] = Field(default=(), description="overrides applied to every scenario")
    days: float = Field(gt=0, le=3660, description="horizon of one replication")
    warmup_days: float | Literal["auto"] = "auto"
    seed: int = Field(default=0, ge=0, lt=2**63)
    replications: int = Field(default=10, ge=2, le=100_000)
    bucket_h: float = Field(default=4.0, gt=0, le=168,
                            description="time resolution of the stored series")
    base: str = Field(default="", description="reference scenario (default: the first)")
    kpis: tuple[KpiName, ...] = ALL_KPIS  # type: ignore[assignment]

    @field_validator("warmup_days")
    @classmethod
    def _warmup_inside(cls, w: float | str, info: ValidationInfo) -> float | str:
        days = info.data.get("days")
        if w != "auto" and days is not None and not 0 <= float(w) < days:
            raise ValueError(f"must be 'auto' or in [0, days={days:g})")
        return w

    @field_validator("bucket_h")
    @classmethod
    def _enough_buckets(cls, b: float, info: ValidationInfo) -> float:
        days = info.data.get("days")
        if days is not None and b * 10 > days * 24:
            raise ValueError(f"too coarse for {days:g} days (need at least 10 buckets)")
        return b


class Precision(_Frozen):
    """The optional ``[precision]`` table: sequential replications to a half-width target."""

    half_width: dict[str, float] = Field(default_factory=dict,
                                         description="absolute 95 % half-width per KPI")
    relative_half_width: dict[str, float] = Field(default_factory=dict,
                                                  description="half-width / |mean| per KPI")
    min_replications: int = Field(default=5, ge=2, le=100_000)
    max_replications: int = Field(default=100, ge=2, le=100_000)

    @field_validator("half_width", "relative_half_width")
    @classmethod
    def _known_positive(cls, v: dict[str, float]) -> dict[str, float]:
        for kpi, value in v.items():
            if kpi not in ALL_KPIS:
                raise ValueError(f"unknown KPI '{kpi}' (expected one of: {', '.join(ALL_KPIS)})")
            if not value > 0:
                raise ValueError(f"target for {kpi} must be > 0, got {value}")
        return v

    @field_validator("max_replications")
    @classmethod
    def _max_over_min(cls, v: int, info: ValidationInfo) -> int:
        lo = info.data.get("min_replications")
        if lo is not None and v < lo:
            raise ValueError(f"must be >= min_replications ({lo})")
        return v

    @model_validator(mode="after")
    def _targets(self) -> Precision:
        if not self.half_width and not self.relative_half_width:
            raise ValueError("[precision] needs half_width or relative_half_width targets")
        return self


class StudyFile(_Frozen):
    """A whole study file as written."""

    study: StudyInfo
    precision: Precision | None = None
    scenarios: dict[str, ScenarioSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> StudyFile:
        for name in self.scenarios:
            if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
                raise ValueError(f"scenario name {name!r}: use letters, digits, _ . -")
        if self.study.base and self.study.base not in self.scenarios:
            raise ValueError(f"study.base {self.study.base!r} is not a scenario "
                             f"({', '.join(self.scenarios)})")
        if self.precision is not None:
            for kpi in [*self.precision.half_width, *self.precision.relative_half_width]:
                if kpi not in self.study.kpis:
                    raise ValueError(f"precision target for '{kpi}', which is not in "
                                     "study.kpis")
        return self


@dataclass(frozen=True)
class Scenario:
    """A resolved scenario: its name, overrides and validated plant."""

    name: str
    description: str
    overrides: tuple[str, ...]
    plant: PlantConfig
    truth: str = "nominal"

    def run_key(self, days: float, seed: int, bucket_h: float) -> str:
        """Hash of everything that determines this scenario's replications (16 hex digits).

        Two studies that share a scenario with the same resolved plant, horizon, seed and
        bucket reuse each other's stored replications; any change makes a new key.
        """
        from twin import __version__
        from twin.hidden.config import load_truth

        truth = load_truth(self.truth).model_dump(mode="json")
        blob = json.dumps({"plant": self.plant.model_dump(mode="json"), "days": days,
                           "seed": seed, "bucket_h": bucket_h, "twin": __version__,
                           "truth": truth}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Study:
    """A loaded study: the file's settings with every scenario's plant resolved.

    ``days`` and ``replications`` may differ from the file after command-line overrides.
    """

    path: Path
    name: str
    description: str
    plant_path: Path
    days: float
    warmup_days: float | Literal["auto"]
    seed: int
    replications: int
    bucket_h: float
    base: str
    kpis: tuple[str, ...]
    precision: Precision | None
    scenarios: tuple[Scenario, ...]

    def scenario(self, name: str) -> Scenario:
        """The scenario called ``name``."""
        for s in self.scenarios:
            if s.name == name:
                return s
        raise KeyError(name)


def load_study(path: str | Path, *, days: float | None = None,
               replications: int | None = None) -> Study:
    """Load and validate a study file and every scenario's plant.

    Parameters
    ----------
    path : str or Path
        The study TOML.
    days : float, optional
        Override the horizon (a quick version of the study); a fixed warm-up longer than
        half of it is shortened to half.
    replications : int, optional
        Run exactly this many replications (fixed mode, even if the file asks for precision).

    Returns
    -------
    Study

    Raises
    ------
    ConfigError
        One line naming the file and key.
    """
    p = Path(path)
    spec = validate_model(StudyFile, read_toml(p), str(p))
    info = spec.study
    plant_path = (p.parent / info.plant).resolve() if info.plant else CONFIG_DIR / \
        "powder_line.toml"
    try:
        plant_data = read_toml(plant_path)
    except ConfigError as exc:
        raise ConfigError(f"{p}: key 'study.plant': {exc}") from None
    truth = _truth_ref(p, info.truth)
    scenarios = []
    for name, sc in spec.scenarios.items():
        overrides = (*info.set, *sc.set)
        source = f"{p}: scenario '{name}' ({plant_path.name}"
        source += f" with set {', '.join(overrides)})" if overrides else ")"
        try:
            data = apply_overrides(plant_data, overrides)
        except ConfigError as exc:
            raise ConfigError(f"{p}: scenario '{name}': {exc}") from None
        plant = validate_model(PlantConfig, data, source)
        _check_truth(p, truth, plant)
        scenarios.append(Scenario(name, sc.description, overrides, plant, truth))
    horizon = info.days if days is None else float(days)
    if horizon <= 0:
        raise ConfigError(f"--days must be > 0, got {days}")
    warmup = info.warmup_days
    if warmup != "auto" and float(warmup) >= horizon / 2:
        warmup = horizon / 2  # a quick run keeps half its horizon for statistics
    if replications is not None and replications < 2:
        raise ConfigError(f"--replications must be >= 2 for a confidence interval, "
                          f"got {replications}")
    if info.bucket_h * 10 > horizon * 24:
        raise ConfigError(f"{p}: key 'study.bucket_h': {info.bucket_h:g} h is too coarse for "
                          f"{horizon:g} days (need at least 10 buckets)")
    precision = spec.precision if replications is None else None
    return Study(
        path=p, name=info.name, description=info.description, plant_path=plant_path,
        days=horizon, warmup_days=warmup, seed=info.seed,
        replications=replications if replications is not None else info.replications,
        bucket_h=info.bucket_h, base=info.base or scenarios[0].name,
        kpis=tuple(info.kpis), precision=precision, scenarios=tuple(scenarios),
    )


def _truth_ref(study: Path, ref: str) -> str:
    """A study's truth: a shipped name as it is, a file relative to the study file."""
    from twin.hidden.config import truth_path

    if "/" in ref or "\\" in ref or ref.endswith(".toml"):
        return str((study.parent / ref).resolve())
    try:
        truth_path(ref)
    except ConfigError as exc:
        raise ConfigError(f"{study}: key 'study.truth': {exc}") from None
    return ref


def _check_truth(study: Path, truth: str, plant: PlantConfig) -> None:
    """Load the truth once for a scenario (a bad file is an error naming the study)."""
    from twin.hidden.config import load_truth, truth_path
    from twin.hidden.world import HiddenPlant

    path = truth_path(truth)
    try:
        HiddenPlant(load_truth(path), plant, 0, source=str(path)).check(plant)
    except ConfigError as exc:
        raise ConfigError(f"{study}: key 'study.truth': {exc}") from None
