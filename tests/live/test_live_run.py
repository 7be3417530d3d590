"""The live twin end to end: emulated PLCs in subprocesses, real OPC UA on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from asyncua import Client

from connectors.emulators import tagmap
from connectors.live.launcher import EmulatorProcess, start_emulator
from connectors.live.session import LiveOptions, LiveSession, emulated_site, record_decision
from connectors.net import free_port
from connectors.security_common import Account
from connectors.twin_server import ServerSecurity
from twin.cli import main
from twin.config import DEFAULT_PLANT, load_plant, read_toml
from twin.config.load import CONFIG_DIR
from twin.control.audit import AuditBuffer, AuditRecord

FAST = ["--time-factor", "2400", "--warmup-days", "2", "--quiet"]


def _emulator_pids(marker: str) -> list[int]:
    """PIDs of emulated PLC processes whose command line holds ``marker``."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"plc" in cmd and marker.encode() in cmd:
            pids.append(int(d.name))
    return pids


def test_main_job_runs_and_leaves_no_plc_behind(tmp_path: Path) -> None:
    # No plant file: both shipped lines run side by side, the powder line's furnace on an
    # emulated furnace PLC and the thin-film line's first sputter tool on a sputter PLC.
    out = tmp_path / "run"
    # README command 1 as shipped (24 h, seed 1; the emulators get seed and seed + 100, which
    # finds them below). With it a lab answer lands after the run's last slice (seen in 3 of
    # 3 runs): the record must still hold it.
    seed = "1"
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "run", "--out", str(out),
                           "--hours", "24", "--seed", seed, *FAST[:-1]],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "sim time" in proc.stdout
    # The web view of both lines is served while they run; its address comes first.
    assert proc.stdout.startswith("web view: http://127.0.0.1:"), proc.stdout[:200]
    assert "line1.oxidizer1" in proc.stdout and "line2.sputter1" in proc.stdout
    assert f"run folder: {out / 'line1'}" in proc.stdout
    for line, station, kind in (("line1", "line1.oxidizer1", "charge"),
                                ("line2", "line2.sputter1", "run")):
        folder = out / line
        meta = json.loads((folder / "run.json").read_text())
        assert meta["command"] == "run" and meta["live"]["live_stations"] == [station]
        batches = pd.read_parquet(folder / "batches.parquet")
        traj = pd.read_parquet(folder / "trajectories.parquet")
        live = batches[batches["live_equipment"].astype(bool)]
        assert len(live) >= 1 and kind in set(live["unit_kind"])
        done = traj[traj["complete"]]
        assert set(traj["batch_id"]) <= set(batches["unit_id"])  # unfinished ones kept too
        assert len(done) and set(done["batch_id"]) <= set(live["unit_id"])
        # What did not run on the PLC is marked so (the simulated warm-up, simulated tools).
        assert not batches[batches["start_s"] < 2 * 86400.0]["live_equipment"].any()
        # The calibration learns from the line only: never from a lab result of the warm-up
        # or of a tool the twin only models (those are audited as not learnt from).
        audit = [json.loads(x) for x in (folder / "control_audit.jsonl").read_text().splitlines()]
        learnt = {r["batch_id"] for r in audit if r["kind"] == "calibration"}
        assert learnt <= set(live["unit_id"])
        # A write to the PLC is pending until the PLC's read-back confirms it (or it failed).
        for r in audit:
            if r["kind"] == "write" and r["result"] == "pending":
                later = [x for x in audit if x["kind"] == "write" and x["seq"] > r["seq"]
                         and x["proposal_id"] == r["proposal_id"] and x["result"] != "pending"]
                assert len(later) == 1 and (later[0]["result"] == "ok"
                                            or later[0]["result"].startswith("failed: ")), r
            if r["kind"] == "write" and r["batch_id"] in set(live["unit_id"]) \
                    and "/hold" not in r["proposal_id"]:
                assert r["result"] != "ok" or any(
                    x["kind"] == "write" and x["result"] == "pending" and x["seq"] < r["seq"]
                    and x["proposal_id"] == r["proposal_id"] for x in audit), r
        refused = [r for r in audit if r["kind"] == "outlier"
                   and "simulated equipment, not on the line" in r["reason"]]
        assert refused and {r["batch_id"] for r in refused}.isdisjoint(set(live["unit_id"]))
        for name in ("events", "states", "shares", "gateway_events"):
            assert (folder / f"{name}.parquet").is_file()
    # Each live charge's trajectory is the PLC's actual values: it reaches the hold setpoint.
    batches = pd.read_parquet(out / "line1" / "batches.parquet").set_index("unit_id")
    traj = pd.read_parquet(out / "line1" / "trajectories.parquet")
    temps = traj[traj["complete"] & (traj["signal"] == "temperature_c")]
    assert len(temps)
    for bid, t in temps.groupby("batch_id"):
        assert t["value"].max() == pytest.approx(batches.loc[bid, "sp_hold_c"], abs=15.0)
        assert t["time_s"].is_monotonic_increasing
    # Every lab result the operator saw in the table is in the batch record, even one that
    # landed after the last slice of the run.
    shown = [ln.split() for ln in proc.stdout.splitlines() if " Lab " in ln]
    assert shown
    for line in ("line1", "line2"):
        measured = pd.read_parquet(out / line / "batches.parquet").set_index("unit_id")[
            "measured_oxide_nm"]
        for cols in shown:
            if cols[1] in measured.index and cols[2].startswith(f"{line}."):
                assert measured[cols[1]] == pytest.approx(float(cols[-1]), abs=0.006), cols
    sputter = pd.read_parquet(out / "line2" / "trajectories.parquet")
    assert {"power_w", "o2_sccm"} <= set(sputter["signal"])
    time.sleep(0.5)
    assert _emulator_pids(seed) == [] and _emulator_pids(str(int(seed) + 100)) == []


def _site_file(tmp_path: Path, url: str) -> Path:
    """A site file: the default plant plus the tag map of one furnace PLC at ``url``."""
    cfg = load_plant()
    assert cfg.stations.oxidizer is not None
    lines = [DEFAULT_PLANT.read_text(), "", "[endpoints.furnace1]", f'url = "{url}"',
             'heartbeat = { node = "ns=2;s=furnace1.BatchControl.Heartbeat", '
             'type = "UInt32", period_s = 1.0 }', "reconnect_min_s = 0.2",
             "reconnect_max_s = 1.0", ""]
    local = tagmap.furnace_tags("furnace1", cfg.stations.oxidizer.limits,
                                cfg.stations.oxidizer.plc.zones,
                                cfg.stations.oxidizer.capacity_kg)
    for signal_name, tag in tagmap.station_tags("line1.oxidizer1", "furnace1", local).items():
        lines.append(f'[tags."{signal_name}"]')
        for k, v in tag.items():
            lines.append(f"{k} = {json.dumps(v, ensure_ascii=False)}")
        lines.append("")
    path = tmp_path / "site.toml"
    path.write_text("\n".join(lines))
    return path


def test_site_file_connects_to_a_running_plc(tmp_path: Path) -> None:
    plc = _furnace(5, free_port(), 2400)
    try:
        site = _site_file(tmp_path, plc.url)
        assert main(["validate", str(site)]) == 0
        out = tmp_path / "run"
        code = main(["run", "--site", str(site), "--hours", "10", "--out", str(out),
                     "--no-server", *FAST])
        assert code == 0
        meta = json.loads((out / "run.json").read_text())
        assert meta["live"]["emulated"] is False and meta["live"]["emulators"] == []
        traj = pd.read_parquet(out / "trajectories.parquet")
        assert len(traj) > 10 and traj["path"].eq("line1.oxidizer1").all()
        assert plc.proc.poll() is None  # a site's PLC is not ours to stop
    finally:
        assert plc.stop() == 0


async def _read(url: str, node: str) -> Any:
    async with Client(url) as client:
        return await client.get_node(node).read_value()


def _furnace(seed: int, port: int, time_factor: float,
             overrides: tuple[str, ...] = ()) -> EmulatorProcess:
    """An emulated furnace PLC subprocess for the default plant."""
    return start_emulator("furnace", "furnace1", config=DEFAULT_PLANT, time_factor=time_factor,
                          seed=seed, port=port, overrides=overrides)


def _session(tmp_path: Path, url: str, *, seed: int, time_factor: float, hours: float,
             server: bool, overrides: tuple[str, ...] = (),
             security: ServerSecurity | None = None) -> LiveSession:
    """A live session of the default plant on the furnace PLC at ``url`` (no emulators)."""
    cfg = load_plant(overrides=overrides)
    endpoints, tags = emulated_site(cfg, {"furnace1": url})
    opts = LiveOptions(seed=seed, time_factor=time_factor, hours=hours, warmup_days=2,
                       emulate=False, out=tmp_path / "run", server=server, quiet=True,
                       server_security=security)
    return LiveSession(cfg, opts, endpoints=endpoints, tags=tags)


def test_plc_killed_and_restarted_mid_batch(tmp_path: Path) -> None:
    port = free_port()
    box: dict[str, Any] = {}

    def start() -> EmulatorProcess:
        return _furnace(7, port, 2400)

    box["plc"] = start()
    session = _session(tmp_path, box["plc"].url, seed=3, time_factor=2400, hours=16,
                       server=False)
    observe = session.observe

    def kill_and_restart() -> None:
        os.kill(box["plc"].proc.pid, signal.SIGKILL)
        box["plc"].proc.wait(10)
        time.sleep(1.0)  # the outage
        box["plc"] = start()

    def spy(kind: str, path: str, batch_id: str, data: Any) -> None:
        observe(kind, path, batch_id, data)
        if kind == "started" and "killed" not in box:
            box["killed"] = batch_id
            session.spawn(asyncio.to_thread(kill_and_restart))

    session.observe = spy  # type: ignore[method-assign]
    try:
        result, interrupted = asyncio.run(session.run())
        killed = box["killed"]
        batch_now = asyncio.run(_read(box["plc"].url, "ns=2;s=furnace1.BatchControl.BatchId"))
    finally:
        box["plc"].stop()
    assert not interrupted
    gw = session.gateway
    assert gw is not None
    gaps = gw.gaps("furnace1")
    assert gaps and all(g.end is not None for g in gaps)  # lost, then reconnected
    kinds = [e.kind for e in gw.event_log]
    assert "gap_start" in kinds and kinds.count("connected") >= 2
    row = result.batches.set_index("unit_id").loc[killed]
    assert row["data_gap_count"] >= 1 and row["data_gap_s"] > 0
    assert row["step_status"] == "aborted"
    assert row["disposition"] == "hold"  # the PLC lost it: no lab result, never released
    # Nothing was replayed: the restarted PLC never saw the lost batch again.
    assert batch_now != killed


def test_tag_map_matches_the_site_example() -> None:
    site = load_plant(CONFIG_DIR / "site_example.toml")
    assert site.stations.oxidizer is not None
    local = tagmap.furnace_tags("furnace1", site.stations.oxidizer.limits,
                                site.stations.oxidizer.plc.zones,
                                site.stations.oxidizer.capacity_kg)
    made = tagmap.station_tags("line1.oxidizer1", "furnace1", local)
    common = set(made) & set(site.tags)
    assert len(common) >= 20
    for name in common:
        assert made[name]["node"] == site.tags[name].node, name
        assert made[name]["type"] == site.tags[name].type, name


def test_advisory_decision_is_recorded_once() -> None:
    sink = AuditBuffer()
    sink.record(AuditRecord(kind="proposal", loop="line1.oxidizer1", batch_id="C1",
                            before={"hold_min": 50}, after={"hold_min": 44},
                            proposal_id="P1", result="open"))
    assert record_decision(sink, "P9", accept=True, who="ann", t_s=1.0).startswith(
        "BadNotFound")
    assert record_decision(sink, "P1", accept=True, who="ann", t_s=1.0) == \
        "Good: accepted by ann"
    decision = sink.decision("P1")
    assert decision is not None and decision.who == "ann" and decision.result == "accepted"
    assert record_decision(sink, "P1", accept=False, who="bob", t_s=2.0).startswith(
        "BadInvalidState")


def test_run_refuses_bad_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", "--hours", "0"]) == 2
    assert main(["run", "--time-factor", "-1"]) == 2
    plain = tmp_path / "plain.toml"
    plain.write_text(DEFAULT_PLANT.read_text())
    assert main(["run", "--site", str(plain)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "needs [endpoints] and [tags]" in err[-1]
    assert read_toml(plain)  # the file is untouched


def test_twin_server_shows_the_predicted_final_thickness_during_a_batch(
        tmp_path: Path) -> None:
    # A short lab turnaround, so lab results of one batch arrive while the next one runs.
    overrides = ("stations.lab.turnaround_h=0.5", "stations.lab.measure_h=0.25")
    plc = _furnace(11, free_port(), 2400, overrides)
    session = _session(tmp_path, plc.url, seed=4, time_factor=2400, hours=14, server=True,
                       overrides=overrides)
    seen: list[tuple[str, float, float, float]] = []
    observe = session.observe

    shown: list[tuple[str, str]] = []  # (BatchId on the server, batch running on the tool)

    async def read_server() -> None:
        async with Client(session.twin_url) as client:
            for _ in range(120):
                await asyncio.sleep(0.1)
                vals = []
                for var in ("State", "PredictedThickness_nm", "LowerBound_nm",
                            "UpperBound_nm"):
                    node = client.get_node(f"ns=2;s=line1.oxidizer1.{var}")
                    vals.append(await node.read_value())
                seen.append(tuple(vals))  # type: ignore[arg-type]
                before = session.current.get("line1.oxidizer1", {}).get("batch_id")
                shown_id = await client.get_node("ns=2;s=line1.oxidizer1.BatchId").read_value()
                after = session.current.get("line1.oxidizer1", {}).get("batch_id")
                if before is not None and before == after:
                    shown.append((shown_id, before))

    def spy(kind: str, path: str, batch_id: str, data: Any) -> None:
        observe(kind, path, batch_id, data)
        if kind == "started" and not seen:
            seen.append(("started", 0.0, 0.0, 0.0))
            session.spawn(read_server())

    session.observe = spy  # type: ignore[method-assign]
    try:
        asyncio.run(session.run())
    finally:
        plc.stop()
    during = [v for v in seen[1:] if v[0] in ("Heating", "Holding", "Cooling")
              and v[1] == v[1]]
    assert during, seen[:5]
    for _, mean, lo, hi in during:
        assert lo <= mean <= hi
        assert 1.0 < mean < 100.0  # the final thickness, not the oxide grown so far
    # While a batch runs, the station shows that batch (a lab result of an earlier batch
    # arriving meanwhile goes to that batch's entry, not over the running one).
    assert shown and all(on_server == running for on_server, running in shown), shown


def test_advisory_proposal_accepted_through_the_twin_server(tmp_path: Path) -> None:
    # Advisory control with a recipe far from the aim: every batch gets a proposal; an
    # operator accepts the first one through the twin's OPC UA server before the batch starts.
    # The decision is recorded under the session's user ("alice"), not the name passed.
    overrides = ("control.mode=advisory", "recipes.oxidation.hold_min=15")
    plc = _furnace(13, free_port(), 1200, overrides)
    security = ServerSecurity({"alice": Account.with_password("alice", "operator", "al1ce")})
    session = _session(tmp_path, plc.url, seed=4, time_factor=1200, hours=5, server=True,
                       overrides=overrides, security=security)
    answers: list[str] = []

    async def operator() -> None:
        while session.plant is None or session.live_from == float("inf"):
            await asyncio.sleep(0.02)
        sink = session.plant.ctx.control.sink  # type: ignore[union-attr]
        client = Client(session.twin_url)
        client.set_user("alice")
        client.set_password("al1ce")
        async with client:
            plant_obj = client.get_node("ns=2;s=line1")
            while not answers:
                await asyncio.sleep(0.02)
                live = [r for r in sink.records if r.kind == "proposal"
                        and (r.sim_time_s or 0.0) >= session.live_from]
                if live:
                    answers.append(await plant_obj.call_method(
                        "2:AcceptProposal", live[0].proposal_id, "mallory"))
                    answers.append(live[0].proposal_id)

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(operator())
        await session.run()
        task.cancel()

    try:
        asyncio.run(main())
    finally:
        plc.stop()
    assert answers and answers[0] == "Good: accepted by alice"
    records = session.plant.ctx.control.sink  # type: ignore[union-attr]
    decision = records.decision(answers[1])
    assert decision is not None and decision.who == "alice"
    # The loop applied it when the batch started: the write is on record, by the operator.
    assert any(r.kind == "write" and r.proposal_id == answers[1] and r.who == "alice"
               for r in records.records)
