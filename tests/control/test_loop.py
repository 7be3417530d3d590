"""Control loop: VM and hold rule, closed loop and advisory with CLI decisions, audit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twin.cli import main
from twin.config.schema import ControlConfig, PlantConfig
from twin.control.audit import AuditBuffer, AuditTrail, proposal_states, read_audit
from twin.control.loop import ControlLoop, loop_mode
from twin.control.model import FurnaceModel, OxidationContext
from twin.control.vm import release_basis
from twin.equipment.base import StepResult
from twin.hidden.charge import ChargeOxidation, ChargeTruth, Recipe
from twin.hidden.config import load_truth
from twin.hidden.furnace import TrueFurnace
from twin.physics.metrology import measure_thickness_nm
from twin.physics.milling import ssa_m2_g

PATH = "line1.oxidizer1"


def run_batch(plant: PlantConfig, furnace: TrueFurnace, loop: ControlLoop, k: int,
              ctx: OxidationContext, recipe: dict[str, float], t: float,
              **result_kw: object) -> tuple[StepResult, float, dict[str, float]]:
    plan = loop.before_batch(f"B{k}", recipe, ctx, t)
    sp = loop.resolve(plan, t)
    assert isinstance(loop.model, FurnaceModel)
    ind, run = furnace.run_profile(loop.model.planned_profile(sp), 60.0, t0_s=t,
                                   flow_slm=250.0)
    true = OXIDATION.of_run(Recipe(sp["start_c"], sp["hold_c"], sp["ramp_c_per_min"],
                                   sp["hold_min"], sp["cool_c_per_min"], sp["po2_atm"],
                                   sp.get("ph2o_atm", 0.0)), run, _charge(ctx))
    kw = {"status": "ok", **result_kw}
    res = StepResult(PATH, f"B{k}", start_s=t, end_s=t + ind.duration_s, actual=ind,
                     **kw)  # type: ignore[arg-type]
    return res, true.mean_nm, sp


#: The hidden plant's charge physics (nominal truth) judging the twin's VM.
_TRUTH = load_truth("nominal")
OXIDATION = ChargeOxidation(_TRUTH.kinetics.build(), _TRUTH.bed.build(), _TRUTH.lab,
                            zone_offsets_c=(3.0, 0.0, -3.0))


def _charge(ctx: OxidationContext) -> ChargeTruth:
    """The charge the twin's context describes, as it really is (5 % coarser)."""
    psd = ctx.psd
    return ChargeTruth(58.0, psd.d50_um * 1.05, 1.8, ssa_m2_g(psd, 2.33), ctx.initial_nm, 1.0,
                       0.0)


@pytest.fixture()
def furnace(plant: PlantConfig) -> TrueFurnace:
    ox = plant.stations.oxidizer
    assert ox is not None
    return TrueFurnace(_TRUTH.furnace, ox.limits, np.random.default_rng(7))


def test_vm_learns_and_then_releases_on_prediction(plant: PlantConfig, model: FurnaceModel,
                                                   ctx: OxidationContext, furnace: TrueFurnace,
                                                   recipe: dict[str, float]) -> None:
    buf = AuditBuffer()
    loop = ControlLoop(PATH, model, ControlConfig(mode="off"), recipe, buf)
    rng = np.random.default_rng(3)
    t, errors, covered = 0.0, [], []
    for k in range(14):
        res, true_nm, _ = run_batch(plant, furnace, loop, k, ctx, recipe, t)
        pred = loop.after_step(res, ctx)
        assert pred.model_version.startswith("vm-2/anode-twin-")
        if k < 3:
            assert not pred.reliable and release_basis(pred, (1, 100))[0] == "lab"
        if k >= 6:
            errors.append(abs(pred.mean_nm - true_nm) / true_nm)
            covered.append(pred.lower_nm <= true_nm <= pred.upper_nm)
        loop.on_lab(f"B{k}", float(measure_thickness_nm(true_nm, rng)), res.end_s)
        t = res.end_s + 1800.0
    assert np.mean(errors) < 0.10
    assert np.mean(covered) >= 0.6
    assert pred.reliable and release_basis(pred, (1, 100))[0] == "vm"
    assert not [r for r in buf.records if r.kind in ("proposal", "write")]  # mode off


@pytest.mark.parametrize(("kw", "reason"), [
    ({"status": "aborted", "fault": "breakdown"}, "bad status"),
    ({"status": "gap", "gaps": ((1000.0, 1900.0),)}, "data gap"),
])
def test_unreliable_batches_are_held_for_the_lab(plant: PlantConfig, model: FurnaceModel,
                                                 ctx: OxidationContext, furnace: TrueFurnace,
                                                 recipe: dict[str, float],
                                                 kw: dict[str, object], reason: str) -> None:
    buf = AuditBuffer()
    loop = ControlLoop(PATH, model, ControlConfig(min_lab_results=0), recipe, buf)
    res, _, _ = run_batch(plant, furnace, loop, 0, ctx, recipe, 0.0, **kw)
    pred = loop.after_step(res, ctx)
    assert not pred.reliable and pred.reliability == 0.0
    assert any(reason in r for r in pred.reasons)
    basis, why = release_basis(pred, (1.0, 100.0))
    assert basis == "lab" and reason in why
    holds = [r for r in buf.records if r.kind == "hold"]
    assert holds and holds[-1].batch_id == "B0" and holds[-1].after == {
        "disposition": "hold_for_lab"}


def test_out_of_range_input_is_held(model: FurnaceModel, ctx: OxidationContext,
                                    recipe: dict[str, float]) -> None:
    from twin.physics.oxidation_profile import Profile

    loop = ControlLoop(PATH, model, ControlConfig(min_lab_results=0), recipe, AuditBuffer())
    hot = Profile.constant(temperature_c=1250.0, duration_s=600.0, po2_atm=0.21)
    pred = loop.after_step(StepResult(PATH, "B9", "ok", 0.0, 600.0, actual=hot), ctx)
    assert not pred.reliable and any("outside the furnace range" in r for r in pred.reasons)
    nothing = loop.after_step(StepResult(PATH, "B10", "ok", 0.0, 600.0, actual=None), ctx)
    assert not nothing.reliable and release_basis(nothing, (1.0, 100.0))[0] == "lab"


def test_closed_loop_writes_and_audits(plant: PlantConfig, model: FurnaceModel,
                                       ctx: OxidationContext, recipe: dict[str, float],
                                       tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path)
    loop = ControlLoop(PATH, model, ControlConfig(aim_nm=30.0), recipe, trail)
    plan = loop.before_batch("B1", recipe, ctx, 0.0)
    assert plan.state == "written" and plan.setpoints["hold_min"] > recipe["hold_min"]
    entries = read_audit(tmp_path)
    assert [e["kind"] for e in entries] == ["write"]
    w = entries[0]
    assert w["before"]["hold_min"] == recipe["hold_min"] and w["who"] == "controller"
    assert w["after"]["hold_min"] == plan.setpoints["hold_min"] and w["result"] == "ok"
    assert "aim 30" in w["reason"]


def test_advisory_accept_from_the_command_line(model: FurnaceModel, ctx: OxidationContext,
                                               recipe: dict[str, float],
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ControlConfig(aim_nm=30.0, mode="advisory")
    loop = ControlLoop(PATH, model, cfg, recipe, AuditTrail(tmp_path))
    plan = loop.before_batch("B1", recipe, ctx, 0.0)
    assert plan.state == "open" and plan.setpoints == recipe  # nothing written yet
    pid = plan.proposal.proposal_id if plan.proposal else ""
    assert main(["control", "list", "--run", str(tmp_path)]) == 0
    assert pid in capsys.readouterr().out
    assert main(["control", "accept", pid, "--run", str(tmp_path), "--who", "Ana"]) == 0
    assert "accepted by Ana" in capsys.readouterr().out
    sp = loop.resolve(plan, 1800.0)
    assert sp["hold_min"] > recipe["hold_min"]
    kinds = [(e["kind"], e["who"], e["result"]) for e in read_audit(tmp_path)]
    assert kinds == [("proposal", "controller", "open"), ("decision", "Ana", "accepted"),
                     ("write", "Ana", "ok")]
    assert proposal_states(read_audit(tmp_path))[pid]["state"] == "written"
    # A decided proposal cannot be decided again: one-line error, exit 2.
    assert main(["control", "reject", pid, "--run", str(tmp_path), "--who", "Bo"]) == 2
    assert "not open" in capsys.readouterr().err
    assert main(["control", "verify", "--run", str(tmp_path)]) == 0


def test_advisory_reject_and_expiry(model: FurnaceModel, ctx: OxidationContext,
                                    recipe: dict[str, float], tmp_path: Path) -> None:
    cfg = ControlConfig(aim_nm=30.0, mode="advisory")
    loop = ControlLoop(PATH, model, cfg, recipe, AuditTrail(tmp_path))
    p1 = loop.before_batch("B1", recipe, ctx, 0.0)
    assert p1.proposal is not None
    assert main(["control", "reject", p1.proposal.proposal_id, "--run", str(tmp_path),
                 "--who", "Bo", "--reason", "tube being serviced"]) == 0
    assert loop.resolve(p1, 10.0) == recipe and p1.state == "rejected"
    p2 = loop.before_batch("B2", recipe, ctx, 100.0)
    assert loop.resolve(p2, 110.0) == recipe and p2.state == "expired"
    entries = read_audit(tmp_path)
    assert [e["kind"] for e in entries] == ["proposal", "decision", "proposal", "expire"]
    assert entries[1]["reason"] == "tube being serviced"
    assert not [e for e in entries if e["kind"] == "write"]


def test_loop_mode_per_loop() -> None:
    cfg = ControlConfig(mode="closed_loop", loop_modes={"oxidizer": "advisory",
                                                        "line2.sputter2": "off"})
    assert loop_mode(cfg, "line1.oxidizer1", "oxidize") == "advisory"
    assert loop_mode(cfg, "line2.sputter2", "sputter") == "off"
    assert loop_mode(cfg, "line2.sputter1", "sputter") == "closed_loop"


def test_untrusted_records_teach_no_rate_factor(plant: PlantConfig, model: FurnaceModel,
                                                ctx: OxidationContext, furnace: TrueFurnace,
                                                recipe: dict[str, float]) -> None:
    """An aborted step or a hole in the record is measured but never learnt from."""
    buf = AuditBuffer()
    loop = ControlLoop(PATH, model, ControlConfig(mode="off"), recipe, buf)
    good, true_nm, _ = run_batch(plant, furnace, loop, 0, ctx, recipe, 0.0)
    loop.after_step(good, ctx)
    used = loop.on_lab("B0", true_nm * 1.3, good.end_s + 3600.0)
    assert [o.status for o in used] == ["used"]
    state = loop.calibration.state
    for k, kw in ((1, {"status": "aborted", "fault": "breakdown"}),
                  (2, {"status": "gap", "gaps": ((1000.0, 1900.0),)})):
        res, true_nm, _ = run_batch(plant, furnace, loop, k, ctx, recipe, 20000.0 * k, **kw)
        loop.after_step(res, ctx)
        out = loop.on_lab(f"B{k}", true_nm * 3.0, res.end_s + 3600.0)
        assert [o.status for o in out] == ["rejected"]
        assert out[0].reason.startswith("not learnt from: ")
        assert ("bad status" if k == 1 else "data gap") in out[0].reason
        assert loop.calibration.state == state  # nothing learnt
        rec = buf.records[-1]
        assert rec.kind == "outlier" and rec.batch_id == f"B{k}" and rec.result == "rejected"


def test_no_correction_on_a_prediction_the_lab_contradicted_until_relearnt(
        plant: PlantConfig, model: FurnaceModel, ctx: OxidationContext, furnace: TrueFurnace,
        recipe: dict[str, float]) -> None:
    buf = AuditBuffer()
    loop = ControlLoop(PATH, model, ControlConfig(aim_nm=30.0), recipe, buf)
    t = 0.0
    for k in range(6):  # learn the tube from consistent results
        res, true_nm, _ = run_batch(plant, furnace, loop, k, ctx, recipe, t)
        loop.after_step(res, ctx)
        loop.on_lab(f"B{k}", true_nm, res.end_s + 3600.0)
        t = res.end_s + 3600.0
    assert loop.distrust == ""
    res, true_nm, _ = run_batch(plant, furnace, loop, 6, ctx, recipe, t)
    loop.after_step(res, ctx)
    out = loop.on_lab("B6", true_nm * 5.0, res.end_s + 3600.0)  # a gross contradiction
    assert [o.status for o in out] == ["suspect"]
    assert "contradicted the prediction" in loop.distrust
    plan = loop.before_batch("B7", recipe, ctx, res.end_s + 7200.0)
    assert plan.state == "suspended" and plan.proposal is None
    assert plan.setpoints == {**recipe, **loop.running}
    # The next result agrees with the model: the suspect is rejected, control resumes.
    res8, true8, _ = run_batch(plant, furnace, loop, 8, ctx, recipe, res.end_s + 7200.0)
    loop.after_step(res8, ctx)
    out = loop.on_lab("B8", true8, res8.end_s + 3600.0)
    assert {o.status for o in out} == {"used", "rejected"} and loop.distrust == ""
    assert loop.before_batch("B9", recipe, ctx, res8.end_s + 7200.0).state != "suspended"


def test_a_write_to_live_equipment_is_pending_until_the_tool_confirms_it(
        model: FurnaceModel, ctx: OxidationContext, recipe: dict[str, float]) -> None:
    for error, read_back, expect in (
            ("", None, "ok"),
            ("write of 240.0 to 'line1.oxidizer1.hold_time_sp' refused: BadOutOfRange", {},
             "failed: write of 240.0"),
            ("", {"hold_min": 1.0}, "failed: read back")):
        buf = AuditBuffer()
        loop = ControlLoop(PATH, model, ControlConfig(aim_nm=30.0), recipe, buf)
        loop.writes_pending = True
        loop.clock = lambda: 123.0
        plan = loop.before_batch("B1", recipe, ctx, 100.0)
        assert plan.state == "written" and plan.proposal is not None
        assert [(r.kind, r.result) for r in buf.records] == [("write", "pending")]
        confirm = loop.download_confirmer(plan)
        confirm(dict(plan.setpoints) if read_back is None else read_back, error)
        last = buf.records[-1]
        assert last.kind == "write" and last.result.startswith(expect), last.result
        assert last.sim_time_s == 123.0 and last.proposal_id == plan.proposal.proposal_id
        confirm(dict(plan.setpoints), "")  # a second call changes nothing
        assert len(buf.records) == 2
    # Simulated equipment applies the setpoints itself: one write, ok.
    buf = AuditBuffer()
    loop = ControlLoop(PATH, model, ControlConfig(aim_nm=30.0), recipe, buf)
    loop.before_batch("B1", recipe, ctx, 100.0)
    assert [(r.kind, r.result) for r in buf.records] == [("write", "ok")]
