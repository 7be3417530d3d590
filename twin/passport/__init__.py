"""Digital batch passports: each released batch as an Asset Administration Shell.

``write_passports(RUN_DIR)`` writes, per released batch (an oxidised powder charge, an
electrode roll, a sputter run or sheet), an AASX package and its AAS JSON, built with the
Eclipse BaSyx Python SDK (``basyx.aas``): see :mod:`twin.passport.shell` for what the shell
holds and :mod:`twin.passport.footprint` for the carbon footprint.

Every number comes from the run's batch record and the release report's assessment (the same
decision, checks and certificate of analysis as ``anode-twin report``), never recomputed
here; a batch that is not released (held, reworked, scrapped) gets no passport.
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyecma376_2
from basyx.aas import model
from basyx.aas.adapter import aasx
from basyx.aas.adapter import json as aas_json

from twin import __version__
from twin.errors import UsageError
from twin.passport import shell
from twin.passport.facts import CAS, OXIDE
from twin.passport.footprint import CU_DENSITY_KG_M3, Footprint, carbon_footprint
from twin.report import safe_name
from twin.report.coa import certificate, dumps
from twin.report.data import RunData, as_float, load_run, parents_of
from twin.report.html import batch_page
from twin.report.rules import Assessment, assess

#: Unit kinds that get a passport (the products a customer receives).
PASSPORT_KINDS = ("charge", "roll", "run", "sheet")
#: Key numbers of an ancestor's record in its small shell.
RECORD_KEYS = ("unit_kind", "alloy", "mass_kg", "path", "start_iso", "end_iso",
               "step_energy_kwh", "melt_energy_kwh", "mill_specific_energy_kj_kg",
               "phases_mass_frac", "d50_um", "ssa_m2_g", "oxygen_wt_pct", "disposition")


@dataclass(frozen=True)
class Passport:
    """One batch's passport as written."""

    batch_id: str
    aasx: Path
    json: Path
    footprint: Footprint


@dataclass(frozen=True)
class PassportResult:
    """What :func:`write_passports` wrote and which batches it left out (and why)."""

    out_dir: Path
    passports: tuple[Passport, ...]
    skipped: tuple[tuple[str, str], ...]


def passport_dir(run_dir: Path) -> Path:
    """Default folder of a run's passports (the release report links here)."""
    return run_dir / "passport"


def _candidates(run: RunData) -> list[str]:
    u = run.units
    kinds = u["unit_kind"].astype(str)
    done = u["end_s"].notna() if "end_s" in u else True
    return [str(b) for b in u[kinds.isin(PASSPORT_KINDS) & done]["unit_id"]]


def _release_unit(run: RunData, batch_id: str) -> str:
    """The release unit whose decision ``batch_id`` carries (itself, or a roll's charge)."""
    row = run.unit(batch_id)
    if row.get("unit_kind") in ("roll", "sheet"):
        for p in parents_of(row):
            if run.unit(p).get("unit_kind") in ("charge", "run"):
                return p
    return batch_id


def write_passports(run_dir: str | Path, out_dir: str | Path | None = None, *,
                    batch: str | None = None, now: dt.datetime | None = None
                    ) -> PassportResult:
    """Write the passports of a run's released batches.

    Raises
    ------
    UsageError
        No run folder or plant configuration; with ``batch``: an unknown batch, or one that
        is not released (the message says its decision and rule); a footprint input missing
        (the message names the key).
    """
    run = load_run(run_dir)
    if run.config is None:
        raise UsageError(f"{run.run_dir}: no plant configuration (config.json): the "
                         "passport's nameplate and emission factors come from it")
    generated = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    ids = shell.Ids(run.config.release.site, run.config.plant.name)
    wanted = _candidates(run)
    if batch is not None:
        if batch not in wanted:
            row = run.unit(batch)  # unknown: its one-line error
            raise UsageError(f"{batch} is a {row.get('unit_kind') or 'unit'}, not a product "
                             f"that gets a passport ({', '.join(PASSPORT_KINDS)})")
        wanted = [batch]
    out = Path(out_dir) if out_dir is not None else passport_dir(run.run_dir)
    assessed: dict[str, Assessment] = {}
    done: list[Passport] = []
    skipped: list[tuple[str, str]] = []
    for bid in wanted:
        rel = _release_unit(run, bid)
        if rel not in assessed:
            assessed[rel] = assess(run, rel)
        a = assessed[rel]
        if a.decision.status != "released":
            why = (f"{bid}: {a.decision.status} ({a.decision.rule}: {a.decision.reason}); "
                   "no passport for a batch that is not released")
            if batch is not None:
                raise UsageError(why)
            skipped.append((bid, why))
            continue
        out.mkdir(parents=True, exist_ok=True)
        done.append(_write_one(run, bid, a, ids, out, generated))
    return PassportResult(out, tuple(done), tuple(skipped))


def _write_one(run: RunData, bid: str, a: Assessment, ids: shell.Ids, out: Path,
               generated: dt.datetime) -> Passport:
    cfg = run.config
    assert cfg is not None
    row, _ = run.material(bid)
    cert = certificate(run, a, generated)
    slurry = cfg.recipes.slurry
    fp = carbon_footprint(
        run.units, bid, cfg.passport, composition=a.composition,
        slurry=None if slurry is None else {
            "active_fraction": slurry.active_fraction,
            "binder_fraction": slurry.binder_fraction,
            "conductive_fraction": slurry.conductive_fraction},
        foil_um=None if slurry is None else slurry.foil_thickness_um,
        sheet_area_cm2=(cfg.recipes.sputter.sheet_area_cm2
                        if cfg.recipes.sputter is not None else None))
    # A roll's other components (the composition's elements are its active material's).
    extra = {ln.name: ln.quantity for ln in fp.lines
             if ln.kind == "material" and ln.name in ("binder", "conductive_carbon")}
    area = as_float(row.get("area_m2"))
    if row.get("unit_kind") == "roll" and slurry is not None and area is not None:
        extra["Cu_foil"] = area * slurry.foil_thickness_um * 1e-6 * CU_DENSITY_KG_M3
    name = safe_name(bid)
    files = aasx.DictSupplementaryFileContainer()
    docs = []
    for title, suffix, media, text in (
            ("Certificate of analysis (JSON)", "coa.json", "application/json", dumps(cert)),
            ("Batch release report (HTML)", "html", "text/html",
             batch_page(run, a, generated))):
        path = files.add_file(f"/aasx/suppl/{name}.{suffix}", io.BytesIO(text.encode()),
                              media)
        docs.append((title, path, media))
    base = a.composition and max(("Si", "Sn"), key=lambda e: (a.composition or {}).get(e, 0))
    ox = cert["oxide"]
    oxide = {"Substance": OXIDE.get(str(base), ""), "CASNumber": "",
             "Thickness_nm": ox.get("basis_nm"), "ThicknessSource": ox.get("basis_source"),
             "PredictedMean_nm": ox.get("predicted_mean_nm"),
             "ShareWithin50pctOfMean": ox.get("within_50_share"),
             "OxygenMeasured_wtpct": as_float(row.get("lab_o_wt_pct")),
             "OxidisedComposition": str(row.get("pred_composition_wt") or "")}
    oxide["CASNumber"] = CAS.get(str(oxide["Substance"]), "")
    parents = parents_of(run.unit(bid))
    submodels = [
        shell.nameplate(ids, bid, cfg.passport.manufacturer, _made(row)),
        shell.composition(ids, bid, a.composition, a.composition_source, a.phases, oxide,
                          extra),
        shell.carbon_footprint(ids, fp, cfg.passport.manufacturer),
        shell.quality(ids, bid, cert),
        shell.handover(ids, bid, docs),
        shell.genealogy(ids, bid, parents),
        shell.record(ids, row, RECORD_KEYS),
    ]
    store: model.DictIdentifiableStore[model.Identifiable] = model.DictIdentifiableStore()
    main = shell.shell(ids, row, parents, submodels, run.ancestors(bid))
    for sm in submodels:
        store.add(sm)
    store.add(main)
    shells = [main.id]
    for anc in run.ancestors(bid):
        if anc.get("_missing"):
            continue
        aid = str(anc["unit_id"])
        anc_parents = parents_of(anc)
        subs = [shell.record(ids, anc, RECORD_KEYS), shell.genealogy(ids, aid, anc_parents)]
        for sm in subs:
            store.add(sm)
        a_shell = shell.shell(ids, anc, anc_parents, subs)
        store.add(a_shell)
        shells.append(a_shell.id)
    json_path = out / f"{name}.aas.json"
    aasx_path = out / f"{name}.aasx"
    _atomic_json(json_path, store)
    _atomic_aasx(aasx_path, shells, store, files, generated)
    return Passport(bid, aasx_path, json_path, fp)


def _made(row: dict[str, Any]) -> dt.datetime | None:
    iso = row.get("end_iso")
    try:
        return dt.datetime.fromisoformat(str(iso)) if iso else None
    except ValueError:
        return None


def _atomic_json(path: Path, store: model.DictIdentifiableStore[model.Identifiable]) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.",
                                     suffix=".tmp", delete=False, encoding="utf-8") as fh:
        aas_json.write_aas_json_file(fh, store)
    Path(fh.name).replace(path)


def _atomic_aasx(path: Path, shells: list[str],
                 store: model.DictIdentifiableStore[model.Identifiable],
                 files: aasx.DictSupplementaryFileContainer, generated: dt.datetime) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with aasx.AASXWriter(str(tmp)) as writer:
        writer.write_aas(aas_ids=shells, object_store=store, file_store=files)
        meta = pyecma376_2.OPCCoreProperties()
        meta.creator = f"anode-twin {__version__}"
        meta.created = generated.replace(tzinfo=None)
        writer.write_core_properties(meta)
    tmp.replace(path)


__all__ = ["Passport", "PassportResult", "passport_dir", "write_passports"]
