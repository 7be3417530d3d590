"""``anode-twin validate``: exit 0 with a one-line summary, 2 with a one-line error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from twin.cli import main
from twin.config import CONFIG_DIR


@pytest.mark.parametrize("name", ["powder_line.toml", "thin_film_line.toml"])
def test_validate_ok(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(CONFIG_DIR / name)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and ": ok: plant " in out[0]


def test_validate_bad_override(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", str(CONFIG_DIR / "powder_line.toml"),
                 "--set", "stations.mill.count=x"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "stations.mill.count" in err[0]


def test_validate_missing_file_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "validate", str(tmp_path / "x.toml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "x.toml: no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "invalid choice" in capsys.readouterr().err
