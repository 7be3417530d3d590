"""Release rules: the product specification checked batch by batch, and the decision.

Each rule gives a :class:`Check` with an outcome (``pass``, ``fail``, ``no_data``, ``flag``,
``info``) and what a failure means (``reject``, ``hold`` or ``flag``). The decision is
taken in this order, and names the rule that decided it:

1. **rejected** by the first rule that failed on trustworthy data with ``reject`` severity
   (e.g. a lab thickness outside 1–100 nm, an alloying element that is not allowed);
2. **held** when any rule failed with ``hold`` severity or lacks data (a prediction that is
   unreliable or whose interval crosses a limit needs the lab; a data gap needs a QA review);
3. **released** only when every required check passed on trustworthy data.

A batch with missing or unreliable data is therefore never released.

Thickness basis: the lab value when the batch was sampled, else the virtual-metrology mean
when that prediction is reliable (reliability ≥ :data:`MIN_RELIABILITY`, prediction interval
present, no data gap, no hold in the audit trail). Uniformity (±50 % of the mean) is judged on
the predicted area-weighted p5 and p95 (the lab measures a mean only).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from twin.config.schema import ALLOYING_ELEMENTS, BASE_ELEMENTS
from twin.report.data import RunData, as_float, composition_of, phases_of, recipe_vs_actual

OUTER_NM = (0.2, 1000.0)
SPEC_NM = (1.0, 100.0)
PREFERRED_NM = (1.0, 10.0)
UNIFORMITY_REL = 0.5
MIN_RELIABILITY = 0.5
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


@dataclass(frozen=True)
class Decision:
    """The release decision and the rule that decided it."""

    status: Status
    rule: str
    reason: str
    needs: tuple[str, ...] = ()


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

    @property
    def exception(self) -> bool:
        """True when the batch needs a reviewer's attention (not released, or flagged)."""
        return (self.decision.status != "released" or bool(self.deviations)
                or any(c.outcome == "flag" and c.severity == "flag" for c in self.checks))


def _num(row: Mapping[str, Any], key: str) -> float | None:
    return as_float(row.get(key))


def thickness_of(row: Mapping[str, Any], *, gap: bool, audit_hold: bool) -> Thickness:
    """Collect the oxide numbers of a unit row and choose the thickness basis."""
    mean, lo, hi = (_num(row, k) for k in ("oxide_mean_nm", "oxide_pi_low_nm",
                                           "oxide_pi_high_nm"))
    rel = _num(row, "vm_reliability")
    measured = _num(row, "measured_nm")
    if measured is not None and measured <= 0:
        measured = None
    reliable = (mean is not None and mean > 0 and lo is not None and hi is not None
                and rel is not None and rel >= MIN_RELIABILITY and not gap and not audit_hold)
    basis, source = ((measured, "lab") if measured is not None
                     else (mean, "prediction") if reliable else (None, "none"))
    version = row.get("vm_model_version")
    return Thickness(mean, lo, hi, _num(row, "oxide_p5_nm"), _num(row, "oxide_p95_nm"),
                     _num(row, "oxide_within_50_share"), rel,
                     str(version) if version is not None and str(version) not in ("", "nan")
                     else "", measured, basis, source, reliable)  # type: ignore[arg-type]


def assess(run: RunData, batch_id: str) -> Assessment:
    """Apply every rule to ``batch_id`` and decide.

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
    comp, comp_source = composition_of(row), "batch record"
    if comp is None:
        comp, comp_source = run.nominal_composition(batch_id)
    gaps = _data_gaps(run, batch_id, row)
    audit = run.batch_audit(batch_id)
    audit_hold = audit is not None and bool((audit["kind"] == "hold").any())
    th = thickness_of(row, gap=bool(gaps), audit_hold=audit_hold)
    deviations = _deviations(run, batch_id, row, th)
    checks = (
        _check_genealogy(run, batch_id, row),
        _check_composition(comp),
        _check_phases(row),
        _check_amorphous(row),
        _check_form(run, row),
        _check_records(gaps),
        _check_audit(run, audit_hold),
        _check_basis(th),
        _check_range(th, "THK-OUTER", "Outer range", OUTER_NM),
        _check_range(th, "THK-SPEC", "Release specification", SPEC_NM),
        _check_uniformity(th),
        _check_preferred(th),
    )
    return Assessment(batch_id, row, th, checks, decide(checks), tuple(deviations),
                      tuple(gaps), comp, comp_source if comp else "", phases_of(row), inherited)


def decide(checks: tuple[Check, ...]) -> Decision:
    """Reject, hold or release from the checks (see the module docstring)."""
    for c in checks:
        if c.severity == "reject" and c.outcome == "fail":
            return Decision("rejected", c.rule, f"{c.title}: {c.detail}")
    holds = [c for c in checks if c.blocks]
    if holds:
        needs = tuple(dict.fromkeys(c.need or f"{c.title}: {c.detail}" for c in holds))
        return Decision("held", holds[0].rule, f"{holds[0].title}: {holds[0].detail}", needs)
    return Decision("released", "ALL-PASS", "every release check passed on trustworthy data")


# -- the rules -------------------------------------------------------------------------------


def _check_genealogy(run: RunData, batch_id: str, row: Mapping[str, Any]) -> Check:
    title = "Identity and genealogy"
    if run.form == "thin_film" or row.get("kind") == "run":
        return Check("ID-GENEALOGY", title, "pass", f"sputter run {batch_id}", "hold")
    kinds = [a.get("kind") for a in run.ancestors(batch_id) if not a.get("_missing")]
    lost = [a["batch_id"] for a in run.ancestors(batch_id) if a.get("_missing")]
    if lost:
        return Check("ID-GENEALOGY", title, "no_data",
                     f"parent unit(s) not in the batch record: {', '.join(lost)}", "hold",
                     "complete genealogy record (parent units missing)")
    if "kind" in row and row.get("kind") in ("charge",) and not {"lot", "heat"} <= set(kinds):
        return Check("ID-GENEALOGY", title, "no_data",
                     "genealogy does not reach the mill lots and melt heat", "hold",
                     "genealogy back to the melt heat")
    return Check("ID-GENEALOGY", title, "pass", "traced to the melt heat", "hold")


def _check_composition(comp: Mapping[str, float] | None) -> Check:
    title = "Composition: only allowed alloying elements"
    if comp is None:
        return Check("MAT-COMPOSITION", title, "no_data", "no composition recorded", "hold",
                     "composition analysis")
    present = {e for e, f in comp.items() if f > 0}
    bad = sorted(present - ALLOYING_ELEMENTS - BASE_ELEMENTS - NON_METALS)
    if bad:
        return Check("MAT-COMPOSITION", title, "fail",
                     f"element(s) not allowed: {', '.join(bad)}", "reject")
    if not present & BASE_ELEMENTS:
        return Check("MAT-COMPOSITION", title, "fail", "no Si or Sn in the core", "reject")
    return Check("MAT-COMPOSITION", title, "pass",
                 f"{', '.join(sorted(present - NON_METALS))} (all allowed)", "reject")


def _check_phases(row: Mapping[str, Any]) -> Check:
    title = "Phases: free Si or Sn phase present"
    phases = phases_of(row)
    if phases is None:
        return Check("MAT-PHASE", title, "no_data", "no phase fractions recorded", "hold",
                     "phase analysis (XRD)")
    free = sum(f for name, f in phases.items() if _is_free_phase(name))
    if free <= 0:
        return Check("MAT-PHASE", title, "fail", "no free Si/Sn phase", "reject")
    return Check("MAT-PHASE", title, "pass", f"free Si/Sn phase {free:.1%}", "reject")


def _is_free_phase(name: str) -> bool:
    n = name.lower().replace("free_", "").replace("amorphous_", "").replace("crystalline_", "")
    return n in ("si", "sn", "a_si", "c_si", "beta_sn")


def _check_amorphous(row: Mapping[str, Any]) -> Check:
    title = "Amorphous fraction reported"
    a = _num(row, "amorphous_fraction")
    if a is None:
        return Check("MAT-AMORPHOUS", title, "no_data", "not recorded", "hold",
                     "amorphous fraction (XRD)")
    if not 0 <= a <= 1:
        return Check("MAT-AMORPHOUS", title, "no_data", f"implausible value {a}", "hold",
                     "amorphous fraction (XRD)")
    return Check("MAT-AMORPHOUS", title, "pass", f"{a:.1%}", "hold")


def _check_form(run: RunData, row: Mapping[str, Any]) -> Check:
    title = "Form"
    form = run.form
    if form == "powder":
        d50, ssa = _num(row, "d50_um"), _num(row, "surface_area_m2_g")
        if d50 is None or ssa is None:
            return Check("FORM", title, "no_data", "powder without particle size or surface "
                         "area", "hold", "particle size (d50) and surface area")
        return Check("FORM", title, "pass", f"powder, d50 {d50:.3g} µm, {ssa:.3g} m²/g", "hold")
    if form == "thin_film":
        film = _num(row, "film_thickness_nm")
        if film is None:
            return Check("FORM", title, "no_data", "thin film without film thickness", "hold",
                         "film thickness")
        return Check("FORM", title, "pass", f"thin film on Cu, {film:.4g} nm", "hold")
    return Check("FORM", title, "no_data", "form unknown (no configuration)", "hold",
                 "resolved configuration of the run")


def _check_records(gaps: list[str]) -> Check:
    title = "Process record complete"
    if gaps:
        return Check("DATA-RECORD", title, "fail", "; ".join(gaps), "hold",
                     "QA review of the data gap(s)")
    return Check("DATA-RECORD", title, "pass", "no gaps, step completed", "hold")


def _check_audit(run: RunData, audit_hold: bool) -> Check:
    title = "Control audit trail"
    if run.control_mode == "off":
        return Check("DATA-AUDIT", title, "pass", "controller off: no actions expected", "hold")
    if run.audit is None:
        return Check("DATA-AUDIT", title, "no_data",
                     f"controller mode {run.control_mode} but no audit trail in the run",
                     "hold", "the controller's audit trail")
    if run.audit_problems:
        return Check("DATA-AUDIT", title, "fail", run.audit_problems[0], "hold",
                     "QA investigation of the audit trail's integrity")
    note = "; batch held for the lab by the controller" if audit_hold else ""
    return Check("DATA-AUDIT", title, "pass", f"intact (hash chain verified){note}", "hold")


def _check_basis(th: Thickness) -> Check:
    title = "Thickness basis"
    if th.source == "lab":
        return Check("THK-BASIS", title, "pass", f"lab measurement {th.measured:.3g} nm", "hold")
    if th.source == "prediction":
        return Check("THK-BASIS", title, "pass", f"reliable prediction (reliability "
                     f"{th.reliability:.2f}, model {th.model_version or 'unversioned'})", "hold")
    why = ("no oxide prediction" if th.predicted_mean is None
           else "prediction interval missing" if th.pi_low is None or th.pi_high is None
           else "reliability not recorded" if th.reliability is None
           else "prediction unreliable (data gap or controller hold)"
           if th.reliability >= MIN_RELIABILITY
           else f"reliability {th.reliability:.2f} < {MIN_RELIABILITY}")
    return Check("THK-BASIS", title, "no_data", f"no lab result and {why}", "hold",
                 "lab thickness measurement (XPS)")


def _check_range(th: Thickness, rule: str, title: str, band: tuple[float, float]) -> Check:
    lo, hi = band
    title = f"{title} {lo:g}–{hi:g} nm"
    if th.source == "none":
        return Check(rule, title, "no_data", "no trustworthy thickness", "hold",
                     "lab thickness measurement (XPS)")
    value = th.basis
    assert value is not None
    if th.source == "lab":
        if not lo <= value <= hi:
            return Check(rule, title, "fail", f"lab {value:.3g} nm outside {lo:g}–{hi:g} nm",
                         "reject")
        return Check(rule, title, "pass", f"lab {value:.3g} nm", "reject")
    plo, phi = th.pi_low or 0.0, th.pi_high or 0.0
    if phi < lo or plo > hi:
        return Check(rule, title, "fail", f"prediction {value:.3g} nm, whole interval "
                     f"{plo:.3g}–{phi:.3g} nm outside {lo:g}–{hi:g} nm", "reject")
    if not (lo <= plo and phi <= hi):
        return Check(rule, title, "fail", f"prediction {value:.3g} nm, interval "
                     f"{plo:.3g}–{phi:.3g} nm crosses a limit", "hold",
                     "lab thickness measurement (prediction interval crosses a limit)")
    return Check(rule, title, "pass", f"prediction {value:.3g} nm, interval "
                 f"{plo:.3g}–{phi:.3g} nm inside", "reject")


def _check_uniformity(th: Thickness) -> Check:
    title = "Uniformity within ±50 % of the mean"
    mean = th.predicted_mean
    if mean is None or th.p5 is None or th.p95 is None or mean <= 0:
        return Check("THK-UNIFORMITY", title, "no_data", "no thickness distribution", "hold",
                     "thickness distribution (p5/p95)")
    lo, hi = th.p5 / mean - 1, th.p95 / mean - 1
    text = f"p5 {lo:+.0%}, p95 {hi:+.0%} of the mean"
    if not th.reliable_prediction:
        return Check("THK-UNIFORMITY", title, "no_data", f"{text}, from an unreliable "
                     "prediction", "hold", "uniformity evidence: lab thickness at several "
                     "positions, or a reliable predicted distribution")
    if lo < -UNIFORMITY_REL or hi > UNIFORMITY_REL:
        return Check("THK-UNIFORMITY", title, "fail", text, "reject")
    return Check("THK-UNIFORMITY", title, "pass", text, "reject")


def _check_preferred(th: Thickness) -> Check:
    lo, hi = PREFERRED_NM
    title = f"Preferred band {lo:g}–{hi:g} nm (not required)"
    if th.basis is None:
        return Check("THK-PREFERRED", title, "info", "no trustworthy thickness", "flag")
    inside = lo <= th.basis <= hi
    return Check("THK-PREFERRED", title, "pass" if inside else "flag",
                 f"{th.basis:.3g} nm {'inside' if inside else 'outside'} the preferred band",
                 "flag")


# -- gaps and deviations ---------------------------------------------------------------------


def _data_gaps(run: RunData, batch_id: str, row: Mapping[str, Any]) -> list[str]:
    gaps = []
    status = str(row.get("status") or "ok").lower()
    if status not in ("ok", "nan", "none", ""):
        gaps.append(f"step status {status}" + (f" ({row['fault']})" if row.get("fault")
                                               and str(row["fault"]) != "nan" else ""))
    gap_s = _num(row, "gap_s")
    if gap_s is not None and gap_s > 0:
        gaps.append(f"process-value record has {gap_s:.0f} s of gaps")
    if bool(row.get("data_gap")) and row.get("data_gap") is not None and \
            not (isinstance(row.get("data_gap"), float) and math.isnan(row["data_gap"])):
        gaps.append("data gap flagged by the recorder")
    live = str(run.meta.get("command", "")).lower() in ("run", "live")
    if "live_equipment" in row and row["live_equipment"] is not None:
        # A live run says per batch which ones ran on a PLC (the others were simulated).
        live = bool(row["live_equipment"]) if row["live_equipment"] == row["live_equipment"] \
            else live
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
    disp = str(row.get("disposition") or "")
    if disp in ("scrap", "rework", "hold"):
        out.append(f"plant model disposition is {disp}"
                   + (f" ({row['disposition_reason']})" if row.get("disposition_reason") else ""))
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
