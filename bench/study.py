"""Benchmark: one study with 1 worker, 2 local worker processes and a Dask LocalCluster.

Prints the speed-up of 2 workers over 1 (aim >= 1.8 on two cores) and of Dask over 1 worker,
and whether all three produced identical stored replications (byte-for-byte equal tables).
The baseline (1 worker) is measured in the same run. Ends with one JSON line.

    python bench/study.py [--study FILE] [--days D] [--replications N] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from twin.store.study import ReplicationStore
from twin.studies.definition import STUDY_DIR, load_study
from twin.studies.runner import run_study


def _tables(root: Path) -> dict[str, pd.DataFrame]:
    files = sorted((root / "replications").rglob("*.parquet"))
    return {str(f.relative_to(root)): pd.read_parquet(f) for f in files}


def _identical(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> bool:
    return a.keys() == b.keys() and all(a[k].equals(b[k]) for k in a)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default=str(STUDY_DIR / "add_mill.toml"))
    ap.add_argument("--days", type=float, default=60.0)
    ap.add_argument("--replications", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each configuration this many times and keep the fastest")
    args = ap.parse_args(argv)
    study = load_study(args.study, days=args.days, replications=args.replications)
    tasks = len(study.scenarios) * study.replications
    print(f"study {study.name}: {tasks} replications of {study.days:g} days; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    runs: dict[str, tuple[float, dict[str, pd.DataFrame]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-study-") as tmp:
        plan = [("1 worker", "processes", 1), (f"{args.workers} workers", "processes",
                                               args.workers)]
        if not args.no_dask:
            plan.append((f"dask local ({args.workers} workers)", "dask", args.workers))
        for label, executor, workers in plan:
            walls = []
            for i in range(args.repeat):
                root = Path(tmp) / f"{label.replace(' ', '_')}-{i}"
                t0 = time.perf_counter()
                stats = run_study(study, ReplicationStore(root),
                                  executor=executor,  # type: ignore[arg-type]
                                  workers=workers)
                walls.append(time.perf_counter() - t0)
                assert stats.computed == tasks
            wall = min(walls)
            runs[label] = (wall, _tables(root))
            print(f"  {label:<28s} {wall:7.2f} s  ({tasks / wall:.2f} replications/s)")
    base_wall, base_tables = runs["1 worker"]
    result: dict[str, object] = {"bench": "study", "study": study.name, "replications": tasks,
                                 "days": study.days, "cpus": os.cpu_count(),
                                 "wall_1_worker_s": round(base_wall, 3)}
    for label, (wall, tables) in runs.items():
        if label == "1 worker":
            continue
        key = "dask" if label.startswith("dask") else "processes"
        same = _identical(base_tables, tables)
        print(f"  speed-up {label} vs 1 worker: {base_wall / wall:.2f}x; "
              f"identical results: {'yes' if same else 'NO'}")
        result[f"speedup_{key}"] = round(base_wall / wall, 3)
        result[f"identical_{key}"] = same
        result[f"wall_{key}_s"] = round(wall, 3)
    result["target_speedup"] = 1.8
    load = os.getloadavg()[0]
    result["load_average"] = round(load, 2)
    if load > (os.cpu_count() or 1):
        print(f"  note: load average {load:.1f} exceeds the {os.cpu_count()} CPUs: other work "
              "shares the cores, so this speed-up is unreliable either way; rerun on a quiet "
              "machine or with --repeat 3")
    print(json.dumps(result))
    ok = all(v for k, v in result.items() if k.startswith("identical"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
