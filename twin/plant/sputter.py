"""Sputter tools (thin-film line): Cu-foil sheets → Si film with a reactive oxide cap.

A run: operators load ``sheets_per_run`` sheets (foil is never short) → pump-down (setup) →
deposit the film, then the reactive cap, for the times the twin's rate model gives for the
recipe's thicknesses → vent (setup) → operators unload → disposition of the run; its sheets
go to the output buffer (the shipping dock), held while the lab measures. A run aborted by a
breakdown keeps what it deposited and is measured.

The cap is under run-to-run control (:meth:`twin.control.plant_hooks.PlantControl.sputter_loop`):
before each run the loop predicts the cap under the running setpoints and, outside the
deadband, corrects the oxidize time, then the O2 flow (``control.knob_order``: ``hold_time``,
``po2``) inside ``stations.sputter.limits``; after the run the virtual metrology predicts the
cap from the read-back values (``vm_*`` columns), an unreliable prediction holds the run for
the lab, and lab results teach the loop's calibration. The loops only compute and record to
the run's audit buffer; no SimPy process here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from typing import Any, Literal

import simpy

from twin.config.schema import SputterConfig, SputterRecipe
from twin.control.loop import ControlLoop
from twin.control.plant_hooks import sputter_context
from twin.control.vm import VmPrediction, release_basis
from twin.equipment.base import Equipment, StepRequest, lab_truth
from twin.physics import coating
from twin.physics.energy import sputtering_kwh
from twin.physics.melting import solidify
from twin.plant.breakdowns import HOUR_S
from twin.plant.buffers import Buffer
from twin.plant.components import Component
from twin.plant.lab import Lab
from twin.plant.prediction import calibration, predict_cap
from twin.plant.quality import dispose, lab_learner
from twin.plant.release import Evidence
from twin.plant.station import Context, Machine

#: Film densities, g/cm³ (for the mass ledger).
FILM_DENSITY_G_CM3 = {"Si": 2.33, "Sn": 7.29}


def sputter_setpoints(recipe: SputterRecipe, material: str, b_factor: float,
                      c_factor: float) -> dict[str, float]:
    """Setpoints of a run: process values plus deposit and cap times from the twin's rates."""
    m: Literal["Si", "Sn"] = "Si" if material == "Si" else "Sn"
    film_rate = coating.deposition_rate_nm_min(recipe.power_w, recipe.pressure_mtorr,
                                               material=m) * b_factor
    cap_rate = coating.cap_rate_nm_min(recipe.ar_sccm, recipe.o2_sccm, power_w=recipe.power_w,
                                       pressure_mtorr=recipe.pressure_mtorr,
                                       material=m) * c_factor
    return {"power_w": recipe.power_w, "pressure_mtorr": recipe.pressure_mtorr,
            "ar_sccm": recipe.ar_sccm, "o2_sccm": recipe.o2_sccm,
            "substrate_temperature_c": recipe.substrate_temperature_c,
            "deposit_min": recipe.film_nm / film_rate, "oxidize_min": recipe.cap_nm / cap_rate}


class Sputter(Machine):
    """One sputter tool (``line2.sputter1``)."""

    initial_state = "idle"

    def __init__(self, ctx: Context, name: str, parent: Component, cfg: SputterConfig,
                 equipment: Equipment, outbox: Buffer, lab: Lab) -> None:
        self.scfg = cfg
        assert ctx.cfg.recipes.sputter is not None
        self.recipe: SputterRecipe = ctx.cfg.recipes.sputter
        self.lab = lab
        self.calibration = calibration(cfg.calibration)
        self.material = ctx.cfg.alloy.base
        # The film's material record: the target alloy's phases (lever rule), deposited
        # amorphous (sputtered Si stays amorphous below ~500 °C substrate temperature; the
        # tool's limit is 400 °C).
        film = solidify(ctx.cfg.alloy.composition_wt, 1.0)
        self.film_material = {
            "phases_mass_frac": ";".join(f"{p}:{m:.4f}" for p, m in
                                         sorted(film.phases_kg.items())),
            "free_phase": film.free_phase, "amorphous_frac": 1.0}
        super().__init__(ctx, name, parent, cfg, equipment, None, outbox)

    def run(self) -> Generator[simpy.Event, Any, None]:
        """Sputter runs back to back."""
        env, ledger, r = self.env, self.ctx.ledger, self.recipe
        half = 0.5 * self.scfg.load_unload_h * HOUR_S
        recipe_sp = sputter_setpoints(r, self.material, self.calibration.b_factor,
                                      self.calibration.c_factor)
        rid = f"sputter:{r.film_nm:g}nm+{r.cap_nm:g}nm-cap"
        label = self.ctx.cfg.alloy.label
        window = self.ctx.cfg.control.window_nm
        while True:
            yield from self.maintenance()
            reqs = yield from self.operators()
            t_ops = env.now
            start = env.now
            # The run is named when it starts (its plan, step and audit records carry the
            # ID); the unit itself is made when its deposited mass is known.
            run_id = ledger.reserve_id("run")
            # Run-to-run control of the cap: predict it under the running setpoints and
            # correct them (closed loop) or propose (advisory) before loading; an advisory
            # proposal can be decided while the sheets are loaded and the chamber pumps down.
            loop = self._loop(recipe_sp)
            sctx = sputter_context(recipe_sp, self.material)
            if loop is not None:
                loop.writes_pending = bool(getattr(self.equipment, "confirms_writes", False))
                loop.clock = lambda: env.now
            plan = loop.before_batch(run_id, recipe_sp, sctx, env.now) if loop else None
            yield from self.setup(half, run_id, "load")
            self.release_operators(reqs, t_ops)
            pumped_from = env.now
            yield from self.setup(self.scfg.pump_down_min * 60.0, run_id, "pump-down")
            sp = loop.resolve(plan, env.now) if loop is not None and plan is not None \
                else dict(recipe_sp)
            results = yield from self.step(StepRequest(
                run_id, rid, "sputter", sp, on_download=loop.download_confirmer(plan)
                if loop is not None and plan is not None else None),
                                           resumable=False)
            res = results[-1]
            vm = loop.after_step(res, sctx) if loop is not None else None
            yield from self.setup(self.scfg.vent_min * 60.0, run_id, "vent")
            vacuum_s = env.now - pumped_from
            reqs = yield from self.operators(run_id)
            t_ops = env.now
            yield from self.setup(half, run_id, "unload")
            self.release_operators(reqs, t_ops)
            true = res.truth
            area = r.sheets_per_run * r.sheet_area_cm2
            mass = area * true["film_nm"] * 1e-7 * FILM_DENSITY_G_CM3[self.material] * 1e-3
            run = ledger.new("run", mass, (), label, start, raw=True, unit_id=run_id)
            pred = self._predict(res.values, vm)
            sheets = [ledger.new("sheet", mass / r.sheets_per_run, (run,), label, start)
                      for _ in range(r.sheets_per_run)]
            ledger.consume(run)
            self.batches_done += 1
            run.row.update(_run_row(run, self.path, rid, sp, res.values, res.status, start,
                                    env.now, pred, true, r))
            run.row.update(self.film_material)
            # Electrical energy: the target power read back for the minutes deposited, and
            # the tool's base load from pump-down to vent; each sheet carries its share.
            energy = self._energy_kwh(res.values, vacuum_s)
            run.row["step_energy_kwh"] = energy
            if vm is not None and loop is not None and plan is not None:
                basis, why = release_basis(vm, window)
                run.row.update(vm.as_columns())
                run.row.update({"ctrl_mode": loop.mode, "ctrl_state": plan.state,
                                "ctrl_proposal_id": plan.proposal.proposal_id
                                if plan.proposal else "",
                                "ctrl_predicted_before_nm": plan.predicted_nm,
                                "vm_release_basis": basis, "vm_release_reason": why})
            for i, s in enumerate(sheets):
                s.row.update({"unit_id": s.id, "unit_kind": "sheet", "parent_ids": run.id,
                              "alloy": label, "mass_kg": s.mass_kg, "path": self.path,
                              "sputter_path": self.path, "start_s": start, "end_s": env.now,
                              "sheet_index": i + 1, "area_cm2": r.sheet_area_cm2,
                              "pred_film_nm": pred["film_nm"],
                              "pred_oxide_mean_nm": pred["cap_nm"], "origin_s": start,
                              "step_energy_kwh": energy / len(sheets)})
            # A rotated sputter run's cap is uniform by construction: the uniformity is the
            # tool's, not the prediction's (twin.plant.release).
            evidence = Evidence.of(pred["cap_nm"], 1.0,
                                   vm if loop is not None and plan is not None else None,
                                   uniformity_source="tool", aborted=res.status == "aborted",
                                   can_rework=False)
            yield from dispose(self, self.lab, run, sheets, evidence=evidence,
                               true_nm=lab_truth(true, "cap_nm"), on_rework=None,
                               on_measured=lab_learner(self.env, loop, run_id))

    def _loop(self, recipe_sp: dict[str, float]) -> ControlLoop | None:
        """This tool's control loop (None when the run has no control)."""
        control = self.ctx.control
        if control is None:
            return None
        loop: ControlLoop = control.sputter_loop(self.path, self.scfg, recipe_sp)
        return loop

    def _energy_kwh(self, values: Mapping[str, float], run_s: float) -> float:
        """The run's electrical energy from its read-back values, kWh (NaN without them)."""
        try:
            power = float(values["power_w"])
            minutes = float(values["deposit_min"]) + float(values.get("oxidize_min", 0.0))
            return sputtering_kwh(power, 60.0 * minutes, run_s,
                                  generator_efficiency=self.scfg.generator_efficiency,
                                  base_load_kw=self.scfg.base_load_kw)
        except (KeyError, TypeError, ValueError):
            return math.nan  # no usable reading: the record says so

    def _predict(self, values: Mapping[str, float], vm: VmPrediction | None
                 ) -> dict[str, float]:
        """Predicted film (configured rate) and cap (the VM's, else the configured rate)."""
        if vm is not None:
            m: Literal["Si", "Sn"] = "Si" if self.material == "Si" else "Sn"
            try:
                film = coating.deposition_rate_nm_min(
                    values["power_w"], values["pressure_mtorr"], material=m
                ) * self.calibration.b_factor * values["deposit_min"]
            except (KeyError, ValueError):
                film = math.nan  # no usable reading: the lab decides
            return {"film_nm": film, "cap_nm": vm.mean_nm}
        return predict_cap(values, material=self.material, calibration=self.calibration)


def _run_row(run: Any, path: str, rid: str, sp: dict[str, float], actual: Any, status: str,
             start: float, end: float, pred: dict[str, float], true: dict[str, float],
             r: SputterRecipe) -> dict[str, Any]:
    row: dict[str, Any] = {
        "unit_id": run.id, "unit_kind": "run", "parent_ids": "", "alloy": run.alloy,
        "mass_kg": run.mass_kg, "path": path, "sputter_path": path, "recipe_id": rid,
        "start_s": start, "end_s": end, "step_status": status,
        "sheets": r.sheets_per_run,
    }
    row.update({f"sp_{k}": v for k, v in sp.items()})
    row.update({f"actual_{k}": v for k, v in actual.items() if k != "completed_fraction"})
    row.update({"pred_film_nm": pred["film_nm"], "pred_oxide_mean_nm": pred["cap_nm"],
                "true_film_nm": true["film_nm"], "true_oxide_mean_nm": true["cap_nm"]})
    return row
