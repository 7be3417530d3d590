"""Builders of real run folders for the report tests: Parquet, run.json, config, audit trail.

The batch tables are the batch record of twin/store/schema.py, written by the run store
(``unit_id``, ``unit_kind``, ``parent_ids``, ``phases_mass_frac``, ``sp_*``/``actual_*_mean``,
``pred_oxide_*``, ``vm_lower_nm``/``vm_upper_nm``, ``measured_oxide_nm``, the ``rel_*``
release evidence). Tests pass a charge's oxide fields by short names (``oxide_mean_nm``,
``measured_nm``, ``status`` ...): :func:`charge` turns them into the schema's columns and adds
the release evidence the plant records with them (test shorthand; the report has no aliases).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.config import load_plant
from twin.control.audit import AuditRecord, AuditTrail
from twin.plant.release import Evidence
from twin.store.runfolder import write_batches

HOUR = 3600.0
FIXED_NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)


#: Required columns of a finished unit whose disposition the test leaves open.
DONE: dict[str, Any] = {"alloy": "Si80Ti20", "in_wip": False, "disposition": ""}


def heat_and_lots(i: int, t0: float) -> list[dict[str, Any]]:
    """One melt heat with two mill lots (phases on the heat, particle size on the lots)."""
    heat = {"unit_id": f"H{i:06d}", "unit_kind": "heat", "parent_ids": "", "path":
            "line1.melter1", "start_s": t0, "end_s": t0 + HOUR, "mass_kg": 58.0, **DONE,
            "phases_mass_frac": "Si:0.7300;TiSi2:0.2700"}
    lots = [{"unit_id": f"L{2 * i + k:06d}", "unit_kind": "lot", "parent_ids": heat["unit_id"],
             "path": f"line1.mill{k + 1}", "start_s": t0 + HOUR, "end_s": t0 + 9 * HOUR,
             "mass_kg": 29.0, **DONE, "d50_um": 2.1 + 0.1 * k, "ssa_m2_g": 4.5,
             "amorphous_frac": 0.41, "media_pickup_wt_pct": 0.4, "oxygen_wt_pct": 1.2}
            for k in range(2)]
    return [heat, *lots]


def charge(i: int, t0: float, **oxide: Any) -> dict[str, Any]:
    """One oxidation charge from the two lots of heat ``i``; ``oxide`` overrides its fields."""
    row: dict[str, Any] = {
        "unit_id": f"C{i:06d}", "unit_kind": "charge",
        "parent_ids": f"L{2 * i:06d},L{2 * i + 1:06d}", "path": "line1.oxidizer1",
        "start_s": t0 + 10 * HOUR, "end_s": t0 + 13 * HOUR, "mass_kg": 58.0, **DONE,
        "status": "ok", "sp_start_c": 25.0, "sp_hold_c": 850.0, "sp_ramp_c_per_min": 10.0,
        "sp_hold_min": 30.0, "sp_cool_c_per_min": 15.0, "sp_po2_atm": 0.21,
        "sp_ph2o_atm": 0.02, "actual_hold_c_mean": 852.5, "actual_hold_band_min": 30.0,
        "actual_po2_atm_mean": 0.214, "actual_ph2o_atm_mean": 0.02, "actual_max_c": 856.0,
        "oxide_mean_nm": 8.0, "oxide_pi_low_nm": 6.5, "oxide_pi_high_nm": 9.8,
        "oxide_p5_nm": 6.0, "oxide_p95_nm": 10.4, "oxide_within_50_share": 0.97,
        "vm_reliability": 0.9, "vm_model_version": "vm-1.0", "measured_nm": np.nan,
    }
    row.update(oxide)
    # The release evidence the plant records with the prediction (Evidence.columns), taken
    # from the short names (Evidence.from_row reads them when a row has no rel_* columns).
    evidence = Evidence.from_row(row).columns()
    out = {PLANT_NAMES.get(k, k): v for k, v in row.items()}
    return {**out, **{k: v for k, v in evidence.items() if k not in oxide}}


#: Short names the tests use -> the batch record's columns (twin/store/schema.py).
PLANT_NAMES = {"oxide_mean_nm": "pred_oxide_mean_nm", "oxide_p5_nm": "pred_oxide_p5_nm",
               "oxide_p95_nm": "pred_oxide_p95_nm", "measured_nm": "measured_oxide_nm",
               "oxide_pi_low_nm": "vm_lower_nm", "oxide_pi_high_nm": "vm_upper_nm",
               "oxide_within_50_share": "pred_within_50pct_share", "status": "step_status",
               "gap_s": "data_gap_s"}


def roll(i: int, t0: float) -> dict[str, Any]:
    return {"unit_id": f"R{i:06d}", "unit_kind": "roll", "parent_ids": f"C{i:06d}",
            "path": "line1.coater1", "start_s": t0 + 14 * HOUR, "end_s": t0 + 15 * HOUR,
            "mass_kg": 58.0, **DONE}


def write_run(path: Path, units: Iterable[Mapping[str, Any]], *,
              audit: Iterable[AuditRecord] | None = (), config: bool = True,
              trajectories: pd.DataFrame | None = None,
              meta: Mapping[str, Any] | None = None,
              overrides: list[str] | None = None) -> Path:
    """Write a run folder; ``audit=None`` leaves the audit trail out; ``overrides``
    (``key=value``) change the plant file written beside it."""
    path.mkdir(parents=True, exist_ok=True)
    write_batches(path / "batches.parquet", pd.DataFrame(list(units)))
    pd.DataFrame({"time_s": [0.0], "path": ["line1.melter1"], "event": ["state:working"],
                  "batch_id": ["H000001"], "detail": [""]}).to_parquet(
        path / "events.parquet", index=False)
    pd.DataFrame({"path": ["line1.melter1"], "state": ["working"], "start_s": [0.0],
                  "end_s": [HOUR], "batch_id": ["H000001"]}).to_parquet(
        path / "states.parquet", index=False)
    (path / "run.json").write_text(json.dumps(
        {"seed": 7, "command": "simulate", "start_utc": "2026-03-01T00:00:00+00:00",
         **(meta or {})}))
    if config:
        plant = load_plant(None, overrides or [])
        (path / "config.json").write_text(plant.model_dump_json())
    if audit is not None:
        trail = AuditTrail(path, clock=lambda: FIXED_NOW)
        trail.path.touch()
        for rec in audit:
            trail.record(rec)
    if trajectories is not None:
        trajectories.to_parquet(path / "trajectories.parquet", index=False)
    return path


def campaign_units(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Heats, lots, charges (with the given oxide fields) and rolls, one set per entry."""
    units: list[dict[str, Any]] = []
    for i, ox in enumerate(values, start=1):
        t0 = (i - 1) * 4 * HOUR
        units += heat_and_lots(i, t0) + [charge(i, t0, **ox), roll(i, t0)]
    return units
