"""Study files: the shipped examples load; bad files give one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.cli import main
from twin.config.load import DEFAULT_PLANT
from twin.errors import ConfigError
from twin.studies.definition import STUDY_DIR, load_study


@pytest.mark.parametrize("name", ["add_mill", "charge_size", "reliability"])
def test_shipped_studies_load(name: str) -> None:
    study = load_study(STUDY_DIR / f"{name}.toml")
    assert study.name == name and len(study.scenarios) >= 3
    assert study.base == study.scenarios[0].name
    keys = {sc.run_key(study.days, study.seed, study.bucket_h) for sc in study.scenarios}
    assert len(keys) == len(study.scenarios)  # each scenario really changes the plant


def test_scenario_overrides_reach_the_plant() -> None:
    study = load_study(STUDY_DIR / "add_mill.toml")
    assert study.scenario("base").plant.stations.mill.count == 3  # type: ignore[union-attr]
    assert study.scenario("four_mills").plant.stations.mill.count == 4  # type: ignore[union-attr]
    assert len(study.scenario("two_shifts").plant.operators.shifts) == 2


def test_command_line_overrides_make_a_quick_study() -> None:
    study = load_study(STUDY_DIR / "reliability.toml", days=4, replications=3)
    assert study.days == 4 and study.replications == 3
    assert study.precision is None  # --replications means exactly that many
    assert study.warmup_days == 2.0  # the fixed 5-day warm-up is cut to half the horizon


HEAD = f'[study]\nname = "x"\nplant = "{DEFAULT_PLANT}"\ndays = 10\n'
BAD = [
    (HEAD + "dayz = 3\n[scenarios.a]\n", ["unknown key 'study.dayz'", "did you mean 'days'"]),
    (HEAD + '[scenarios.a]\nset = ["stations.mil.count=4"]\n',
     ["scenario 'a'", "unknown key 'stations.mil'"]),
    (HEAD + '[scenarios.a]\nset = ["stations.mill.count=-1"]\n',
     ["scenario 'a'", "key 'stations.mill.count'", "-1"]),
    (HEAD + '[scenarios.a]\nset = ["stations.mill.count"]\n', ["scenario 'a'", "key=value"]),
    (HEAD + '[scenarios.a]\nsett = []\n', ["unknown key 'scenarios.a.sett'", "'set'"]),
    (HEAD + "warmup_days = 12\n[scenarios.a]\n", ["key 'study.warmup_days'"]),
    (HEAD + "kpis = ['thruput']\n[scenarios.a]\n", ["key 'study.kpis.0'"]),
    (HEAD + "[precision]\nhalf_width = {thruput = 1}\n[scenarios.a]\n",
     ["key 'precision.half_width'", "thruput"]),
    (HEAD + "[precision]\n[scenarios.a]\n", ["precision", "half_width"]),
    (HEAD, ["missing key 'scenarios'"]),
    ('[study]\nname = "x"\nplant = "nope.toml"\ndays = 10\n[scenarios.a]\n',
     ["key 'study.plant'", "no such file"]),
    (HEAD + 'base = "b"\n[scenarios.a]\n', ["study.base", "'b'"]),
]


@pytest.mark.parametrize(("text", "needles"), BAD)
def test_bad_study_file_is_one_line_naming_the_key(tmp_path: Path, text: str,
                                                   needles: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_study(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    for needle in needles:
        assert needle in msg


def test_cli_bad_file_exit_2_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD[0][0])
    assert main(["study", str(path), "--quiet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown key 'study.dayz'" in err
    assert not (tmp_path / "o").exists()


def test_cli_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = STUDY_DIR / "add_mill.toml"
    assert main(["study", str(study), "--workers", "0"]) == 2
    assert main(["study", str(study), "--dask", "somewhere"]) == 2
    assert main(["study", str(study), "--replications", "1"]) == 2
    assert main(["study", str(study), "--workers", "2", "--dask", "local"]) == 2
    assert "--workers" in capsys.readouterr().err
