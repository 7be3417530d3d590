"""Release rules and decisions on real run folders."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from report_runs import campaign_units, write_run

from twin.config import load_plant
from twin.control.audit import AuditRecord
from twin.report import assess, load_run
from twin.report.data import RunData, normalise_units
from twin.plant.release import ReleaseRules
from twin.report.rules import _check_composition

NAN = float("nan")


def one(make_run: Callable[..., Path], **oxide: Any) -> Any:
    run = load_run(make_run([oxide]))
    return assess(run, "C000001")


def test_nominal_batch_is_released_with_traceable_genealogy(make_run: Callable[..., Path]
                                                            ) -> None:
    a = one(make_run)
    assert a.decision.status == "released" and a.decision.rule == "ALL-PASS"
    assert a.decision.plant == "release"
    run = load_run(make_run([{}], name="g"))
    kinds = [u["unit_kind"] for u in run.ancestors("C000001")]
    assert kinds == ["lot", "lot", "heat"]
    assert [u["unit_id"] for u in run.children("C000001")] == ["R000001"]
    assert a.inherited["phases_mass_frac"] == "H000001"  # phases come from the melt heat


@pytest.mark.parametrize(("oxide", "rule", "plant"), [
    ({"measured_nm": 150.0}, "THK-SPEC", "scrap"),                # lab above 100 nm
    ({"measured_nm": 0.6, "oxide_mean_nm": 0.62, "oxide_pi_low_nm": 0.5,
      "oxide_pi_high_nm": 0.75}, "THK-SPEC", "rework"),           # lab below 1 nm: re-oxidise
    ({"measured_nm": 0.6, "oxide_mean_nm": 0.62, "oxide_pi_low_nm": 0.5,
      "oxide_pi_high_nm": 0.75, "reworks": 1}, "THK-SPEC", "scrap"),  # no rework left
    ({"oxide_within_50_share": 0.6, "measured_nm": 8.2}, "THK-UNIFORMITY",
     "scrap"),                                                    # predicted, lab agrees
])
def test_out_of_window_is_rejected(make_run: Callable[..., Path], oxide: dict[str, Any],
                                   rule: str, plant: str) -> None:
    a = one(make_run, **oxide)
    assert a.decision.status == "rejected"
    assert (a.decision.rule, a.decision.plant) == (rule, plant)


@pytest.mark.parametrize(("oxide", "rule", "need"), [
    ({"oxide_mean_nm": NAN, "oxide_pi_low_nm": NAN, "oxide_pi_high_nm": NAN,
      "oxide_p5_nm": NAN, "oxide_p95_nm": NAN, "vm_reliability": NAN}, "THK-BASIS", "lab"),
    ({"vm_reliability": 0.3}, "THK-BASIS", "lab"),
    ({"oxide_pi_low_nm": NAN}, "THK-BASIS", "lab"),
    ({"oxide_mean_nm": 1.3, "oxide_pi_low_nm": 0.8, "oxide_pi_high_nm": 1.9,
      "oxide_p5_nm": 1.0, "oxide_p95_nm": 1.6}, "THK-BASIS", "lab"),  # interval crosses 1 nm
    ({"status": "gap", "gap_s": 120.0}, "THK-BASIS", "lab"),  # a gap: the prediction waits
    ({"oxide_within_50_share": NAN, "measured_nm": 8.0}, "THK-UNIFORMITY", "uniformity"),
])
def test_missing_or_unreliable_data_is_held(make_run: Callable[..., Path],
                                            oxide: dict[str, Any], rule: str,
                                            need: str) -> None:
    a = one(make_run, **oxide)
    assert a.decision.status == "held", a.decision
    assert a.decision.rule == rule
    assert any(need in n for n in a.decision.needs)


@pytest.mark.parametrize(("oxide", "rule"), [
    ({"phases_mass_frac": "TiSi2:1.0"}, "MAT-PHASE"),            # no free Si phase
    ({"parent_ids": "L000002,L999999"}, "ID-GENEALOGY"),
    ({"status": "gap", "gap_s": 120.0, "measured_nm": 8.0}, "DATA-RECORD"),
])
def test_what_the_plant_does_not_see_is_a_review_flag(make_run: Callable[..., Path],
                                                     oxide: dict[str, Any], rule: str) -> None:
    # The plant's decision stands (one verdict); the report flags the batch for review.
    a = one(make_run, **oxide)
    assert a.decision.status == "released" and a.decision.plant == "release"
    flagged = [c for c in a.checks if c.review]
    assert rule in {c.rule for c in flagged} and a.exception


def test_element_not_allowed_is_a_composition_failure() -> None:
    # The composition is the configuration's alloy with the mill lots' pickup; an element
    # outside the allowed set (Cr here) fails the check (a review flag, not a plant decision).
    check = _check_composition({"Si": 0.79, "Ti": 0.2, "Cr": 0.01})
    assert (check.rule, check.outcome) == ("MAT-COMPOSITION", "fail") and "Cr" in check.detail


def test_amorphous_missing_everywhere_is_flagged(tmp_path: Path) -> None:
    units = campaign_units([{}])
    for u in units:
        u.pop("amorphous_frac", None)
    a = assess(load_run(write_run(tmp_path / "r", units)), "C000001")
    assert a.decision.status == "released"
    assert "MAT-AMORPHOUS" in {c.rule for c in a.checks if c.review}


def test_lab_value_is_the_thickness_basis(make_run: Callable[..., Path]) -> None:
    a = one(make_run, measured_nm=7.9)
    assert a.decision.status == "released"
    assert (a.thickness.source, a.thickness.basis) == ("lab", 7.9)


def test_a_consistent_lab_value_keeps_the_predicted_uniformity(
        make_run: Callable[..., Path]) -> None:
    # The lab measures the mean; a prediction it does not contradict still gives the
    # uniformity, even when its reliability score was too low to release it alone (what the
    # plant model does: one decision).
    a = one(make_run, vm_reliability=0.1, measured_nm=7.9)
    assert (a.decision.status, a.decision.rule, a.decision.plant) == ("released", "ALL-PASS",
                                                                      "release")
    assert not a.thickness.contradicted


def test_a_contradicted_prediction_no_longer_speaks_for_the_batch(
        make_run: Callable[..., Path]) -> None:
    # VM 31.4 nm [24.2-40.9], lab 10.3 nm: the uniformity (only the prediction gave one) is
    # unknown. Held for a retest, never scrapped on that prediction's uniformity (0.04 here).
    a = one(make_run, oxide_mean_nm=31.4, oxide_pi_low_nm=24.2, oxide_pi_high_nm=40.9,
            oxide_within_50_share=0.04, measured_nm=10.3)
    assert (a.decision.status, a.decision.rule, a.decision.plant) == ("held", "VM-CONTRADICTED",
                                                                      "hold")
    assert "contradicts the prediction 31.4 nm" in a.decision.reason
    assert "uniformity unknown" in a.decision.reason
    assert a.thickness.contradicted and a.thickness.source == "lab"
    checks = {c.rule: c for c in a.checks}
    assert checks["VM-CONSISTENCY"].outcome == "fail"
    assert checks["THK-UNIFORMITY"].outcome == "no_data"


def test_band_is_flagged_not_required(make_run: Callable[..., Path]) -> None:
    a = one(make_run, measured_nm=30.0, oxide_mean_nm=30.0, oxide_pi_low_nm=25.0,
            oxide_pi_high_nm=36.0)
    assert a.decision.status == "released"
    band = next(c for c in a.checks if c.rule == "THK-BAND")
    assert band.outcome == "flag" and a.exception
    assert "7–13 nm" in band.title  # the default plant's aim 10 nm ±30 %


@pytest.mark.parametrize(("overrides", "oxide", "status", "rule"), [
    ([], {"vm_reliability": 0.7}, "released", "ALL-PASS"),
    (["control.min_reliability=0.8"], {"vm_reliability": 0.7}, "held", "THK-BASIS"),
    ([], {"oxide_within_50_share": 0.93}, "released", "ALL-PASS"),
    (["disposition.min_within_50pct_share=0.95"], {"oxide_within_50_share": 0.93},
     "held", "THK-BASIS"),  # the prediction fails: the lab decides
    (["disposition.min_within_50pct_share=0.95"], {"oxide_within_50_share": 0.93,
                                                   "measured_nm": 8.1},
     "rejected", "THK-UNIFORMITY"),
    (["control.window_nm=[1.0, 7.5]", "control.aim_nm=5.0", "control.band_nm=[3.5, 6.5]"],
     {"measured_nm": 7.9},
     "rejected", "THK-SPEC"),
    (["control.outlier_sigma=2"], {"measured_nm": 6.0}, "held", "VM-CONTRADICTED"),
    (["disposition.release_on_prediction=false"], {}, "held", "THK-BASIS"),
])
def test_rules_come_from_the_runs_plant_file(make_run: Callable[..., Path],
                                            overrides: list[str], oxide: dict[str, Any],
                                            status: str, rule: str) -> None:
    run = load_run(make_run([oxide], overrides=overrides))
    a = assess(run, "C000001")
    assert (a.decision.status, a.decision.rule) == (status, rule), a.decision
    assert a.rules == ReleaseRules.from_config(run.config)  # type: ignore[arg-type]


def test_band_comes_from_the_runs_plant_file(make_run: Callable[..., Path]) -> None:
    for overrides, outcome in (([], "pass"), (["control.band_nm=[8.5, 12.0]"], "flag")):
        a = assess(load_run(make_run([{}], name=str(len(overrides)), overrides=overrides)),
                   "C000001")
        band = next(c for c in a.checks if c.rule == "THK-BAND")
        assert band.outcome == outcome, band
        assert a.decision.status == "released"


def test_recorded_plant_decision_is_checked(make_run: Callable[..., Path]) -> None:
    # A recorded disposition the rules do not reproduce is a bug for QA, not a second verdict.
    a = one(make_run, disposition="scrap", disposition_reason="lab oxide 150 nm above 100 nm")
    assert (a.decision.status, a.decision.rule) == ("held", "PLANT-MISMATCH")
    assert a.decision.plant == "scrap"
    b = one(make_run, disposition="release")
    assert (b.decision.status, b.decision.plant) == ("released", "release")


def test_missing_audit_trail_is_a_review_flag(make_run: Callable[..., Path]) -> None:
    run = load_run(make_run([{}], audit=None))
    assert run.audit is None and "control_audit.jsonl" in run.missing
    a = assess(run, "C000001")
    assert a.decision.status == "released"
    assert "DATA-AUDIT" in {c.rule for c in a.checks if c.review} and a.exception


def test_tampered_audit_trail_is_a_review_flag(make_run: Callable[..., Path]) -> None:
    recs = [AuditRecord(kind="write", loop="line1.oxidizer1", batch_id="C000001",
                        before={"hold_min": 30.0}, after={"hold_min": 26.0}, reason="aim",
                        sim_time_s=1.0, result="ok"),
            AuditRecord(kind="calibration", loop="line1.oxidizer1", who="calibration")]
    d = make_run([{}], audit=recs)
    path = d / "control_audit.jsonl"
    path.write_text(path.read_text().replace("26.0", "20.0"))
    a = assess(load_run(d), "C000001")
    audit = next(c for c in a.checks if c.rule == "DATA-AUDIT")
    assert audit.outcome == "fail" and audit.review and a.exception


def test_controller_hold_in_audit_forces_the_lab(make_run: Callable[..., Path]) -> None:
    recs = [AuditRecord(kind="hold", loop="line1.oxidizer1", batch_id="C000001",
                        reason="PV gap during the hold", sim_time_s=5.0, result="held")]
    a = assess(load_run(make_run([{}], audit=recs)), "C000001")
    assert (a.decision.status, a.decision.rule) == ("held", "THK-BASIS")


def test_failed_setpoint_write_is_a_deviation(make_run: Callable[..., Path]) -> None:
    recs = [AuditRecord(kind="write", loop="line1.oxidizer1", batch_id="C000001",
                        after={"hold_min": 25.0}, reason="aim", sim_time_s=5.0,
                        result="failed: BadOutOfRange")]
    a = assess(load_run(make_run([{}], audit=recs)), "C000001")
    assert any("BadOutOfRange" in d for d in a.deviations) and a.exception


def test_live_batch_without_trajectory_is_flagged(make_run: Callable[..., Path]) -> None:
    a = assess(load_run(make_run([{}], meta={"command": "run"})), "C000001")
    assert "DATA-RECORD" in {c.rule for c in a.checks if c.review}


def test_without_configuration_nothing_is_released(make_run: Callable[..., Path]) -> None:
    run = load_run(make_run([{}], config=False))
    assert run.config is None and "resolved configuration" in run.missing
    a = assess(run, "C000001")
    assert (a.decision.status, a.decision.rule) == ("held", "CONFIG")


# -- invariant: never released on missing, untrustworthy or contradicted data ----------------

_PLANT = load_plant(None)
_RULES = ReleaseRules.from_config(_PLANT)
_opt = st.one_of(st.just(NAN), st.floats(0.05, 2000.0))


@settings(max_examples=60, deadline=None)
@given(mean=_opt, lo=_opt, hi=_opt, share=st.one_of(st.just(NAN), st.floats(0.0, 1.0)),
       measured=_opt, rel=st.one_of(st.just(NAN), st.floats(0.0, 1.0)), gap=st.booleans())
def test_release_needs_trustworthy_in_spec_thickness(mean: float, lo: float, hi: float,
                                                     share: float, measured: float,
                                                     rel: float, gap: bool) -> None:
    units = campaign_units([{"oxide_mean_nm": mean, "oxide_pi_low_nm": lo,
                             "oxide_pi_high_nm": hi, "oxide_within_50_share": share,
                             "measured_nm": measured, "vm_reliability": rel,
                             "status": "gap" if gap else "ok"}])
    run = RunData(Path("mem"), normalise_units(pd.DataFrame(units)), config=_PLANT,
                  audit=pd.DataFrame(columns=["batch_id", "kind"]))
    a = assess(run, "C000001")
    if a.decision.status != "released":
        return
    th, (wlo, whi) = a.thickness, _RULES.window_nm
    assert th.basis is not None and wlo <= th.basis <= whi
    assert th.source == "lab" or (not gap and rel >= _RULES.min_reliability
                                  and wlo <= lo and hi <= whi)
    assert not math.isnan(share) and share >= _RULES.min_within_50pct_share
    assert not th.contradicted


def test_nominal_composition_with_milling_pickup(tmp_path: Path) -> None:
    units = campaign_units([{}])
    a = assess(load_run(write_run(tmp_path / "r", units)), "C000001")
    assert a.decision.status == "released"
    assert a.composition is not None and "pickup" in a.composition_source
    assert a.composition["Fe"] == pytest.approx(0.004)  # steel media, 0.4 wt %
    assert a.composition["O"] == pytest.approx(0.012)
    assert sum(a.composition.values()) == pytest.approx(1.0)


def test_actual_far_from_setpoint_is_a_listed_deviation(make_run: Callable[..., Path]) -> None:
    a = one(make_run, actual_hold_c_mean=880.0)
    assert a.decision.status == "released" and a.exception
    assert a.deviations == ("hold_c: actual 880 vs setpoint 850 (+30)",)
