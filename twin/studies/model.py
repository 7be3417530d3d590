"""The bridge from the plant model to a study replication.

:func:`replicate` runs :func:`twin.hidden.run.simulate` once and reduces its tables (state
intervals and batch records) to the bucket table of :mod:`twin.studies.kpi`. It only reads the
plant's documented result tables.

WIP over time is rebuilt from the batch records with the plant ledger's own identity
``WIP(t) = mass in(t) - shipped(t) - scrapped(t)``: raw units (melt heats, sputter runs) bring
mass in when the ledger creates them, product units take it out when shipped, and scrapped
leaf units when their disposition is decided. Its time average over the run equals the plant's
``wip_kg_mean`` (checked in the tests).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin.config.schema import PlantConfig
from twin.studies.kpi import bucket_series

DAY_S = 86400.0
#: Product (shipped) and process-batch unit kinds by product form.
FINAL_KIND = {"powder": "roll", "thin_film": "sheet"}
BATCH_KIND = {"powder": "charge", "thin_film": "run"}


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df else pd.Series(np.nan, index=df.index, dtype=float)


def shipped_table(batches: pd.DataFrame, form: str) -> pd.DataFrame:
    """Product units shipped: ``end_s`` (ship time), ``cycle_s``, ``mass_kg``."""
    if batches.empty:
        return pd.DataFrame({"end_s": [], "cycle_s": [], "mass_kg": []}, dtype=float)
    b = batches[(batches["unit_kind"] == FINAL_KIND[form]) & _col(batches, "shipped_s").notna()]
    ship = b["shipped_s"].astype(float)
    return pd.DataFrame({"end_s": ship, "cycle_s": ship - _col(b, "origin_s").astype(float),
                         "mass_kg": b["mass_kg"].astype(float)})


def batch_table(batches: pd.DataFrame, form: str) -> pd.DataFrame:
    """Process batches finished: ``end_s``, ``oxide_nm`` (predicted mean)."""
    if batches.empty:
        return pd.DataFrame({"end_s": [], "oxide_nm": []}, dtype=float)
    b = batches[(batches["unit_kind"] == BATCH_KIND[form]) & _col(batches, "end_s").notna()]
    return pd.DataFrame({"end_s": b["end_s"].astype(float),
                         "oxide_nm": _col(b, "pred_oxide_mean_nm").astype(float)})


def wip_table(batches: pd.DataFrame, form: str, events: pd.DataFrame) -> pd.DataFrame:
    """WIP step function ``time_s, wip_kg`` from the batch records (see module docstring).

    A raw unit enters when the ledger creates it: the first event that names it (a heat's
    heat-up or melt, still open at the horizon for a heat being melted), else its recorded
    ``end_s``. A sputter run is named by its events from loading (its control plan and step
    carry its ID) but only created, with its deposited mass, when it is unloaded: ``end_s``.
    """
    if batches.empty:
        return pd.DataFrame({"time_s": [0.0], "wip_kg": [0.0]})
    raw = batches[_col(batches, "parent_ids").fillna("") == ""]
    named = events[events["batch_id"].isin(set(raw["unit_id"]))]
    first = named.groupby("batch_id")["time_s"].min()
    entered = raw["unit_id"].map(first).fillna(_col(raw, "end_s"))
    t_in = entered.where(_col(raw, "unit_kind") != "run", _col(raw, "end_s")).to_numpy(float)
    ship = shipped_table(batches, form)
    scrapped = batches[_col(batches, "disposition") == "scrap"]
    parents = {p for ids in batches["parent_ids"].fillna("") for p in ids.split(",") if p}
    leaves = scrapped[~scrapped["unit_id"].isin(parents)]  # a scrapped run's sheets, not it
    times = np.concatenate([[0.0], t_in.astype(float), ship["end_s"].to_numpy(float),
                            _col(leaves, "disposition_s").to_numpy(float)])
    deltas = np.concatenate([[0.0], raw["mass_kg"].to_numpy(float),
                             -ship["mass_kg"].to_numpy(float), -leaves["mass_kg"].to_numpy(float)])
    ok = np.isfinite(times)
    times, deltas = times[ok], deltas[ok]
    order = np.argsort(times, kind="stable")
    return pd.DataFrame({"time_s": times[order], "wip_kg": np.cumsum(deltas[order])})


def replicate(plant: PlantConfig, days: float, seed: int, bucket_h: float, *,
              truth: str = "nominal") -> pd.DataFrame:
    """Run one replication of ``plant`` and return its bucket table.

    Parameters
    ----------
    plant : PlantConfig
        The scenario's validated plant.
    days : float
        Horizon, days.
    seed : int
        Replication seed (the plant derives all its random streams from it).
    bucket_h : float
        Bucket width, h.
    truth : str
        The hidden plant the replication runs on (a shipped truth name or a file).

    Returns
    -------
    DataFrame
        See :func:`twin.studies.kpi.bucket_series`.
    """
    from twin.hidden.run import simulate

    res = simulate(plant, days, seed, truth=truth, count_events=False)
    form = plant.plant.form
    b = res.batches
    states = res.states[["path", "state", "start_s", "end_s"]]
    return bucket_series(states, shipped_table(b, form), batch_table(b, form),
                         wip_table(b, form, res.events), days * DAY_S, bucket_h * 3600.0,
                         plant.control.window_nm, plant.control.band)
