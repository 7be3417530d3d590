"""Slurry coaters: a released charge → electrode rolls.

A charge: take a released charge (``starved`` while none) → operators, held for the whole
charge (a coater is attended) → changeover when the alloy changes → per roll: roll change
(setup), then coating for the time the coating physics gives (line speed, capped by the
dryer) → the roll goes to the output buffer (the shipping dock). The roll count follows from
the charge's active mass and the recipe's active loading per roll; the last roll is short.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from functools import lru_cache
from typing import Any

import simpy

from twin.config.schema import CoaterConfig, SlurryRecipe
from twin.equipment.base import Equipment, StepRequest
from twin.physics import coating
from twin.physics.energy import slurry_coating_kwh
from twin.plant.breakdowns import HOUR_S
from twin.plant.buffers import Buffer
from twin.plant.components import Component
from twin.plant.station import Context, Machine


@lru_cache(maxsize=16)
def coat_result(recipe: SlurryRecipe, line_speed_m_min: float,
                dryer_length_m: float) -> coating.SlurryCoatResult:
    """Coating physics for one full roll (equal inputs: computed once)."""
    phys = coating.SlurryRecipe(active_fraction=recipe.active_fraction,
                                binder_fraction=recipe.binder_fraction,
                                conductive_fraction=recipe.conductive_fraction,
                                solids_fraction=recipe.solids_fraction)
    return coating.coat_slurry(phys, loading_mg_cm2=recipe.loading_mg_cm2,
                               porosity=recipe.target_porosity,
                               roll_length_m=recipe.roll_length_m,
                               web_width_m=recipe.web_width_m,
                               line_speed_m_min=line_speed_m_min,
                               dryer_length_m=dryer_length_m)


class Coater(Machine):
    """One slurry coater (``line1.coater1``)."""

    def __init__(self, ctx: Context, name: str, parent: Component, cfg: CoaterConfig,
                 equipment: Equipment, inbox: Buffer, outbox: Buffer) -> None:
        self.ccfg = cfg
        assert ctx.cfg.recipes.slurry is not None
        self.recipe: SlurryRecipe = ctx.cfg.recipes.slurry
        super().__init__(ctx, name, parent, cfg, equipment, inbox, outbox)

    def run(self) -> Generator[simpy.Event, Any, None]:
        """Coat released charges into rolls."""
        env, ledger = self.env, self.ctx.ledger
        res = coat_result(self.recipe, self.ccfg.line_speed_m_min, self.ccfg.dryer_length_m)
        active_per_roll_kg = res.solids_kg * self.recipe.active_fraction
        while True:
            yield from self.maintenance()
            charge = yield from self.take()
            reqs = yield from self.operators(charge.id)
            t_ops = env.now
            yield from self.changeover(charge)
            n = max(1, math.ceil(charge.mass_kg / active_per_roll_kg - 1e-9))
            left = charge.mass_kg
            rolls = []
            for i in range(n):
                mass = min(active_per_roll_kg, left)
                frac = mass / active_per_roll_kg
                yield from self.setup(self.ccfg.roll_change_h * HOUR_S, charge.id, "roll-change")
                start = env.now
                results = yield from self.step(StepRequest(
                    charge.id, f"coat:{self.recipe.loading_mg_cm2:g}mg_cm2", "coat",
                    {"duration_s": res.coat_time_s * frac,
                     "line_speed_m_min": res.line_speed_m_min}), resumable=True)
                ledger.take_from(charge, mass)  # what is still uncoated stays in WIP
                roll = ledger.new("roll", mass, (charge,), charge.alloy, charge.origin_s)
                left -= mass
                roll.row.update(_roll_row(roll, self.path, charge.row, res, frac, start,
                                          env.now, i + 1, n))
                roll.row["length_m"] = self.recipe.roll_length_m * frac
                # Electrical energy: the dryer evaporating the roll's solvent, and the drives
                # for the time it coated (the parts a breakdown split).
                roll.row["step_energy_kwh"] = slurry_coating_kwh(
                    res.solids_kg * frac, self.recipe.solids_fraction,
                    sum(r.duration_s for r in results), solvent=self.recipe.solvent,
                    dryer_efficiency=self.ccfg.dryer_efficiency,
                    drive_power_kw=self.ccfg.drive_power_kw)
                rolls.append(roll)
                self.batches_done += 1
            ledger.consume(charge)
            charge.row["coated_s"] = env.now
            self.release_operators(reqs, t_ops)
            for roll in rolls:
                yield from self.output(roll)


def _roll_row(roll: Any, path: str, charge_row: dict[str, Any],
              res: coating.SlurryCoatResult, frac: float, start: float, end: float,
              index: int, n: int) -> dict[str, Any]:
    row = {
        "unit_id": roll.id, "unit_kind": "roll", "parent_ids": ",".join(roll.parents),
        "alloy": roll.alloy, "mass_kg": roll.mass_kg, "path": path, "coater_path": path,
        "recipe_id": f"coat:{res.loading_mg_cm2:g}mg_cm2", "start_s": start, "end_s": end,
        "roll_index": index, "rolls_in_charge": n, "area_m2": res.area_m2 * frac,
        "line_speed_m_min": res.line_speed_m_min, "dryer_limited": res.dryer_limited,
        "coat_thickness_um": res.thickness_um, "porosity": res.porosity,
        "loading_mg_cm2": res.loading_mg_cm2, "solids_kg": res.solids_kg * frac,
        "disposition": "release", "origin_s": roll.origin_s,
    }
    for key in ("pred_oxide_mean_nm", "pred_oxide_p5_nm", "pred_oxide_p95_nm",
                "pred_within_50pct_share", "measured_oxide_nm", "oxidizer_path"):
        if key in charge_row:
            row[key] = charge_row[key]
    return row
