"""Release rules: the plant's decision of each batch, read with the run's own plant file.

The decision is the plant model's: :mod:`twin.plant.release` takes it, with the rules of the
run folder's plant file (``config.json`` / ``config.toml``: ``control.window_nm``,
``control.band_nm``, ``control.min_reliability``, ``control.interval_level``,
``control.outlier_sigma``, ``disposition.*``), on the evidence the plant recorded in the batch
row (``rel_*`` columns, else the report's canonical oxide columns). This module keeps no
thresholds of its own. A report decision that differs from the plant model's recorded
``disposition`` is a bug, shown as ``held`` by rule ``PLANT-MISMATCH`` for a QA review, never
as a second verdict.

Statuses: ``released`` (plant: release), ``rejected`` (rework or scrap: not released as
made) and ``held`` (waiting for the lab, or held for a retest / QA review). Without a plant
file the rules cannot be read and the batch is held (rule ``CONFIG``).

Each :class:`Check` shows one rule's outcome (``pass``, ``fail``, ``no_data``, ``flag``,
``info``). The thickness checks (``THK-*``, ``VM-CONSISTENCY``) are the plant's rules spelt
out; the other checks (genealogy, material, record, audit trail) are things the plant model
does not see: they never change the decision, and a failure is a review flag that makes the
batch an exception for the reviewer.

Thickness basis: the lab value when the batch was measured, else the prediction when it may
speak alone (:func:`twin.plant.release.prediction_alone`). Uniformity (the share of the
surface within ±50 % of the mean) only ever comes from the prediction (a sputtered cap: the
tool): a prediction the lab contradicted gives none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from twin.config.schema import ALLOYING_ELEMENTS, BASE_ELEMENTS
from twin.plant.release import (
    DECISIONS,
    Evidence,
    ReleaseRules,
    Verdict,
    decide_recorded,
    prediction_alone,
)
from twin.report.data import RunData, as_float, phases_of, recipe_vs_actual

NON_METALS = frozenset({"O"})
"""Oxygen belongs to the oxide skin, not to the alloy; it is reported, not judged."""
#: Relative difference between recipe and actual that is listed as a process deviation.
DEVIATION_REL = 0.05
#: Absolute temperature difference listed as a process deviation, °C.
DEVIATION_C = 10.0

Outcome = Literal["pass", "fail", "no_data", "flag", "info"]
Severity = Literal["reject", "hold", "flag", "info"]
Status = Literal["released", "held", "rejected"]


@dataclass(frozen=True)
class Check:
    """One rule applied to one batch."""

    rule: str
    title: str
    outcome: Outcome
    detail: str
    severity: Severity
    need: str = ""

    @property
    def blocks(self) -> bool:
        """True when this check stops a release."""
        return self.severity in ("reject", "hold") and self.outcome in ("fail", "no_data")

    @property
    def review(self) -> bool:
        """True when this check is a review flag (a failure that does not decide)."""
        return self.severity == "flag" and self.outcome in ("fail", "no_data", "flag")


@dataclass(frozen=True)
class Decision:
    """The release decision, the rule that decided it, and the plant model's decision.

    ``plant`` is the plant model's decision (``release``, ``rework``, ``scrap``, ``hold``;
    empty without a plant file).
    """

    status: Status
    rule: str
    reason: str
    needs: tuple[str, ...] = ()
    plant: str = ""


@dataclass(frozen=True)
class Thickness:
    """Oxide numbers of a batch, nm (None = no data)."""

    predicted_mean: float | None
    pi_low: float | None
    pi_high: float | None
    p5: float | None
    p95: float | None
    within_50_share: float | None
    reliability: float | None
    model_version: str
    measured: float | None
    basis: float | None
    source: Literal["lab", "prediction", "none"]
    reliable_prediction: bool
    contradicted: bool = False
    lab_sigma: float | None = None


@dataclass(frozen=True)
class Assessment:
    """Everything the reports show about one batch."""

    batch_id: str
    row: Mapping[str, Any]
    thickness: Thickness
    checks: tuple[Check, ...]
    decision: Decision
    deviations: tuple[str, ...] = field(default_factory=tuple)
    gaps: tuple[str, ...] = field(default_factory=tuple)
    composition: Mapping[str, float] | None = None
    composition_source: str = ""
    phases: Mapping[str, float] | None = None
    inherited: Mapping[str, str] = field(default_factory=dict)
    rules: ReleaseRules | None = None

    @property
    def exception(self) -> bool:
        """True when the batch needs a reviewer's attention (not released, or flagged)."""
        return (self.decision.status != "released" or bool(self.deviations)
                or any(c.review for c in self.checks))


def _num(row: Mapping[str, Any], key: str) -> float | None:
    return as_float(row.get(key))


def run_rules(run: RunData) -> ReleaseRules | None:
    """The release rules of the run's own plant file (None without one)."""
    return ReleaseRules.from_config(run.config) if run.config is not None else None


def thickness_of(row: Mapping[str, Any], ev: Evidence, verdict: Verdict | None,
                 rules: ReleaseRules | None) -> Thickness:
    """The oxide numbers of a unit row and the basis the decision used."""
    mean, lo, hi = (_num(row, k) for k in ("pred_oxide_mean_nm", "vm_lower_nm",
                                           "vm_upper_nm"))
    measured = _num(row, "measured_oxide_nm")
    if measured is not None and measured <= 0:
        measured = None
    alone = rules is not None and prediction_alone(ev, rules)[0]
    basis: float | None = None
    source: Literal["lab", "prediction", "none"] = "none"
    if verdict is not None and verdict.basis != "none" and math.isfinite(verdict.thickness_nm):
        basis, source = verdict.thickness_nm, verdict.basis
    share = ev.within_50pct_share
    version = row.get("vm_model_version")
    rel = ev.reliability
    return Thickness(mean, lo, hi, _num(row, "pred_oxide_p5_nm"), _num(row, "pred_oxide_p95_nm"),
                     share if math.isfinite(share) else None,
                     rel if math.isfinite(rel) else None,
                     str(version) if version is not None and str(version) not in ("", "nan")
                     else "", measured, basis, source, alone,
                     verdict is not None and verdict.contradicted,
                     verdict.sigma if verdict is not None and math.isfinite(verdict.sigma)
                     else None)


def assess(run: RunData, batch_id: str) -> Assessment:
    """Take the plant's decision of ``batch_id`` with the run's plant file, and the checks.

    Parameters
    ----------
    run : RunData
        The loaded run folder.
    batch_id : str
        A release unit of the run.

    Returns
    -------
    Assessment
    """
    row, inherited = run.material(batch_id)
    comp, comp_source = run.nominal_composition(batch_id)
    gaps = _data_gaps(run, batch_id, row)
    audit = run.batch_audit(batch_id)
    audit_hold = audit is not None and bool((audit["kind"] == "hold").any())
    rules = run_rules(run)
    ev = Evidence.from_row(row)
    if audit_hold and ev.vm_reliable is not False:
        # The controller held the batch for the lab (its hold rule): the prediction does not
        # speak alone (the plant records the same as its VM's verdict).
        ev = replace(ev, vm_reliable=False,
                     vm_reasons=ev.vm_reasons or "held for the lab by the controller")
    measured = _num(row, "measured_oxide_nm")
    verdict = decide_recorded(ev, measured, rules) if rules is not None else None
    th = thickness_of(row, ev, verdict, rules)
    deviations = _deviations(run, batch_id, row, th)
    checks = (
        _check_genealogy(run, batch_id, row),
        _check_composition(comp),
        _check_phases(row),
        _check_amorphous(row),
        _check_form(run, row),
        _check_records(gaps),
        _check_audit(run, audit_hold),
        _check_basis(th, ev, rules),
        _check_consistency(th, rules),
        _check_spec(th, rules),
        _check_uniformity(th, ev, rules),
        _check_band(th, rules),
    )
    return Assessment(batch_id, row, th, checks, plant_decision(verdict, row),
                      tuple(deviations), tuple(gaps), comp, comp_source if comp else "",
                      phases_of(row), inherited, rules)


def plant_decision(verdict: Verdict | None, row: Mapping[str, Any]) -> Decision:
    """The report's decision: the plant's verdict, checked against the recorded disposition."""
    if verdict is None:
        return Decision("held", "CONFIG", "no plant file in the run folder: the release rules "
                        "cannot be read", ("the run's resolved plant configuration "
                                           "(config.json or config.toml)",))
    recorded = str(row.get("disposition") or "")
    if recorded in DECISIONS and recorded != verdict.decision:
        why = row.get("disposition_reason")
        why = f" ({why})" if isinstance(why, str) and why else ""
        return Decision("held", "PLANT-MISMATCH",
                        f"the plant model decided {recorded}{why}; its rules with the run's "
                        f"plant file give {verdict.decision} ({verdict.reason})",
                        ("QA review: the plant model and the release rules disagree",),
                        recorded)
    status: Status = verdict.status  # type: ignore[assignment]
    needs = (verdict.need or "QA review",) if status == "held" else ()
    return Decision(status, verdict.rule, verdict.reason, needs, verdict.decision)


# -- the rules -------------------------------------------------------------------------------


def _check_genealogy(run: RunData, batch_id: str, row: Mapping[str, Any]) -> Check:
    title = "Identity and genealogy"
    if run.form == "thin_film" or row.get("unit_kind") == "run":
        return Check("ID-GENEALOGY", title, "pass", f"sputter run {batch_id}", "flag")
    kinds = [a.get("unit_kind") for a in run.ancestors(batch_id) if not a.get("_missing")]
    lost = [a["unit_id"] for a in run.ancestors(batch_id) if a.get("_missing")]
    if lost:
        return Check("ID-GENEALOGY", title, "no_data",
                     f"parent unit(s) not in the batch record: {', '.join(lost)}", "flag",
                     "complete genealogy record (parent units missing)")
    if row.get("unit_kind") == "charge" and not {"lot", "heat"} <= set(kinds):
        return Check("ID-GENEALOGY", title, "no_data",
                     "genealogy does not reach the mill lots and melt heat", "flag",
                     "genealogy back to the melt heat")
    return Check("ID-GENEALOGY", title, "pass", "traced to the melt heat", "flag")


def _check_composition(comp: Mapping[str, float] | None) -> Check:
    title = "Composition: only allowed alloying elements"
    if comp is None:
        return Check("MAT-COMPOSITION", title, "no_data", "no composition recorded", "flag",
                     "composition analysis")
    present = {e for e, f in comp.items() if f > 0}
    bad = sorted(present - ALLOYING_ELEMENTS - BASE_ELEMENTS - NON_METALS)
    if bad:
        return Check("MAT-COMPOSITION", title, "fail",
                     f"element(s) not allowed: {', '.join(bad)}", "flag")
    if not present & BASE_ELEMENTS:
        return Check("MAT-COMPOSITION", title, "fail", "no Si or Sn in the core", "flag")
    return Check("MAT-COMPOSITION", title, "pass",
                 f"{', '.join(sorted(present - NON_METALS))} (all allowed)", "flag")


def _check_phases(row: Mapping[str, Any]) -> Check:
    title = "Phases: free Si or Sn phase present"
    phases = phases_of(row)
    if phases is None:
        return Check("MAT-PHASE", title, "no_data", "no phase fractions recorded", "flag",
                     "phase analysis (XRD)")
    free = sum(f for name, f in phases.items() if _is_free_phase(name))
    if free <= 0:
        return Check("MAT-PHASE", title, "fail", "no free Si/Sn phase", "flag")
    return Check("MAT-PHASE", title, "pass", f"free Si/Sn phase {free:.1%}", "flag")


def _is_free_phase(name: str) -> bool:
    n = name.lower().replace("free_", "").replace("amorphous_", "").replace("crystalline_", "")
    return n in ("si", "sn", "a_si", "c_si", "beta_sn")


def _check_amorphous(row: Mapping[str, Any]) -> Check:
    title = "Amorphous fraction reported"
    a = _num(row, "amorphous_frac")
    if a is None:
        return Check("MAT-AMORPHOUS", title, "no_data", "not recorded", "flag",
                     "amorphous fraction (XRD)")
    if not 0 <= a <= 1:
        return Check("MAT-AMORPHOUS", title, "no_data", f"implausible value {a}", "flag",
                     "amorphous fraction (XRD)")
    return Check("MAT-AMORPHOUS", title, "pass", f"{a:.1%}", "flag")


def _check_form(run: RunData, row: Mapping[str, Any]) -> Check:
    title = "Form"
    form = run.form
    if form == "powder":
        d50, ssa = _num(row, "d50_um"), _num(row, "ssa_m2_g")
        if d50 is None or ssa is None:
            return Check("FORM", title, "no_data", "powder without particle size or surface "
                         "area", "flag", "particle size (d50) and surface area")
        return Check("FORM", title, "pass", f"powder, d50 {d50:.3g} µm, {ssa:.3g} m²/g", "flag")
    if form == "thin_film":
        film = _num(row, "pred_film_nm")
        if film is None:
            return Check("FORM", title, "no_data", "thin film without film thickness", "flag",
                         "film thickness")
        return Check("FORM", title, "pass", f"thin film on Cu, {film:.4g} nm", "flag")
    return Check("FORM", title, "no_data", "form unknown (no configuration)", "flag",
                 "resolved configuration of the run")


def _check_records(gaps: list[str]) -> Check:
    title = "Process record complete"
    if gaps:
        return Check("DATA-RECORD", title, "fail", "; ".join(gaps), "flag",
                     "QA review of the data gap(s)")
    return Check("DATA-RECORD", title, "pass", "no gaps, step completed", "flag")


def _check_audit(run: RunData, audit_hold: bool) -> Check:
    title = "Control audit trail"
    if run.control_mode == "off":
        return Check("DATA-AUDIT", title, "pass", "controller off: no actions expected", "flag")
    if run.audit is None:
        return Check("DATA-AUDIT", title, "no_data",
                     f"controller mode {run.control_mode} but no audit trail in the run",
                     "flag", "the controller's audit trail")
    if run.audit_problems:
        return Check("DATA-AUDIT", title, "fail", run.audit_problems[0], "flag",
                     "QA investigation of the audit trail's integrity")
    note = "; batch held for the lab by the controller" if audit_hold else ""
    return Check("DATA-AUDIT", title, "pass", f"intact (hash chain verified){note}", "flag")


def _check_basis(th: Thickness, ev: Evidence, rules: ReleaseRules | None) -> Check:
    title = "Thickness basis"
    if th.source == "lab":
        return Check("THK-BASIS", title, "pass", f"lab measurement {th.measured:.3g} nm", "hold")
    if th.source == "prediction":
        return Check("THK-BASIS", title, "pass", f"reliable prediction (reliability "
                     f"{th.reliability or 0.0:.2f}, model {th.model_version or 'unversioned'})",
                     "hold")
    why = ("no plant file" if rules is None else "no oxide prediction"
           if th.predicted_mean is None else prediction_alone(ev, rules)[1])
    return Check("THK-BASIS", title, "no_data", f"no lab result; {why}", "hold",
                 "lab thickness measurement")


def _check_consistency(th: Thickness, rules: ReleaseRules | None) -> Check:
    title = "Lab against the prediction"
    if rules is None or th.measured is None:
        return Check("VM-CONSISTENCY", title, "info", "no lab result", "info")
    if th.lab_sigma is None:
        return Check("VM-CONSISTENCY", title, "info", "no prediction interval to test the lab "
                     "value against", "info")
    text = (f"lab {th.measured:.3g} nm, {th.lab_sigma:.1f} sigma from the prediction "
            f"{th.predicted_mean or math.nan:.3g} nm (limit {rules.outlier_sigma:g} sigma)")
    if th.contradicted:
        return Check("VM-CONSISTENCY", title, "fail", f"{text}: the prediction no longer "
                     "speaks for the batch", "hold", "lab retest and QA review of the "
                     "prediction")
    return Check("VM-CONSISTENCY", title, "pass", text, "hold")


def _check_spec(th: Thickness, rules: ReleaseRules | None) -> Check:
    if rules is None:
        return Check("THK-SPEC", "Release specification", "no_data", "no plant file", "hold",
                     "the run's resolved plant configuration")
    lo, hi = rules.window_nm
    title = f"Release specification {lo:g}–{hi:g} nm (control.window_nm)"
    if th.basis is None:
        return Check("THK-SPEC", title, "no_data", "no trustworthy thickness", "hold",
                     "lab thickness measurement")
    where = "lab" if th.source == "lab" else "prediction"
    if not lo <= th.basis <= hi:
        return Check("THK-SPEC", title, "fail", f"{where} {th.basis:.3g} nm outside "
                     f"{lo:g}–{hi:g} nm", "reject")
    extra = (f", interval {th.pi_low:.3g}–{th.pi_high:.3g} nm inside"
             if th.source == "prediction" and th.pi_low is not None and th.pi_high is not None
             else "")
    return Check("THK-SPEC", title, "pass", f"{where} {th.basis:.3g} nm{extra}", "reject")


def _check_uniformity(th: Thickness, ev: Evidence, rules: ReleaseRules | None) -> Check:
    need = rules.min_within_50pct_share if rules is not None else math.nan
    title = (f"Uniformity: share within ±50 % of the mean ≥ {need:g} "
             "(disposition.min_within_50pct_share)")
    share = th.within_50_share
    src = "the tool (sputtered cap)" if ev.uniformity_source == "tool" else "the prediction"
    if rules is None:
        return Check("THK-UNIFORMITY", title, "no_data", "no plant file", "hold",
                     "the run's resolved plant configuration")
    if th.contradicted and ev.uniformity_source != "tool":
        return Check("THK-UNIFORMITY", title, "no_data", "unknown: only the prediction gave a "
                     "uniformity, and the lab contradicted it", "hold",
                     "lab retest and QA review of the prediction (uniformity unknown)")
    if share is None:
        return Check("THK-UNIFORMITY", title, "no_data", "no uniformity recorded", "hold",
                     "uniformity evidence")
    text = f"{share:.1%} of the surface, from {src}"
    if share < need:
        return Check("THK-UNIFORMITY", title, "fail", text, "reject")
    return Check("THK-UNIFORMITY", title, "pass", text, "reject")


def _check_band(th: Thickness, rules: ReleaseRules | None) -> Check:
    if rules is None:
        return Check("THK-BAND", "Internal band", "info", "no plant file", "flag")
    lo, hi = rules.band_nm
    title = f"Internal band {lo:.3g}–{hi:.3g} nm (control.band_nm; not a release limit)"
    if th.basis is None:
        return Check("THK-BAND", title, "info", "no trustworthy thickness", "flag")
    inside = lo <= th.basis <= hi
    return Check("THK-BAND", title, "pass" if inside else "flag",
                 f"{th.basis:.3g} nm {'inside' if inside else 'outside'} the internal band",
                 "flag")


# -- gaps and deviations ---------------------------------------------------------------------


def _data_gaps(run: RunData, batch_id: str, row: Mapping[str, Any]) -> list[str]:
    gaps = []
    status = row.get("step_status")
    status = status.lower() if isinstance(status, str) and status else "ok"
    if status != "ok":
        fault = row.get("step_fault")
        gaps.append(f"step status {status}" + (f" ({fault})" if isinstance(fault, str)
                                               and fault else ""))
    gap_s = _num(row, "data_gap_s")
    if gap_s is not None and gap_s > 0:
        gaps.append(f"process-value record has {gap_s:.0f} s of gaps")
    live = str(run.meta.get("command", "")).lower() in ("run", "live")
    if isinstance(row.get("live_equipment"), (bool, np.bool_)):
        # A live run says per batch which ones ran on a PLC (the others were simulated).
        live = bool(row["live_equipment"])
    if live and run.batch_trajectory(batch_id) is None:
        gaps.append("no process-value trajectory recorded for this live batch")
    return gaps


def _deviations(run: RunData, batch_id: str, row: Mapping[str, Any],
                th: Thickness) -> list[str]:
    out = []
    for name, recipe, setpoint, actual in recipe_vs_actual(row, run.step_recipe(row)):
        target = setpoint if setpoint is not None else recipe
        if target is None or actual is None:
            continue
        diff = actual - target
        limit = DEVIATION_C if name.endswith("_c") else DEVIATION_REL * abs(target)
        if abs(diff) > limit and abs(diff) > 1e-12:
            what = "setpoint" if setpoint is not None else "recipe"
            out.append(f"{name}: actual {actual:.4g} vs {what} {target:.4g} ({diff:+.3g})")
    if (th.measured is not None and th.pi_low is not None and th.pi_high is not None
            and not th.pi_low <= th.measured <= th.pi_high):
        out.append(f"lab {th.measured:.3g} nm outside the prediction interval "
                   f"{th.pi_low:.3g}–{th.pi_high:.3g} nm (model check)")
    audit = run.batch_audit(batch_id)
    if audit is not None:
        for rec in audit.itertuples():
            result = str(rec.result or "")
            if rec.kind == "write" and result.startswith("failed"):
                out.append(f"setpoint write failed on {rec.loop}: {result}")
            elif rec.kind == "expire":
                out.append(f"proposal {rec.proposal_id} expired without an operator decision")
            elif rec.kind == "outlier":
                out.append(f"lab result rejected as outlier: {rec.reason}")
    return out
