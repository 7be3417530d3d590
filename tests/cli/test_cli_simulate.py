"""``anode-twin simulate`` end to end (in process, and once as a real subprocess)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from twin.cli import main
from twin.config import CONFIG_DIR


def test_default_plant_prints_a_summary_and_writes_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["simulate", "--days", "3", "--seed", "5", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "plant line1 (powder), 3 days, seed 5" in text
    for needle in ("rolls/day", "kg/day", "WIP", "cycle time", "% of batches in 1-100 nm",
                   "line1.oxidizer1", "line1.mill3", "blocked", "starved"):
        assert needle in text
    b = pd.read_parquet(out / "batches.parquet")
    assert (b.unit_kind == "charge").any()
    assert (out / "run.json").is_file()
    # Each finished charge's reported furnace record is kept, on the simulation time axis.
    traj = pd.read_parquet(out / "trajectories.parquet")
    charges = b[(b.unit_kind == "charge") & b.end_s.notna()].set_index("unit_id")
    temps = traj[traj.signal == "temperature_c"]
    assert set(temps.batch_id) == set(charges.index)
    for bid, t in temps.groupby("batch_id"):
        assert t.value.max() == pytest.approx(charges.loc[bid, "sp_hold_c"], abs=10.0)
        assert t.time_s.min() >= charges.loc[bid, "start_s"] - 1e-6


def test_thin_film_plant_runs_with_overrides(capsys):
    plant = str(CONFIG_DIR / "thin_film_line.toml")
    assert main(["simulate", plant, "--days", "2", "--set", "stations.sputter.count=1"]) == 0
    text = capsys.readouterr().out
    assert "line2.sputter1" in text and "line2.sputter2" not in text
    assert "sheets/day" in text


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["simulate", "--set", "stations.mill.cont=3", "--days", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stations.mill.cont" in err[0] and "did you mean 'count'" in err[0]
    assert main(["simulate", str(tmp_path / "nope.toml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["simulate", "--days", "0"]) == 2
    assert "--days" in capsys.readouterr().err
    f = tmp_path / "f"
    f.write_text("")
    assert main(["simulate", "--days", "1", "--out", str(f)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_console_command_runs():
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "simulate", "--days", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("plant line1 (powder), 1 days, seed 1")


def test_a_station_that_needs_more_operators_than_the_crew_is_refused(capsys):
    assert main(["simulate", "--days", "1", "--set", "operators.count=0"]) == 2
    assert "operators_needed" in capsys.readouterr().err
