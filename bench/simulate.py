"""Benchmark: one simulated year of the default plant against a bare SimPy loop.

Prints the wall time of the year, the model's SimPy events per second, the events per second
of a bare ``env.timeout`` loop measured in the same process just before, their ratio, and a
final JSON line. Both loops run on the same counting environment, so the count costs both the
same. Aims (issue 3): a year in under 5 s, ratio >= 0.3.

``--set KEY=VALUE`` (repeatable) overrides a plant key, checked like the file, e.g.
``--set control.mode=off`` to measure the plant model without closed-loop control. When the
measured configuration has control on, the same year is also run with ``control.mode=off``
(about a second) and reported beside it, so the cost of control is visible in one run; the
headline numbers and the JSON line's top-level keys are those of the configuration as given.

Usage: ``python bench/simulate.py [--days 365] [--seed 1] [--physics fast|exact]
[--set KEY=VALUE ...] [--no-off-run]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import simpy

from twin.config import PlantConfig, load_plant
from twin.errors import TwinError
from twin.plant.run import CountingEnvironment, simulate

BARE_EVENTS = 500_000


def bare_rate(n: int = BARE_EVENTS) -> float:
    """Events per second of one process that only yields ``env.timeout(1)``."""
    env = CountingEnvironment()

    def loop(env: simpy.Environment):
        while True:
            yield env.timeout(1.0)

    env.process(loop(env))
    t0 = time.perf_counter()
    env.run(until=n)
    return env.events_processed / (time.perf_counter() - t0)


def measure(cfg: PlantConfig, days: float, seed: int, physics: str) -> dict:
    """Simulate ``days`` of ``cfg``; return the numbers the benchmark prints."""
    t0 = time.perf_counter()
    result = simulate(cfg, days, seed, physics=physics)
    total = time.perf_counter() - t0
    cache = result.extra["plant"].ctx.physics
    return {
        "wall_s": result.wall_s, "wall_with_tables_s": total,
        "events": result.events_processed,
        "events_per_s": result.events_processed / result.wall_s,
        "summary": result.summary, "exact_calls": cache.exact_calls,
        "anchors": sum(map(len, cache.anchors.values())), "fast_calls": cache.fast_calls,
    }


def report(label: str, m: dict, bare: float) -> None:
    """Print one measured configuration."""
    s = m["summary"]
    print(f"  [{label}]")
    print(f"  simulation wall time  {m['wall_s']:8.2f} s  (with tables "
          f"{m['wall_with_tables_s']:.2f} s)")
    print(f"  model events          {m['events']:8d}  ({m['events_per_s']:,.0f} events/s)")
    print(f"  ratio model/bare      {m['events_per_s'] / bare:8.3f}  (aim >= 0.3)")
    print(f"  batches               {s['units_made']}; oxide physics: "
          f"{m['exact_calls']} full solves, {m['anchors']} anchors, "
          f"{m['fast_calls']} expansions")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=365.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--physics", choices=("fast", "exact"), default="fast")
    ap.add_argument("--plant", default=None, help="plant file (default: the powder line)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a plant key (repeatable), e.g. control.mode=off")
    ap.add_argument("--no-off-run", action="store_true",
                    help="do not also measure the same plant with control.mode=off")
    args = ap.parse_args(argv)
    try:
        cfg = load_plant(args.plant, args.overrides)
        off_cfg = (None if args.no_off_run or cfg.control.mode == "off"
                   else load_plant(args.plant, [*args.overrides, "control.mode=off"]))
    except TwinError as exc:
        print(f"bench/simulate.py: {exc}", file=sys.stderr)
        return 2
    bare = bare_rate()
    m = measure(cfg, args.days, args.seed, args.physics)
    off = measure(off_cfg, args.days, args.seed, args.physics) if off_cfg else None
    s = m["summary"]
    sets = f", --set {' '.join(args.overrides)}" if args.overrides else ""
    print(f"plant {s['plant']}: {args.days:g} simulated days, seed {args.seed}, "
          f"physics {args.physics}{sets}")
    print(f"  bare SimPy loop       {bare:,.0f} events/s")
    report(f"control {cfg.control.mode}", m, bare)
    if off is not None:
        report("control off", off, bare)
    line = {
        "bench": "simulate", "days": args.days, "seed": args.seed, "physics": args.physics,
        "overrides": args.overrides, "control_mode": cfg.control.mode,
        "wall_s": round(m["wall_s"], 4), "wall_with_tables_s": round(m["wall_with_tables_s"], 4),
        "events": m["events"], "events_per_s": round(m["events_per_s"], 1),
        "bare_events_per_s": round(bare, 1), "ratio": round(m["events_per_s"] / bare, 4),
        "aim_wall_s": 5.0, "aim_ratio": 0.3, "python": platform.python_version(),
        "shipped_kg_per_day": round(s["shipped_kg_per_day"], 2),
    }
    if off is not None:
        line["control_off"] = {
            "wall_s": round(off["wall_s"], 4), "events": off["events"],
            "events_per_s": round(off["events_per_s"], 1),
            "ratio": round(off["events_per_s"] / bare, 4),
            "shipped_kg_per_day": round(off["summary"]["shipped_kg_per_day"], 2),
        }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
