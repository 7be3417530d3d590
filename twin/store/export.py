"""A live run's folder, exported from its journal (``anode-twin export RUN_DIR``).

The live twin writes its run folder this way at the end of a run and on Ctrl-C; after a crash
(``kill -9``, a power cut) the same export rebuilds the folder from what the journal had
committed: the batch rows, the state intervals and events (open states closed at the last
time the journal knew), the PV records (a batch still running: its record so far, marked
incomplete), the gateway's events, the PLCs' alarms (``alarms.parquet``: raised, cleared,
who acknowledged them on the twin's server) and the hash-chained audit trail.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from twin.config.schema import PlantConfig
from twin.control.audit import AUDIT_FILE, AuditRecord, AuditTrail
from twin.plant.historian import Historian
from twin.plant.run import batches_table
from twin.store.journal import (
    open_journal,
    read_alarms,
    read_audit_records,
    read_gateway,
    read_historian,
    read_meta,
    read_trajectories,
    read_units,
)
from twin.store.runfolder import write_run, write_table

DAY_S = 86400.0


def live_batches(batches: pd.DataFrame, traj: pd.DataFrame, stations: Sequence[str],
                 live_from: float) -> pd.DataFrame:
    """The batch table of a live run: a batch still running on a PLC gets a row, and every
    row says whether it ran on the line (``live_equipment``)."""
    # A batch still running on a PLC when the run ends has its trajectory kept; a sputter run
    # becomes a unit only when its film is known, so it gets a row of its own here (in
    # process, no result) and every kept trajectory belongs to a batch of the table.
    if len(traj) and "unit_id" in batches:
        running = (traj[["batch_id", "path"]].drop_duplicates("batch_id")
                   .loc[lambda d: ~d["batch_id"].isin(batches["unit_id"])])
        if len(running):
            extra = pd.DataFrame({
                "unit_id": running["batch_id"].astype(str).to_numpy(),
                "unit_kind": ["run" if ".sputter" in p else "charge" for p in running["path"]],
                "path": running["path"].astype(str).to_numpy(),
                "in_wip": True, "disposition": "wip"})
            batches = pd.concat([batches, extra], ignore_index=True)
    if "path" in batches and "start_s" in batches:
        # Which batches ran on a PLC (the rest are the simulated warm-up or simulated tools).
        batches["live_equipment"] = (batches["path"].isin(list(stations))
                                     & (batches["start_s"] >= live_from)).astype(bool)
    return batches


def export_run(run_dir: str | Path, *, summary: Mapping[str, Any] | None = None) -> Path:
    """Write ``run_dir``'s tables, audit trail and ``run.json`` from its journal.

    ``summary`` (the plant's headline figures, from the running twin) goes into ``run.json``;
    without it (a crashed twin) the figures the batch table gives are recomputed.
    """
    folder = Path(run_dir)
    db = open_journal(folder)
    try:
        meta = read_meta(db)
        cfg = PlantConfig.model_validate(meta["config"])
        hist = Historian(pd.Timestamp(cfg.production.start_iso))
        last = read_historian(db, hist)
        ended = "end_s" in meta
        end_s = float(meta["end_s"]) if ended else last
        hist.close(end_s)
        batches = batches_table(hist, read_units(db))
        traj = read_trajectories(db, with_partial=not ended)
        batches = live_batches(batches, traj, meta.get("stations", []),
                               float(meta.get("live_from") or math.inf))
        shares = hist.share_frame(end_s)
        live = dict(meta.get("live", {}))
        if not ended:
            live.update(interrupted=True, recovered_from_journal=True,
                        journal_end_s=end_s)
        else:
            live.update(meta.get("live_end", {}))
        out = write_run(folder, cfg=cfg, seed=int(meta["seed"]), days=end_s / DAY_S,
                        tables={"batches": batches, "events": hist.events_frame(),
                                "states": hist.states_frame(), "shares": shares,
                                "trajectories": traj},
                        summary=summary if summary is not None else _recovered(batches),
                        command="run", extra={"live": live})
        write_table(out / "gateway_events.parquet", read_gateway(db))
        write_table(out / "alarms.parquet", read_alarms(db))
        _write_audit(out, read_audit_records(db))
    finally:
        db.close()
    return out


def _write_audit(folder: Path, entries: list[dict[str, Any]]) -> None:
    """The hash-chained audit file of the journal's records (their own commit times)."""
    path = folder / AUDIT_FILE
    path.unlink(missing_ok=True)
    names = AuditRecord.__dataclass_fields__
    times: Iterator[str] = iter([str(e.get("time_utc", "")) for e in entries])

    def clock() -> dt.datetime:
        return dt.datetime.fromisoformat(next(times))

    AuditTrail(path, clock=clock).record_many(
        [AuditRecord(**{k: v for k, v in e.items() if k in names}) for e in entries])


def _recovered(batches: pd.DataFrame) -> dict[str, Any]:
    """Headline figures of a crashed run, from its batch table alone."""
    counts = batches["unit_kind"].value_counts().to_dict() if len(batches) else {}
    return {"recovered_from_journal": True,
            "units_made": {str(k): int(v) for k, v in sorted(counts.items())}}
