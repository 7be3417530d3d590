"""The plant model's prediction point and furnace use the VM and the controller."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from twin.cli import main
from twin.config import load_plant
from twin.control.audit import read_audit, verify_audit
from twin.hidden.run import simulate


def test_simulate_records_vm_and_never_releases_unreliable_batches() -> None:
    r = simulate(load_plant(), 12, 3)
    ch = r.batches[r.batches.unit_kind == "charge"]
    ch = ch[ch.step_status.notna()]  # a charge still in the furnace at the end has no VM yet
    for col in ("vm_mean_nm", "vm_lower_nm", "vm_upper_nm", "vm_reliability", "vm_reliable",
                "vm_model_version", "vm_n_lab", "ctrl_state"):
        assert col in ch.columns
    assert ch.vm_model_version.str.startswith("vm-2/").all()
    assert (ch.vm_lower_nm <= ch.vm_mean_nm).all() and (ch.vm_mean_nm <= ch.vm_upper_nm).all()
    unreliable = ch[~ch.vm_reliable.astype(bool)]
    assert len(unreliable) >= 3  # the first charges, before the calibration has lab results
    assert unreliable.lab_requested.astype(bool).all()
    released_on_vm = unreliable.disposition_reason.fillna("").str.startswith("prediction")
    assert not released_on_vm.any()
    # Lab results reached the calibration: later charges are predicted with them.
    assert ch.vm_n_lab.max() >= 3


def test_closed_loop_moves_the_recipe_toward_aim() -> None:
    # A recipe far too short for the aim: the controller lengthens the hold.
    cfg = load_plant(None, ["recipes.oxidation.hold_min=5"])
    r = simulate(cfg, 6, 1)
    ch = r.batches[r.batches.unit_kind == "charge"].sort_values("start_s")
    assert (ch.ctrl_state == "written").any()
    assert ch.sp_hold_min.iloc[-1] > 5.0
    assert abs(ch.true_oxide_mean_nm.iloc[-3:].mean() / cfg.control.aim_nm - 1) < 0.3
    off = simulate(load_plant(None, ["recipes.oxidation.hold_min=5", "control.mode=off"]), 6, 1)
    och = off.batches[off.batches.unit_kind == "charge"]
    assert (och.sp_hold_min == 5.0).all() and (och.ctrl_state == "none").all()


def test_simulate_writes_the_audit_trail(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["simulate", "--days", "6", "--seed", "2", "--out", str(out),
                 "--set", "recipes.oxidation.hold_min=5"]) == 0
    entries = read_audit(out)
    kinds = {e["kind"] for e in entries}
    assert {"write", "calibration", "hold"} <= kinds
    assert verify_audit(out) == []
    writes = pd.DataFrame([e for e in entries if e["kind"] == "write"])
    assert (writes.who == "controller").all() and (writes.result == "ok").all()
    assert main(["control", "verify", "--run", str(out)]) == 0


def test_a_loop_can_start_from_an_earlier_runs_calibration(tmp_path: Path) -> None:
    from twin.control.plant_hooks import PlantControl, calibration_of_run

    assert main(["simulate", "--days", "8", "--seed", "2", "--out", str(tmp_path / "a")]) == 0
    start = calibration_of_run(tmp_path / "a")
    theta = start["line1.oxidizer1"]
    assert len(theta) == 4 and theta != (0.0, 0.0, 0.0, 0.0)
    cfg = load_plant()
    assert cfg.stations.oxidizer is not None and cfg.recipes.oxidation is not None
    control = PlantControl(cfg, start=start)
    loop = control.furnace_loop("line1.oxidizer1", cfg.stations.oxidizer, {})
    assert loop.calibration.theta_at(0.0) == pytest.approx(theta)
    assert loop.calibration.n_used == 0  # a start, not the earlier run's results


def test_calibration_from_a_folder_without_a_twins_record(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--calibration-from", str(tmp_path), "--hours", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "control_audit.jsonl" in err
