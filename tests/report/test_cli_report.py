"""``anode-twin report``: files written, one-line errors with exit code 2, escaping."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from report_runs import campaign_units, write_run

from twin.cli import main


def test_report_writes_campaign_and_batches(make_run: Callable[..., Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run([{}, {"measured_nm": 150.0}, {"vm_reliability": 0.2}])
    out = tmp_path / "out"
    assert main(["report", str(run), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line == (f"3 batch(es): 1 released, 1 held, 1 rejected (33% released); "
                    f"report: {out / 'index.html'}")
    names = sorted(p.name for p in (out / "batches").iterdir())
    assert names == [f"C00000{i}.{ext}" for i in (1, 2, 3) for ext in ("coa.json", "html")]
    assert not list(out.rglob("*.tmp"))


def test_single_batch_defaults_to_run_report_folder(make_run: Callable[..., Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run([{}, {}])
    assert main(["report", str(run), "--batch", "C000002"]) == 0
    assert "1 released" in capsys.readouterr().out
    assert (run / "report" / "batches" / "C000002.html").is_file()
    assert not (run / "report" / "batches" / "C000001.html").exists()
    assert not (run / "report" / "index.html").exists()


@pytest.mark.parametrize("args", [
    ["report", "{run}", "--batch", "C999999"],
    ["report", "{run}", "--batch", "L000002"],
    ["report", "{empty}"],
])
def test_errors_are_one_line_exit_2(make_run: Callable[..., Path], tmp_path: Path,
                                    args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run([{}])
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [a.format(run=run, empty=empty) for a in args]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1
    assert lines[0].startswith("anode-twin report: error: ")
    if "C999999" in argv:
        assert "unknown batch id 'C999999'" in lines[0] and "C000001" in lines[0]


def test_missing_run_dir_end_to_end(tmp_path: Path) -> None:
    # The real console entry point in a subprocess: one line on stderr, exit 2, no traceback.
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "report", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"anode-twin report: error: {tmp_path / 'nope'}: no such run directory\n"


def test_damaged_batch_table_is_a_one_line_error(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "r", campaign_units([{}]))
    (run / "batches.parquet").write_bytes(b"PAR1 not really parquet")
    assert main(["report", str(run)]) == 2
    assert "batches.parquet: not a readable Parquet file" in capsys.readouterr().err


def test_text_from_the_run_is_escaped(tmp_path: Path) -> None:
    units = campaign_units([{}])
    evil = '<script>alert("x")</script>'
    for u in units:
        if u["unit_kind"] == "charge":
            u["unit_id"] = f"C1{evil}"
            u["path"] = f"line1.oxidizer1{evil}"
        if u["unit_kind"] == "roll":
            u["parent_ids"] = f"C1{evil}"
    run = write_run(tmp_path / "r", units)
    assert main(["report", str(run)]) == 0
    pages = list((run / "report" / "batches").glob("*.html"))
    assert len(pages) == 1 and "/" not in pages[0].name
    for page in [*pages, run / "report" / "index.html"]:
        html = page.read_text(encoding="utf-8")
        assert "<script>" not in html and "&lt;script&gt;" in html


def test_run_without_optional_tables_still_reports(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "r", campaign_units([{}, {"measured_nm": 5.0}]), audit=None)
    for name in ("events.parquet", "states.parquet", "run.json"):
        (run / name).unlink()
    assert main(["report", str(run)]) == 0
    html = (run / "report" / "index.html").read_text(encoding="utf-8")
    assert "control_audit.jsonl: no data in the run folder" in html
    # Closed-loop line without its audit trail: the plant's decisions stand, each batch is
    # flagged for review (DATA-AUDIT); the run is unchanged.
    assert "2 released" in capsys.readouterr().out
    assert "DATA-AUDIT" in html
    assert pd.read_parquet(run / "batches.parquet").shape[0] == 10
