"""Cradle-to-gate energy of a batch (twin.report.energy) and its section of the batch page."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_runs import campaign_units, write_run

from twin.config import load_plant
from twin.errors import UsageError
from twin.hidden.run import simulate
from twin.report import write_reports
from twin.report.energy import cradle_to_gate_energy, total_kwh
from twin.store.schema import from_records


def unit(uid: str, kind: str, parents: str, mass: float, energy: float,
         **extra: Any) -> dict[str, Any]:
    return {"unit_id": uid, "unit_kind": kind, "parent_ids": parents, "mass_kg": mass,
            "path": f"line1.{kind}", "step_energy_kwh": energy, "end_s": 1.0, **extra}


def powder_record() -> pd.DataFrame:
    """One 87 kg heat (261 kWh) cut into three 29 kg lots (120 kWh each); a charge of two of
    them (65 kWh), coated into a 33 kg and a 25 kg roll (85 and 64 kWh); the third lot in a
    second charge not yet oxidised."""
    return pd.DataFrame([
        unit("H1", "heat", "", 87.0, 261.0),
        unit("L1", "lot", "H1", 29.0, 120.0), unit("L2", "lot", "H1", 29.0, 120.0),
        unit("L3", "lot", "H1", 29.0, 120.0),
        unit("C1", "charge", "L1,L2", 58.0, 65.0),
        unit("R1", "roll", "C1", 33.0, 85.0), unit("R2", "roll", "C1", 25.0, 64.0),
        unit("C2", "charge", "L3", 29.0, math.nan, end_s=math.nan),
    ])


def by_unit(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["unit_id"]: e for e in entries}


def test_a_charge_takes_its_lots_whole_and_its_heat_by_mass() -> None:
    e = cradle_to_gate_energy(powder_record(), "C1")
    assert [(x["step"], x["unit_id"]) for x in e] == [
        ("oxidation", "C1"), ("milling", "L1"), ("milling", "L2"), ("melting", "H1")]
    u = by_unit(e)
    assert u["C1"]["share"] == 1.0 and u["C1"]["energy_kwh"] == 65.0
    assert u["L1"]["share"] == pytest.approx(1.0) and u["L2"]["energy_kwh"] == pytest.approx(120)
    # Two paths to the heat, 29/87 each.
    assert u["H1"]["share"] == pytest.approx(2 / 3)
    assert u["H1"]["energy_kwh"] == pytest.approx(174.0)
    assert total_kwh(e) == pytest.approx(65 + 240 + 174)
    assert {x["source"] for x in e} == {"model"}
    assert u["L1"]["path"] == "line1.lot"
    assert set(e[0]) == {"step", "unit_id", "path", "energy_kwh", "share", "source"}


def test_rolls_take_their_mass_share_of_everything_upstream() -> None:
    rec = powder_record()
    r1, r2 = (by_unit(cradle_to_gate_energy(rec, r)) for r in ("R1", "R2"))
    assert r1["R1"]["energy_kwh"] == 85.0 and r1["C1"]["share"] == pytest.approx(33 / 58)
    assert r1["H1"]["share"] == pytest.approx(33 / 58 * 2 / 3)
    # The two rolls carry the charge's whole cradle-to-gate energy between them.
    charge_total = total_kwh(cradle_to_gate_energy(rec, "C1"))
    rolls = total_kwh(list(r1.values())) + total_kwh(list(r2.values()))
    assert rolls == pytest.approx(charge_total + 85 + 64)


def test_a_unit_whose_step_has_not_run_lists_only_its_upstream() -> None:
    e = cradle_to_gate_energy(powder_record(), "C2")
    assert [x["unit_id"] for x in e] == ["L3", "H1"]
    assert by_unit(e)["H1"]["share"] == pytest.approx(1 / 3)


def test_a_sheet_is_its_share_of_the_sputter_run() -> None:
    rec = pd.DataFrame([unit("S1", "run", "", 1e-4, 13.0)]
                       + [unit(f"F{i}", "sheet", "S1", 2.5e-5, 13.0 / 4) for i in range(4)])
    e = cradle_to_gate_energy(rec, "F2")
    assert [(x["step"], x["unit_id"]) for x in e] == [("sputtering", "S1")]
    assert e[0]["share"] == pytest.approx(0.25) and e[0]["energy_kwh"] == pytest.approx(3.25)
    assert cradle_to_gate_energy(rec, "S1") == [
        {"step": "sputtering", "unit_id": "S1", "path": "line1.run", "energy_kwh": 13.0,
         "share": 1.0, "source": "model"}]


def test_a_reworked_charge_carries_its_first_pass() -> None:
    rec = pd.concat([powder_record(), pd.DataFrame([unit("C3", "charge", "C1", 58.0, 60.0)])])
    u = by_unit(cradle_to_gate_energy(rec, "C3"))
    assert u["C3"]["energy_kwh"] == 60.0 and u["C1"]["energy_kwh"] == 65.0
    assert u["H1"]["share"] == pytest.approx(2 / 3)


def test_gaps_are_nan_never_zero() -> None:
    rec = powder_record()
    rec.loc[rec.unit_id == "L2", "step_energy_kwh"] = math.nan  # milled, no energy recorded
    rec.loc[rec.unit_id == "C1", "parent_ids"] = "L1,L2,L9"  # L9 not in the record
    u = by_unit(cradle_to_gate_energy(rec, "C1"))
    assert math.isnan(u["L2"]["energy_kwh"]) and u["L2"]["source"] == "model"
    assert u["L9"]["source"] == "missing" and u["L9"]["step"] == "unknown"
    assert math.isnan(u["L9"]["energy_kwh"])
    assert math.isnan(u["L1"]["share"])  # the parents' total mass is unknown
    assert math.isnan(total_kwh(list(u.values())))
    # A record without the column at all: every step is a gap.
    e = cradle_to_gate_energy(powder_record().drop(columns="step_energy_kwh"), "C1")
    assert len(e) == 4 and all(math.isnan(x["energy_kwh"]) for x in e)


def test_an_unknown_batch_or_a_cycle_is_an_error() -> None:
    with pytest.raises(UsageError, match="no batch 'X'"):
        cradle_to_gate_energy(powder_record(), "X")
    loop = pd.DataFrame([unit("A", "charge", "B", 1.0, 1.0), unit("B", "charge", "A", 1.0, 1.0)])
    with pytest.raises(UsageError, match="cycle"):
        cradle_to_gate_energy(loop, "A")


def test_it_reads_a_conformed_batch_record_with_nullable_types() -> None:
    rec = from_records(powder_record().to_dict(orient="records"))
    assert total_kwh(cradle_to_gate_energy(rec, "C1")) == pytest.approx(479.0)


@st.composite
def genealogies(draw: Any) -> pd.DataFrame:
    """Heats cut into lots, lots merged whole into charges, charges coated into rolls (each
    split conserving mass), with random energies: every unit ends in a roll."""
    rows: list[dict[str, Any]] = []
    lots: list[tuple[str, float]] = []
    for h in range(draw(st.integers(1, 3))):
        cuts = draw(st.lists(st.floats(1.0, 50.0), min_size=1, max_size=4))
        rows.append(unit(f"H{h}", "heat", "", sum(cuts), draw(st.floats(0.0, 500.0))))
        for k, m in enumerate(cuts):
            lots.append((f"L{h}_{k}", m))
            rows.append(unit(f"L{h}_{k}", "lot", f"H{h}", m, draw(st.floats(0.0, 200.0))))
    order = draw(st.permutations(lots))
    c = 0
    while order:
        n = draw(st.integers(1, len(order)))
        members, order = order[:n], order[n:]
        mass = sum(m for _, m in members)
        rows.append(unit(f"C{c}", "charge", ",".join(i for i, _ in members), mass,
                         draw(st.floats(0.0, 100.0))))
        fracs = draw(st.lists(st.floats(0.1, 1.0), min_size=1, max_size=3))
        for r, f in enumerate(fracs):
            rows.append(unit(f"R{c}_{r}", "roll", f"C{c}", mass * f / sum(fracs),
                             draw(st.floats(0.0, 100.0))))
        c += 1
    return pd.DataFrame(rows)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genealogies())
def test_allocation_conserves_energy_and_never_gives_a_parent_away_twice(rec) -> None:
    products = rec[rec.unit_kind == "roll"].unit_id
    allocated = sum(total_kwh(cradle_to_gate_energy(rec, r)) for r in products)
    assert allocated == pytest.approx(rec.step_energy_kwh.sum(), rel=1e-9)
    # Over all the children of a parent, its shares add up to at most 1 (here exactly 1).
    given_away: dict[str, float] = {}
    for r in products:
        for e in cradle_to_gate_energy(rec, r):
            given_away[e["unit_id"]] = given_away.get(e["unit_id"], 0.0) + e["share"]
    assert all(v == pytest.approx(1.0) for v in given_away.values())
    for e in cradle_to_gate_energy(rec, products.iloc[0]):
        assert e["energy_kwh"] >= 0 and 0 <= e["share"] <= 1 + 1e-12


@pytest.fixture(scope="module")
def simulated_record() -> pd.DataFrame:
    return simulate(load_plant(), 4, 2).batches


def test_in_a_simulated_run_no_parent_gives_more_than_itself(simulated_record) -> None:
    rec = simulated_record
    # The material's frontier: units nothing was made from yet (rolls, lots and charges
    # waiting); every earlier unit's mass went into these.
    parents = {p for ids in rec.parent_ids for p in str(ids).split(",") if p}
    leaves = rec[~rec.unit_id.isin(parents)]
    assert {"roll", "lot"} <= set(leaves.unit_kind)
    shares: dict[str, float] = {}
    for bid in leaves.unit_id:
        for e in cradle_to_gate_energy(rec, bid):
            if e["unit_id"] != bid:
                shares[e["unit_id"]] = shares.get(e["unit_id"], 0.0) + e["share"]
    assert shares and all(v <= 1 + 1e-9 for v in shares.values())
    # Every shipped roll has a complete cradle-to-gate energy of all four powder steps.
    for bid in rec[rec.unit_kind == "roll"].unit_id:
        e = cradle_to_gate_energy(rec, bid)
        assert {x["step"] for x in e} == {"melting", "milling", "oxidation", "coating"}
        assert math.isfinite(total_kwh(e)) and total_kwh(e) > 0


# --------------------------------------------------------------------------- batch page


def _energy_section(html: str) -> str:
    start = html.index('id="energy"')
    return re.sub(r"<[^>]+>", " ", html[start:html.index("<h2", start)])


def test_the_batch_page_shows_the_steps_and_the_total_per_kg(
        make_run: Callable[..., Path], tmp_path: Path) -> None:
    units = campaign_units([{}])
    energy = {"heat": 100.0, "lot": 50.0, "charge": 70.0, "roll": 30.0}
    for u in units:
        u["step_energy_kwh"] = energy[u["unit_kind"]]
    run = write_run(tmp_path / "run", units)
    res = write_reports(run, batch="C000001")
    text = _energy_section(res.batch_pages[0].read_text())
    # Oxidation 70, two whole lots of 50, the 58 kg heat whole (two 29 kg lots): 270 kWh.
    assert re.search(r"oxidation\s+C000001\s+line1\.oxidizer1\s+70 kWh\s+1\s+70 kWh", text)
    assert re.search(r"melting\s+H000001\s+line1\.melter1\s+100 kWh\s+1\s+100 kWh", text)
    assert "270 kWh" in text and f"{270 / 58:.4g} kWh/kg" in text
    assert "No energy" not in text and "R000001" not in text  # the roll's coating is its own


def test_a_batch_page_without_step_energy_says_so(make_run: Callable[..., Path]) -> None:
    run = make_run([{}])  # a record written before the column existed
    res = write_reports(run, batch="C000001")
    text = _energy_section(res.batch_pages[0].read_text())
    assert "no data" in text and "No energy in the batch record for: oxidation of C000001" in text
    assert "the total is incomplete" in text
