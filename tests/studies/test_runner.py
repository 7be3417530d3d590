"""The study runner on the real plant: seeds, executors, resume, precision and the result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.store.study import ReplicationStore
from twin.studies.analysis import analyse
from twin.studies.definition import load_study
from twin.studies.runner import Progress, make_tasks, replication_seed, run_study

MakeStudy = Callable[..., Path]
REPS = "replications"


def test_replication_seeds_are_spawned_children() -> None:
    children = np.random.SeedSequence(42).spawn(5)
    for r, child in enumerate(children):
        assert replication_seed(42, r) == int(child.generate_state(1, dtype=np.uint64)[0])
    assert len({replication_seed(42, r) for r in range(100)}) == 100


def test_common_random_numbers_across_scenarios(quick_study: Path) -> None:
    study = load_study(quick_study)
    tasks = make_tasks(study, range(3))
    by_rep: dict[int, set[int]] = {}
    for t in tasks:
        by_rep.setdefault(t.replication, set()).add(t.seed)
    assert all(len(seeds) == 1 for seeds in by_rep.values())  # same seed in every scenario
    assert len({next(iter(s)) for s in by_rep.values()}) == 3  # independent across reps


def _stored(root: Path) -> dict[str, pd.DataFrame]:
    files = sorted((root / "replications").rglob("*.parquet"))
    return {str(f.relative_to(root)): pd.read_parquet(f) for f in files}


def test_serial_processes_and_dask_give_identical_numbers(
        tmp_path: Path, make_study: MakeStudy) -> None:
    pytest.importorskip("dask.distributed")
    study = load_study(make_study(tmp_path, days=3.0, reps=2))
    runs = {}
    for name, kw in (("serial", {"executor": "serial"}),
                     ("processes", {"executor": "processes", "workers": 2}),
                     ("dask", {"executor": "dask", "workers": 2, "dask_processes": False})):
        root = tmp_path / name
        stats = run_study(study, ReplicationStore(root), **kw)  # type: ignore[arg-type]
        assert stats.computed == 4
        runs[name] = _stored(root)
        summary = analyse(study, ReplicationStore(root)).summary
        runs[name]["summary"] = summary
    for name in ("processes", "dask"):
        assert runs[name].keys() == runs["serial"].keys()
        for key, df in runs["serial"].items():
            pd.testing.assert_frame_equal(runs[name][key], df, check_exact=True)


def test_budget_then_rerun_resumes_without_recomputing(
        tmp_path: Path, make_study: MakeStudy) -> None:
    study = load_study(make_study(tmp_path, days=2.0, reps=3))
    store = ReplicationStore(tmp_path / "out")
    first = run_study(study, store, executor="serial", max_new=4)
    assert first.computed == 4
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / REPS).rglob("r*.parquet")}
    assert len(files) == 4
    second = run_study(study, store, executor="serial")
    assert (second.computed, second.reused) == (2, 4)
    for p, mtime in files.items():
        assert p.stat().st_mtime_ns == mtime  # never rewritten
    third = run_study(study, store, executor="serial")
    assert (third.computed, third.reused) == (0, 6)


def test_killed_study_resumes(
        tmp_path: Path, make_study: MakeStudy) -> None:
    path = make_study(tmp_path, days=4.0, reps=6)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "twin.cli", "study", str(path), "--workers", "1",
           "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list((out / REPS).rglob("r*.parquet"))) < 3:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done = {p: p.stat().st_mtime_ns for p in (out / REPS).rglob("r*.parquet")}
    assert 3 <= len(done) < 12, "the study should have been killed part-way"
    for p in done:  # every stored file is complete and readable
        assert len(pd.read_parquet(p)) > 0
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"{12 - len(done)} computed, {len(done)} reused" in result.stdout
    for p, mtime in done.items():
        assert p.stat().st_mtime_ns == mtime
    assert len(list((out / REPS).rglob("r*.parquet"))) == 12


def test_ci_shrinks_with_more_replications(
        tmp_path: Path, make_study: MakeStudy) -> None:
    # Frequent mill breakdowns make throughput vary from replication to replication.
    flaky = ('[scenarios.flaky]\nset = ["stations.mill.reliability.mtbf_h=24.0", '
             '"stations.mill.reliability.mttr_h=6.0"]\n')
    study = load_study(make_study(tmp_path, days=6.0, reps=16, scenarios=flaky))
    store = ReplicationStore(tmp_path / "out")
    run_study(study, store, executor="processes", workers=2)
    widths = {}
    for n in (4, 16):
        s = analyse(study, store, n).summary
        for kpi in ("throughput_kg_per_day", "cycle_time_h", "wip_kg"):
            row = s[s.kpi == kpi].iloc[0]
            assert row["n"] == n
            widths[(kpi, n)] = row["half_width"]
    for kpi in ("throughput_kg_per_day", "cycle_time_h", "wip_kg"):
        assert 0 < widths[(kpi, 16)] < widths[(kpi, 4)], kpi


def test_capacity_at_the_bottleneck_raises_throughput(
        tmp_path: Path, make_study: MakeStudy) -> None:
    study = load_study(make_study(tmp_path, days=6.0, reps=4))
    store = ReplicationStore(tmp_path / "out")
    run_study(study, store, executor="processes", workers=2)
    res = analyse(study, store)
    b = res.bottlenecks
    base_top = b[b.scenario == "base"].iloc[0]
    assert base_top["group"] == "line1.mill" and base_top["share_of_replications"] == 1.0
    d = res.differences
    gain = d[(d.scenario == "four_mills") & (d.kpi == "throughput_kg_per_day")].iloc[0]
    assert gain["significant"] and gain["low"] > 0
    assert res.ranking.iloc[0]["scenario"] == "four_mills"


def test_precision_mode_adds_replications_until_the_target(
        tmp_path: Path, make_study: MakeStudy) -> None:
    extra = ("[precision]\nrelative_half_width = { throughput_kg_per_day = 0.08 }\n"
             "min_replications = 2\nmax_replications = 12\n")
    study = load_study(make_study(tmp_path, days=3.0, reps=2, extra=extra))
    store = ReplicationStore(tmp_path / "out")
    stats = run_study(study, store, executor="processes", workers=2)
    assert not stats.unmet
    s = analyse(study, store, stats.replications).summary
    rows = s[s.kpi == "throughput_kg_per_day"]
    assert (rows["half_width"] <= 0.08 * rows["mean"]).all()
    assert stats.replications > 2


def test_precision_mode_reports_unmet_targets_at_the_cap(
        tmp_path: Path, make_study: MakeStudy) -> None:
    extra = ("[precision]\nhalf_width = { throughput_kg_per_day = 0.0001 }\n"
             "min_replications = 2\nmax_replications = 3\n")
    study = load_study(make_study(tmp_path, days=2.0, extra=extra))
    stats = run_study(study, ReplicationStore(tmp_path / "out"), executor="serial")
    assert stats.replications == 3 and stats.unmet
    assert "throughput_kg_per_day" in stats.unmet[0]


def test_progress_line(
        tmp_path: Path, make_study: MakeStudy) -> None:
    import io

    study = load_study(make_study(tmp_path, days=2.0, reps=3))
    buf = io.StringIO()
    bar = Progress("study quick", stream=buf, every_s=0.0)
    run_study(study, ReplicationStore(tmp_path / "out"), executor="serial", progress=bar)
    text = buf.getvalue()
    assert "6/6 replications" in text and "ETA" in text and "CI ±" in text


def test_missing_dask_is_a_one_line_usage_error(
        tmp_path: Path, make_study: MakeStudy, monkeypatch: pytest.MonkeyPatch) -> None:
    from twin.errors import UsageError

    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    study = load_study(make_study(tmp_path, days=2.0, reps=2))
    with pytest.raises(UsageError, match=r"pip install 'anode-twin\[dask\]'"):
        run_study(study, ReplicationStore(tmp_path / "out"), executor="dask")
    assert not (tmp_path / "out").exists()
