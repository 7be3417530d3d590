"""Bench: control strategies on the plant model itself, against the hidden plant.

Every cell runs the plant model (:func:`twin.hidden.run.simulate`, the code behind
``anode-twin simulate``) on the shipped powder line with the plant file's lab sampling
(1 in ``stations.lab.sample_every``) and turnaround, measured inputs only (lot readings, the
storage probe, the furnace's indicated record). The hidden plant is a shipped truth file with
one scenario added as ``[[furnace.events]]`` starting at a random time (a random batch) drawn
from the seed, or a production change of the charge size:

``none``            the truth as it is;
``tc_step``         the thermocouple starts reading 10 °C low (the wall runs 10 °C hotter);
``tc_drift``        the thermocouple drifts 0.5 °C/day from then;
``tube_ageing``     the tube's activity falls 2 %/day;
``humidifier``      the humidifier's output wanders ±30 % (AR(1), 12 h);
``gross_fault``     one charge: the control thermocouple reads 60 °C low (even seeds) or
                    nitrogen on the air line (odd seeds);
``charge_size``     production halves the charge (one 29 kg lot instead of two).

Strategies, all with the same information (``control.strategy``, ``control.midstep``):
``off``; ``ewma`` (Sachs 1995); ``dewma`` (double EWMA, outlier rule, humidity
feed-forward); ``twin_r2r`` (the twin between batches only); ``twin`` (with in-batch endpoint
control). Steps aborted by a breakdown are left out (not what control acts on).

The thin-film line (``--thin-film``): the sputter tool's reactive oxide cap (aim 5 nm, band
3.5–6.5 nm) against the hidden sputter truth, ``none`` and ``cap_drift`` (the true deposition
and cap rates fall 3 %/day from the start: target erosion), strategies ``off`` and ``twin`` (the
sputter loop corrects the oxidize time, then the O2 flow; the baselines are furnace loops).

Per cell, mean over seeds with a 95 % confidence interval (t): share of released charges whose
true mean oxide is in 1–100 nm (``spec_released``) and of all charges (``spec_all``); share
in the internal band (``band``); Cpk against the band on true values (``cpk_true``) and on lab
values (``cpk_lab``); charges after the onset until three in a row are within ±10 % of the
aim (``recover``; step scenarios); lab results per 100 charges (``lab_per_100``); scrapped
share (``scrap``). Ends with one JSON line.

Run: ``python bench/control.py [--seeds 20] [--days 20] [--truths nominal,...|all]
[--scenarios ...] [--jobs 2] [--set KEY=VALUE] [--thin-film]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

TRUTHS = ("nominal", "aged_furnace", "other_kinetics")
SCENARIOS = ("none", "tc_step", "tc_drift", "tube_ageing", "humidifier", "gross_fault",
             "charge_size")
STRATEGIES = ("off", "ewma", "dewma", "twin_r2r", "twin")
STEP_SCENARIOS = ("tc_step", "tc_drift", "tube_ageing", "charge_size")
THIN_SCENARIOS = ("thin_none", "cap_drift")


def _onset_h(seed: int, days: float) -> float:
    """The scenario's start: a random time in the second quarter to half of the run."""
    rng = np.random.default_rng([seed, 2024])
    return float(rng.uniform(0.25, 0.5) * days * 24.0)


def _cell(args: tuple[str, str, str, int, float, tuple[str, ...]]) -> dict[str, Any]:
    from twin.config import load_plant
    from twin.hidden.config import FurnaceEvent, load_truth
    from twin.hidden.run import simulate

    truth_name, scenario, strategy, seed, days, extra = args
    onset = _onset_h(seed, days)
    truth = load_truth(truth_name)
    if scenario in THIN_SCENARIOS:
        return _thin_cell(truth, scenario, strategy, seed, days, extra)
    events: list[FurnaceEvent] = []
    sets = {"off": ["control.mode=off"], "ewma": ["control.strategy=ewma"],
            "dewma": ["control.strategy=dewma"], "twin_r2r": ["control.midstep=false"],
            "twin": []}[strategy]
    if scenario == "tc_step":
        events.append(FurnaceEvent(kind="thermocouple_step", start_h=onset, size=10.0))
    elif scenario == "tc_drift":
        events.append(FurnaceEvent(kind="thermocouple_drift", start_h=onset, size=0.5))
    elif scenario == "tube_ageing":
        events.append(FurnaceEvent(kind="tube_ageing", start_h=onset, size=-0.02))
    elif scenario == "humidifier":
        events.append(FurnaceEvent(kind="humidifier_wander", start_h=onset, size=0.30))
    elif scenario == "gross_fault":
        kind, size = (("thermocouple_failure", 60.0) if seed % 2 == 0 else ("wrong_gas", 0.0))
        events.append(FurnaceEvent(kind=kind, start_h=onset, size=size))
    elif scenario == "charge_size":
        sets = [*sets, f"recipes.oxidation.charge_kg_from=[[{onset:.3f}, 29.0]]"]
    if events:
        truth = truth.model_copy(update={"furnace": truth.furnace.model_copy(
            update={"events": tuple(events)})})
    cfg = load_plant(None, [*sets, *extra])
    res = simulate(cfg, days, seed, truth=truth, count_events=False)
    b = res.batches
    # Finished charges (one still in the furnace at the horizon has no result yet).
    c = b[(b.unit_kind == "charge") & b.true_oxide_mean_nm.notna()
          & ~((b.step_status == "aborted") & (b.step_fault == "breakdown"))].sort_values(
        "start_s")
    return {"truth": truth_name, "scenario": scenario, "strategy": strategy, "seed": seed,
            **metrics(c, cfg.control.band, cfg.control.aim_nm, onset * 3600.0,
                      cfg.control.window_nm)}


def _thin_cell(truth: Any, scenario: str, strategy: str, seed: int, days: float,
               extra: tuple[str, ...]) -> dict[str, Any]:
    """One run of the thin-film line (its sputter tools' cap)."""
    from twin.config import CONFIG_DIR, load_plant
    from twin.hidden.run import simulate

    cfg = load_plant(CONFIG_DIR / "thin_film_line.toml",
                     (["control.mode=off"] if strategy == "off" else []) + list(extra))
    if scenario == "cap_drift":
        # The hidden sputter tool's rates drift from the start of the run.
        truth = truth.model_copy(update={"sputter": truth.sputter.model_copy(
            update={"rate_drift_per_day": -0.03})})
    res = simulate(cfg, days, seed, truth=truth, count_events=False)
    b = res.batches
    c = b[(b.unit_kind == "run") & b.true_oxide_mean_nm.notna()
          & (b.step_status != "aborted")].sort_values("start_s")  # aborted: breakdowns
    return {"truth": truth.truth.name, "scenario": scenario, "strategy": strategy,
            "seed": seed, **metrics(c, cfg.control.band, cfg.control.aim_nm, 0.0,
                                    cfg.control.window_nm)}


def _cpk(x: np.ndarray, lo: float, hi: float) -> float:
    if x.size < 3:
        return math.nan
    mu, sd = float(np.mean(x)), float(np.std(x, ddof=1))
    return min(hi - mu, mu - lo) / (3.0 * sd) if sd > 0 else math.nan


def metrics(c: pd.DataFrame, band: tuple[float, float], aim: float, onset_s: float,
            window: tuple[float, float]) -> dict[str, float]:
    """The figures of one run's charges (see the module notes)."""
    true = c.true_oxide_mean_nm.to_numpy(float)
    lo, hi = window
    blo, bhi = band
    released = c.disposition.to_numpy() == "release"
    lab = c.measured_oxide_nm.to_numpy(float)
    lab = lab[np.isfinite(lab)]
    after = c[c.start_s >= onset_s].true_oxide_mean_nm.to_numpy(float)
    on_aim = np.abs(np.log(np.maximum(after, 1e-9) / aim)) <= math.log(1.1)
    recover = math.nan
    for i in range(max(0, on_aim.size - 2)):
        if on_aim[i:i + 3].all():
            recover = float(i)
            break
    return {
        "charges": float(len(c)),
        "spec_released": float(np.mean((true[released] >= lo) & (true[released] <= hi)))
        if released.any() else math.nan,
        "spec_all": float(np.mean((true >= lo) & (true <= hi))),
        "band": float(np.mean((true >= blo) & (true <= bhi))),
        "cpk_true": _cpk(true, blo, bhi),
        "cpk_lab": _cpk(lab, blo, bhi),
        "recover": recover,
        "lab_per_100": 100.0 * float(c.measured_oxide_nm.notna().sum()) / max(len(c), 1),
        "scrap": float(np.mean(c.disposition.to_numpy() == "scrap")),
    }


def ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval (NaNs left out)."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if x.size == 0:
        return math.nan, math.nan
    if x.size == 1:
        return float(x[0]), math.nan
    return float(x.mean()), float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1)
                                  / math.sqrt(x.size))


FIGURES = ("spec_released", "spec_all", "band", "cpk_true", "cpk_lab", "recover",
           "lab_per_100", "scrap")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--days", type=float, default=20.0)
    ap.add_argument("--truths", default="nominal",
                    help="comma list or 'all' (the 'none' scenario always runs on all)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="plant-file override for every cell (e.g. control.ewma_lambda=0.2)")
    ap.add_argument("--thin-film", action="store_true",
                    help="the thin-film line's sputter cap instead (off and twin)")
    a = ap.parse_args(argv)
    truths = TRUTHS if a.truths == "all" else tuple(a.truths.split(","))
    scenarios = tuple(a.scenarios.split(","))
    strategies = tuple(a.strategies.split(","))
    if a.thin_film:
        scenarios, strategies = THIN_SCENARIOS, ("off", "twin")
    cells = [(t, sc, st, seed, a.days, tuple(a.sets))
             for sc in scenarios
             for t in (TRUTHS if sc in ("none", "thin_none") else truths)
             for st in strategies for seed in range(100, 100 + a.seeds)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.jobs) as pool:
        rows = list(pool.map(_cell, cells, chunksize=4))
    wall = time.perf_counter() - t0
    df = pd.DataFrame(rows)
    out: dict[str, Any] = {"bench": "control", "seeds": a.seeds, "days": a.days,
                           "wall_s": round(wall, 1), "cells": {}}
    print(f"# {len(cells)} runs of {a.days:g} days in {wall:.0f} s; mean ± 95 % CI over "
          f"{a.seeds} seeds")
    for (t, sc), g in df.groupby(["truth", "scenario"], sort=False):
        print(f"\n## truth {t}, scenario {sc}")
        print("| figure | " + " | ".join(strategies) + " |")
        print("| --- |" + " --- |" * len(strategies))
        for fig in FIGURES:
            if fig == "recover" and sc not in STEP_SCENARIOS:
                continue
            cells_txt = []
            for st in strategies:
                m, h = ci(g[g.strategy == st][fig].tolist())
                out["cells"].setdefault(f"{t}/{sc}", {}).setdefault(st, {})[fig] = [
                    None if not math.isfinite(m) else round(m, 4),
                    None if not math.isfinite(h) else round(h, 4)]
                scale = 100.0 if fig in ("spec_released", "spec_all", "band", "scrap") else 1.0
                cells_txt.append("n/a" if not math.isfinite(m) else
                                 f"{m * scale:.3g} ± {h * scale:.2g}" if math.isfinite(h)
                                 else f"{m * scale:.3g}")
            unit = " %" if fig in ("spec_released", "spec_all", "band", "scrap") else ""
            print(f"| {fig}{unit} | " + " | ".join(cells_txt) + " |")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
