"""Replications of every scenario of a study: seeds, executors, resume and precision mode.

Random numbers
    Replication ``r`` uses child ``r`` of ``SeedSequence(study.seed)`` (exactly what
    ``SeedSequence(seed).spawn(n)[r]`` gives) in *every* scenario: common random numbers, so a
    scenario difference is the change, not noise. Each replication is a pure function of its
    scenario's plant, the horizon and that seed, so the executor cannot change a number.

Executors
    ``serial``; ``processes`` (a local process pool, the default); ``dask`` (``"local"`` starts a
    LocalCluster, ``"tcp://host:port"`` joins a running scheduler whose workers have
    anode-twin installed). Results come back to this process, which alone writes them.

Resume
    Each replication is stored as it finishes (:class:`twin.store.study.ReplicationStore`);
    a rerun skips every replication already stored under the same run key.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

import numpy as np
import pandas as pd

from twin.config.schema import PlantConfig
from twin.errors import UsageError
from twin.store.study import ReplicationStore
from twin.studies import analysis
from twin.studies.definition import Study
from twin.studies.stats import mean_ci

Executor = Literal["serial", "processes", "dask"]
Model = Callable[[PlantConfig, float, int, float], pd.DataFrame]


def replication_seed(study_seed: int, replication: int) -> int:
    """Integer seed of replication ``r``: 64 bits of ``SeedSequence(study_seed).spawn(r+1)[r]``.

    Built from the spawn key directly, so it does not depend on how many replications were
    spawned before (a resumed or extended study gets the same seeds).
    """
    child = np.random.SeedSequence(study_seed, spawn_key=(replication,))
    return int(child.generate_state(1, dtype=np.uint64)[0])


@dataclass(frozen=True)
class Task:
    """One replication of one scenario."""

    scenario: str
    replication: int
    run_key: str
    seed: int
    plant: PlantConfig
    days: float
    bucket_h: float
    truth: str = "nominal"


def run_task(task: Task, model: Model | None = None) -> pd.DataFrame:
    """Run one replication and return its bucket table (executed in a worker)."""
    if model is None:
        from twin.studies.model import replicate

        return replicate(task.plant, task.days, task.seed, task.bucket_h, truth=task.truth)
    return model(task.plant, task.days, task.seed, task.bucket_h)


@dataclass
class RunStats:
    """What a study run did."""

    computed: int = 0
    reused: int = 0
    replications: int = 0
    wall_s: float = 0.0
    unmet: list[str] = field(default_factory=list)


class Progress:
    """Plain-text progress line on stderr: done/total, ETA, current CI half-width.

    On a terminal the line is redrawn in place; otherwise a line is printed at most every
    ``every_s`` seconds, so logs stay short.
    """

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool = True,
                 every_s: float = 5.0) -> None:
        self.label, self.enabled, self.every_s = label, enabled, every_s
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.monotonic()
        self._last = -math.inf
        self._computed = 0

    def show(self, done: int, total: int, computed: int, ci: str, final: bool = False) -> None:
        """Report ``done`` of ``total`` replications (``computed`` of them in this run)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not (final or self.tty or now - self._last >= self.every_s):
            return
        self._last = now
        elapsed = now - self.t0
        left = total - done
        eta = "--:--" if computed == 0 else _clock(elapsed / computed * left)
        bar_w = 24
        fill = int(bar_w * done / total) if total else bar_w
        line = (f"{self.label} [{'#' * fill}{'.' * (bar_w - fill)}] {done}/{total} "
                f"replications, ETA {eta}, elapsed {_clock(elapsed)}{ci}")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else "\x1b[K"))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


def make_tasks(study: Study, replications: Sequence[int]) -> list[Task]:
    """Tasks for the given replication numbers of every scenario, replication-major."""
    return [
        Task(sc.name, r, sc.run_key(study.days, study.seed, study.bucket_h),
             replication_seed(study.seed, r), sc.plant, study.days, study.bucket_h, sc.truth)
        for r in replications for sc in study.scenarios
    ]


def execute(tasks: Sequence[Task], executor: Executor = "processes", workers: int | None = None,
            dask_address: str = "local", dask_processes: bool = True,
            model: Model | None = None) -> Iterator[tuple[Task, pd.DataFrame]]:
    """Run ``tasks``, yielding ``(task, buckets)`` as each finishes (any order)."""
    if not tasks:
        return
    n = max(1, workers or os.cpu_count() or 1)
    if executor == "serial" or (executor == "processes" and (n == 1 or len(tasks) == 1)):
        for t in tasks:
            yield t, run_task(t, model)
    elif executor == "processes":
        yield from _execute_pool(tasks, n, model)
    elif executor == "dask":
        yield from _execute_dask(tasks, n, dask_address, dask_processes, model)
    else:
        raise UsageError(f"unknown executor {executor!r}")


def _execute_pool(tasks: Sequence[Task], n: int,
                  model: Model | None) -> Iterator[tuple[Task, pd.DataFrame]]:
    # forkserver: workers fork from a clean server that has imported the model once, so a
    # worker starts in milliseconds and never inherits this process's threads or files.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["twin.studies.runner", "twin.studies.model"])
    pool = ProcessPoolExecutor(max_workers=min(n, len(tasks)), mp_context=ctx)
    try:
        pending: dict[Future[pd.DataFrame], Task] = {pool.submit(run_task, t, model): t
                                                     for t in tasks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield pending.pop(fut), fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _execute_dask(tasks: Sequence[Task], n: int, address: str, processes: bool,
                  model: Model | None) -> Iterator[tuple[Task, pd.DataFrame]]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise UsageError("--dask needs the optional Dask extra: "
                         "pip install 'anode-twin[dask]'") from None
    import logging  # a closing LocalCluster logs harmless CommClosedErrors; task errors still raise

    cluster: Any = None
    try:
        if address == "local":
            cluster = LocalCluster(n_workers=min(n, len(tasks)), threads_per_worker=1,
                                   processes=processes, dashboard_address=None,
                                   silence_logs=logging.CRITICAL)
            client = Client(cluster)
        else:
            client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"--dask {address}: cannot reach the scheduler ({exc})") from None
    try:
        futures = {client.submit(run_task, t, model, pure=False,
                                 key=f"{t.scenario}-{t.run_key}-r{t.replication}"): t
                   for t in tasks}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_study(study: Study, store: ReplicationStore, executor: Executor = "processes",
              workers: int | None = None, dask_address: str = "local",
              dask_processes: bool = True, progress: Progress | None = None,
              max_new: int | None = None, model: Model | None = None) -> RunStats:
    """Make sure every replication the study needs is stored; return what was done.

    In fixed mode the study needs ``study.replications`` per scenario. In precision mode it
    starts with ``min_replications`` and adds replications (to every scenario, keeping the
    pairs of common random numbers complete) until each targeted KPI's 95 % half-width is
    under its target in every scenario, or ``max_replications`` is reached.

    Parameters
    ----------
    study : Study
        The loaded study.
    store : ReplicationStore
        Where replications are kept (and found again on a rerun).
    executor, workers, dask_address, dask_processes
        How to run (see :func:`execute`).
    progress : Progress, optional
        Progress line; none when omitted.
    max_new : int, optional
        Compute at most this many new replications, then stop (a budget; the rest is left
        for a rerun).
    model : callable, optional
        ``(plant, days, seed, bucket_h) -> buckets``; the plant model by default.

    Returns
    -------
    RunStats
    """
    stats = RunStats()
    t0 = time.monotonic()
    prec = study.precision
    headline = _Headline(study, store, progress is not None and progress.enabled)
    n = study.replications if prec is None else prec.min_replications
    while True:
        wanted = make_tasks(study, range(n))
        todo = [t for t in wanted if not store.has(t.scenario, t.run_key, t.replication)]
        if max_new is not None:
            todo = todo[: max(0, max_new - stats.computed)]
        done = len(wanted) - len(todo)
        if progress is not None:
            headline.load(wanted)
            progress.show(done, len(wanted), stats.computed, headline.text())
        for task, buckets in execute(todo, executor, workers, dask_address, dask_processes,
                                     model):
            store.write(task.scenario, task.run_key, task.replication, task.seed, buckets)
            stats.computed += 1
            done += 1
            if progress is not None:
                headline.add(task.scenario, task.replication, buckets)
                progress.show(done, len(wanted), stats.computed, headline.text())
        stats.replications = n
        if max_new is not None and stats.computed >= max_new:
            break
        if prec is None:
            break
        needed, unmet = analysis.precision_needed(study, store, n)
        stats.unmet = unmet
        if not unmet:
            break
        if n >= prec.max_replications:
            break
        # Grow at most 2x per round: the estimate from a few replications is itself noisy.
        n = min(prec.max_replications, max(n + 1, min(needed, 2 * n)))
    stats.reused = sum(store.has(t.scenario, t.run_key, t.replication)
                       for t in make_tasks(study, range(stats.replications))) - stats.computed
    if progress is not None:
        total = stats.replications * len(study.scenarios)
        progress.show(min(total, stats.reused + stats.computed), total, stats.computed,
                      headline.text(), final=True)
    stats.wall_s = time.monotonic() - t0
    return stats


class _Headline:
    """Per-replication headline throughput, kept in memory for the progress line's CI."""

    def __init__(self, study: Study, store: ReplicationStore, enabled: bool) -> None:
        self.study, self.store, self.enabled = study, store, enabled
        self.values: dict[tuple[str, int], float] = {}

    def add(self, scenario: str, replication: int, buckets: pd.DataFrame) -> None:
        if self.enabled:
            self.values[(scenario, replication)] = analysis.headline_value(self.study, buckets)

    def load(self, tasks: Sequence[Task]) -> None:
        """Read the stored replications among ``tasks`` that are not known yet."""
        for t in tasks:
            if self.enabled and (t.scenario, t.replication) not in self.values and \
                    self.store.has(t.scenario, t.run_key, t.replication):
                self.add(t.scenario, t.replication,
                         self.store.read(t.scenario, t.run_key, t.replication))

    def text(self) -> str:
        """``, CI ±3.1 kg/day`` for the widest scenario (empty with < 2 replications)."""
        widest = -math.inf
        for sc in self.study.scenarios:
            vals = [v for (s, _), v in self.values.items() if s == sc.name]
            hw = mean_ci(vals).half_width
            if math.isfinite(hw):
                widest = max(widest, hw)
        return f", CI ±{widest:.3g} kg/day (widest scenario)" if math.isfinite(widest) else ""
