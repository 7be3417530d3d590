"""Wiring: build the component tree, buffers, equipment and processes of a plant.

Powder line::

    melter1..k → [melter_out] → mill1..m → [mill_out] → oxidizer1..n → [oxidizer_out]
        → coater1..c → [coater_out] → shipping          (lab measures oxidizer charges;
                                                           reworked charges → [rework])

Thin-film line::

    sputter1..s → [sputter_out] → shipping               (lab measures sputter runs)
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any

import pandas as pd
import simpy

from twin.config.schema import Alloy, PlantConfig
from twin.control.plant_hooks import PlantControl, physics_evaluator
from twin.equipment.base import Equipment, ToolProvider
from twin.equipment.simulated import SimulatedTool
from twin.errors import ConfigError
from twin.plant.batches import Ledger
from twin.plant.breakdowns import FailureClock
from twin.plant.buffers import Buffer
from twin.plant.coater import Coater
from twin.plant.components import Component, RngTree
from twin.plant.historian import Historian
from twin.plant.lab import Lab
from twin.plant.melter import Melter, ProductionPlan
from twin.plant.mill import Mill
from twin.plant.oxidizer import Oxidizer
from twin.plant.physics_cache import OxidePhysics
from twin.plant.resources import Crew
from twin.plant.sputter import Sputter
from twin.plant.station import Context, Machine, station_names

#: ``factory(simulated_equipment) -> equipment`` for a station run by other (live) equipment.
EquipmentFactory = Callable[[Equipment], Equipment]


class Plant:
    """A wired plant, ready to run.

    Parameters
    ----------
    cfg : PlantConfig
        Validated plant configuration.
    seed : int
        Run seed (all randomness derives from it).
    horizon_s : float
        Planned run length, s (sizes the daily disturbance series).
    tools : ToolProvider
        Where the furnaces and sputter tools come from: the hidden plant of a simulated run
        (:class:`twin.hidden.world.HiddenPlant`) or the twin's own model
        (:class:`twin.equipment.modelled.ModelTools`). The model only runs steps on them.
    physics : {'fast', 'exact'}
        The twin's oxide physics evaluation (see :mod:`twin.plant.physics_cache`).
    env : simpy.Environment, optional
        Environment to build in (a counting one for the benchmark).
    equipment : mapping of str to callable, optional
        For these component paths, ``factory(simulated) -> Equipment`` supplies the equipment
        the station uses instead of the simulated one it is given (the live twin's OPC UA
        tools, which may delegate to the simulated tool before they go live); the model is
        otherwise unchanged.
    learn_only_on_line : bool
        The control loops learn only from lab results of batches that ran on the line (a
        PLC), never from simulated equipment (a live twin's warm-up and unconnected tools).
    calibration_start : mapping, optional
        Parameters the loops' calibrations start from, by tool path (a live twin's record of
        an earlier run); the plant file's otherwise.
    """

    def __init__(self, cfg: PlantConfig, seed: int, horizon_s: float, *, tools: ToolProvider,
                 physics: str = "fast", env: simpy.Environment | None = None,
                 equipment: Mapping[str, EquipmentFactory] | None = None,
                 learn_only_on_line: bool = False,
                 calibration_start: Mapping[str, tuple[float, ...]] | None = None) -> None:
        self.cfg = cfg
        # Live equipment by component path (OPC UA tools); every other station is simulated.
        self.live_equipment: Mapping[str, EquipmentFactory] = dict(equipment or {})
        self.env = env if env is not None else simpy.Environment()
        self.rng = RngTree(seed)
        self.root = Component(cfg.plant.name)
        historian = Historian(pd.Timestamp(cfg.production.start_iso))
        crew = Crew(self.env, self.root, cfg.operators)
        self.ctx = Context(env=self.env, cfg=cfg, rng=self.rng, historian=historian,
                           ledger=Ledger(lambda: self.env.now), crew=crew,
                           horizon_s=horizon_s,
                           storage_rh=tools.storage_rh_percent,
                           physics=OxidePhysics(physics))
        self.ctx.control = PlantControl(cfg, evaluator=physics_evaluator(self.ctx.physics),
                                        learn_only_on_line=learn_only_on_line,
                                        start=calibration_start)
        _check_crew(cfg)
        self.machines: list[Machine] = []
        self.buffers: list[Buffer] = []
        self.lab = Lab(self.ctx, self.root, cfg.stations.lab)
        if cfg.plant.form == "powder":
            self._powder(tools)
        else:
            self._thin_film(tools)

    # -- helpers -----------------------------------------------------------------------------
    def _equip(self, path: str, simulated: Equipment) -> Equipment:
        factory = self.live_equipment.get(path)
        return factory(simulated) if factory is not None else simulated

    def _buffer(self, name: str, capacity: int | None) -> Buffer:
        buf = Buffer(self.env, name, self.root, capacity)
        self.buffers.append(buf)
        return buf

    def _clock(self, path: str, cfg: Any) -> FailureClock:
        return FailureClock(cfg.reliability, self.rng.stream(f"{path}.reliability"))

    def _ship(self, buf: Buffer) -> None:
        self.env.process(self._shipping(buf))

    def _shipping(self, buf: Buffer) -> Generator[simpy.Event, Any, None]:
        # Released finished units leave the plant as soon as they are released.
        while True:
            unit = yield from buf.get()
            self.ctx.ledger.ship(unit)
            unit.row["shipped_s"] = self.env.now

    # -- lines -------------------------------------------------------------------------------
    def _powder(self, tools: ToolProvider) -> None:
        cfg, ctx, st = self.cfg, self.ctx, self.cfg.stations
        assert st.melter and st.mill and st.oxidizer and st.coater
        camps: list[tuple[Alloy, int]] = ([(c, c.heats) for c in cfg.production.campaigns]
                                          or [(cfg.alloy, 1)])
        plan = ProductionPlan(camps)
        melt_out = self._buffer("melter_out", st.melter.buffer_out)
        mill_out = self._buffer("mill_out", st.mill.buffer_out)
        ox_out = self._buffer("oxidizer_out", st.oxidizer.buffer_out)
        rework = self._buffer("rework", None)
        coat_out = self._buffer("coater_out", st.coater.buffer_out)
        line = self.root.path
        for name in station_names("melter", st.melter.count):
            eq = SimulatedTool(f"{line}.{name}", self._clock(f"{line}.{name}", st.melter))
            self.machines.append(Melter(ctx, name, self.root, st.melter, eq, melt_out, plan))
        for name in station_names("mill", st.mill.count):
            mill = tools.mill(f"{line}.{name}", st.mill, self._clock(f"{line}.{name}", st.mill))
            self.machines.append(Mill(ctx, name, self.root, st.mill, mill, melt_out, mill_out))
        for name in station_names("oxidizer", st.oxidizer.count):
            path = f"{line}.{name}"
            furnace = self._equip(path, tools.furnace(path, st.oxidizer,
                                                      self._clock(path, st.oxidizer)))
            self.machines.append(Oxidizer(ctx, name, self.root, st.oxidizer, furnace, mill_out,
                                          ox_out, rework, self.lab))
        for name in station_names("coater", st.coater.count):
            eq = SimulatedTool(f"{line}.{name}", self._clock(f"{line}.{name}", st.coater))
            self.machines.append(Coater(ctx, name, self.root, st.coater, eq, ox_out, coat_out))
        self._ship(coat_out)

    def _thin_film(self, tools: ToolProvider) -> None:
        cfg, ctx, st = self.cfg, self.ctx, self.cfg.stations
        assert st.sputter is not None
        out = self._buffer("sputter_out", st.sputter.buffer_out)
        line = self.root.path
        for name in station_names("sputter", st.sputter.count):
            path = f"{line}.{name}"
            sputter = self._equip(path, tools.sputter(path, st.sputter,
                                                      self._clock(path, st.sputter),
                                                      material=cfg.alloy.base))
            self.machines.append(Sputter(ctx, name, self.root, st.sputter, sputter, out,
                                         self.lab))
        self._ship(out)

    # -- running -----------------------------------------------------------------------------
    def run(self, until_s: float) -> None:
        """Advance the simulation to ``until_s`` and close the state record there."""
        self.env.run(until=until_s)
        self.ctx.historian.close(until_s)


def _check_crew(cfg: PlantConfig) -> None:
    """Every station's operator need must fit the crew (else it could never start)."""
    for name, st in cfg.stations:
        need = getattr(st, "operators_needed", 0)
        if st is not None and getattr(st, "count", 0) > 0 and need > cfg.operators.count:
            raise ConfigError(f"stations.{name}.operators_needed is {need} but operators.count "
                              f"is {cfg.operators.count}: the station could never start")
