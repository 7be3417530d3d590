"""Melting furnaces: heats of the campaign's alloy, split into mill lots.

A heat: operators (held for the whole heat, induction melting is attended) → heat-up when the
furnace is cold (first heat, after downtime, or idle longer than ``cold_after_h``) →
changeover when the alloy changes → melting for the time the melting physics gives for the
mass and power (``remelts`` times) → pour and cool-down → the ingot is split into lots of
``lot_mass_kg``, each put into the output buffer (the melter is blocked while it is full).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator, Mapping
from functools import lru_cache
from typing import Any

import simpy

from twin.config.schema import Alloy, MelterConfig, MeltRecipe, MillRecipe
from twin.equipment.base import Equipment, StepRequest
from twin.physics.energy import melting_kwh
from twin.physics.melting import MeltResult, melt
from twin.plant.breakdowns import HOUR_S
from twin.plant.buffers import Buffer
from twin.plant.components import Component
from twin.plant.station import Context, Machine


class ProductionPlan:
    """Alloy campaigns in rotation, shared by all melters of a line."""

    def __init__(self, campaigns: list[tuple[Alloy, int]]) -> None:
        self._cycle = itertools.cycle(
            [alloy for alloy, heats in campaigns for _ in range(heats)])

    def next_alloy(self) -> Alloy:
        """Alloy of the next heat."""
        return next(self._cycle)


@lru_cache(maxsize=64)
def _melt_cached(items: tuple[tuple[str, float], ...], mass_kg: float, power_kw: float,
                 superheat_c: float, efficiency: float) -> MeltResult:
    # Equal inputs give equal results: melt once per (alloy, recipe, furnace).
    return melt(dict(items), mass_kg, power_kw=power_kw, superheat_c=superheat_c,
                efficiency=efficiency)


def melt_result(composition: Mapping[str, float], recipe: MeltRecipe,
                cfg: MelterConfig) -> MeltResult:
    """The melting physics for one heat (cached on equal inputs)."""
    return _melt_cached(tuple(sorted(composition.items())), recipe.heat_mass_kg, cfg.power_kw,
                        recipe.superheat_c, cfg.efficiency)


class Melter(Machine):
    """One melting furnace (``line1.melter1``)."""

    initial_state = "idle"

    def __init__(self, ctx: Context, name: str, parent: Component, cfg: MelterConfig,
                 equipment: Equipment, outbox: Buffer, plan: ProductionPlan) -> None:
        self.mcfg = cfg
        self.plan = plan
        recipes = ctx.cfg.recipes
        assert recipes.melt is not None and recipes.milling is not None
        self.recipe: MeltRecipe = recipes.melt
        self.mill_recipe: MillRecipe = recipes.milling
        self.cold_since = -math.inf  # idle since; -inf: cold at the start
        super().__init__(ctx, name, parent, cfg, equipment, None, outbox)

    def run(self) -> Generator[simpy.Event, Any, None]:
        """Melt heats forever (raw material is never short)."""
        env, ledger = self.env, self.ctx.ledger
        while True:
            if (yield from self.maintenance()):
                self.cold_since = -math.inf  # cold after maintenance
            alloy = self.plan.next_alloy()
            reqs = yield from self.operators()
            t_ops = env.now
            start = env.now
            heat = ledger.new("heat", self.recipe.heat_mass_kg, (), alloy.label, start,
                              raw=True)
            heat_up_s = 0.0
            if env.now - self.cold_since >= self.mcfg.cold_after_h * HOUR_S:
                heat_up_s = self.mcfg.heat_up_h * HOUR_S
                yield from self.setup(heat_up_s, heat.id, "heat-up")
            yield from self.changeover(heat)
            res = melt_result(alloy.composition_wt, self.recipe, self.mcfg)
            melt_s = res.duration_s * self.recipe.remelts
            results = yield from self.step(StepRequest(
                heat.id, f"melt:{alloy.label}:{self.recipe.heat_mass_kg:g}kg", "melt",
                {"duration_s": melt_s, "power_kw": self.mcfg.power_kw,
                 "pour_c": res.pour_temperature_c}), resumable=True)
            melted = env.now
            # Electrical energy: the furnace at power for the time it melted (the parts of a
            # melt a breakdown split), and a cold furnace's heat-up.
            energy = melting_kwh(self.mcfg.power_kw, sum(r.duration_s for r in results),
                                 heat_up_s=heat_up_s,
                                 heat_up_power_share=self.mcfg.heat_up_power_share)
            yield from self.setup(self.mcfg.cool_down_h * HOUR_S, heat.id, "cool-down")
            self.release_operators(reqs, t_ops)
            heat.row.update(_heat_row(heat.id, self.path, alloy, res, start, melted, melt_s,
                                      self.recipe.heat_mass_kg))
            heat.row["step_energy_kwh"] = energy
            heat.data["phases"] = res
            heat.data["composition_wt"] = dict(alloy.composition_wt)
            lots = self._split(heat)
            heat.row["end_s"] = env.now
            self.batches_done += 1
            for lot in lots:
                yield from self.output(lot)
            self.cold_since = env.now
            heat.row["released_s"] = env.now

    def _split(self, heat: Any) -> list[Any]:
        """Cut the heat into mill lots (the last one takes the remainder)."""
        size = self.mill_recipe.lot_mass_kg
        n = max(1, math.ceil(heat.mass_kg / size - 1e-9))
        masses = [size] * (n - 1) + [heat.mass_kg - size * (n - 1)]
        lots = [self.ctx.ledger.new("lot", m, (heat,), heat.alloy, heat.origin_s)
                for m in masses]
        for lot in lots:
            lot.data["phases"] = heat.data["phases"]
            lot.data["composition_wt"] = heat.data["composition_wt"]
            lot.row.update({"unit_id": lot.id, "unit_kind": "lot", "parent_ids": heat.id,
                            "alloy": lot.alloy, "mass_kg": lot.mass_kg,
                            "melter_path": self.path, "created_s": self.env.now,
                            "phases_mass_frac": heat.row["phases_mass_frac"],
                            "free_phase": heat.row["free_phase"]})
        self.ctx.ledger.consume(heat)
        return lots


def phases_text(res: MeltResult) -> str:
    """Phase mass fractions as ``'Si:0.5653;TiSi2:0.4347'``."""
    return ";".join(f"{p}:{f:.4f}" for p, f in sorted(res.phase_mass_fraction.items()))


def _heat_row(heat_id: str, path: str, alloy: Alloy, res: MeltResult, start: float,
              melted: float, melt_s: float, mass_kg: float) -> dict[str, Any]:
    phases = phases_text(res)
    return {
        "unit_id": heat_id, "unit_kind": "heat", "parent_ids": "", "alloy": alloy.label,
        "mass_kg": mass_kg, "path": path, "melter_path": path,
        "recipe_id": f"melt:{alloy.label}", "start_s": start, "melted_s": melted,
        "melt_duration_s": melt_s, "liquidus_c": res.liquidus_c,
        "pour_temperature_c": res.pour_temperature_c, "melt_energy_kwh": res.energy_kwh,
        "phases_mass_frac": phases, "free_phase": res.free_phase,
        "free_phase_mass_frac": res.phase_mass_fraction.get(res.free_phase, 0.0),
        "alloy_phase": res.alloy_phase or "",
    }
