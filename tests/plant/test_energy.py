"""Every unit the stations make carries the electrical energy of its step (step_energy_kwh)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.config import CONFIG_DIR, load_plant
from twin.equipment.base import StepResult
from twin.hidden.run import simulate
from twin.physics.energy import slurry_coating_kwh
from twin.physics.oxidation_profile import Profile
from twin.plant.historian import Historian
from twin.plant.oxidizer import furnace_energy_kwh
from twin.plant.run import batches_table, unit_rows
from twin.store.journal import JOURNAL_FILE, Journal, read_units

THIN = CONFIG_DIR / "thin_film_line.toml"
KINDS = {"powder": {"heat", "lot", "charge", "roll"}, "thin_film": {"run", "sheet"}}


@pytest.fixture(scope="module")
def powder():
    return simulate(load_plant(), 4, 2)


@pytest.fixture(scope="module")
def thin():
    return simulate(load_plant(THIN), 3, 2)


def test_every_unit_kind_of_both_lines_carries_its_step_energy(powder, thin) -> None:
    for res, form in ((powder, "powder"), (thin, "thin_film")):
        b = res.batches
        assert set(b.unit_kind) == KINDS[form]
        made = b[b.end_s.notna()]
        for kind, rows in made.groupby("unit_kind"):
            e = rows.step_energy_kwh
            assert e.notna().all() and (e > 0).all(), kind
        # A unit whose step has not run (a lot waiting for its mill) has none yet.
        assert b.loc[b.end_s.isna(), "step_energy_kwh"].isna().all()


def test_a_lot_is_its_milling_energy_one_number(powder) -> None:
    lots = powder.batches[powder.batches.unit_kind == "lot"].dropna(subset=["end_s"])
    assert np.allclose(lots.step_energy_kwh,
                       lots.mill_specific_energy_kj_kg * lots.mass_kg / 3600.0, rtol=1e-9)
    # Media wear lowers the mill's power and so its energy, lot by lot.
    first = lots[lots.mill_path == "line1.mill1"].sort_values("start_s").step_energy_kwh
    assert first.is_monotonic_decreasing and first.iloc[0] == pytest.approx(15.0 * 8)


def test_a_heat_is_its_melt_energy_plus_a_cold_furnaces_heat_up(powder) -> None:
    cfg = load_plant().stations.melter
    assert cfg is not None
    heats = powder.batches[powder.batches.unit_kind == "heat"].dropna(subset=["end_s"])
    extra = heats.step_energy_kwh - heats.melt_energy_kwh  # one melt per heat (remelts = 1)
    heat_up = cfg.heat_up_power_share * cfg.power_kw * cfg.heat_up_h
    assert np.all(np.isclose(extra, 0.0, atol=1e-6) | np.isclose(extra, heat_up, atol=1e-6))
    assert np.isclose(extra.iloc[0], heat_up)  # the first heat starts cold


def test_a_rolls_energy_is_its_dryer_and_drives(powder) -> None:
    cfg = load_plant()
    assert cfg.recipes.slurry is not None and cfg.stations.coater is not None
    rolls = powder.batches[powder.batches.unit_kind == "roll"]
    expect = [slurry_coating_kwh(r.solids_kg, cfg.recipes.slurry.solids_fraction,
                                 r.end_s - r.start_s,
                                 dryer_efficiency=cfg.stations.coater.dryer_efficiency,
                                 drive_power_kw=cfg.stations.coater.drive_power_kw)
              for r in rolls.itertuples()]
    assert np.allclose(rolls.step_energy_kwh, expect, rtol=1e-9)


def test_a_runs_sheets_share_its_energy(thin) -> None:
    b = thin.batches
    runs = b[b.unit_kind == "run"].set_index("unit_id")
    sheets = b[b.unit_kind == "sheet"].groupby("parent_ids").step_energy_kwh.sum()
    assert np.allclose(sheets.loc[runs.index], runs.step_energy_kwh, rtol=1e-12)
    cfg = load_plant(THIN).stations.sputter
    assert cfg is not None
    # Base load over pump-down, deposition and vent, plus the target over its supply.
    r = runs.iloc[0]
    dep_h = (r.actual_deposit_min + r.actual_oxidize_min) / 60.0
    vacuum_h = dep_h + (cfg.pump_down_min + cfg.vent_min) / 60.0
    assert r.step_energy_kwh == pytest.approx(
        r.actual_power_w / 1000 * dep_h / cfg.generator_efficiency + cfg.base_load_kw * vacuum_h,
        rel=1e-3)


def test_the_reaction_heat_credit_only_lowers_the_furnaces_energy(powder) -> None:
    # Energy changes nothing else: the same seed without the credit gives the same batch
    # record but for the charges' energy, which is higher (the heaters carry the hold).
    off = simulate(load_plant(None, ["stations.oxidizer.energy.credit_reaction_heat=false"]),
                   4, 2).batches
    on = powder.batches
    pd.testing.assert_frame_equal(on.drop(columns="step_energy_kwh"),
                                  off.drop(columns="step_energy_kwh"))
    charge = (on.unit_kind == "charge") & on.step_energy_kwh.notna()
    assert (off.step_energy_kwh[charge] > on.step_energy_kwh[charge]).all()
    assert on.step_energy_kwh[~charge].equals(off.step_energy_kwh[~charge])
    per_kg = on.step_energy_kwh[charge] / on.mass_kg[charge]
    assert ((per_kg > 0.5) & (per_kg < 3.0)).all()  # the estimates' order of magnitude


def _result(record: Profile | None, *, on_line: bool) -> StepResult:
    return StepResult("line1.oxidizer1", "C000001", "ok", 0.0, 17000.0, actual=record,
                      values={"gas_flow_slm_mean": 250.0, "po2_atm_mean": 0.21,
                              "ph2o_atm_mean": 0.02}, on_line=on_line)


def test_a_plc_record_gives_the_same_energy_as_the_simulated_one() -> None:
    cfg = load_plant().stations.oxidizer
    assert cfg is not None
    knots_t = [0.0, 3200.0, 12200.0, 15400.0]
    knots_c = [25.0, 825.0, 825.0, 25.0]
    sim_t = np.arange(0.0, 15400.0 + 1, 60.0)
    # A PLC reports on change: irregular samples 2-20 s apart, with 0.3 K of noise.
    rng = np.random.default_rng(5)
    plc_t = np.concatenate([[0.0], np.cumsum(rng.uniform(2.0, 20.0, 2000))])
    plc_t = plc_t[plc_t < 15400.0]
    plc_c = np.interp(plc_t, knots_t, knots_c) + rng.normal(0.0, 0.3, plc_t.size)

    def energy(t: np.ndarray, c: np.ndarray, on_line: bool) -> float:
        prof = Profile(t, c, np.full(t.size, 0.21), np.full(t.size, 0.02))
        return furnace_energy_kwh(_result(prof, on_line=on_line), cfg.energy,
                                  {"hold_c": 825.0, "gas_flow_slm": 250.0}, mass_kg=58.0,
                                  composition_wt={"Si": 0.8, "Ti": 0.2}, material="Si",
                                  ssa_m2_g=15.0, initial_nm=1.0, grown_to_nm=10.0)

    simulated = energy(sim_t, np.interp(sim_t, knots_t, knots_c), False)
    assert math.isfinite(simulated) and simulated > 0
    assert energy(plc_t, plc_c, True) == pytest.approx(simulated, rel=0.03)
    # No record from the PLC: no energy, not zero.
    assert math.isnan(furnace_energy_kwh(_result(None, on_line=True), cfg.energy,
                                         {"hold_c": 825.0}, mass_kg=58.0,
                                         composition_wt={"Si": 1.0}, material="Si",
                                         ssa_m2_g=15.0, initial_nm=1.0, grown_to_nm=10.0))


def test_the_column_flows_through_the_live_journal(powder, tmp_path: Path) -> None:
    # The live twin journals each unit's row as it changes; the export rebuilds the batch
    # table from those rows.
    rows = unit_rows(powder.extra["plant"])
    j = Journal(tmp_path / JOURNAL_FILE)
    j.sync(units=[(r["unit_id"], r) for r in rows])
    back = batches_table(Historian(pd.Timestamp("2025-01-06")), read_units(j.db))
    j.close()
    expect = powder.batches.set_index("unit_id").step_energy_kwh
    got = back.set_index("unit_id").step_energy_kwh
    pd.testing.assert_series_equal(got, expect.loc[got.index])
    assert got.notna().sum() > 0
