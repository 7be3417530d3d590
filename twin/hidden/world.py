"""The hidden plant behind a simulated run: the equipment a plant model runs on.

:class:`HiddenPlant` builds, for each furnace and sputter tool of a plant file, simulated
equipment running the true process of a truth file. A plant model receives it as its
:class:`~twin.equipment.base.ToolProvider` and never reads through it: what reaches the twin is
what the equipment reports (process values, read-back setpoints) and what the lab measures.

The hidden plant keeps its own random streams (``<path>.truth``, derived by name from the run's
seed, a name the twin's own tree never uses: the twin's streams never depend on what the truth
draws) and its own physics cache (nothing the twin computes is reused for the truth, or the
other way round).
"""

from __future__ import annotations

from pathlib import Path

from twin.config.schema import MillConfig, OxidizerConfig, PlantConfig, SputterConfig
from twin.equipment.base import Equipment
from twin.errors import ConfigError
from twin.hidden.charge import ChargeOxidation
from twin.hidden.config import TruthConfig, load_truth, truth_path
from twin.hidden.equipment import SimulatedFurnace, SimulatedMill, SimulatedSputter
from twin.hidden.furnace import TrueFurnace
from twin.hidden.material import StorageRoom
from twin.hidden.sputter import TrueSputter
from twin.plant.breakdowns import FailureClock
from twin.plant.components import RngTree

#: Tin's melting point, °C (an ITS-90 fixed point).
SN_MELT_C = 231.928


class HiddenPlant:
    """The true process of a plant's furnaces and sputter tools (a tool provider).

    Parameters
    ----------
    truth : TruthConfig
        The truth file's parameters.
    cfg : PlantConfig
        The plant whose equipment this is (its storage room's setpoint, its recipes).
    seed : int
        The run seed (the hidden plant's streams derive from it by name).
    physics : {'fast', 'exact'}
        How the true oxide is evaluated: the anchored expansion of the hidden charge physics
        (its own cache), or ``exact``: the full solve for every charge.
    source : str
        Where the truth came from (named in error messages and the run folder).
    """

    def __init__(self, truth: TruthConfig, cfg: PlantConfig, seed: int, *,
                 physics: str = "fast", source: str = "") -> None:
        self.truth = truth
        self.source = source or truth.truth.name
        self.rng = RngTree(seed)
        self.physics_mode = physics
        self._oxidation: ChargeOxidation | None = None
        self.storage = StorageRoom(cfg.recipes.storage.rh_percent,
                                   truth.disturbances.humidity_rh_sd_percent, truth.sensors,
                                   self.rng.stream("ambient.humidity"),
                                   self.rng.stream(f"{cfg.plant.name}.storage.rh_probe"))

    @classmethod
    def load(cls, ref: str | Path | None, cfg: PlantConfig, seed: int, *,
             physics: str = "fast") -> HiddenPlant:
        """The hidden plant of truth file ``ref`` (a shipped name or a path) for ``cfg``."""
        path = truth_path(ref)
        plant = cls(load_truth(path), cfg, seed, physics=physics, source=str(path))
        plant.check(cfg)
        return plant

    @property
    def name(self) -> str:
        """The truth's name (``nominal``, ``aged_furnace`` ...)."""
        return self.truth.truth.name

    def check(self, cfg: PlantConfig) -> None:
        """Refuse a truth that makes the plant's recipe impossible (one line, exit 2).

        A tin phase is molten above 231.9 °C: a charge whose true temperature (setpoint plus
        the hidden thermocouple offset) reaches it cannot be oxidised as a powder.
        """
        ox = cfg.recipes.oxidation
        if ox is None or cfg.alloy.composition_wt.get("Sn", 0.0) <= 0:
            return
        offset = self.truth.furnace.thermocouple_offset_c
        true_c = ox.hold_c + offset
        if true_c >= SN_MELT_C:
            raise ConfigError(
                f"{self.source}: key 'furnace.thermocouple_offset_c': puts the tin-bearing "
                f"charge of recipes.oxidation.hold_c {ox.hold_c:g} °C at {true_c:g} °C, above "
                f"tin's melting point {SN_MELT_C} °C (expected hold_c + offset < {SN_MELT_C}, "
                f"given {offset:g})")

    # -- the tool provider -------------------------------------------------------------------
    def furnace(self, path: str, cfg: OxidizerConfig, clock: FailureClock) -> Equipment:
        """The simulated furnace at ``path``, running this truth."""
        true = TrueFurnace(self.truth.furnace, cfg.limits, self.rng.stream(f"{path}.truth"),
                           tau_s=cfg.plc.tau_s, zones=cfg.plc.zones)
        return SimulatedFurnace(
            path, clock, true, self.oxidation(true), self.storage,
            offset_sd_c=self.truth.disturbances.furnace_temperature_sd_c)

    def oxidation(self, true: TrueFurnace) -> ChargeOxidation:
        """The charges' physics of this plant (one cache for all its furnaces)."""
        if self._oxidation is None:
            mean = sum(true.zone_offsets_c) / true.zones
            self._oxidation = ChargeOxidation(
                self.truth.kinetics.build(), self.truth.bed.build(), self.truth.lab,
                zone_offsets_c=tuple(z - mean for z in true.zone_offsets_c),
                loop_tau_s=true.tau_s, mode=self.physics_mode)
        return self._oxidation

    def mill(self, path: str, cfg: MillConfig, clock: FailureClock) -> Equipment:
        """The simulated mill at ``path``: true powder, QC readings."""
        return SimulatedMill(path, clock, self.truth.material, self.truth.sensors,
                             self.truth.disturbances.feed_d50_sd_rel,
                             self.rng.stream(f"{path}.feed"))

    def storage_rh_percent(self, t_s: float) -> float:
        """The storage room's humidity probe at ``t_s``, %RH."""
        return self.storage.reading(t_s)

    def sputter(self, path: str, cfg: SputterConfig, clock: FailureClock, *,
                material: str) -> Equipment:
        """The simulated sputter tool at ``path``, running this truth."""
        true = TrueSputter(self.truth.sputter, cfg.limits, self.rng.stream(f"{path}.truth"),
                           material=material, lab=self.truth.lab)
        return SimulatedSputter(path, clock, true)


def hidden_plant(ref: str | Path | None, cfg: PlantConfig, seed: int, *,
                 physics: str = "fast") -> HiddenPlant:
    """:meth:`HiddenPlant.load` (the form the harnesses call)."""
    return HiddenPlant.load(ref, cfg, seed, physics=physics)
