"""Mills: one mill lot at a time, with media wear and a varying feed.

A lot: take a lot from the melter's buffer (``starved`` while none) → operators load it
(changeover when the alloy changes) → milling for the recipe's hours, unattended → operators
unload → output buffer (``blocked`` while full). The mill's effective power falls by
``wear_per_lot`` for each lot since the media were last renewed (at planned maintenance).

What the twin knows of a lot is what quality control measured on it (the mill's result
values: laser-diffraction d50 and spread, BET surface, oxygen by inert-gas fusion), next to
what its milling model expects at the recipe's feed size (the amorphous share and the media
pickup it does not measure). The lot's true powder is the equipment's opaque truth handle.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import simpy

from twin.config.schema import MillConfig, MillRecipe
from twin.equipment.base import Equipment, StepRequest
from twin.physics import milling
from twin.physics.energy import milling_kwh
from twin.physics.milling import DENSITY_G_CM3
from twin.plant.breakdowns import HOUR_S
from twin.plant.buffers import Buffer
from twin.plant.components import Component
from twin.plant.prediction import LognormalPsd, unit_shape
from twin.plant.station import Context, Machine


@dataclass(frozen=True)
class LotMilling:
    """Milling result of one lot (:class:`twin.physics.milling.MillResult` with a lazy PSD)."""

    psd: LognormalPsd
    d50_um: float
    ssa_m2_g: float
    amorphous_fraction: float
    media_pickup_wt_pct: float
    oxygen_wt_pct: float
    specific_energy_kj_kg: float


def mill_lot(d0_um: float, *, duration_s: float, power_kw: float, charge_kg: float,
             recipe: MillRecipe, si_fraction: float, density_g_cm3: float) -> LotMilling:
    """The milling physics of :func:`twin.physics.milling.mill`, step by step.

    Calls the same public functions as ``mill`` but keeps the log-normal PSD as
    ``(d50, gsd)``; the specific surface is computed on the same bins (the unit-median shape
    scaled by d50), so every number equals ``mill``'s. Everything but the feed size depends
    only on the mill's energy input and the recipe, which repeat from lot to lot, so that part
    is computed once per distinct input (:func:`_energy_terms`).
    """
    e, g, ssa_unit, amorphous, pickup, oxygen = _energy_terms(
        duration_s, power_kw, charge_kg, recipe, si_fraction, density_g_cm3)
    d50 = milling.d50_um(d0_um, e)
    return LotMilling(psd=LognormalPsd(d50, g), d50_um=d50, ssa_m2_g=ssa_unit / d50,
                      amorphous_fraction=amorphous, media_pickup_wt_pct=pickup,
                      oxygen_wt_pct=oxygen, specific_energy_kj_kg=e)


@lru_cache(maxsize=512)
def _energy_terms(duration_s: float, power_kw: float, charge_kg: float, recipe: MillRecipe,
                  si_fraction: float, density_g_cm3: float
                  ) -> tuple[float, float, float, float, float, float]:
    # Energy, gsd, specific surface of the unit-median shape, amorphous fraction, media
    # pickup and oxygen of one lot: equal inputs give equal results.
    e = milling.specific_energy_kj_kg(power_kw, duration_s, charge_kg)
    g = milling.gsd(e)
    return (e, g, milling.ssa_m2_g(unit_shape(g), density_g_cm3),
            milling.amorphous_fraction(duration_s, mill_type=recipe.mill_type,
                                       media=recipe.media, si_fraction=si_fraction),
            milling.media_pickup_wt_pct(e, media=recipe.media, atmosphere=recipe.atmosphere),
            milling.oxygen_wt_pct(e, atmosphere=recipe.atmosphere, si_fraction=si_fraction))


class Mill(Machine):
    """One mill (``line1.mill2``)."""

    def __init__(self, ctx: Context, name: str, parent: Component, cfg: MillConfig,
                 equipment: Equipment, inbox: Buffer, outbox: Buffer) -> None:
        self.mcfg = cfg
        assert ctx.cfg.recipes.milling is not None
        self.recipe: MillRecipe = ctx.cfg.recipes.milling
        self.lots_on_media = 0
        super().__init__(ctx, name, parent, cfg, equipment, inbox, outbox)

    def run(self) -> Generator[simpy.Event, Any, None]:
        """Mill lots as they come."""
        env = self.env
        half = 0.5 * self.mcfg.load_unload_h * HOUR_S
        while True:
            if (yield from self.maintenance()):
                self.lots_on_media = 0  # media renewed
            lot = yield from self.take()
            reqs = yield from self.operators(lot.id)
            t_ops = env.now
            yield from self.changeover(lot)
            start = env.now
            yield from self.setup(half, lot.id, "load")
            self.release_operators(reqs, t_ops)
            efficiency = (1.0 - self.mcfg.wear_per_lot) ** self.lots_on_media
            power = self.mcfg.power_kw * efficiency
            duration = self.recipe.duration_h * HOUR_S
            phases = lot.data["phases"]
            si = phases.phase_mass_fraction.get("Si", 0.0)
            base = phases.free_phase
            density = DENSITY_G_CM3.get(base, 2.33)
            rid = f"mill:{self.recipe.mill_type}:{self.recipe.duration_h:g}h"
            results = yield from self.step(StepRequest(
                lot.id, rid, "mill", {"duration_s": duration, "power_kw": power},
                {"feed_d50_um": self.recipe.feed_d50_um, "duration_s": duration,
                 "mass_kg": lot.mass_kg, "recipe": self.recipe, "si_fraction": si,
                 "density_g_cm3": density}), resumable=True)
            milled = env.now
            qc = results[-1].values  # the lot's QC readings (laser diffraction, BET, O)
            # The twin's milling model at the recipe's feed: what it expects of the lot (the
            # amorphous share and media pickup it does not measure).
            res = mill_lot(self.recipe.feed_d50_um, duration_s=duration, power_kw=power,
                           charge_kg=lot.mass_kg, recipe=self.recipe, si_fraction=si,
                           density_g_cm3=density)
            self.lots_on_media += 1
            reqs = yield from self.operators(lot.id)
            t_ops = env.now
            yield from self.setup(half, lot.id, "unload")
            self.release_operators(reqs, t_ops)
            lot.data.update(psd=LognormalPsd(qc["d50_um"], qc["gsd"]), milled_s=env.now,
                            truth=results[-1].truth)
            lot.row.update({
                "path": self.path, "mill_path": self.path, "recipe_id": rid,
                "start_s": start, "end_s": env.now, "milled_s": milled,
                "feed_d50_um": self.recipe.feed_d50_um, "mill_power_kw": power,
                "mill_efficiency": efficiency,
                "mill_specific_energy_kj_kg": res.specific_energy_kj_kg,
                "d50_um": qc["d50_um"], "psd_gsd": qc["gsd"], "ssa_m2_g": qc["ssa_m2_g"],
                "oxygen_wt_pct": qc["oxygen_wt_pct"],
                "model_d50_um": res.d50_um, "model_ssa_m2_g": res.ssa_m2_g,
                "amorphous_frac": res.amorphous_fraction,
                "media_pickup_wt_pct": res.media_pickup_wt_pct,
                # Electrical energy: the mill's power for the time it milled (the parts of a
                # lot a breakdown split); equals mill_specific_energy_kj_kg × mass_kg / 3600.
                "step_energy_kwh": milling_kwh(power, sum(r.duration_s for r in results)),
            })
            self.batches_done += 1
            yield from self.output(lot)
