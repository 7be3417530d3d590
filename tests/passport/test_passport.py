"""Batch passports: AASX packages and AAS JSON read back with the BaSyx SDK, checked with the
BaSyx compliance tool, and their numbers against the batch record."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from basyx.aas import model
from basyx.aas.adapter import aasx

from twin.cli import main as cli
from twin.config import DEFAULT_PLANT
from twin.config.passport import PassportConfig
from twin.errors import UsageError
from twin.passport import write_passports
from twin.passport.facts import CAS, CRITICAL
from twin.passport.footprint import carbon_footprint
from twin.report.energy import cradle_to_gate_energy

COMPLIANCE = shutil.which("aas-compliance-check") or str(
    Path(sys.executable).with_name("aas-compliance-check"))


@pytest.fixture(scope="module")
def powder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pp") / "powder"
    assert cli(["simulate", "--days", "3", "--seed", "5", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def passports(powder: Path) -> Any:
    return write_passports(powder)


def _read(path: Path) -> tuple[model.DictIdentifiableStore[model.Identifiable],
                               aasx.DictSupplementaryFileContainer]:
    store: model.DictIdentifiableStore[model.Identifiable] = model.DictIdentifiableStore()
    files = aasx.DictSupplementaryFileContainer()
    with aasx.AASXReader(str(path)) as reader:
        reader.read_into(object_store=store, file_store=files)
    return store, files


def _sm(store: Any, aas: model.AssetAdministrationShell, id_short: str) -> model.Submodel:
    for ref in aas.submodel:
        sm = ref.resolve(store)
        if sm.id_short == id_short:
            return sm
    raise AssertionError(f"no submodel {id_short}")


def _value(el: Any, *path: str) -> Any:
    for name in path:
        el = el.get_referable(name)
    return el.value


def test_every_released_product_gets_a_passport_and_nothing_else(powder: Path,
                                                                 passports: Any) -> None:
    units = pd.read_parquet(powder / "batches.parquet")
    got = {p.batch_id for p in passports.passports}
    skipped = {b for b, _ in passports.skipped}
    products = units[units["unit_kind"].isin(["charge", "roll"]) & units["end_s"].notna()]
    assert got | skipped == set(products["unit_id"])
    assert got and all(p.aasx.is_file() and p.json.is_file() for p in passports.passports)
    for bid, why in passports.skipped:
        assert "not released" in why and bid in why


def test_packages_read_back_and_their_numbers_are_the_batch_records(powder: Path,
                                                                    passports: Any) -> None:
    units = pd.read_parquet(powder / "batches.parquet").set_index("unit_id")
    cfg = PassportConfig()
    charges = [p for p in passports.passports if units.loc[p.batch_id, "unit_kind"] == "charge"]
    rolls = [p for p in passports.passports if units.loc[p.batch_id, "unit_kind"] == "roll"]
    assert charges and rolls
    for p in charges[:3] + rolls[:2]:
        store, files = _read(p.aasx)
        row = units.loc[p.batch_id]
        aas = next(o for o in store if isinstance(o, model.AssetAdministrationShell)
                   and o.id.endswith(f":aas:{p.batch_id}"))
        specific = {(s.name, s.value) for s in aas.asset_information.specific_asset_id}
        assert ("batchId", p.batch_id) in specific
        parents = [x for x in str(row["parent_ids"]).split(",") if x]
        assert {v for n, v in specific if n == "parentBatchId"} == set(parents)
        # Every ancestor by kind: a roll names its charge, lots and heats; a charge its lots
        # and heats.
        kinds = {n for n, _ in specific}
        assert {"lotId", "heatId"} <= kinds
        assert ("chargeId" in kinds) == (row["unit_kind"] == "roll")
        # The genealogy resolves inside the package, up to the melt heat.
        gen = _sm(store, aas, "Genealogy")
        for el in gen.submodel_element:
            parent = el.value.resolve(store)
            assert isinstance(parent, model.AssetAdministrationShell)
        assert _value(_sm(store, aas, "Nameplate"), "SerialNumber") == p.batch_id
        q = _sm(store, aas, "Quality")
        charge = row if row["unit_kind"] == "charge" else units.loc[parents[0]]
        assert math.isclose(_value(q, "OxideThickness", "PredictedMean_nm"),
                            float(charge["pred_oxide_mean_nm"]), rel_tol=1e-12)
        lab = _value(q, "OxideThickness", "LabMean_nm")
        assert (lab is None and math.isnan(charge["measured_oxide_nm"])) or math.isclose(
            lab, float(charge["measured_oxide_nm"]), rel_tol=1e-12)
        assert _value(q, "Decision", "Status") == "released"
        assert _value(q, "Decision", "Rule") == charge["disposition_rule"]
        # Composition: CAS numbers and critical flags of every element.
        comp = _sm(store, aas, "MaterialComposition").get_referable("Elements")
        fractions = {}
        for el in comp.value:
            sub = el.get_referable("Substance").value
            assert el.get_referable("CASNumber").value == CAS[sub]
            assert el.get_referable("CriticalRawMaterial").value == (sub in CRITICAL)
            fractions[sub] = el.get_referable("MassFraction").value
        assert math.isclose(sum(fractions.values()), 1.0, rel_tol=1e-9)
        # Carbon footprint: the record's step energies (by the one allocation) times the
        # plant file's factors, plus the materials; per kg of the batch.
        pcf = _sm(store, aas, "CarbonFootprint").get_referable("ProductCarbonFootprint")
        steps = cradle_to_gate_energy(pd.read_parquet(powder / "batches.parquet"),
                                      p.batch_id)
        kwh = sum(s["energy_kwh"] for s in steps)
        assert kwh > 0
        assert math.isclose(pcf.get_referable("ElectricityOfSteps_kWh").value, kwh,
                            rel_tol=1e-12)
        per_unit = pcf.get_referable("PCFCO2eq").value
        unit = pcf.get_referable("PCFReferenceValueForCalculation").value
        declared = (float(row["mass_kg"]) if row["unit_kind"] == "charge"
                    else float(row["area_m2"]))
        assert unit == ("kg" if row["unit_kind"] == "charge" else "m2")
        assert math.isclose(per_unit * declared, p.footprint.total_kg_co2e, rel_tol=1e-12)
        electricity = kwh * cfg.electricity_kg_co2e_per_kwh
        assert p.footprint.total_kg_co2e > electricity
        own = [s for s in steps if s["unit_id"] == p.batch_id]
        assert own and math.isclose(own[0]["energy_kwh"], float(row["step_energy_kwh"]),
                                    rel_tol=1e-12)
        # The certificate of analysis travels in the package.
        names = list(files)
        assert any(n.endswith(".coa.json") for n in names)
        assert any(n.endswith(".html") for n in names)


def test_the_basyx_compliance_tool_accepts_json_and_aasx(passports: Any) -> None:
    p = passports.passports[0]
    for args in (["d", "--json", str(p.json)], ["d", "--json", "--aasx", str(p.aasx)]):
        proc = subprocess.run([COMPLIANCE, *args], capture_output=True, text=True, timeout=120)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert "FAILED" not in out and "SUCCESS" in out, out


def test_the_footprint_follows_energy_and_factors(powder: Path, passports: Any) -> None:
    units = pd.read_parquet(powder / "batches.parquet")
    p = passports.passports[0]
    base = PassportConfig()
    comp = {"Si": 0.8, "Ti": 0.2}
    fp = carbon_footprint(units, p.batch_id, base, composition=comp)
    dirtier = base.model_copy(update={"electricity_kg_co2e_per_kwh": 0.48})
    fp2 = carbon_footprint(units, p.batch_id, dirtier, composition=comp)
    assert math.isclose(fp2.total_kg_co2e - fp.total_kg_co2e, fp.energy_kwh * 0.24,
                        rel_tol=1e-9)
    more = units.copy()
    more["step_energy_kwh"] = more["step_energy_kwh"] * 2.0
    fp3 = carbon_footprint(more, p.batch_id, base, composition=comp)
    assert math.isclose(fp3.energy_kwh, 2 * fp.energy_kwh, rel_tol=1e-9)
    assert fp3.per_kg > fp.per_kg
    si = base.materials["Si"].model_copy(update={"kg_co2e_per_kg": 22.0})
    fp4 = carbon_footprint(units, p.batch_id,
                           base.model_copy(update={"materials": {**base.materials, "Si": si}}),
                           composition=comp)
    assert math.isclose(fp4.total_kg_co2e - fp.total_kg_co2e, fp.mass_kg * 0.8 * 11.0,
                        rel_tol=1e-9)


def test_a_batch_that_is_not_released_gets_no_passport(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    out = tmp_path / "off"
    # Aim and release window far above what the recipe grows, controller off: every charge
    # leaves its window and none is released.
    assert cli(["simulate", "--days", "2", "--seed", "5", "--out", str(out),
                "--set", "control.mode=off", "--set", "control.aim_nm=40",
                "--set", "control.window_nm=[30, 100]",
                "--set", "control.band_nm=[35, 45]"]) == 0
    units = pd.read_parquet(out / "batches.parquet")
    charge = str(units[units["unit_kind"] == "charge"]["unit_id"].iloc[0])
    with pytest.raises(UsageError, match="not released"):
        write_passports(out, batch=charge)
    capsys.readouterr()
    assert cli(["passport", str(out), "--batch", charge]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and charge in err and "not released" in err
    assert not (out / "passport" / f"{charge}.aasx").exists()


def test_bad_factors_are_one_line_errors_naming_the_key(
        capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in (("passport.electricity_kg_co2e_per_kwh", "-0.1"),
                       ("passport.materials.Si.kg_co2e_per_kg", "nan")):
        assert cli(["validate", str(DEFAULT_PLANT), "--set",
                    f"{key}={value}"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and key in err, err


def test_thin_film_runs_and_sheets_are_declared_per_square_metre(tmp_path: Path) -> None:
    from twin.config import CONFIG_DIR

    out = tmp_path / "film"
    assert cli(["simulate", str(CONFIG_DIR / "thin_film_line.toml"), "--days", "1",
                "--seed", "2", "--out", str(out)]) == 0
    res = write_passports(out)
    units = pd.read_parquet(out / "batches.parquet").set_index("unit_id")
    kinds = {str(units.loc[p.batch_id, "unit_kind"]) for p in res.passports}
    assert kinds == {"run", "sheet"}
    for p in res.passports[:4]:
        row = units.loc[p.batch_id]
        assert p.footprint.declared_unit == "m2"
        area = (float(row["area_cm2"]) if row["unit_kind"] == "sheet"
                else float(row["sheets"]) * 400.0) / 1e4
        assert math.isclose(p.footprint.declared_quantity, area, rel_tol=1e-12)
        # A film's footprint per m2 is tens of kg at most; per kg of film it would be
        # tens of tonnes (the film weighs micrograms).
        assert 0 < p.footprint.per_unit < 100 < p.footprint.per_kg
    sheet = next(p for p in res.passports if units.loc[p.batch_id, "unit_kind"] == "sheet")
    proc = subprocess.run([COMPLIANCE, "d", "--json", "--aasx", str(sheet.aasx)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "FAILED" not in proc.stdout + proc.stderr
