"""The one release decision (twin.plant.release) and the plant model's use of it."""

from __future__ import annotations

import math

import pytest

from twin.config import load_plant
from twin.hidden.run import simulate
from twin.plant.release import (
    Evidence,
    ReleaseRules,
    contradiction_sigma,
    decide_recorded,
    on_lab,
    on_prediction,
)

RULES = ReleaseRules.from_config(load_plant(None))
NAN = math.nan


def vm(mean: float, lo: float, hi: float, share: float, **kw: object) -> Evidence:
    """A VM prediction with the interval ``lo``-``hi`` (on the mean and on the lab value)."""
    base = dict(lower_nm=lo, upper_nm=hi, lab_lower_nm=lo, lab_upper_nm=hi, reliability=0.9,
                vm_reliable=True)
    base.update(kw)
    return Evidence(mean, share, "prediction", **base)  # type: ignore[arg-type]


def test_rules_are_the_plant_files() -> None:
    cfg = load_plant(None, ["control.min_reliability=0.7", "control.band_nm=[8.0, 12.5]",
                            "disposition.min_within_50pct_share=0.8",
                            "control.outlier_sigma=3"])
    r = ReleaseRules.from_config(cfg)
    assert (r.min_reliability, r.band_nm, r.min_within_50pct_share, r.outlier_sigma) == (
        0.7, (8.0, 12.5), 0.8, 3.0)
    assert r.window_nm == cfg.control.window_nm and r.band_nm == cfg.control.band


def test_the_issues_contradicted_prediction_neither_releases_nor_scraps() -> None:
    # VM 31.4 nm [24.2-40.9], uniformity 0.04 (what scrapped the charge), lab 10.3 nm.
    ev = vm(31.4, 24.2, 40.9, 0.04)
    sigma = contradiction_sigma(ev, 10.3, RULES)
    assert sigma > RULES.outlier_sigma
    v = on_lab(ev, 10.3, RULES)
    assert (v.decision, v.rule, v.contradicted) == ("hold", "VM-CONTRADICTED", True)
    assert v.reason.startswith("lab 10.3 nm contradicts the prediction 31.4 nm (")
    assert "uniformity unknown, held for retest" in v.reason
    assert v.basis == "lab" and v.thickness_nm == 10.3


@pytest.mark.parametrize("share", [0.04, 0.95, NAN])
def test_a_contradicted_prediction_never_decides_on_its_uniformity(share: float) -> None:
    v = on_lab(vm(31.4, 24.2, 40.9, share), 10.3, RULES)
    assert v.decision == "hold" and v.contradicted


def test_a_contradicted_prediction_leaves_what_was_measured_to_decide() -> None:
    # The measured mean above the window scraps, below it reworks: no uniformity needed.
    assert on_lab(vm(10.0, 8.0, 12.5, 0.95), 150.0, RULES).decision == "scrap"
    below = on_lab(vm(10.0, 8.0, 12.5, 0.95), 0.5, RULES)
    assert (below.decision, below.rule, below.contradicted) == ("rework", "THK-SPEC", True)


def test_a_consistent_prediction_decides_as_before() -> None:
    ev = vm(10.0, 8.0, 12.5, 0.95)
    v = on_lab(ev, 10.8, RULES)
    assert (v.decision, v.rule, v.contradicted) == ("release", "ALL-PASS", False)
    poor = on_lab(vm(10.0, 8.0, 12.5, 0.5), 10.8, RULES)
    assert (poor.decision, poor.rule) == ("scrap", "THK-UNIFORMITY")
    # Too thin (the prediction agrees): rework while reworks are left, then scrap.
    thin = vm(0.8, 0.65, 0.98, 0.95)
    assert on_lab(thin, 0.78, RULES).decision == "rework"
    assert on_lab(Evidence(**{**thin.__dict__, "reworks": 1}), 0.78, RULES).decision == "scrap"


def test_unknown_uniformity_holds_never_releases() -> None:
    v = on_lab(vm(10.0, 8.0, 12.5, NAN), 10.1, RULES)
    assert (v.decision, v.rule) == ("hold", "THK-UNIFORMITY")


def test_a_sputtered_caps_uniformity_is_the_tools() -> None:
    ev = Evidence(5.0, 1.0, "tool", 4.5, 5.5, 4.5, 5.5, 0.9, True, can_rework=False)
    v = on_lab(ev, 3.0, RULES)
    assert v.contradicted and v.decision == "release"


@pytest.mark.parametrize(("kw", "why"), [
    ({"reliability": 0.5}, "reliability 0.50 below 0.6"),
    ({"vm_reliable": False, "vm_reasons": "data gap"}, "data gap"),
    ({"lower_nm": 0.9}, "not inside"),
    ({"aborted": True}, "aborted"),
    ({"sampled": True}, "sampled"),
])
def test_release_on_prediction_needs_a_prediction_that_may_speak_alone(
        kw: dict[str, object], why: str) -> None:
    assert on_prediction(vm(10.0, 8.0, 12.5, 0.95), RULES).decision == "release"
    v = on_prediction(vm(10.0, 8.0, 12.5, 0.95, **kw), RULES)
    assert (v.decision, v.rule) == ("hold", "THK-BASIS") and why in v.reason


def test_the_row_round_trip_gives_the_same_decision() -> None:
    ev = vm(31.4, 24.2, 40.9, 0.04, sampled=True, reworks=0)
    row = {**ev.columns(), "vm_reasons": ""}
    assert Evidence.from_row(row) == ev
    assert decide_recorded(Evidence.from_row(row), 10.3, RULES) == on_lab(ev, 10.3, RULES)
    assert decide_recorded(Evidence.from_row(row), NAN, RULES).decision == "hold"


@pytest.fixture(scope="module")
def contradicted_run():  # type: ignore[no-untyped-def]
    # A truth the twin's kinetics are off from, and a tight gate: the lab contradicts a
    # charge's prediction (seed 1: C000013).
    cfg = load_plant(None, ["control.outlier_sigma=2"])
    return cfg, simulate(cfg, 6.0, 1, truth="other_kinetics")


def test_a_charge_held_for_retest_is_not_lost(contradicted_run) -> None:  # type: ignore[no-untyped-def]
    cfg, res = contradicted_run
    b = res.batches
    ch = b[b.unit_kind == "charge"]
    held = ch[ch.vm_contradicted.fillna(False).astype(bool)]
    assert len(held) >= 1
    assert (held.disposition == "hold").all()
    assert (held.disposition_rule == "VM-CONTRADICTED").all()
    assert held.disposition_reason.str.contains("held for retest").all()
    plant = res.extra["plant"]
    ledger = plant.ctx.ledger
    for uid in held.unit_id:
        # Out of every buffer, in the lab's held inventory, still material in process.
        assert all(uid not in buf.held for buf in plant.buffers)
        assert all(u.id != uid for buf in plant.buffers for u in buf.released.items)
        assert uid in plant.lab.held and uid in ledger.wip
    assert plant.lab.held_kg == pytest.approx(float(held.mass_kg.sum()))
    # The KPIs add up: in = shipped + scrap + WIP (the held inventory is WIP).
    assert res.summary["balance_kg"] == pytest.approx(0.0, abs=1e-6)
    assert res.summary["scrap_kg"] == pytest.approx(
        float(ch[ch.disposition == "scrap"].mass_kg.sum()))
    assert res.summary["dispositions"].get("hold", 0) >= len(held)
