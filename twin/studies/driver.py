"""One call that runs a study to completion and writes every output (what the CLI calls)."""

from __future__ import annotations

from pathlib import Path

from twin.store.study import ReplicationStore
from twin.studies.analysis import StudyResult, analyse
from twin.studies.definition import Study
from twin.studies.runner import Executor, Progress, RunStats, run_study


def run_and_report(study: Study, out: str | Path, executor: Executor = "processes",
                   workers: int | None = None, dask_address: str = "local",
                   progress: bool = False, max_new: int | None = None,
                   ) -> tuple[StudyResult, RunStats, dict[str, Path]]:
    """Run (or resume) ``study`` under ``out`` and write Parquet, plots and the HTML report.

    Parameters
    ----------
    study : Study
        A loaded study.
    out : str or Path
        The study folder (stored replications are found and reused here).
    executor, workers, dask_address
        See :func:`twin.studies.runner.execute`.
    progress : bool
        Show the progress line on stderr.
    max_new : int, optional
        Budget of new replications for this call.

    Returns
    -------
    (StudyResult, RunStats, dict)
        The analysis, what the run did, and the written files by name.
    """
    from twin.studies.report import write_outputs

    store = ReplicationStore(out)
    bar = Progress(f"study {study.name}", enabled=progress) if progress else None
    stats = run_study(study, store, executor, workers, dask_address, progress=bar,
                      max_new=max_new)
    result = analyse(study, store, stats.replications)
    files = write_outputs(study, result, store, stats)
    return result, stats, files
