"""Certificate of analysis: one JSON document per batch, described by ``coa.schema.json``.

The schema (JSON Schema draft 2020-12) ships beside this module; :func:`schema` loads it.
Numbers that are not known are ``null``, never NaN (``json.dumps(allow_nan=False)``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from twin import __version__
from twin.config.schema import ALLOYING_ELEMENTS
from twin.plant.release import UNIFORMITY_REL
from twin.report.data import RunData, as_float, parents_of
from twin.report.rules import Assessment

SCHEMA_FILE = "coa.schema.json"
SCHEMA_ID = "anode-twin/coa/1"


def schema() -> dict[str, Any]:
    """The CoA's JSON Schema (a dict)."""
    text = resources.files("twin.report").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def composition_text(value: Any) -> dict[str, float] | None:
    """Mass fractions of a ``Si:0.67;Ti:0.17;O:0.16`` column (None when absent)."""
    if not isinstance(value, str) or not value:
        return None
    out = {}
    for part in value.split(";"):
        el, _, frac = part.partition(":")
        if el and frac:
            out[el.strip()] = float(frac)
    return out or None


def certificate(run: RunData, a: Assessment, generated: dt.datetime) -> dict[str, Any]:
    """The certificate of analysis of one assessed batch, as a JSON-ready dict."""
    th = a.thickness
    people = run.config.release if run.config is not None else None
    plant = run.config.plant.name if run.config is not None else None
    chain = list(reversed(run.ancestors(a.batch_id))) + [run.unit(a.batch_id)]
    chain += run.children(a.batch_id)
    audit = run.batch_audit(a.batch_id)
    r = a.row
    return {
        "schema": SCHEMA_ID,
        "certificate_id": f"COA-{plant or 'plant'}-{a.batch_id}",
        "batch_id": a.batch_id,
        "plant": plant,
        "site": people.site if people else None,
        "form": run.form,
        "generated_utc": generated.isoformat(timespec="seconds"),
        "generator": f"anode-twin {__version__}",
        "run": {
            "folder": str(run.run_dir),
            "seed": run.meta.get("seed") if isinstance(run.meta.get("seed"), int) else None,
            "command": str(run.meta["command"]) if "command" in run.meta else None,
            "batches_sha256": _sha256(run.run_dir / "batches.parquet"),
        },
        "genealogy": [{
            "unit_id": str(u["unit_id"]),
            "kind": str(u.get("unit_kind") or "") or None,
            "equipment": _text(u.get("path")),
            "parents": parents_of(u),
            "start_s": as_float(u.get("start_s")),
            "end_s": as_float(u.get("end_s")),
            "in_record": not u.get("_missing", False),
        } for u in chain],
        "material": {
            "composition_wt": dict(a.composition) if a.composition else None,
            "composition_source": a.composition_source or None,
            "phases_mass_frac": dict(a.phases) if a.phases else None,
            "amorphous_fraction": as_float(r.get("amorphous_frac")),
            "d50_um": as_float(r.get("d50_um")),
            "surface_area_m2_g": as_float(r.get("ssa_m2_g")),
            "film_thickness_nm": as_float(r.get("pred_film_nm")),
            # The oxidised product: what the layer adds to the alloy (from the predicted
            # layer and the BET surface), and the oxygen the lab measured.
            "oxidised_composition_wt": composition_text(r.get("pred_composition_wt")),
            "oxygen_wt_pct": {"predicted": as_float(r.get("pred_o_wt_pct")),
                              "measured": as_float(r.get("lab_o_wt_pct")),
                              "method": _text(r.get("lab_method"))},
            "si_consumed_pct": as_float(r.get("pred_si_consumed_pct")),
            "feed_oxygen_wt_pct": as_float(r.get("feed_oxygen_wt_pct")),
        },
        "oxide": {
            "predicted_mean_nm": th.predicted_mean,
            "prediction_interval_nm": ([th.pi_low, th.pi_high]
                                       if th.pi_low is not None and th.pi_high is not None
                                       else None),
            "p5_nm": th.p5,
            "p95_nm": th.p95,
            "within_50_share": th.within_50_share,
            "reliability": th.reliability,
            "model_version": th.model_version or None,
            "measured_nm": th.measured,
            "basis_nm": th.basis,
            "basis_source": th.source,
            "lab_sigma": th.lab_sigma,
            "contradicted": th.contradicted,
        },
        # The release rules of the run's own plant file (null without one).
        "specification": {
            "release_nm": list(a.rules.window_nm) if a.rules else None,
            "band_nm": list(a.rules.band_nm) if a.rules else None,
            "uniformity_rel": UNIFORMITY_REL,
            "min_within_50pct_share": a.rules.min_within_50pct_share if a.rules else None,
            "min_reliability": a.rules.min_reliability if a.rules else None,
            "interval_level": a.rules.interval_level if a.rules else None,
            "outlier_sigma": a.rules.outlier_sigma if a.rules else None,
            "max_reworks": a.rules.max_reworks if a.rules else None,
            "release_on_prediction": a.rules.release_on_prediction if a.rules else None,
            "allowed_alloying_elements": sorted(ALLOYING_ELEMENTS),
        },
        "checks": [{"rule": c.rule, "title": c.title, "outcome": c.outcome,
                    "detail": c.detail, "severity": c.severity} for c in a.checks],
        "deviations": list(a.deviations),
        "data_gaps": list(a.gaps) + [f"{m}: no data" for m in run.missing],
        "corrective_actions": None if audit is None else [{
            "time_s": as_float(e.sim_time_s),
            "kind": str(e.kind),
            "loop": str(e.loop),
            "before": _jsonable(e.before),
            "after": _jsonable(e.after),
            "reason": str(e.reason or ""),
            "who": str(e.who or ""),
            "result": str(e.result or ""),
        } for e in audit.itertuples()],
        "decision": {"status": a.decision.status, "rule": a.decision.rule,
                     "reason": a.decision.reason, "needs": list(a.decision.needs),
                     "plant_decision": a.decision.plant or None},
        "approval": {
            "prepared_by": {"name": people.prepared_by if people else "anode-twin",
                            "timestamp_utc": generated.isoformat(timespec="seconds")},
            "reviewed_by": {"name": people.reviewed_by if people else None,
                            "timestamp_utc": None, "status": "pending"},
        },
    }


def dumps(cert: Mapping[str, Any]) -> str:
    """Serialise a certificate (sorted keys, no NaN)."""
    return json.dumps(cert, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"


def _sha256(path: Any) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _jsonable(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, Any] = {}
    for k, v in value.items():
        f = as_float(v)
        out[str(k)] = f if f is not None else (v if isinstance(v, (str, bool)) else None)
    return out
