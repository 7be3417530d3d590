"""``anode-twin oxide`` command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from twin.cli import main
from twin.physics.oxidation import Profile, grow_flat


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
