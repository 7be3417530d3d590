"""Benchmark: virtual metrology against the hidden plant, on every shipped truth file.

The default plant (``plant_config/powder_line.toml``, with its own lab sampling and turnaround)
runs on each shipped truth file for ``--seeds`` seeds of ``--days`` days, exactly as
``anode-twin simulate`` does: the twin sees the process values, the measured inputs and the lab
results, nothing else. Per truth, over the charges after the first ``--skip-lab`` lab results of
each run:

* MAPE of the VM's predicted mean against the lab value (the charges the lab measured);
* coverage of the VM's 90 % prediction interval for the lab value (the interval on the mean
  widened by the lab method's stated repeatability): aim 85-95 %;
* the share of charges whose *true* mean (known to the benchmark only) lies inside the VM's
  interval on the mean, and the MAPE against the true mean;

each as the mean over the seeds with a 95 % confidence interval (Student t over the seeds).
The baseline in the same run is the twin's model with no calibration at all (the plant file's
factors, no lab learning: ``--set`` nothing, learning switched off), so the table shows what
the learning buys. Ends with one JSON line.

Run: ``python bench/vm.py [--seeds 20] [--days 60] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from scipy import stats

TRUTHS = ("nominal", "aged_furnace", "other_kinetics")


def one_run(truth: str, seed: int, days: float, skip_lab: int, learn: bool) -> dict[str, float]:
    """Figures of one run (the benchmark's unit of replication)."""
    from twin.config import load_plant
    from twin.hidden.world import HiddenPlant
    from twin.plant.plant import Plant
    from twin.plant.run import collect

    cfg = load_plant()
    hidden = HiddenPlant.load(truth, cfg, seed)
    horizon = days * 86400.0
    # learn_only_on_line=True on simulated equipment: nothing is learnt (the baseline).
    plant = Plant(cfg, seed, horizon, tools=hidden, learn_only_on_line=not learn)
    plant.run(horizon)
    b = collect(plant, horizon, seed).batches
    c = b[(b["unit_kind"] == "charge") & b["vm_mean_nm"].notna()].sort_values("end_s")
    lab = c[c["measured_oxide_nm"].notna()]
    if len(lab) <= skip_lab:
        return {"n_lab": float(len(lab))}
    t_after = float(lab["end_s"].iloc[skip_lab])
    lab = lab[lab["end_s"] >= t_after]
    after = c[(c["end_s"] >= t_after) & c["true_oxide_mean_nm"].notna()]
    m, v = lab["measured_oxide_nm"].to_numpy(), lab["vm_mean_nm"].to_numpy()
    t, p = after["true_oxide_mean_nm"].to_numpy(), after["vm_mean_nm"].to_numpy()
    return {
        "n_lab": float(len(lab)), "n_charges": float(len(after)),
        "mape_lab_pct": float(100 * np.mean(np.abs(v - m) / m)),
        "coverage_lab_pct": float(100 * np.mean((lab["vm_lab_lower_nm"] <= m)
                                                & (m <= lab["vm_lab_upper_nm"]))),
        "true_inside_pct": float(100 * np.mean((after["vm_lower_nm"] <= t)
                                               & (t <= after["vm_upper_nm"]))),
        "mape_true_pct": float(100 * np.mean(np.abs(p - t) / t)),
        "reliable_pct": float(100 * after["vm_reliable"].astype(bool).mean()),
    }


def _ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of its 95 % confidence interval over the seeds."""
    a = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if a.size < 2:
        return (float(a.mean()) if a.size else math.nan), math.nan
    half = float(stats.t.ppf(0.975, a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))
    return float(a.mean()), half


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--days", type=float, default=60.0)
    ap.add_argument("--skip-lab", type=int, default=10,
                    help="lab results a run learns from before it is scored")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    t0 = time.perf_counter()
    jobs = [(truth, seed, learn) for truth in TRUTHS for seed in range(1, args.seeds + 1)
            for learn in (True, False)]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(one_run, truth, seed, args.days, args.skip_lab, learn)
                   for truth, seed, learn in jobs]
        runs = [f.result() for f in futures]
    keys = ("mape_lab_pct", "coverage_lab_pct", "true_inside_pct", "mape_true_pct",
            "reliable_pct")
    table: dict[str, dict[str, Any]] = {}
    print(f"VM against the hidden plant: default plant, {args.seeds} seeds x {args.days:g} days "
          f"per truth, scored after the first {args.skip_lab} lab results of each run "
          "(mean and 95 % CI over the seeds)")
    print(f"{'truth':15} {'twin':9} {'MAPE vs lab':>14} {'90% PI covers lab':>18} "
          f"{'true mean in PI':>16} {'MAPE vs true':>14} {'reliable':>10}")
    for truth in TRUTHS:
        for learn in (True, False):
            rows = [r for (tr, _, ln), r in zip(jobs, runs, strict=True)
                    if tr == truth and ln == learn and "mape_lab_pct" in r]
            cells = {k: _ci([r[k] for r in rows]) for k in keys}
            name = "learns" if learn else "no lab"
            table.setdefault(truth, {})[name] = {
                k: {"mean": round(m, 2), "ci95": round(h, 2)} for k, (m, h) in cells.items()}
            table[truth][name]["runs"] = len(rows)
            table[truth][name]["lab_results_scored"] = int(sum(r["n_lab"] for r in rows))
            print(f"{truth:15} {name:9} " + " ".join(
                f"{cells[k][0]:8.1f} ±{cells[k][1]:4.1f}" for k in keys))
    learnt = {t: table[t]["learns"] for t in TRUTHS}
    meets = all(v["mape_lab_pct"]["mean"] < 10 and 85 <= v["coverage_lab_pct"]["mean"] <= 95
                for v in learnt.values())
    print(f"aim: MAPE < 10 % and coverage 85-95 % on every truth: "
          f"{'met' if meets else 'NOT met'} ({time.perf_counter() - t0:.0f} s)")
    print(json.dumps({"bench": "vm", "seeds": args.seeds, "days": args.days,
                      "skip_lab": args.skip_lab, "table": table, "meets_aims": meets}))


if __name__ == "__main__":
    main()
