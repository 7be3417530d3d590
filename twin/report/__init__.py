"""Batch release reports from a run folder: per-batch HTML and JSON certificate, campaign summary.

Modules
-------
data
    Load and normalise a run folder (the report's input contract).
rules
    The plant's release decision (:mod:`twin.plant.release`, with the run's own plant file)
    and the checks around it (released / held / rejected).
spc
    Individuals chart limits, Western Electric rules, Cpk and Ppk with confidence intervals.
svg, charts
    Inline-SVG charts.
html, campaign
    The per-batch page and the campaign summary.
coa
    The certificate of analysis (JSON) and its schema ``coa.schema.json``.

:func:`write_reports` is what ``anode-twin report`` calls.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from twin.errors import UsageError
from twin.report.campaign import campaign_page, campaign_spc
from twin.report.coa import SCHEMA_FILE, certificate, dumps, schema
from twin.report.data import RunData, load_run
from twin.report.html import batch_page
from twin.report.rules import Assessment, assess, run_rules

__all__ = ["RunData", "Assessment", "ReportResult", "assess", "load_run", "write_reports"]


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_reports` wrote."""

    out_dir: Path
    index: Path | None
    batch_pages: tuple[Path, ...]
    certificates: tuple[Path, ...]
    assessments: tuple[Assessment, ...]

    def counts(self) -> dict[str, int]:
        """Batches per decision."""
        out = {"released": 0, "held": 0, "rejected": 0}
        for a in self.assessments:
            out[a.decision.status] += 1
        return out


def safe_name(batch_id: str) -> str:
    """A file name for ``batch_id`` (characters outside ``[A-Za-z0-9._-]`` become ``_``)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", batch_id).lstrip(".")
    return name or "batch"


def write_reports(run_dir: str | Path, out_dir: str | Path | None = None, *,
                  batch: str | None = None, now: dt.datetime | None = None) -> ReportResult:
    """Assess every release unit of a run and write the reports.

    Parameters
    ----------
    run_dir : str or Path
        Run folder of ``simulate`` or ``run``.
    out_dir : str or Path, optional
        Where to write; default ``RUN_DIR/report``.
    batch : str, optional
        Only this batch (its HTML page and certificate; no campaign summary).
    now : datetime, optional
        Timestamp of the reports (UTC; default the wall clock).

    Returns
    -------
    ReportResult

    Raises
    ------
    UsageError
        Missing run folder or batch table, or an unknown ``batch``.
    """
    run = load_run(run_dir)
    generated = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    ids = run.release_ids()
    if batch is not None:
        if batch not in ids:
            run.unit(batch)  # raises the one-line "unknown batch id" error for absent IDs
            raise UsageError(f"{run.run_dir}: {batch!r} is not a release unit (charge or "
                             "sputter run)")
        ids = [batch]
    out = Path(out_dir) if out_dir is not None else run.run_dir / "report"
    pages_dir = out / "batches"
    try:
        pages_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    assessments = [assess(run, b) for b in ids]
    pages, certs = [], []
    for a in assessments:
        name = safe_name(a.batch_id)
        pages.append(_write(pages_dir / f"{name}.html", batch_page(run, a, generated)))
        certs.append(_write(pages_dir / f"{name}.coa.json",
                            dumps(certificate(run, a, generated))))
    _write(out / SCHEMA_FILE, dumps(schema()))
    index = None
    if batch is None:
        html = campaign_page(run, assessments, campaign_spc(assessments, run_rules(run)),
                             lambda b: f"batches/{safe_name(b)}.html", generated)
        index = _write(out / "index.html", html)
    return ReportResult(out, index, tuple(pages), tuple(certs), tuple(assessments))


def _write(path: Path, text: str) -> Path:
    # Atomic: a report that is being rewritten never reads as complete but half-written.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
