"""Benchmark: one simulated year of the default plant against a bare SimPy loop.

Prints the wall time of the year, the model's SimPy events per second, the events per second
of a bare ``env.timeout`` loop measured in the same process just before, their ratio, and a
final JSON line. Both loops run on the same counting environment, so the count costs both the
same. Aims (issue 3): a year in under 5 s, ratio >= 0.3.

Usage: ``python bench/simulate.py [--days 365] [--seed 1] [--physics fast|exact]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import simpy

from twin.config import load_plant
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=365.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--physics", choices=("fast", "exact"), default="fast")
    ap.add_argument("--plant", default=None, help="plant file (default: the powder line)")
    args = ap.parse_args(argv)
    cfg = load_plant(args.plant)
    bare = bare_rate()
    t0 = time.perf_counter()
    result = simulate(cfg, args.days, args.seed, physics=args.physics)
    total = time.perf_counter() - t0
    rate = result.events_processed / result.wall_s
    physics = result.extra["plant"].ctx.physics
    s = result.summary
    print(f"plant {s['plant']}: {args.days:g} simulated days, seed {args.seed}, "
          f"physics {args.physics}")
    print(f"  simulation wall time  {result.wall_s:8.2f} s  (with tables {total:.2f} s)")
    print(f"  model events          {result.events_processed:8d}  ({rate:,.0f} events/s)")
    print(f"  bare SimPy loop       {bare:,.0f} events/s")
    print(f"  ratio model/bare      {rate / bare:8.3f}  (aim >= 0.3)")
    print(f"  batches               {s['units_made']}; oxide physics: "
          f"{physics.exact_calls} full solves, {sum(map(len, physics.anchors.values()))} "
          f"anchors, {physics.fast_calls} expansions")
    print(json.dumps({
        "bench": "simulate", "days": args.days, "seed": args.seed, "physics": args.physics,
        "wall_s": round(result.wall_s, 4), "wall_with_tables_s": round(total, 4),
        "events": result.events_processed, "events_per_s": round(rate, 1),
        "bare_events_per_s": round(bare, 1), "ratio": round(rate / bare, 4),
        "aim_wall_s": 5.0, "aim_ratio": 0.3, "python": platform.python_version(),
        "shipped_kg_per_day": round(s["shipped_kg_per_day"], 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
