"""``anode-twin oxide`` command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from twin.cli import main
from twin.cli.oxide import NATIVE_LAW, PSAT_25C_ATM, saturation_pressure_atm
from twin.physics.oxidation import Profile, grow_flat
from twin.physics.oxidation_native import native_oxide_nm

DAY_MIN = "1440"
ROOM_AIR = ("--material", "Si", "--ambient", "air", "--temperature-c", "25", "--minutes",
            DAY_MIN, "--rh-percent", "45")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    code = main(["oxide", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else {}), err


def test_dry_o2_flat(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--ambient", "dry_o2", "--temperature-c", "900",
                       "--minutes", "60")
    assert code == 0
    assert out["thickness_nm"] == pytest.approx(grow_flat(Profile.constant(900, 3600)), rel=1e-6)
    assert out["law"] == "deal-grove+thin(suprem)" and out["regime"] in ("thin", "linear")
    assert out["po2_atm"] == 1.0 and out["ph2o_atm"] == 0.0 and out["orientation"] == "100"


def test_wet_default_pressure_and_parabolic(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--ambient", "wet_h2o", "--temperature-c", "1100",
                       "--minutes", "240", "--orientation", "111")
    assert code == 0 and out["ph2o_atm"] == pytest.approx(0.842, abs=1e-3)
    assert out["regime"] == "parabolic" and 1300 < out["thickness_nm"] < 1500


def test_air_humidity_and_particle(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--ambient", "air", "--rh-percent", "50", "--temperature-c",
                       "900", "--minutes", "240", "--radius-nm", "10", "--initial-nm", "1")
    assert code == 0 and out["po2_atm"] == 0.21
    assert out["ph2o_atm"] == pytest.approx(0.5 * 3.169 / 101.325)
    assert out["radius_nm"] == 10 and "fully_oxidised" in out


def test_tin_and_massoud(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--material", "Sn", "--ambient", "air", "--temperature-c", "25",
                       "--minutes", "1440")
    assert code == 0 and out["regime"] == "logarithmic" and 2.0 <= out["thickness_nm"] <= 4.0
    code, out, _ = run(capsys, "--temperature-c", "800", "--minutes", "30", "--thin-model",
                       "massoud")
    assert code == 0 and out["law"] == "deal-grove+thin(massoud)"
    assert out["thickness_nm"] == pytest.approx(3.4, abs=0.3)  # reference row thin-15


def test_profile_file(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.csv"
    f.write_text("time_s,temperature_c,po2_atm,ph2o_atm\n0,25,1,0\n3750,650,1,0\n"
                 "5700,650,1,0\n7200,25,1,0\n")
    code, out, _ = run(capsys, "--profile", str(f))
    assert code == 0 and out["minutes"] == 120 and out["max_temperature_c"] == 650
    assert out["thickness_nm"] == pytest.approx(grow_flat(Profile.from_csv(f)), rel=1e-6)


@pytest.mark.parametrize(("args", "message"), [
    (["--material", "Sn", "--temperature-c", "250", "--minutes", "5"], "tin melts"),
    (["--temperature-c", "900", "--minutes", "-5"], "--minutes"),
    (["--temperature-c", "900", "--minutes", "5", "--orientation", "112"], "--orientation"),
    (["--profile", "/no/such/profile.csv"], "profile.csv"),
    (["--ambient", "dry_o2", "--rh-percent", "40", "--temperature-c", "900", "--minutes", "5"],
     "--rh-percent"),
    (["--minutes", "5"], "--temperature-c"),
    (["--ambient", "air", "--temperature-c", "-80", "--minutes", "5"], "--temperature-c"),
    (["--temperature-c", "25", "--minutes", "5", "--radius-nm", "-1"], "--radius-nm"),
])
def test_bad_arguments_exit_2_one_line(capsys: pytest.CaptureFixture[str], args: list[str],
                                       message: str) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_console_script_subprocess() -> None:
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "oxide", "--ambient", "dry_o2",
                           "--temperature-c", "1000", "--minutes", "60"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["thickness_nm"] > 40
    bad = subprocess.run([sys.executable, "-m", "twin.cli", "oxide", "--material", "Sn",
                          "--temperature-c", "300", "--minutes", "1"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


# --------------------------------------------------------------- room air: the native law


def test_room_air_bare_si_uses_native_law(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *ROOM_AIR)
    assert code == 0
    assert out["law"] == NATIVE_LAW and out["law"].startswith("native")
    assert out["regime"] == "logarithmic" and out["furnace_nm"] is None
    assert "native" in out["rule"]
    assert 1.0 <= out["thickness_nm"] <= 1.5  # was 5e-24 nm from the furnace law
    assert out["thickness_nm"] == pytest.approx(
        native_oxide_nm(86400.0, rh_percent=45.0, po2_atm=0.21, temperature_c=25.0), rel=1e-9)


def test_room_air_continues_from_initial_oxide(capsys: pytest.CaptureFixture[str]) -> None:
    _, bare, _ = run(capsys, *ROOM_AIR)
    code, out, _ = run(capsys, *ROOM_AIR, "--initial-nm", "1.2")
    assert code == 0 and out["law"] == NATIVE_LAW
    x = out["thickness_nm"]
    assert 1.2 < x < 2.0  # grows (was exactly 1.2) and stays below the ~2 nm ceiling
    # The log law continues from the equivalent age: far less than adding a day on top.
    assert x < 1.2 + 0.5 * bare["thickness_nm"]
    assert x == pytest.approx(native_oxide_nm(86400.0, rh_percent=45.0, initial_nm=1.2),
                              rel=1e-9)


def test_room_air_self_limits(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--ambient", "air", "--rh-percent", "80", "--temperature-c", "25",
                       "--minutes", str(60 * 24 * 365))
    assert code == 0 and out["regime"] == "self-limited" and 1.8 <= out["thickness_nm"] < 2.0


@pytest.mark.parametrize("ambient", ["dry_o2", "wet_h2o"])
def test_room_temperature_si_needs_o2_and_water(capsys: pytest.CaptureFixture[str],
                                                ambient: str) -> None:
    code, out, _ = run(capsys, "--ambient", ambient, "--temperature-c", "25", "--minutes",
                       DAY_MIN, "--initial-nm", "0.7")
    assert code == 0 and out["law"] == NATIVE_LAW
    assert out["regime"] == "none" and out["thickness_nm"] == 0.7


def test_room_temperature_dry_o2_with_added_water_grows(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--ambient", "dry_o2", "--ph2o-atm", str(0.5 * PSAT_25C_ATM),
                       "--temperature-c", "25", "--minutes", DAY_MIN)
    assert code == 0 and out["regime"] == "logarithmic" and 1.0 < out["thickness_nm"] < 2.0


def test_tin_room_air_native_in_dry_o2_too(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--material", "Sn", "--ambient", "dry_o2", "--temperature-c",
                       "25", "--minutes", DAY_MIN)
    assert code == 0 and out["law"] == NATIVE_LAW and 2.0 <= out["thickness_nm"] <= 4.0


def test_rh_is_taken_at_the_run_temperature(capsys: pytest.CaptureFixture[str]) -> None:
    assert saturation_pressure_atm(25.0) == pytest.approx(PSAT_25C_ATM, rel=1e-12)
    assert saturation_pressure_atm(100.0) == pytest.approx(1.0, rel=2e-3)
    code, out, _ = run(capsys, "--ambient", "air", "--rh-percent", "45", "--temperature-c", "40",
                       "--minutes", DAY_MIN)
    rh_40 = 45.0 * PSAT_25C_ATM / saturation_pressure_atm(40.0)
    assert code == 0 and out["thickness_nm"] == pytest.approx(
        native_oxide_nm(86400.0, rh_percent=rh_40, temperature_c=40.0), rel=1e-9)


def test_room_temperature_profile_uses_native_law(tmp_path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    ph2o = 0.45 * PSAT_25C_ATM
    hold = tmp_path / "hold.csv"
    hold.write_text(f"minutes,temperature_c,po2_atm,ph2o_atm\n0,25,0.21,{ph2o}\n"
                    f"600,25,0.21,{ph2o}\n1440,25,0.21,{ph2o}\n")
    code, out, _ = run(capsys, "--profile", str(hold))
    _, iso, _ = run(capsys, *ROOM_AIR)
    assert code == 0 and out["law"] == NATIVE_LAW
    assert out["thickness_nm"] == pytest.approx(iso["thickness_nm"], rel=1e-9)
    warm = tmp_path / "warm.csv"  # 25 -> 60 -> 25 °C: between the two isothermal results
    warm.write_text(f"minutes,temperature_c,po2_atm,ph2o_atm\n0,25,0.21,{ph2o}\n"
                    f"720,60,0.21,{ph2o}\n1440,25,0.21,{ph2o}\n")
    code, out, _ = run(capsys, "--profile", str(warm))
    _, hot, _ = run(capsys, "--ambient", "air", "--ph2o-atm", str(ph2o), "--temperature-c", "60",
                    "--minutes", DAY_MIN)
    assert code == 0 and out["law"] == NATIVE_LAW
    assert iso["thickness_nm"] < out["thickness_nm"] < hot["thickness_nm"]


# --------------------------------------------------------------- above 100 °C


def test_band_native_floor_answers_in_humid_air(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--ambient", "air", "--rh-percent", "45", "--temperature-c",
                       "300", "--minutes", "60")
    assert code == 0 and out["law"] == NATIVE_LAW and "larger" in out["rule"]
    assert out["furnace_nm"] < 1e-6 < out["thickness_nm"] == out["native_nm"]


def test_furnace_law_answers_when_larger(capsys: pytest.CaptureFixture[str]) -> None:
    ph2o = 0.45 * PSAT_25C_ATM
    code, out, _ = run(capsys, "--ambient", "air", "--rh-percent", "45", "--temperature-c",
                       "800", "--minutes", "60")
    assert code == 0 and out["law"] == "deal-grove+thin(suprem)"
    assert out["thickness_nm"] == out["furnace_nm"] > out["native_nm"] > 0
    assert out["thickness_nm"] == pytest.approx(
        grow_flat(Profile.constant(800, 3600, 0.21, ph2o)), rel=1e-9)


def test_no_jump_at_the_room_threshold(capsys: pytest.CaptureFixture[str]) -> None:
    common = ("--ambient", "air", "--rh-percent", "45", "--minutes", DAY_MIN)
    _, at, _ = run(capsys, *common, "--temperature-c", "100")
    _, above, _ = run(capsys, *common, "--temperature-c", "100.5")
    assert at["rule"] != above["rule"] and above["law"] == NATIVE_LAW
    assert above["thickness_nm"] == pytest.approx(at["thickness_nm"], rel=1e-9)


def test_console_script_room_air() -> None:
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "oxide", *ROOM_AIR, "--initial-nm",
                           "1.2"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["law"] == NATIVE_LAW and 1.2 < out["thickness_nm"] < 2.0
