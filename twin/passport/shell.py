"""One batch as an Asset Administration Shell (Eclipse BaSyx Python SDK objects).

The shell of a released batch holds five submodels:

* ``Nameplate`` after IDTA 02006-3 (Digital Nameplate): the plant file's manufacturer, the
  batch id as serial number, the date of manufacture;
* ``MaterialComposition`` after the Battery Pass / IDTA battery passport composition
  template: elements with mass fractions, CAS numbers and critical-raw-material flags, the
  phases, the oxide layer;
* ``CarbonFootprint`` after IDTA 02023 (Product Carbon Footprint): cradle-to-gate, per kg
  of powder or per m² of a coated electrode or film,
  with each contribution, its factor's source and whether it is an estimate;
* ``Quality``: oxide thickness (prediction and interval, lab value), uniformity, the claim
  checks and the decision with its rule (anode-twin's own semantic id: no IDTA template
  covers a release decision);
* ``HandoverDocumentation`` after IDTA 02004: the certificate of analysis (JSON and HTML) as
  files in the package.

The asset information names the batch and its parents (specific asset ids), and the package
holds a small shell per ancestor (heat, lots, charge; each with a ``BatchRecord`` and its own
``Genealogy``) that the batch's ``Genealogy`` submodel references, so the genealogy can be
followed inside the package.

The semantic ids are those the templates publish; the BaSyx compliance tool checks the
package against the AAS metamodel and schema, not against each template's full structure.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from basyx.aas import model

from twin.passport.facts import CAS, CRITICAL, CRITICAL_FORM
from twin.passport.footprint import BOUNDARY, Footprint

SEM = {
    "nameplate": "https://admin-shell.io/idta/nameplate/3/0/Nameplate",
    "composition": "https://admin-shell.io/idta/BatteryPassport/MaterialComposition/1/0",
    "pcf": "https://admin-shell.io/idta/CarbonFootprint/CarbonFootprint/1/0",
    "pcf_item": "https://admin-shell.io/idta/CarbonFootprint/ProductCarbonFootprint/1/0",
    "handover": "0173-1#01-AHF578#001",
    "document": "0173-1#02-ABI500#001/0173-1#01-AHF579#001",
    "quality": "urn:anode-twin:submodel:BatchQuality:1:0",
    "record": "urn:anode-twin:submodel:BatchRecord:1:0",
    "genealogy": "urn:anode-twin:submodel:Genealogy:1:0",
}


def _ref(iri: str) -> model.ExternalReference:
    return model.ExternalReference((model.Key(model.KeyTypes.GLOBAL_REFERENCE, iri),))


def id_short(text: str) -> str:
    """A valid idShort (letter first, then letters, digits, underscores)."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return s if s[:1].isalpha() else f"x{s}"


def _prop(name: str, value: Any, *, semantic: str | None = None) -> model.Property:
    if isinstance(value, bool):
        return model.Property(name, bool, value)
    if isinstance(value, int | float):
        x = float(value)
        return model.Property(name, float, x if math.isfinite(x) else None,
                              semantic_id=_ref(semantic) if semantic else None)
    return model.Property(name, str, None if value is None else str(value),
                          semantic_id=_ref(semantic) if semantic else None)


def _mlp(name: str, text: str) -> model.MultiLanguageProperty:
    return model.MultiLanguageProperty(name, model.MultiLanguageTextType({"en": text}))


def _smc(name: str, elements: Iterable[model.SubmodelElement]) -> \
        model.SubmodelElementCollection:
    return model.SubmodelElementCollection(name, value=list(elements))


class Ids:
    """Identifiers of a run's shells and submodels (stable: the same batch, the same ids)."""

    def __init__(self, site: str, plant: str) -> None:
        self.base = f"urn:anode-twin:{id_short(site)}:{id_short(plant)}"

    def asset(self, batch_id: str) -> str:
        return f"{self.base}:asset:{batch_id}"

    def shell(self, batch_id: str) -> str:
        return f"{self.base}:aas:{batch_id}"

    def submodel(self, batch_id: str, name: str) -> str:
        return f"{self.base}:sm:{batch_id}:{name}"


def nameplate(ids: Ids, batch_id: str, mf: Any, made: dt.datetime | None) -> model.Submodel:
    address = _smc("AddressInformation", [
        _mlp("Street", mf.street), _mlp("Zipcode", mf.zip_code),
        _mlp("CityTown", mf.city), _mlp("NationalCode", mf.country_code)])
    elements: list[model.SubmodelElement] = [
        _mlp("ManufacturerName", mf.name),
        _mlp("ManufacturerProductDesignation", mf.product_designation),
        _mlp("ManufacturerProductFamily", mf.product_family),
        address,
        _prop("SerialNumber", batch_id),
        _prop("CountryOfOrigin", mf.country_code),
    ]
    if made is not None:
        elements.append(_prop("DateOfManufacture", made.date().isoformat()))
        elements.append(_prop("YearOfConstruction", str(made.year)))
    if mf.url:
        elements.append(_prop("CompanyLogo", mf.url))
    return model.Submodel(ids.submodel(batch_id, "Nameplate"), elements,
                          id_short="Nameplate", semantic_id=_ref(SEM["nameplate"]))


def composition(ids: Ids, batch_id: str, comp: Mapping[str, float] | None,
                source: str, phases: Mapping[str, float] | None, oxide: Mapping[str, Any],
                extra: Mapping[str, float]) -> model.Submodel:
    """Elements (mass fractions, CAS, critical flags), phases, oxide layer, other parts."""
    elements = []
    for el, frac in sorted((comp or {}).items(), key=lambda kv: -kv[1]):
        elements.append(_smc(id_short(el), [
            _prop("Substance", el), _prop("CASNumber", CAS.get(el, "")),
            _prop("MassFraction", frac), _prop("CriticalRawMaterial", el in CRITICAL),
            _prop("CriticalRawMaterialForm", CRITICAL_FORM.get(el, el if el in CRITICAL
                                                               else ""))]))
    parts: list[model.SubmodelElement] = [
        _prop("CompositionSource", source),
        _smc("Elements", elements),
        _smc("Phases", [_prop(id_short(p), f) for p, f in (phases or {}).items()]),
        _smc("OxideLayer", [_prop(k, v) for k, v in oxide.items()]),
    ]
    if extra:
        parts.append(_smc("OtherComponents_kg", [
            _smc(id_short(name), [_prop("Mass_kg", kg),
                                  _prop("CASNumber", CAS.get(name.removesuffix("_foil"), "")),
                                  _prop("CriticalRawMaterial", name in CRITICAL)])
            for name, kg in sorted(extra.items())]))
    return model.Submodel(ids.submodel(batch_id, "MaterialComposition"), parts,
                          id_short="MaterialComposition", semantic_id=_ref(SEM["composition"]))


def carbon_footprint(ids: Ids, fp: Footprint, address: Any) -> model.Submodel:
    """IDTA 02023: one ProductCarbonFootprint (cradle-to-gate, per declared unit) and its
    breakdown."""
    lines = [_smc(f"Line{i:02d}", [
        _prop("Kind", ln.kind), _prop("Name", ln.name), _prop("UnitId", ln.unit_id),
        _prop("Quantity", ln.quantity), _prop("QuantityUnit", ln.quantity_unit),
        _prop("Factor_kgCO2e_per_unit", ln.factor), _prop("FactorSource", ln.source),
        _prop("Estimate", ln.estimate), _prop("CO2eq_kg", ln.kg_co2e)])
        for i, ln in enumerate(fp.lines)]
    pcf = _smc("ProductCarbonFootprint", [
        _prop("PCFCalculationMethod", "ISO 14067 (cradle-to-gate, mass allocation)"),
        _prop("PCFCO2eq", fp.per_unit),
        _prop("PCFReferenceValueForCalculation", fp.declared_unit),
        _prop("PCFQuantityOfMeasureForCalculation", 1.0),
        _prop("DeclaredQuantityOfBatch", fp.declared_quantity),
        _prop("PCFLifeCyclePhase", "A1-A3"),
        _prop("PCFSystemBoundary", BOUNDARY),
        _prop("PCFTotalForBatch_kgCO2e", fp.total_kg_co2e),
        _prop("BatchMass_kg", fp.mass_kg),
        _prop("ElectricityOfSteps_kWh", fp.energy_kwh),
        _prop("ShareOnEstimatedFactors", fp.share_estimated()),
        _smc("PCFGoodsAddressHandover", [_prop("Street", address.street),
                                         _prop("ZipCode", address.zip_code),
                                         _prop("CityTown", address.city),
                                         _prop("Country", address.country_code)]),
        _smc("Breakdown", lines)])
    pcf.semantic_id = _ref(SEM["pcf_item"])
    return model.Submodel(ids.submodel(fp.batch_id, "CarbonFootprint"), [pcf],
                          id_short="CarbonFootprint", semantic_id=_ref(SEM["pcf"]))


def quality(ids: Ids, batch_id: str, cert: Mapping[str, Any]) -> model.Submodel:
    """The certificate's oxide numbers, claim checks and decision."""
    ox = cert["oxide"]
    spec = cert["specification"]
    interval = ox.get("prediction_interval_nm") or [None, None]
    checks = [_smc(f"Check{i:02d}", [_prop("Rule", c["rule"]), _prop("Title", c["title"]),
                                     _prop("Outcome", c["outcome"]),
                                     _prop("Detail", c["detail"])])
              for i, c in enumerate(cert["checks"])]
    d = cert["decision"]
    release = spec.get("release_nm") or [None, None]
    elements = [
        _smc("OxideThickness", [
            _prop("PredictedMean_nm", ox.get("predicted_mean_nm")),
            _prop("PredictionLower_nm", interval[0]), _prop("PredictionUpper_nm", interval[1]),
            _prop("IntervalLevel", spec.get("interval_level")),
            _prop("Reliability", ox.get("reliability")),
            _prop("LabMean_nm", ox.get("measured_nm")),
            _prop("LabMethod", cert["material"]["oxygen_wt_pct"].get("method")),
            _prop("Basis_nm", ox.get("basis_nm")), _prop("BasisSource", ox.get("basis_source")),
        ]),
        _smc("Uniformity", [
            _prop("ShareWithin50pctOfMean", ox.get("within_50_share")),
            _prop("RequiredShare", spec.get("min_within_50pct_share")),
            _prop("RelativeBand", spec.get("uniformity_rel"))]),
        _smc("Specification", [_prop("ReleaseMin_nm", release[0]),
                               _prop("ReleaseMax_nm", release[1])]),
        _smc("ClaimChecks", checks),
        _smc("Decision", [_prop("Status", d["status"]), _prop("Rule", d["rule"]),
                          _prop("Reason", d["reason"])]),
    ]
    return model.Submodel(ids.submodel(batch_id, "Quality"), elements, id_short="Quality",
                          semantic_id=_ref(SEM["quality"]))


def handover(ids: Ids, batch_id: str, files: Sequence[tuple[str, str, str]]
             ) -> model.Submodel:
    """IDTA 02004: the certificate of analysis as documents (``(title, path, type)``)."""
    docs = [_smc(f"Document{i:02d}", [
        _smc("DocumentId", [_prop("DocumentDomainId", "anode-twin"),
                            _prop("ValueId", f"COA-{batch_id}-{i}")]),
        _smc("DocumentClassification", [_prop("ClassId", "03-02"),
                                        _prop("ClassName", "Certificate, certification"),
                                        _prop("ClassificationSystem", "VDI2770:2018")]),
        _smc("DocumentVersion", [_prop("Language", "en"), _mlp("Title", title),
                                 model.File("DigitalFile", content_type=media, value=path)])])
        for i, (title, path, media) in enumerate(files)]
    for d in docs:
        d.semantic_id = _ref(SEM["document"])
    return model.Submodel(ids.submodel(batch_id, "HandoverDocumentation"), docs,
                          id_short="HandoverDocumentation", semantic_id=_ref(SEM["handover"]))


def record(ids: Ids, row: Mapping[str, Any], keys: Sequence[str]) -> model.Submodel:
    """An ancestor's key numbers from the batch record (a heat, a lot, a charge)."""
    bid = str(row["unit_id"])
    elements = [_prop(id_short(k), row.get(k)) for k in keys if k in row]
    return model.Submodel(ids.submodel(bid, "BatchRecord"), elements, id_short="BatchRecord",
                          semantic_id=_ref(SEM["record"]))


def shell(ids: Ids, row: Mapping[str, Any], parents: Sequence[str],
          submodels: Sequence[model.Submodel],
          ancestors: Sequence[Mapping[str, Any]] = ()) -> model.AssetAdministrationShell:
    """The shell of one unit: its asset (batch id, its parents and every ancestor by kind
    as specific asset ids: ``heatId``, ``lotId``, ``chargeId``, ``runId``) and references to
    its submodels."""
    bid = str(row["unit_id"])
    specific = [model.SpecificAssetId("batchId", bid),
                model.SpecificAssetId("unitKind", str(row.get("unit_kind") or "unit"))]
    specific += [model.SpecificAssetId("parentBatchId", p) for p in parents]
    specific += [model.SpecificAssetId(f"{a['unit_kind']}Id", str(a["unit_id"]))
                 for a in ancestors if a.get("unit_kind") and not a.get("_missing")]
    aas = model.AssetAdministrationShell(
        id_=ids.shell(bid),
        id_short=id_short(f"Batch_{bid}"),
        asset_information=model.AssetInformation(
            asset_kind=model.AssetKind.INSTANCE, global_asset_id=ids.asset(bid),
            specific_asset_id=specific, asset_type=str(row.get("unit_kind") or "")),
        submodel={model.ModelReference.from_referable(sm) for sm in submodels},
    )
    if len(parents) == 1:
        aas.derived_from = shell_ref(ids, parents[0])
    return aas


def shell_ref(ids: Ids, batch_id: str) -> model.ModelReference[model.AssetAdministrationShell]:
    """A model reference to the shell of ``batch_id``."""
    return model.ModelReference(
        (model.Key(model.KeyTypes.ASSET_ADMINISTRATION_SHELL, ids.shell(batch_id)),),
        model.AssetAdministrationShell)


def genealogy(ids: Ids, batch_id: str, parents: Sequence[str]) -> model.Submodel:
    """References to the parents' shells (heat ← lot ← charge ← roll; in the package)."""
    refs = [model.ReferenceElement(f"Parent{i:02d}", value=shell_ref(ids, p))
            for i, p in enumerate(parents)]
    return model.Submodel(ids.submodel(batch_id, "Genealogy"), refs, id_short="Genealogy",
                          semantic_id=_ref(SEM["genealogy"]))
