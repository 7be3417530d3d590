"""Run a plant for a number of days: :func:`simulate` → :class:`SimulationResult`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import simpy

from twin.config.schema import PlantConfig
from twin.equipment.base import ToolProvider
from twin.plant.plant import Plant
from twin.store.schema import conform

DAY_S = 86400.0


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes (for the benchmark)."""

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        self.events_processed = 0

    def step(self) -> None:
        """Process the next event, counting it."""
        self.events_processed += 1
        super().step()


@dataclass
class SimulationResult:
    """Tables and figures of one run.

    Attributes
    ----------
    batches, events, states : pandas.DataFrame
        One row per unit; timestamped events; state intervals per station.
    shares : pandas.DataFrame
        Per station: seconds and share of the horizon in each state, utilisation.
    summary : dict
        Headline figures (see :func:`summarise`).
    seed, days : int, float
    events_processed : int
        SimPy events the run processed.
    wall_s : float
        Wall time of the simulation itself, s (not written to any table).
    """

    batches: pd.DataFrame
    events: pd.DataFrame
    states: pd.DataFrame
    shares: pd.DataFrame
    summary: dict[str, Any]
    seed: int
    days: float
    events_processed: int = 0
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def simulate(plant_cfg: PlantConfig, days: float, seed: int, *, tools: ToolProvider,
             physics: str = "fast", count_events: bool = True) -> SimulationResult:
    """Simulate ``days`` of the plant with ``seed``.

    Parameters
    ----------
    plant_cfg : PlantConfig
        Validated plant configuration.
    days : float
        Horizon, days (> 0).
    seed : int
        Run seed: the same seed gives the same tables.
    tools : ToolProvider
        The world the furnaces and sputter tools come from (a simulated run passes the hidden
        plant of a truth file: :func:`twin.hidden.simulate` does).
    physics : {'fast', 'exact'}
        Oxide physics evaluation (see :mod:`twin.plant.physics_cache`).
    count_events : bool
        Count processed SimPy events (a tiny overhead).

    Returns
    -------
    SimulationResult
    """
    if not days > 0:
        raise ValueError(f"days must be > 0, got {days}")
    horizon = days * DAY_S
    env: simpy.Environment = CountingEnvironment() if count_events else simpy.Environment()
    plant = Plant(plant_cfg, seed, horizon, tools=tools, physics=physics, env=env)
    t0 = time.perf_counter()
    plant.run(horizon)
    wall = time.perf_counter() - t0
    return collect(plant, horizon, seed, wall_s=wall)


def collect(plant: Plant, horizon_s: float, seed: int, *, wall_s: float = 0.0
            ) -> SimulationResult:
    """The tables and summary of a plant that has run to ``horizon_s`` (simulated or live)."""
    plant.ctx.historian.close(horizon_s)
    h = plant.ctx.historian
    batches = _batches(plant)
    shares = h.share_frame(horizon_s)
    summary = summarise(plant, batches, shares, horizon_s)
    return SimulationResult(batches=batches, events=h.events_frame(), states=h.states_frame(),
                            shares=shares, summary=summary, seed=seed, days=horizon_s / DAY_S,
                            events_processed=getattr(plant.env, "events_processed", 0),
                            wall_s=wall_s, extra={"plant": plant})


def _batches(plant: Plant) -> pd.DataFrame:
    return batches_table(plant.ctx.historian, unit_rows(plant))


def unit_rows(plant: Plant) -> list[dict[str, Any]]:
    """Every unit's batch row as the run folder records it, in creation order (the live
    journal keeps the same rows as they change)."""
    ledger = plant.ctx.ledger
    rows = []
    for unit in ledger.units:
        row = dict(unit.row)
        row.setdefault("unit_id", unit.id)
        row.setdefault("unit_kind", unit.kind)
        row.setdefault("parent_ids", ",".join(unit.parents))
        row.setdefault("alloy", unit.alloy)
        row.setdefault("mass_kg", unit.mass_kg)
        row["in_wip"] = unit.id in ledger.wip
        if "disposition" not in row:
            row["disposition"] = "wip" if row["in_wip"] else ""
        rows.append(row)
    return rows


def batches_table(historian: Any, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The batches table of ``rows`` (see :func:`unit_rows`), in the batch record's schema
    (:func:`twin.store.schema.conform`: schema order, schema types).

    Raises
    ------
    twin.store.schema.SchemaError
        A row has a column the schema does not know (the message names it: add it to
        ``twin/store/schema.py``), or values that do not fit a column's type.
    """
    historian.batches = rows
    return conform(historian.batches_frame())


def summarise(plant: Plant, batches: pd.DataFrame, shares: pd.DataFrame,
              horizon_s: float) -> dict[str, Any]:
    """Headline figures: output per day, utilisation, WIP, cycle time, oxide in window."""
    ledger, cfg = plant.ctx.ledger, plant.cfg
    days = horizon_s / DAY_S
    final = "roll" if cfg.plant.form == "powder" else "sheet"
    oxide_kind = "charge" if cfg.plant.form == "powder" else "run"
    lo, hi = cfg.control.window_nm
    shipped = batches[(batches["unit_kind"] == final) & batches.get(
        "shipped_s", pd.Series(np.nan, index=batches.index)).notna()] if len(batches) else batches
    cycle_h = ((shipped["shipped_s"] - shipped["origin_s"]) / 3600.0) if len(shipped) else \
        pd.Series(dtype=float)
    ox = batches[batches["unit_kind"] == oxide_kind] if len(batches) else batches
    pred = ox["pred_oxide_mean_nm"].dropna() if "pred_oxide_mean_nm" in ox else pd.Series()
    counts = batches["unit_kind"].value_counts().to_dict() if len(batches) else {}
    disp = (ox["disposition"].value_counts().to_dict() if "disposition" in ox else {})
    return {
        "plant": cfg.plant.name, "form": cfg.plant.form, "days": days,
        "units_made": {k: int(v) for k, v in sorted(counts.items())},
        "final_unit": final,
        "shipped_units": int(ledger.shipped.get(final, 0)),
        "shipped_units_per_day": ledger.shipped.get(final, 0) / days,
        "shipped_kg": ledger.shipped_kg, "shipped_kg_per_day": ledger.shipped_kg / days,
        "oxide_batches": len(ox),
        "oxide_batches_per_day": len(ox) / days,
        "mass_in_kg": ledger.mass_in_kg, "scrap_kg": ledger.scrap_kg,
        "wip_kg": ledger.wip_kg, "wip_units": len(ledger.wip),
        "wip_kg_mean": ledger.wip_kg_mean(horizon_s),
        "balance_kg": ledger.balance_kg(),
        "cycle_time_h_mean": float(cycle_h.mean()) if len(cycle_h) else float("nan"),
        "cycle_time_h_p95": float(cycle_h.quantile(0.95)) if len(cycle_h) else float("nan"),
        "pred_oxide_mean_nm": float(pred.mean()) if len(pred) else float("nan"),
        "pred_in_window_share": float(((pred >= lo) & (pred <= hi)).mean())
        if len(pred) else float("nan"),
        "window_nm": [lo, hi],
        "dispositions": {str(k): int(v) for k, v in sorted(disp.items())},
        "lab_measured": plant.lab.measured,
        "operator_utilisation": plant.ctx.crew.busy_s / max(
            plant.ctx.crew.count * horizon_s * plant.ctx.crew.calendar.on_shift_share(), 1e-9),
        "stations": {str(r["path"]): {"utilisation": float(r["utilisation"]),
                                      **{str(k)[:-6]: float(r[k]) for k in r
                                         if str(k).endswith("_share")}}
                     for r in shares.to_dict("records")},
        "buffers": {b.path: {"capacity": b.capacity, "max_level": b.max_level,
                             "level": b.level, "times_full": b.full_events}
                    for b in plant.buffers},
    }


def trajectories_frame(plant: Plant) -> pd.DataFrame:
    """Process-value records of the oxidation charges, long form (for the run folder).

    Columns ``batch_id, path, time_s, signal, value, complete``: the indicated temperature and
    atmosphere the furnace reported for each charge, on the simulation time axis. Built as
    whole columns (one array per column for the run, not a frame per charge and signal).
    """
    ids: list[str] = []
    paths: list[str] = []
    signals: list[str] = []
    counts: list[int] = []
    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for unit in plant.ctx.ledger.units:
        rec = unit.data.get("record")
        if rec is None or rec[1] is None:
            continue
        start, prof = rec
        t = prof.time_s + start
        path = unit.row.get("path", "")
        for signal, vals in (("temperature_c", prof.temperature_c),
                             ("po2_atm", prof.po2_atm), ("ph2o_atm", prof.ph2o_atm)):
            ids.append(unit.id)
            paths.append(path)
            signals.append(signal)
            counts.append(t.size)
            times.append(t)
            values.append(np.asarray(vals, dtype=float))
    n = np.asarray(counts, dtype=np.int64)
    total = int(n.sum())

    def repeated(labels: list[str]) -> pd.Series:
        return pd.Series(np.repeat(np.asarray(labels, dtype=object), n) if total else [],
                         dtype=str)

    return pd.DataFrame({
        "batch_id": repeated(ids), "path": repeated(paths),
        "time_s": pd.Series(np.concatenate(times) if total else [], dtype=float),
        "signal": repeated(signals),
        "value": pd.Series(np.concatenate(values) if total else [], dtype=float),
        "complete": pd.Series(np.ones(total, dtype=bool), dtype=bool),
    })
