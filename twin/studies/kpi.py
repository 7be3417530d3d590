"""Key performance indicators of one replication, from time-bucketed series.

A replication is stored as a small table of time buckets (``bucket_h`` hours each): shipped
mass and units, cycle-time sums of the units finished, oxide-window counts, the WIP integral
and each station's hours in each state. Every KPI is a ratio of sums over the buckets after the
warm-up, so the warm-up can be chosen (or detected by MSER-5) *after* the replications have
run, from all of them, without running anything again.

Definitions (per replication, over the steady-state window ``[warm-up, horizon)``):

- ``throughput_kg_per_day``: product mass shipped / window length;
- ``throughput_batches_per_day``: process batches finished / window (oxidation charges on a
  powder line, sputter runs on a thin-film line: the units quality releases);
- ``cycle_time_h``: mean of (ship time - start of the unit's earliest ancestor) over units
  shipped in the window;
- ``wip_kg``: time-average material in process;
- ``utilisation`` (per station): share of time working; ``state_shares``: share in each of
  working, setup, blocked, starved, idle, down;
- ``oee`` (per station): availability x performance x quality, with availability =
  1 - (down + setup) share (breakdowns and set-ups are availability losses), performance =
  working / available time (starved, blocked and idle are speed/idling losses) and quality =
  the plant's share of batches with the oxide in the control window;
- ``oxide_in_band_share`` and ``oxide_ppk_band`` (the main oxide figures, when the bucket
  table was built with the plant's internal band ``control.band``): share of batches whose
  predicted mean oxide is in the band, and the capability ``Ppk`` of ln(oxide) against
  ln(band) (overall sigma, from the buckets' sums of ln and ln²);
- ``oxide_in_window_share``: batches whose predicted mean oxide is in ``window_nm`` (the
  1–100 nm release spec share, beside the band figures);
- bottleneck: the station *group* (``line1.mill`` for ``line1.mill1..3``) with the highest
  working + setup + down share (the "active share" method); how often it shifts is counted
  over daily windows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

STATES: tuple[str, ...] = ("working", "setup", "blocked", "starved", "idle", "down")
ACTIVE: tuple[str, ...] = ("working", "setup", "down")
STATE_PREFIX = "state_h|"
BASE_COLUMNS: tuple[str, ...] = (
    "t_start_h", "duration_h", "shipped_kg", "shipped_units", "batches", "cycle_sum_h",
    "cycle_n", "oxide_n", "oxide_in_window_n", "wip_kg_h",
)
#: Columns of a bucket table built with the internal band (:func:`bucket_series`).
BAND_COLUMNS: tuple[str, ...] = ("oxide_in_band_n", "oxide_log_n", "oxide_log_sum",
                                 "oxide_log_sq_sum", "band_lo_nm", "band_hi_nm")


def state_column(path: str, state: str) -> str:
    """Column name of a station's hours in one state: ``state_h|line1.mill1|working``."""
    return f"{STATE_PREFIX}{path}|{state}"


def bucket_edges_s(horizon_s: float, bucket_s: float) -> np.ndarray:
    """Bucket edges from 0 to the horizon, s (the last bucket may be shorter)."""
    edges = np.arange(0.0, horizon_s, bucket_s)
    return np.append(edges, horizon_s)


def occupied_at(starts: np.ndarray, ends: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cumulative time covered by disjoint intervals up to each time in ``t``.

    Parameters
    ----------
    starts, ends : ndarray
        Disjoint intervals of one station and state, s.
    t : ndarray
        Query times, s.

    Returns
    -------
    ndarray
        :math:`\\sum_i |[s_i, e_i) \\cap [0, t)|` for each ``t``, s. O((n + m) log n).
    """
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    cum = np.concatenate(([0.0], np.cumsum(e - s)))
    k = np.searchsorted(s, t, side="right")  # intervals starting at or before t
    full = cum[np.maximum(k - 1, 0)]
    last = np.maximum(k - 1, 0)
    partial = np.where(k > 0, np.clip(t - s[last], 0.0, e[last] - s[last]), 0.0)
    return full + partial


def step_integral_at(times: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Integral from 0 to each ``t`` of a right-continuous step function (0 before ``times[0]``).

    Parameters
    ----------
    times : ndarray
        Change times, s, non-decreasing.
    values : ndarray
        Value from each change time on.
    t : ndarray
        Query times, s.

    Returns
    -------
    ndarray
        Integral, value x s.
    """
    if times.size == 0:
        return np.zeros_like(t, dtype=float)
    widths = np.diff(times)
    cum = np.concatenate(([0.0], np.cumsum(values[:-1] * widths)))
    k = np.searchsorted(times, t, side="right") - 1
    kk = np.maximum(k, 0)
    return np.where(k >= 0, cum[kk] + values[kk] * (t - times[kk]), 0.0)


def bucket_series(states: pd.DataFrame, shipped: pd.DataFrame, batches: pd.DataFrame,
                  wip: pd.DataFrame, horizon_s: float, bucket_s: float,
                  window_nm: tuple[float, float],
                  band_nm: tuple[float, float] | None = None) -> pd.DataFrame:
    """Aggregate one replication's raw tables into time buckets.

    Parameters
    ----------
    states : DataFrame
        State intervals: ``path``, ``state``, ``start_s``, ``end_s``.
    shipped : DataFrame
        Product units that left the plant: ``end_s`` (ship time), ``cycle_s``, ``mass_kg``.
    batches : DataFrame
        Process batches finished: ``end_s``, ``oxide_nm`` (predicted mean; NaN if unknown).
    wip : DataFrame
        WIP step function: ``time_s``, ``wip_kg`` (value from that time on).
    horizon_s : float
        End of the run, s.
    bucket_s : float
        Bucket width, s.
    window_nm : (float, float)
        Release specification of the mean oxide thickness (``control.window_nm``), nm.
    band_nm : (float, float), optional
        The plant's internal band (``control.band``), nm: adds :data:`BAND_COLUMNS`.

    Returns
    -------
    DataFrame
        One row per bucket with :data:`BASE_COLUMNS` (and :data:`BAND_COLUMNS` with a band)
        and one ``state_h|path|state`` column per station and state.
    """
    edges = bucket_edges_s(horizon_s, bucket_s)
    nb = edges.size - 1
    out: dict[str, np.ndarray] = {
        "t_start_h": edges[:-1] / 3600.0,
        "duration_h": np.diff(edges) / 3600.0,
    }

    def binned(end_s: np.ndarray, weights: np.ndarray) -> np.ndarray:
        keep = (end_s >= 0) & (end_s <= horizon_s)
        idx = np.clip(np.searchsorted(edges, end_s[keep], side="right") - 1, 0, nb - 1)
        return np.bincount(idx, weights=weights[keep], minlength=nb).astype(float)

    ship_t = shipped["end_s"].to_numpy(float)
    out["shipped_kg"] = binned(ship_t, shipped["mass_kg"].to_numpy(float))
    out["shipped_units"] = binned(ship_t, np.ones(ship_t.size))
    out["cycle_sum_h"] = binned(ship_t, shipped["cycle_s"].to_numpy(float) / 3600.0)
    out["cycle_n"] = out["shipped_units"].copy()
    bt = batches["end_s"].to_numpy(float)
    oxide = batches["oxide_nm"].to_numpy(float)
    known = np.isfinite(oxide)
    lo, hi = window_nm
    out["batches"] = binned(bt, np.ones(bt.size))
    out["oxide_n"] = binned(bt, known.astype(float))
    out["oxide_in_window_n"] = binned(bt, (known & (oxide >= lo) & (oxide <= hi)).astype(float))
    if band_nm is not None:
        blo, bhi = band_nm
        pos = known & (oxide > 0)
        ln = np.where(pos, np.log(np.where(pos, oxide, 1.0)), 0.0)
        out["oxide_in_band_n"] = binned(bt, (known & (oxide >= blo) & (oxide <= bhi))
                                        .astype(float))
        out["oxide_log_n"] = binned(bt, pos.astype(float))
        out["oxide_log_sum"] = binned(bt, ln)
        out["oxide_log_sq_sum"] = binned(bt, ln * ln)
        out["band_lo_nm"] = np.full(nb, float(blo))
        out["band_hi_nm"] = np.full(nb, float(bhi))
    wt = wip["time_s"].to_numpy(float)
    order = np.argsort(wt, kind="stable")
    cum = step_integral_at(wt[order], wip["wip_kg"].to_numpy(float)[order], edges)
    out["wip_kg_h"] = np.diff(cum) / 3600.0
    for (path, state), grp in states.groupby(["path", "state"], sort=True):
        cum = occupied_at(grp["start_s"].to_numpy(float), grp["end_s"].to_numpy(float), edges)
        out[state_column(str(path), str(state))] = np.diff(cum) / 3600.0
    for path in sorted(states["path"].unique()):
        for state in STATES:
            out.setdefault(state_column(str(path), state), np.zeros(nb))
    return pd.DataFrame(out)


def stations_of(buckets: pd.DataFrame) -> list[str]:
    """Station paths present in a bucket table, sorted."""
    return sorted({c.split("|")[1] for c in buckets.columns if c.startswith(STATE_PREFIX)})


def group_of(path: str) -> str:
    """Station group of a machine path: ``line1.mill2`` -> ``line1.mill``."""
    return re.sub(r"\d+$", "", path)


def warmup_index(buckets: pd.DataFrame, warmup_h: float) -> int:
    """First bucket at or after the warm-up."""
    t = buckets["t_start_h"].to_numpy(float)
    return int(np.searchsorted(t, warmup_h - 1e-9, side="left"))


def replication_kpis(buckets: pd.DataFrame, warmup_h: float,
                     kpis: Sequence[str]) -> pd.DataFrame:
    """KPIs of one replication over the window after ``warmup_h``.

    Parameters
    ----------
    buckets : DataFrame
        From :func:`bucket_series`.
    warmup_h : float
        Warm-up to delete, h.
    kpis : sequence of str
        KPI families to compute (see :data:`twin.studies.definition.ALL_KPIS`).

    Returns
    -------
    DataFrame
        Long table ``kpi, station, value`` (``station`` is ``''`` for plant KPIs). Always also
        holds ``bottleneck`` (1 for the bottleneck group, 0 otherwise), ``active_share`` per
        group and ``bottleneck_shifts_per_30d``.
    """
    b = buckets.iloc[warmup_index(buckets, warmup_h):]
    hours = float(b["duration_h"].sum())
    days = hours / 24.0
    rows: list[tuple[str, str, float]] = []

    def ratio(num: float, den: float) -> float:
        return num / den if den > 0 else float("nan")

    tot = {c: float(b[c].sum()) for c in BASE_COLUMNS}
    quality = ratio(tot["oxide_in_window_n"], tot["oxide_n"])
    plant = {
        "throughput_kg_per_day": ratio(tot["shipped_kg"], days),
        "throughput_batches_per_day": ratio(tot["batches"], days),
        "cycle_time_h": ratio(tot["cycle_sum_h"], tot["cycle_n"]),
        "wip_kg": ratio(tot["wip_kg_h"], hours),
        "oxide_in_window_share": quality,
    }
    rows += [(k, "", v) for k, v in plant.items() if k in kpis]
    if "oxide_in_window_share" in kpis and all(c in b for c in BAND_COLUMNS):
        rows += _band_rows(b)
    for path in stations_of(b):
        share = {s: ratio(float(b[state_column(path, s)].sum()), hours) for s in STATES}
        if "utilisation" in kpis:
            rows.append(("utilisation", path, share["working"]))
        if "state_shares" in kpis:
            rows += [(f"share_{s}", path, share[s]) for s in STATES]
        if "oee" in kpis:
            available = 1.0 - share["down"] - share["setup"]
            perf = ratio(share["working"], available)
            q = quality if np.isfinite(quality) else 1.0
            rows.append(("oee", path, available * perf * q if available > 0 else 0.0))
    rows += _bottleneck_rows(b)
    return pd.DataFrame(rows, columns=["kpi", "station", "value"])


def _band_rows(b: pd.DataFrame) -> list[tuple[str, str, float]]:
    """The oxide against the internal band: share in band and Ppk of ln(oxide)."""
    n_known = float(b["oxide_n"].sum())
    share = float(b["oxide_in_band_n"].sum()) / n_known if n_known > 0 else float("nan")
    n = float(b["oxide_log_n"].sum())
    ppk = float("nan")
    if n >= 2 and len(b):
        mu = float(b["oxide_log_sum"].sum()) / n
        var = (float(b["oxide_log_sq_sum"].sum()) - n * mu * mu) / (n - 1)
        lsl = float(np.log(b["band_lo_nm"].iloc[0]))
        usl = float(np.log(b["band_hi_nm"].iloc[0]))
        if var > 0:
            ppk = min(usl - mu, mu - lsl) / (3.0 * float(np.sqrt(var)))
    return [("oxide_in_band_share", "", share), ("oxide_ppk_band", "", ppk)]


def active_by_group(buckets: pd.DataFrame) -> pd.DataFrame:
    """Hours active (working + setup + down) per bucket and station group, averaged over the
    machines of the group."""
    cols: dict[str, list[np.ndarray]] = {}
    for path in stations_of(buckets):
        active = sum(buckets[state_column(path, s)].to_numpy(float) for s in ACTIVE)
        cols.setdefault(group_of(path), []).append(np.asarray(active))
    return pd.DataFrame({g: np.mean(v, axis=0) for g, v in sorted(cols.items())},
                        index=buckets.index)


def _bottleneck_rows(b: pd.DataFrame) -> list[tuple[str, str, float]]:
    act = active_by_group(b)
    if act.empty or b.empty:
        return []
    hours = float(b["duration_h"].sum())
    share = act.sum() / hours
    top = str(share.idxmax())
    rows = [("active_share", str(g), float(v)) for g, v in share.items()]
    rows += [("bottleneck", str(g), 1.0 if g == top else 0.0) for g in share.index]
    # Daily windows: which group is most active each day, and how often that changes.
    day = np.floor(b["t_start_h"].to_numpy(float) / 24.0)
    daily = act.groupby(day).sum()
    winners = daily.idxmax(axis=1).to_numpy()
    shifts = int(np.count_nonzero(winners[1:] != winners[:-1])) if winners.size > 1 else 0
    rows.append(("bottleneck_shifts_per_30d", "", 30.0 * shifts / max(hours / 24.0, 1e-9)))
    rows += [("bottleneck_day_share", str(g), float(np.mean(winners == g)))
             for g in share.index]
    return rows
