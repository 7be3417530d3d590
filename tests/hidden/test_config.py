"""Truth files: shipped names, one-line errors naming file, key, expected and given (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.cli import main
from twin.config import CONFIG_DIR, load_plant
from twin.errors import ConfigError
from twin.hidden.config import load_truth, truth_names
from twin.hidden.world import HiddenPlant


def test_three_truths_ship_and_load() -> None:
    assert {"nominal", "aged_furnace", "other_kinetics"} <= set(truth_names())
    for name in truth_names():
        assert load_truth(name).truth.name == name


def _cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_unknown_key_names_file_and_key(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[truth]\nname = "bad"\n[furnace]\nthermocuple_offset_c = 3.0\n')
    err = _cli_error(capsys, "simulate", "--days", "1", "--truth", str(bad))
    assert str(bad) in err and "'furnace.thermocuple_offset_c'" in err
    assert "thermocouple_offset_c" in err.split("expected", 1)[1]  # the keys it may be


def test_value_out_of_range_names_expected_and_given(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "hot.toml"
    bad.write_text('[truth]\nname = "hot"\n[furnace]\nthermocouple_offset_c = 250.0\n')
    err = _cli_error(capsys, "simulate", "--days", "1", "--truth", str(bad))
    assert "'furnace.thermocouple_offset_c'" in err and "100" in err and "250" in err


def test_unknown_shipped_name(capsys: pytest.CaptureFixture[str]) -> None:
    err = _cli_error(capsys, "simulate", "--days", "1", "--truth", "nominel")
    assert "nominel" in err and "nominal" in err


def test_plc_refuses_a_bad_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[truth]\nname = "bad"\n[sputter]\nrate_factor = -1\n')
    err = _cli_error(capsys, "plc", "sputter", "--port", "0", "--truth", str(bad))
    assert "'sputter.rate_factor'" in err


def test_a_recipe_that_melts_a_free_tin_phase_is_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    err = _cli_error(capsys, "simulate", "--days", "1", "--set",
                     "alloy.composition_wt={ Si = 0.6, Sn = 0.4 }")
    assert "recipes.oxidation.hold_c 825" in err and "free Sn phase" in err


def test_a_truth_that_melts_the_tin_phase_is_refused(tmp_path: Path) -> None:
    cfg = load_plant(None, ["alloy.composition_wt={ Si = 0.6, Sn = 0.4 }",
                            "recipes.oxidation.hold_c=225.0"])
    warm = tmp_path / "warm.toml"
    warm.write_text('[truth]\nname = "warm"\n[furnace]\nthermocouple_offset_c = 9.0\n')
    with pytest.raises(ConfigError, match=r"warm.toml: key 'furnace.thermocouple_offset_c'.*"
                                          r"234 °C.*231.928"):
        HiddenPlant.load(warm, cfg, 1)
    HiddenPlant.load("nominal", cfg, 1)  # 225 + 4 °C stays solid


def test_a_plant_file_with_a_truth_table_is_told_where_it_goes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "old_plant.toml"
    old.write_text((CONFIG_DIR / "powder_line.toml").read_text()
                   + "\n[stations.oxidizer.truth]\nrate_factor = 0.8\n")
    err = _cli_error(capsys, "validate", str(old))
    assert "stations.oxidizer.truth" in err and "--truth" in err
