"""Study analysis: warm-up, per-replication KPIs, means with CIs, paired differences,
bottlenecks and the ranking of scenarios by the throughput they buy.

Everything is computed from the stored replications, so the analysis of a finished (or
resumed) study never runs the model again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.errors import TwinError
from twin.store.study import ReplicationStore
from twin.studies import kpi as K
from twin.studies.definition import Study
from twin.studies.stats import Interval, mean_ci, mean_ci_rows, mser_truncation

HEADLINE = "throughput_kg_per_day"
#: Families whose precision target applies to every station / state row.
_FAMILY_OF = {f"share_{s}": "state_shares" for s in K.STATES}


@dataclass
class StudyResult:
    """All tables of an analysed study."""

    warmup_h: float
    warmup_how: str
    replications: pd.DataFrame   # scenario, replication, kpi, station, value
    summary: pd.DataFrame        # scenario, kpi, station, n, mean, sd, half_width, low, high
    differences: pd.DataFrame    # scenario, kpi, station, n, diff, half_width, low, high, ...
    ranking: pd.DataFrame        # scenarios by paired throughput gain over the base
    bottlenecks: pd.DataFrame    # scenario, station, share of replications, active share ...
    wip: pd.DataFrame            # scenario, t_h, wip_kg mean and 95 % band over replications


def _keys(study: Study, n: int) -> list[tuple[str, str, int]]:
    return [(sc.name, sc.run_key(study.days, study.seed, study.bucket_h), r)
            for sc in study.scenarios for r in range(n)]


def stored(study: Study, store: ReplicationStore, n: int) -> list[tuple[str, str, int]]:
    """Keys ``(scenario, run_key, r)`` of the first ``n`` replications that are stored."""
    return [k for k in _keys(study, n) if store.has(*k)]


def choose_warmup(study: Study, store: ReplicationStore,
                  keys: list[tuple[str, str, int]]) -> tuple[float, str]:
    """Warm-up to delete, h, and how it was chosen.

    ``auto``: MSER-5 on the across-replication mean WIP series of every scenario (the plant
    starts empty, so WIP shows the initial transient clearly, while shipments per bucket are
    lumpy); the largest truncation wins, so every scenario's window is past its transient.
    """
    if study.warmup_days != "auto":
        return float(study.warmup_days) * 24.0, "fixed"
    cols = ["duration_h", "wip_kg_h"]
    cuts: list[int] = []
    for sc in study.scenarios:
        frames = [store.read_columns(*k, cols) for k in keys if k[0] == sc.name]
        if not frames:
            continue
        dur = frames[0]["duration_h"].to_numpy(float)
        mean = np.mean([f["wip_kg_h"].to_numpy(float) for f in frames], axis=0) / dur
        # The last bucket may be shorter; drop it so the batch means are comparable.
        cuts.append(mser_truncation(mean[:-1], batch=5))
    bucket_h = study.bucket_h
    warm = max(cuts, default=0) * bucket_h
    return warm, "MSER-5"


def replication_table(study: Study, store: ReplicationStore,
                      keys: list[tuple[str, str, int]], warmup_h: float) -> pd.DataFrame:
    """Per-replication KPIs: ``scenario, replication, kpi, station, value``."""
    parts = []
    for scenario, run_key, r in keys:
        df = K.replication_kpis(store.read(scenario, run_key, r), warmup_h, study.kpis)
        df.insert(0, "replication", r)
        df.insert(0, "scenario", scenario)
        parts.append(df)
    if not parts:
        raise TwinError(f"study {study.name}: no stored replication to analyse")
    return pd.concat(parts, ignore_index=True)


def _interval_row(iv: Interval) -> dict[str, float]:
    return {"n": iv.n, "mean": iv.mean, "sd": iv.sd, "half_width": iv.half_width,
            "low": iv.low, "high": iv.high}


def _matrix(reps: pd.DataFrame) -> pd.DataFrame:
    """KPI rows x (scenario, replication) columns, in first-seen row order."""
    wide = (reps.set_index(["kpi", "station", "scenario", "replication"])["value"]
            .unstack(["scenario", "replication"]))
    order = pd.MultiIndex.from_frame(reps[["kpi", "station"]].drop_duplicates())
    return wide.reindex(order)


def _ci_frame(index: pd.Index, m: np.ndarray) -> pd.DataFrame:
    n, mean, sd, hw = mean_ci_rows(m)
    df = index.to_frame(index=False)
    df["n"], df["mean"], df["sd"], df["half_width"] = n, mean, sd, hw
    df["low"], df["high"] = mean - hw, mean + hw
    return df


def summarise(reps: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95 % Student-t CI per scenario, KPI and station."""
    wide = _matrix(reps)
    parts = []
    for scenario in reps["scenario"].unique():
        df = _ci_frame(wide.index, wide[scenario].to_numpy(float))
        df.insert(0, "scenario", scenario)
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def differences(reps: pd.DataFrame, base: str) -> pd.DataFrame:
    """Paired differences (scenario - base) per KPI with 95 % CI, over common replications.

    Columns ``n, mean, sd, half_width, low, high`` describe the mean difference; ``relative``
    is it over the base mean of the same replications, ``significant`` when the CI excludes 0.
    """
    wide = _matrix(reps)
    scenarios = list(reps["scenario"].unique())
    if base not in scenarios:
        return pd.DataFrame()
    b = wide[base]
    parts = []
    for scenario in [s for s in scenarios if s != base]:
        a = wide[scenario]
        common = [r for r in a.columns if r in b.columns]
        am, bm = a[common].to_numpy(float), b[common].to_numpy(float)
        both = np.isfinite(am) & np.isfinite(bm)
        df = _ci_frame(wide.index, np.where(both, am - bm, np.nan))
        with np.errstate(invalid="ignore", divide="ignore"):
            base_mean = np.where(both, bm, 0.0).sum(axis=1) / both.sum(axis=1)
            df["relative"] = np.where(base_mean != 0, df["mean"] / base_mean, np.nan)
        df["significant"] = (df["n"] >= 2) & ((df["low"] > 0) | (df["high"] < 0))
        df.insert(0, "scenario", scenario)
        parts.append(df)
    if not parts:  # a one-scenario study has nothing to compare
        return pd.DataFrame(columns=["scenario", "kpi", "station", "n", "mean", "sd",
                                     "half_width", "low", "high", "relative", "significant"])
    return pd.concat(parts, ignore_index=True)


def ranking(summary: pd.DataFrame, diffs: pd.DataFrame, base: str,
            kpi_name: str = HEADLINE) -> pd.DataFrame:
    """Scenarios ranked by the paired gain in ``kpi_name`` over the base ("what buys most")."""
    s = summary[(summary.kpi == kpi_name) & (summary.station == "")]
    rows = []
    for _, row in s.iterrows():
        if row["scenario"] == base:
            rows.append({"scenario": base, "is_base": True, "mean": row["mean"],
                         "half_width": row["half_width"],
                         "gain": 0.0, "gain_low": 0.0, "gain_high": 0.0, "gain_rel": 0.0,
                         "significant": False})
            continue
        d = diffs[(diffs.scenario == row["scenario"]) & (diffs.kpi == kpi_name)
                  & (diffs.station == "")]
        if d.empty:
            continue
        d0 = d.iloc[0]
        rows.append({"scenario": row["scenario"], "is_base": False, "mean": row["mean"],
                     "half_width": row["half_width"], "gain": d0["mean"],
                     "gain_low": d0["low"], "gain_high": d0["high"],
                     "gain_rel": d0["relative"], "significant": bool(d0["significant"])})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out = out.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def bottleneck_table(reps: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and station group: share of replications where it is the bottleneck,
    mean active share, share of days it is the bottleneck, and daily shifts per 30 days."""
    b = reps[reps.kpi.isin(["bottleneck", "active_share", "bottleneck_day_share"])]
    wide = b.pivot_table(index=["scenario", "station"], columns="kpi", values="value",
                         aggfunc="mean").reset_index()
    wide = wide.rename(columns={"station": "group", "bottleneck": "share_of_replications",
                                "active_share": "active_share_mean",
                                "bottleneck_day_share": "share_of_days"})
    shifts = (reps[reps.kpi == "bottleneck_shifts_per_30d"].groupby("scenario")["value"]
              .mean().rename("shifts_per_30d"))
    wide = wide.merge(shifts, left_on="scenario", right_index=True, how="left")
    return wide.sort_values(["scenario", "share_of_replications", "active_share_mean"],
                            ascending=[True, False, False], kind="stable").reset_index(drop=True)


def wip_over_time(study: Study, store: ReplicationStore,
                  keys: list[tuple[str, str, int]]) -> pd.DataFrame:
    """Mean WIP (kg) per time bucket across replications with a 95 % band, per scenario."""
    rows = []
    for sc in study.scenarios:
        frames = [store.read_columns(*k, ["t_start_h", "duration_h", "wip_kg_h"])
                  for k in keys if k[0] == sc.name]
        if not frames:
            continue
        t = frames[0]["t_start_h"].to_numpy(float)
        w = np.array([f["wip_kg_h"].to_numpy(float) / f["duration_h"].to_numpy(float)
                      for f in frames])
        for i in range(t.size):
            iv = mean_ci(w[:, i])
            rows.append({"scenario": sc.name, "t_h": t[i], "wip_kg": iv.mean,
                         "low": iv.low, "high": iv.high})
    return pd.DataFrame(rows)


def analyse(study: Study, store: ReplicationStore, n: int | None = None) -> StudyResult:
    """Analyse the first ``n`` (default: all the study asks for) stored replications."""
    n = study.replications if n is None else n
    keys = stored(study, store, n)
    if not keys:
        raise TwinError(f"study {study.name}: no stored replication to analyse")
    warm, how = choose_warmup(study, store, keys)
    reps = replication_table(study, store, keys, warm)
    summ = summarise(reps)
    diffs = differences(reps, study.base)
    return StudyResult(warm, how, reps, summ, diffs, ranking(summ, diffs, study.base),
                       bottleneck_table(reps), wip_over_time(study, store, keys))


def target_of(study: Study, kpi_name: str, mean: float) -> float | None:
    """The precision target half-width of a KPI row (absolute), or None when untargeted."""
    prec = study.precision
    if prec is None:
        return None
    fam = _FAMILY_OF.get(kpi_name, kpi_name)
    targets = []
    if fam in prec.half_width:
        targets.append(prec.half_width[fam])
    if fam in prec.relative_half_width and math.isfinite(mean):
        targets.append(prec.relative_half_width[fam] * abs(mean))
    return min(targets) if targets else None


def precision_needed(study: Study, store: ReplicationStore, n: int) -> tuple[int, list[str]]:
    """Replications needed for every target, and the rows that miss theirs now.

    Returns
    -------
    (int, list of str)
        Estimated total replications per scenario, and one text per unmet target such as
        ``base throughput_kg_per_day: ±3.2 > 2``.
    """
    from twin.studies.stats import replications_needed

    res = analyse(study, store, n)
    needed, unmet = n, []
    for _, row in res.summary.iterrows():
        target = target_of(study, row["kpi"], row["mean"])
        if target is None:
            continue
        hw = row["half_width"]
        if target == 0.0 and hw == 0.0:
            continue
        if not (math.isfinite(hw) and hw <= target):
            where = f" {row['station']}" if row["station"] else ""
            unmet.append(f"{row['scenario']} {row['kpi']}{where}: ±{hw:.3g} > {target:.3g}")
            needed = max(needed, replications_needed(int(row["n"]), hw, max(target, 1e-12)))
    return needed, unmet


def headline_value(study: Study, buckets: pd.DataFrame) -> float:
    """Throughput of one replication with a provisional warm-up (for the progress line)."""
    if study.warmup_days == "auto":
        series = (buckets["wip_kg_h"] / buckets["duration_h"]).to_numpy(float)[:-1]
        warm = mser_truncation(series) * study.bucket_h
    else:
        warm = float(study.warmup_days) * 24.0
    df = K.replication_kpis(buckets, warm, (HEADLINE,))
    return float(df.loc[df.kpi == HEADLINE, "value"].iloc[0])
