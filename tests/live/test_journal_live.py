"""The live twin's journal end to end: the run folder is exported from it (the same tables
the run holds in memory), and after a kill -9 at a random moment the folder is rebuilt from
it with nothing lost or duplicated and an audit chain that verifies."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.live.session import _write
from connectors.net import free_port
from twin.cli import main
from twin.config import DEFAULT_PLANT as _PLANT
from twin.control.audit import verify_audit
from twin.store.export import live_batches
from twin.store.journal import JOURNAL_FILE
from twin.store.runfolder import write_batches, write_table

from .test_live_run import FAST, _emulator_pids, _furnace, _session


def _round_trip(name: str, df: pd.DataFrame, tmp: Path) -> pd.DataFrame:
    """``df`` written as the run folder writes that table, and read back."""
    (write_batches if name == "batches" else write_table)(tmp, df)
    return pd.read_parquet(tmp)


def test_the_run_folder_is_the_journal_export_of_what_the_run_held(tmp_path: Path) -> None:
    plc = _furnace(4, free_port(), 2400)
    try:
        session = _session(tmp_path, plc.url, seed=4, time_factor=2400, hours=12,
                           server=False)
        result, interrupted = asyncio.run(session.run())
        # What the run holds in memory, as the run folder used to be written from it.
        traj = pd.concat(session.trajectories, ignore_index=True)
        expect = {
            "batches": live_batches(result.batches.copy(), traj, session.stations(),
                                    session.live_from),
            "events": result.events, "states": result.states, "shares": result.shares,
            "trajectories": traj}
        out = _write(session, result, session.opts, interrupted, [])
    finally:
        plc.stop()
    assert (out / JOURNAL_FILE).is_file()
    for name, df in expect.items():
        got = pd.read_parquet(out / f"{name}.parquet")
        pd.testing.assert_frame_equal(got, _round_trip(name, df, tmp_path / f"mem_{name}.parquet"),
                                      check_dtype=True, obj=name)
    assert verify_audit(out) == []
    meta = json.loads((out / "run.json").read_text())
    assert meta["summary"]["units_made"] == result.summary["units_made"]
    assert meta["live"]["interrupted"] is False


def _calibration_chain(audit: list[dict[str, object]]) -> list[str]:
    """Breaks in the calibration's continuity: each learning record starts from the state the
    previous one of its loop left (a twin that restarted its calibration would not)."""
    last: dict[str, dict[str, float]] = {}
    breaks = []
    for r in audit:
        before, after = r.get("before"), r.get("after")
        if r["kind"] not in ("calibration", "outlier") or not isinstance(before, dict) \
                or "log_rate_factor" not in before or not isinstance(after, dict):
            continue
        num = {k: float(v) for k, v in before.items() if isinstance(v, (int, float))}
        prev = last.get(str(r["loop"]))
        if prev is not None and any(abs(num[k] - prev[k]) > 1e-9 for k in prev if k in num):
            breaks.append(f"{r['seq']}: {num} after {prev}")
        last[str(r["loop"])] = {k: float(v) for k, v in after.items()
                                if isinstance(v, (int, float)) and k != "measured_nm"}
    return breaks


def test_kill_9_at_a_random_moment_then_export_and_resume(tmp_path: Path) -> None:
    rng = np.random.default_rng()
    delay = float(rng.uniform(8.0, 40.0))
    seed = str(int(rng.integers(1000, 9000)))
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "run", "--out", str(out),
                             "--hours", "24", "--seed", seed, *FAST],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    note = f"killed after {delay:.1f} s (seed {seed})"
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    # The emulated PLCs die with the twin that started them.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and (_emulator_pids(seed)
                                           or _emulator_pids(str(int(seed) + 100))):
        time.sleep(0.2)
    assert _emulator_pids(seed) == [] and _emulator_pids(str(int(seed) + 100)) == [], note
    before: dict[str, tuple[list[str], int]] = {}
    for line in ("line1", "line2"):
        folder = out / line
        if not (folder / JOURNAL_FILE).is_file():
            assert delay < 15.0, note  # killed before the twin started this line
            continue
        db = sqlite3.connect(folder / JOURNAL_FILE)
        journaled = [json.loads(r)["unit_id"] for (r,) in
                     db.execute("SELECT row FROM units ORDER BY ord")]
        n_audit = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        db.close()
        before[line] = (journaled, n_audit)
        # What the journal had, exported as it is (the folder of a crashed twin).
        assert main(["export", str(folder)]) == 0, note
        assert verify_audit(folder) == [], note
        assert len((folder / "control_audit.jsonl").read_text().splitlines()) == n_audit
        b = pd.read_parquet(folder / "batches.parquet")
        assert len(b["unit_id"]) == b["unit_id"].nunique(), note
        assert set(journaled) <= set(b["unit_id"]), note
        assert json.loads((folder / "run.json").read_text())["live"]["recovered_from_journal"]
    if not before:
        return
    # Resumed: the same run continues; what it had done is not run again.
    res = subprocess.run([sys.executable, "-m", "twin.cli", "run", "--resume", str(out),
                          "--quiet"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, (note, res.stderr[-2000:])
    assert "Traceback" not in res.stderr
    for line, (journaled, n_audit) in before.items():
        folder = out / line
        b = pd.read_parquet(folder / "batches.parquet")
        assert len(b["unit_id"]) == b["unit_id"].nunique(), note  # 0 duplicated
        assert set(journaled) <= set(b["unit_id"]), note  # 0 lost
        assert json.loads((folder / "run.json").read_text())["live"]["interrupted"] is False
        assert verify_audit(folder) == [], note
        audit = [json.loads(x) for x in
                 (folder / "control_audit.jsonl").read_text().splitlines()]
        assert len(audit) >= n_audit
        # Nothing recorded before the kill is recorded again: no batch has a second hold
        # or a second pre-batch write.
        seen = [(a["kind"], a["batch_id"], a["proposal_id"], a["result"]) for a in audit
                if a["kind"] in ("hold", "write", "proposal")]
        assert len(seen) == len(set(seen)), note
        assert _calibration_chain(audit) == [], note
    assert _emulator_pids(seed) == [] and _emulator_pids(str(int(seed) + 100)) == []


async def _plc_state(url: str) -> tuple[str, str]:
    from asyncua import Client

    async with Client(url) as client:
        bid = await client.get_node("ns=2;s=furnace1.BatchControl.BatchId").read_value()
        step = await client.get_node("ns=2;s=furnace1.StepState.CurrentState").read_value()
    return str(bid or ""), str(getattr(step, "Text", step) or "")


def test_resume_completes_a_batch_the_site_plc_finished_while_the_twin_was_down(
        tmp_path: Path) -> None:
    from .test_live_run import _site_file

    plc = _furnace(11, free_port(), 2400)  # a site's PLC: not the twin's, it keeps running
    out = tmp_path / "run"
    try:
        site = _site_file(tmp_path, plc.url)
        proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "run", "--site", str(site),
                                 "--hours", "30", "--seed", "2", "--out", str(out),
                                 "--no-server", *FAST],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 90.0
        state = ("", "")
        while time.monotonic() < deadline:
            state = asyncio.run(_plc_state(plc.url))
            if state[0] and state[1] == "Holding":
                break
            time.sleep(0.2)
        assert state[1] == "Holding", state
        os.kill(proc.pid, signal.SIGKILL)  # the twin dies while the PLC holds its batch
        proc.wait(10)
        lost = state[0]
        while time.monotonic() < deadline + 60.0:
            now = asyncio.run(_plc_state(plc.url))
            if now[0] != lost or now[1] in ("Complete", "Aborted", "Held"):
                break
            time.sleep(0.2)
        assert plc.proc.poll() is None  # a site's PLC is not the twin's to stop
        res = subprocess.run([sys.executable, "-m", "twin.cli", "run", "--resume", str(out),
                              "--no-server", "--quiet"], capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
    finally:
        plc.stop()
    b = pd.read_parquet(out / "batches.parquet").set_index("unit_id")
    row = b.loc[lost]
    assert ids_unique(b)
    # The PLC finished the batch while the twin was down: the resumed twin takes it as
    # complete with a gap in its record, and its lab result from the PLC.
    assert now == (lost, "Complete"), now
    assert row["step_status"] == "gap", row["step_status"]
    assert row["data_gap_count"] >= 1
    assert np.isfinite(row["measured_oxide_nm"])
    assert verify_audit(out) == []


def ids_unique(b: pd.DataFrame) -> bool:
    return bool(b.index.is_unique)


def test_a_twin_killed_during_its_warm_up_resumes(tmp_path: Path) -> None:
    """Killed before it went live (the journal exists, nothing live in it yet): the resumed
    twin simulates the warm-up again and goes live."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "run", str(_PLANT), "--out",
                             str(out), "--hours", "12", "--seed", "7", *FAST],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:  # until the journal says what the run is
        if (out / JOURNAL_FILE).is_file():
            db = sqlite3.connect(out / JOURNAL_FILE)
            try:
                if db.execute("SELECT 1 FROM meta WHERE key='options'").fetchone():
                    break
            except sqlite3.OperationalError:
                pass  # the file is there, its tables not yet
            finally:
                db.close()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    db = sqlite3.connect(out / JOURNAL_FILE)
    live_from = db.execute("SELECT value FROM meta WHERE key='live_from'").fetchone()
    db.close()
    assert live_from is None  # it died in the warm-up
    res = subprocess.run([sys.executable, "-m", "twin.cli", "run", "--resume", str(out),
                          "--quiet"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    b = pd.read_parquet(out / "batches.parquet")
    assert b["live_equipment"].astype(bool).any() and b["unit_id"].is_unique
    assert verify_audit(out) == []
