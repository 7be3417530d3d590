"""``anode-twin simulate [PLANT.toml] [--days D] [--seed S] [--out DIR] [--set key=value]``.

Runs the SimPy plant model (the default powder line when no file is given), prints a summary
and, with ``--out``, writes the run folder (:mod:`twin.store`).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from twin.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("simulate", help="run the plant model and print a throughput summary",
                       description="Simulate the plant batch by batch (SimPy) and print "
                                   "output, utilisation, WIP, cycle time and oxide figures.")
    p.add_argument("file", nargs="?", default=None,
                   help="plant configuration (TOML); default plant_config/powder_line.toml")
    p.add_argument("--days", type=float, default=30.0, help="horizon in days (default 30)")
    p.add_argument("--seed", type=int, default=1, help="run seed (default 1)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write the run folder (config, seed, Parquet tables) here")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration key (checked like the file); repeatable")
    p.add_argument("--truth", default=None, metavar="NAME|FILE",
                   help="the hidden plant the run simulates: a shipped truth (nominal, "
                        "aged_furnace, other_kinetics) or a truth file; default nominal")
    p.add_argument("--physics", choices=("fast", "exact"), default="fast",
                   help="oxide physics per charge: anchored expansion (fast) or full solve")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The model and its tables load here, not when the command line is built: every other
    # command starts without pandas and the plant.
    from twin.config import load_plant
    from twin.hidden.run import simulate
    from twin.plant.run import trajectories_frame
    from twin.store import write_run

    if not (math.isfinite(args.days) and 0 < args.days <= 3660):
        raise UsageError(f"--days must be in (0, 3660], got {args.days:g}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    cfg = load_plant(args.file, args.overrides)
    result = simulate(cfg, args.days, args.seed, truth=args.truth, physics=args.physics)
    print(format_summary(result.summary, args.seed, result.extra.get("truth", "")))
    if args.out:
        folder = write_run(args.out, cfg=cfg, seed=args.seed, days=args.days,
                           tables={"batches": result.batches, "events": result.events,
                                   "states": result.states, "shares": result.shares,
                                   "trajectories": trajectories_frame(result.extra["plant"])},
                           summary=result.summary, physics=args.physics,
                           extra={"truth": {"name": result.extra["truth"],
                                            "source": result.extra["truth_source"]}})
        control = getattr(result.extra.get("plant"), "ctx", None)
        if control is not None and control.control is not None:
            # The control loops' audit records, buffered during the run (no I/O in SimPy).
            control.control.write_audit(folder)
        print(f"run folder: {folder}")
    return 0


def format_summary(s: dict[str, Any], seed: int, truth: str = "") -> str:
    """The summary as an aligned text block (``truth``: the hidden plant's name)."""
    lo, hi = s["window_nm"]
    made = ", ".join(f"{k} {v}" for k, v in s["units_made"].items())
    lines = [
        f"plant {s['plant']} ({s['form']}), {s['days']:g} days, seed {seed}"
        + (f", truth {truth}" if truth else ""),
        f"  output      {s['shipped_units_per_day']:.2f} {s['final_unit']}s/day, "
        f"{s['shipped_kg_per_day']:.1f} kg/day shipped; "
        f"{s['oxide_batches_per_day']:.2f} oxide batches/day",
        f"  units made  {made}",
        f"  WIP         {s['wip_kg']:.1f} kg in {s['wip_units']} units at the end, "
        f"{s['wip_kg_mean']:.1f} kg on average",
        f"  cycle time  {s['cycle_time_h_mean']:.1f} h mean, {s['cycle_time_h_p95']:.1f} h p95 "
        f"(first melt to shipping)",
        f"  oxide       predicted mean {s['pred_oxide_mean_nm']:.2f} nm; "
        f"{100 * s['pred_in_window_share']:.1f} % of batches in {lo:g}-{hi:g} nm",
        f"  disposition {_pairs(s['dispositions'])}; lab measured {s['lab_measured']}",
        f"  mass        in {s['mass_in_kg']:.1f} kg = shipped {s['shipped_kg']:.1f} + scrap "
        f"{s['scrap_kg']:.1f} + WIP {s['wip_kg']:.1f} (balance {s['balance_kg']:.2g} kg)",
        f"  operators   {100 * s['operator_utilisation']:.1f} % busy on shift",
        "  station              util  working  setup  blocked  starved   idle   down",
    ]
    for path, st in s["stations"].items():
        lines.append(f"  {path:<20} {100 * st['utilisation']:4.0f}%  " + "  ".join(
            f"{100 * st[k]:6.1f}%" for k in ("working", "setup", "blocked", "starved", "idle",
                                              "down")))
    return "\n".join(lines)


def _pairs(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "none"
