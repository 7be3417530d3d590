"""Controlled-oxidation furnaces: mill lots → one charge → oxide skin.

A charge: reworked charges first; otherwise lots of one alloy from the mills' buffer until the
recipe's ``charge_kg`` is reached (``starved`` meanwhile; never above the furnace's
``capacity_kg``) → operators load (changeover when the alloy changes) → the ramp-hold-cool
profile on the furnace, whose heat-up and cool-down are the profile's ramps → operators
unload → disposition (:mod:`twin.plant.quality`).

Physics per charge, from what the charge actually saw: the native oxide grown while its lots
waited in storage (hours since milling, the storage room's humidity that day), the blended
particle sizes of its lots, and the furnace's *reported* temperature and gas record. The
twin's prediction uses that record and the twin's calibration; the equipment keeps the hidden
true oxide for the lab.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from twin.config.schema import FurnaceEnergy, OxidationRecipe, OxidizerConfig
from twin.control.loop import ControlLoop
from twin.control.plant_hooks import furnace_context
from twin.control.vm import VmPrediction, release_basis
from twin.equipment.base import Equipment, StepRequest, StepResult, lab_truth
from twin.errors import PhysicsError
from twin.physics import composition
from twin.physics.energy import furnace_step_energy
from twin.physics.melting import MEAN_CP_J_GK
from twin.physics.oxidation import OxideDistribution
from twin.physics.oxidation_native import native_oxide_scalar
from twin.plant.batches import Unit
from twin.plant.breakdowns import HOUR_S
from twin.plant.buffers import Buffer
from twin.plant.components import Component
from twin.plant.lab import Lab
from twin.plant.melter import phases_text
from twin.plant.prediction import blend, calibration
from twin.plant.quality import dispose, lab_learner
from twin.plant.release import Evidence
from twin.plant.station import Context, Machine


def oxidation_setpoints(recipe: OxidationRecipe) -> dict[str, float]:
    """The recipe as the furnace's flat setpoints."""
    return {"start_c": recipe.start_c, "hold_c": recipe.hold_c,
            "ramp_c_per_min": recipe.ramp_c_per_min, "hold_min": recipe.hold_min,
            "cool_c_per_min": recipe.cool_c_per_min, "po2_atm": recipe.po2_atm,
            "ph2o_atm": recipe.ph2o_atm, "gas_flow_slm": recipe.gas_flow_slm}


def recipe_id(recipe: OxidationRecipe) -> str:
    """Short recipe ID, e.g. ``oxidation:850C-30min-pO2=0.21-pH2O=0.02``."""
    return (f"oxidation:{recipe.hold_c:g}C-{recipe.hold_min:g}min-pO2={recipe.po2_atm:g}"
            f"-pH2O={recipe.ph2o_atm:g}")


class Oxidizer(Machine):
    """One controlled-oxidation furnace (``line1.oxidizer1``)."""

    def __init__(self, ctx: Context, name: str, parent: Component, cfg: OxidizerConfig,
                 equipment: Equipment, inbox: Buffer, outbox: Buffer, rework: Buffer,
                 lab: Lab) -> None:
        self.ocfg = cfg
        assert ctx.cfg.recipes.oxidation is not None
        self.recipe: OxidationRecipe = ctx.cfg.recipes.oxidation
        self.rework = rework
        self.lab = lab
        self.calibration = calibration(cfg.calibration)
        super().__init__(ctx, name, parent, cfg, equipment, inbox, outbox)

    def _fill(self) -> Generator[simpy.Event, Any, tuple[list[Unit], Unit | None]]:
        """Lots of one alloy up to the charge mass, or one reworked charge."""
        if self.rework.has_released():
            charge: Unit = yield from self.rework.get()
            return [], charge
        target = min(self.recipe.charge_kg_at(self.env.now), self.ocfg.capacity_kg)
        first = yield from self.take()
        lots, mass = [first], first.mass_kg
        alloy = first.alloy
        while True:
            assert self.inbox is not None
            nxt = [u for u in self.inbox.released.items if u.alloy == alloy]
            if mass >= target - 1e-9 or (nxt and mass + nxt[0].mass_kg > self.ocfg.capacity_kg
                                         + 1e-9):
                return lots, None
            lot = yield from self.take(lambda u, a=alloy: u.alloy == a)
            lots.append(lot)
            mass += lot.mass_kg

    def run(self) -> Generator[simpy.Event, Any, None]:
        """Oxidise charges as lots come."""
        env, ledger, ctx = self.env, self.ctx.ledger, self.ctx
        half = 0.5 * self.ocfg.load_unload_h * HOUR_S
        storage = ctx.cfg.recipes.storage
        while True:
            yield from self.maintenance()
            lots, redo = yield from self._fill()
            reqs = yield from self.operators()
            t_ops = env.now
            if redo is None:
                charge = ledger.new("charge", sum(u.mass_kg for u in lots), tuple(lots),
                                    lots[0].alloy, min(u.origin_s for u in lots))
                ledger.consume(*lots)
                psd = blend([u.data["psd"] for u in lots], [u.mass_kg for u in lots])
                rh = ctx.rh_percent(env.now)
                waits = [env.now - u.data["milled_s"] for u in lots]
                phases = lots[0].data["phases"]
                material = phases.free_phase
                native = sum(native_oxide_scalar(w, rh_percent=rh,
                                                 temperature_c=storage.temperature_c,
                                                 material=material) * u.mass_kg
                             for w, u in zip(waits, lots, strict=True)) / charge.mass_kg
                ssa = _mean(lots, "ssa_m2_g")
                feed_o = _mean(lots, "oxygen_wt_pct")
                # Milling's oxygen pickup (the lots' O readings) fed forward as oxide the
                # charge already carries, next to what it grew waiting in storage.
                pickup = max(float(composition.thickness_from_oxygen_nm(
                    feed_o, ssa, material=material)), 0.0) if feed_o > 0 else 0.0
                initial = native + pickup
                # What the hidden plant needs of the lots (opaque to the twin): their true
                # powder, mass and when they were milled.
                lot_truths = tuple((u.data.get("truth"), u.mass_kg, u.data["milled_s"])
                                   for u in lots)
                charge.data.update(psd=psd, phases=phases, reworks=0, ssa_m2_g=ssa,
                                   lot_truths=lot_truths, previous=None,
                                   composition_wt=lots[0].data["composition_wt"])
                charge.row.update({
                    "storage_h_mean": sum(waits) / len(waits) / HOUR_S,
                    "storage_rh_percent": rh, "native_oxide_nm": native,
                    "milling_oxide_nm": pickup, "initial_oxide_nm": initial,
                    "d50_um": psd.d50_um, "psd_gsd": psd.gsd, "n_parents": len(lots),
                    "phases_mass_frac": phases_text(phases), "free_phase": material,
                    "mill_paths": ",".join(sorted({u.row.get("mill_path", "") for u in lots})),
                    "amorphous_frac": _mean(lots, "amorphous_frac"),
                    "ssa_m2_g": ssa, "feed_oxygen_wt_pct": feed_o,
                })
            else:
                # A reworked charge: the same material again, as a new charge (genealogy).
                charge = ledger.new("charge", redo.mass_kg, (redo,), redo.alloy, redo.origin_s)
                ledger.consume(redo)
                charge.data.update(redo.data)
                charge.data["reworks"] = redo.data["reworks"] + 1
                charge.data["previous"] = redo.data.get("truth")  # the last pass, as it is
                psd, phases = redo.data["psd"], redo.data["phases"]
                material = phases.free_phase
                initial = float(redo.row.get("measured_oxide_nm") or redo.data["oxide_nm"])
                charge.row.update({"native_oxide_nm": 0.0, "milling_oxide_nm": 0.0,
                                   "initial_oxide_nm": initial, "d50_um": psd.d50_um,
                                   "n_parents": 1})
            yield from self.changeover(charge)
            start = env.now
            growth = {"orientation": self.recipe.orientation,
                      "thin_model": self.recipe.thin_model,
                      "si_area_fraction": max(phases.phase_mass_fraction.get(material, 1.0),
                                              1e-3),
                      "copper": "Cu" in phases.phases_kg or any(
                          "Cu" in p for p in phases.phase_mass_fraction)}
            sp = oxidation_setpoints(self.recipe)
            # Run-to-run control: predict the charge under the current setpoints and correct
            # them (closed loop) or propose (advisory) before loading; an advisory proposal
            # can be decided while the charge is loaded.
            loop = self._loop()
            octx = furnace_context(psd, material, initial, growth, mass_kg=charge.mass_kg,
                                   ssa_m2_g=charge.data["ssa_m2_g"])
            if loop is not None:
                # Live equipment confirms a write by its read-back; simulated applies it.
                loop.writes_pending = bool(getattr(self.equipment, "confirms_writes", False))
                loop.clock = lambda: env.now
            plan = loop.before_batch(charge.id, sp, octx, env.now) if loop else None
            yield from self.setup(half, charge.id, "load")
            self.release_operators(reqs, t_ops)
            if loop is not None and plan is not None:
                sp = loop.resolve(plan, env.now)
            # In-batch endpoint control: the furnace shows the twin its record during the
            # hold; the twin trims the hold (or ends it on a gross fault).
            sup = (loop.supervisor(plan, octx, env.now)
                   if loop is not None and plan is not None else None)
            results = yield from self.step(StepRequest(
                charge.id, recipe_id(self.recipe), "oxidize", sp,
                {"psd": psd, "material": material, "initial_nm": initial, "growth": growth,
                 "mass_kg": charge.mass_kg, "ssa_m2_g": charge.data["ssa_m2_g"],
                 "lots": charge.data["lot_truths"], "previous": charge.data["previous"]},
                supervisor=sup, on_download=loop.download_confirmer(plan)
                if loop is not None and plan is not None else None), resumable=False)
            res = results[-1]
            if plan is not None and plan.extra.get("hold_changed"):
                sp = dict(plan.setpoints)  # the hold the furnace confirmed
            charge.data["truth"] = res.truth
            # The furnace's reported record, kept for the run folder (release reports plot it).
            charge.data["record"] = (res.start_s, res.actual)
            vm = loop.after_step(res, octx) if loop is not None else None
            pred = (_as_distribution(vm) if vm is not None else
                    ctx.physics.predict(res.actual, psd, material=material,
                                        calibration=self.calibration, initial_nm=initial,
                                        growth=growth))
            reqs = yield from self.operators(charge.id)
            t_ops = env.now
            yield from self.setup(half, charge.id, "unload")
            self.release_operators(reqs, t_ops)
            self.batches_done += 1
            true = res.truth
            charge.data["oxide_nm"] = pred.mean_nm
            charge.row.update(_charge_row(self.path, charge, self.recipe, sp, res.values,
                                          res.status, start, env.now, pred, true))
            charge.row.update(composition_columns(charge.data["composition_wt"], pred.mean_nm,
                                                  charge.data["ssa_m2_g"], material))
            # Electrical energy of the step, from the furnace's reported record (simulated or
            # a PLC's alike) and the oxide the twin predicts it grew.
            charge.row["step_energy_kwh"] = furnace_energy_kwh(
                res, self.ocfg.energy, sp, mass_kg=charge.mass_kg,
                composition_wt=charge.data["composition_wt"], material=material,
                ssa_m2_g=charge.data["ssa_m2_g"], initial_nm=initial, grown_to_nm=pred.mean_nm)
            # Communication gaps in the process-value record (live equipment only).
            charge.row.update({"data_gap_count": len(res.gaps),
                               "data_gap_s": float(sum(b - a for a, b in res.gaps)),
                               "step_fault": res.fault})
            if vm is not None and loop is not None and plan is not None:
                basis, why = release_basis(vm, ctx.cfg.control.window_nm)
                charge.row.update(vm.as_columns())
                charge.row.update({"ctrl_mode": loop.mode, "ctrl_state": plan.state,
                                   "ctrl_proposal_id": plan.proposal.proposal_id
                                   if plan.proposal else "",
                                   "ctrl_predicted_before_nm": plan.predicted_nm,
                                   "ctrl_endpoint_actions": int(
                                       plan.extra.get("endpoint_checks", 0)),
                                   "vm_release_basis": basis, "vm_release_reason": why})
            # The release rules (twin.plant.release) hold an unreliable prediction for the
            # lab, and stop a prediction the lab contradicts from speaking for the charge.
            evidence = Evidence.of(pred.mean_nm, pred.within_50pct_share,
                                   vm if loop is not None and plan is not None else None,
                                   aborted=res.status == "aborted",
                                   reworks=charge.data["reworks"])
            yield from dispose(self, self.lab, charge, [charge], evidence=evidence,
                               true_nm=lab_truth(true), on_rework=self._rework,
                               on_measured=lab_learner(self.env, loop, charge.id))

    def _rework(self, unit: Unit) -> None:
        self.env.process(self.rework.put(unit))

    def _loop(self) -> ControlLoop | None:
        """This furnace's control loop (None when the run has no control)."""
        control = self.ctx.control
        if control is None:
            return None
        loop: ControlLoop = control.furnace_loop(self.path, self.ocfg,
                                                 oxidation_setpoints(self.recipe))
        return loop


def composition_columns(alloy_wt: dict[str, float], thickness_nm: float, ssa_m2_g: float,
                        material: str) -> dict[str, Any]:
    """The oxidised product's composition for a predicted layer (batch columns).

    ``pred_o_wt_pct``: O of the oxidised powder (the layer's, the milling pickup counted in
    it), ``pred_si_consumed_pct``: share of the alloy's Si (or Sn) turned into oxide, and
    ``pred_composition_wt``: every element's mass fraction of the product (``Si:0.69;...``),
    from the layer's thickness and the BET surface, the particles as spheres of the BET
    diameter (powder_bed.md §1 and §8).
    """
    if not (math.isfinite(thickness_nm) and thickness_nm >= 0 and ssa_m2_g > 0):
        return {"pred_o_wt_pct": math.nan, "pred_si_consumed_pct": math.nan,
                "pred_composition_wt": ""}
    radius = 3000.0 / (2.33 * ssa_m2_g)  # the BET sphere, nm
    metal = max(alloy_wt.get(material, 0.0), 1e-9)
    # One geometry solve: the oxide per kg of powder; O, the metal consumed and the product's
    # fractions follow from it (what composition.oxygen_wt_pct, si_consumed_wt_pct and
    # oxidised_composition compute, each with its own solve).
    n = float(composition.oxide_per_kg(thickness_nm, ssa_m2_g, material=material,
                                       radius_nm=radius, metal_fraction=metal))
    u = 2.0 * composition.M_O * n / 1000.0  # g O taken up per g of starting powder
    system = composition.OXIDES[material]
    fractions = {el: f / (1.0 + u) for el, f in alloy_wt.items() if f > 0}
    fractions["O"] = u / (1.0 + u)
    return {
        "pred_o_wt_pct": 100.0 * u / (1.0 + u),
        "pred_si_consumed_pct": 100.0 * n * system.m_metal / (1000.0 * metal),
        "pred_composition_wt": ";".join(f"{k}:{v:.4f}" for k, v in fractions.items()),
    }


def furnace_energy_kwh(result: StepResult, cfg: FurnaceEnergy, setpoints: dict[str, float], *,
                       mass_kg: float, composition_wt: dict[str, float], material: str,
                       ssa_m2_g: float, initial_nm: float, grown_to_nm: float) -> float:
    """Electrical energy of a furnace step from its reported record, kWh (NaN without one).

    :func:`twin.physics.energy.furnace_step_energy` on the step's indicated temperature
    record (``result.actual``: the simulated furnace's or the PLC's), with the charge's mean
    heat capacity from its alloy (:data:`twin.physics.melting.MEAN_CP_J_GK`), its trays, the
    gas flow the flow controller read (else the setpoint), and, with
    ``cfg.credit_reaction_heat``, the heat of the oxide the twin predicts grew from
    ``initial_nm`` to ``grown_to_nm`` (:func:`twin.physics.composition.reaction_heat_mj`;
    dry O2 and steam weighted by the oxygen atoms their partial pressures bring).
    """
    record = result.actual
    if record is None:
        return math.nan
    values = result.values
    cp = math.fsum(f * MEAN_CP_J_GK[el] for el, f in composition_wt.items()
                   if el in MEAN_CP_J_GK)  # J/(g K) = kJ/(kg K)
    flow = float(values.get("gas_flow_slm_mean", math.nan))
    if not math.isfinite(flow):
        flow = float(setpoints.get("gas_flow_slm", 0.0))
    reaction = 0.0
    if cfg.credit_reaction_heat and math.isfinite(grown_to_nm) and grown_to_nm > 0:
        reaction = _reaction_heat_kwh(values, setpoints, mass_kg=mass_kg, material=material,
                                      ssa_m2_g=ssa_m2_g, initial_nm=initial_nm,
                                      grown_to_nm=grown_to_nm)
    try:
        return furnace_step_energy(
            record.time_s, record.temperature_c, charge_kg=mass_kg, charge_cp_kj_kg_k=cp,
            tray_kg=cfg.tray_kg_per_charge_kg * mass_kg,
            thermal_mass_kj_k=cfg.thermal_mass_kj_per_k, loss_kw_per_k=cfg.loss_kw_per_k,
            gas_flow_slm=flow, ambient_c=cfg.ambient_c,
            heater_efficiency=cfg.heater_efficiency, reaction_heat_kwh=reaction,
            hold_c=float(setpoints["hold_c"])).electrical_kwh
    except (PhysicsError, KeyError):
        return math.nan  # a record the model cannot use: the batch record says so


def _reaction_heat_kwh(values: Any, setpoints: dict[str, float], *, mass_kg: float,
                       material: str, ssa_m2_g: float, initial_nm: float,
                       grown_to_nm: float) -> float:
    """Heat released by the layer grown in the step, kWh (0 when it cannot be computed)."""
    po2 = float(values.get("po2_atm_mean", setpoints.get("po2_atm", 0.0)))
    ph2o = float(values.get("ph2o_atm_mean", setpoints.get("ph2o_atm", 0.0)))
    if not (math.isfinite(po2) and math.isfinite(ph2o)) or po2 + ph2o <= 0:
        return 0.0
    dry = 2.0 * po2 / (2.0 * po2 + ph2o)  # share of the oxygen atoms O2 brings
    start_nm = min(max(initial_nm, 0.0), grown_to_nm)

    def heat_mj(oxidant: str) -> float:
        return float(composition.reaction_heat_mj(
            grown_to_nm, ssa_m2_g, mass_kg, material=material, oxidant=oxidant,
            radius_nm=3000.0 / (2.33 * ssa_m2_g), initial_nm=start_nm))

    try:
        mj = dry * heat_mj("O2") + (1.0 - dry) * heat_mj("H2O")
    except (PhysicsError, ZeroDivisionError):
        return 0.0
    return max(mj, 0.0) / 3.6 if math.isfinite(mj) else 0.0


def _as_distribution(vm: VmPrediction) -> OxideDistribution:
    """The VM prediction in the physics' result form (for the row and the disposition)."""
    return OxideDistribution(vm.mean_nm, vm.p5_nm, vm.p50_nm, vm.p95_nm,
                             vm.within_50pct_share, vm.fully_oxidised_share,
                             np.zeros(0))


def _mean(lots: list[Unit], key: str) -> float:
    vals = [u.row.get(key, math.nan) * u.mass_kg for u in lots]
    return sum(vals) / sum(u.mass_kg for u in lots)


def _charge_row(path: str, charge: Unit, recipe: OxidationRecipe, sp: dict[str, float],
                actual: Any, status: str, start: float, end: float, pred: Any,
                true: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "unit_id": charge.id, "unit_kind": "charge", "parent_ids": ",".join(charge.parents),
        "alloy": charge.alloy, "mass_kg": charge.mass_kg, "path": path,
        "oxidizer_path": path, "recipe_id": recipe_id(recipe), "start_s": start,
        "end_s": end, "step_status": status, "reworks": charge.data["reworks"],
    }
    row.update({f"sp_{k}": v for k, v in sp.items()})
    row.update({
        "actual_max_c": actual["max_c"], "actual_hold_c_mean": actual["hold_c_mean"],
        "actual_hold_band_min": actual["hold_band_min"],
        "actual_po2_atm_mean": actual["po2_atm_mean"],
        "actual_ph2o_atm_mean": actual["ph2o_atm_mean"],
        "actual_duration_s": actual["duration_s"],
        "pred_oxide_mean_nm": pred.mean_nm, "pred_oxide_p5_nm": pred.p5_nm,
        "pred_oxide_p50_nm": pred.p50_nm, "pred_oxide_p95_nm": pred.p95_nm,
        "pred_within_50pct_share": pred.within_50pct_share,
        "pred_fully_oxidised_share": pred.fully_oxidised_share,
        "true_oxide_mean_nm": true.mean_nm,
    })
    return row
