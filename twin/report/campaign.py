"""Campaign summary: review by exception, SPC of the oxide thickness, links to each batch.

Only batches that need a reviewer (held, rejected, or with a deviation or a flag) are listed
in full; every batch has one line with a link to its report. The individuals chart and the
capability indices use each batch's release thickness (lab value when measured, else a
reliable prediction) in production order; batches without a trustworthy thickness are left
out and counted. Capability (Cpk, Ppk) is against the internal band of the run's plant file
(``control.band_nm``), beside the share inside the release specification
(``control.window_nm``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from twin.plant.release import ReleaseRules
from twin.report.charts import control_chart, moving_range_chart
from twin.report.data import RunData
from twin.report.html import clock, decision_block, esc, page, release_people, table
from twin.report.rules import Assessment
from twin.report.spc import (
    BandCapability,
    Capability,
    Limits,
    Violation,
    band_capability,
    individuals_limits,
    western_electric,
)

MIN_SPC_POINTS = 3


@dataclass(frozen=True)
class Spc:
    """SPC results of a campaign on ln(thickness); capability against the internal band."""

    batch_ids: tuple[str, ...]
    values_nm: tuple[float, ...]
    limits: Limits
    violations: tuple[Violation, ...]
    capability: BandCapability

    @property
    def cpk(self) -> Capability:
        """Cpk against the internal band."""
        return self.capability.cpk

    @property
    def ppk(self) -> Capability:
        """Ppk against the internal band."""
        return self.capability.ppk


def campaign_spc(assessments: Sequence[Assessment],
                 rules: ReleaseRules | None = None) -> Spc | None:
    """Individuals-chart limits, WE rules, and capability against the internal band of
    ``rules`` (the run's plant file; else the assessments' own). None with fewer than 3
    values or without a plant file."""
    rules = rules if rules is not None else next(
        (a.rules for a in assessments if a.rules is not None), None)
    pts = [(a.batch_id, a.thickness.basis) for a in assessments
           if a.thickness.basis is not None and a.thickness.basis > 0]
    if len(pts) < MIN_SPC_POINTS or rules is None:
        return None
    ids = tuple(b for b, _ in pts)
    vals = tuple(float(v) for _, v in pts if v is not None)
    logs = [math.log(v) for v in vals]
    limits = individuals_limits(logs)
    return Spc(ids, vals, limits, tuple(western_electric(logs, limits)),
               band_capability(vals, rules.band_nm, rules.window_nm))


def campaign_page(run: RunData, assessments: Sequence[Assessment], spc: Spc | None,
                  link: Callable[[str], str], generated: dt.datetime) -> str:
    """The campaign summary page; ``link(batch_id)`` gives the relative URL of a batch report."""
    n = len(assessments)
    counts = {s: sum(a.decision.status == s for a in assessments)
              for s in ("released", "held", "rejected")}
    share = counts["released"] / n if n else 0.0
    people = release_people(run)
    head = (f"<h1>Campaign release summary · {esc(run.run_dir.name)}</h1>"
            f'<p class="muted">{esc(people.site)} · form {esc(run.form)} · generated '
            f"{esc(generated.isoformat(timespec='seconds'))} by {esc(people.prepared_by)} · "
            f"review: {esc(people.reviewed_by)} (pending)</p>")
    summary = table(["batches", "released", "held", "rejected", "share released"],
                    [[str(n), str(counts["released"]), str(counts["held"]),
                      str(counts["rejected"]), f"{share:.1%}"]])
    body = [head, f'<div id="summary">{summary}</div>', _spc_section(spc),
            _exceptions(run, assessments, link), _all_batches(run, assessments, link),
            _run_notes(run)]
    return page(f"Campaign summary {run.run_dir.name}", "".join(body))


def _spc_section(spc: Spc | None) -> str:
    if spc is None:
        return ("<h2>SPC of the oxide thickness</h2><p class=\"no_data\">No data: fewer than "
                f"{MIN_SPC_POINTS} batches with a trustworthy thickness, or no plant file."
                "</p>")
    c = spc.capability
    (blo, bhi), (lo, hi) = c.band_nm, c.window_nm
    rows = [[name, f"{k.value:.3g}", str(k.n), f"{k.low:.3g} – {k.high:.3g}",
             "moving-range σ" if name.startswith("Cpk") else "overall σ"]
            for name, k in ((f"Cpk (band {blo:.3g}–{bhi:.3g} nm)", c.cpk),
                            (f"Ppk (band {blo:.3g}–{bhi:.3g} nm)", c.ppk))]
    cap = table(["index", "value", "n", f"{c.cpk.confidence:.0%} CI (Bissell)", "sigma"], rows)
    shares = table(["share of batches", "value"],
                   [[f"inside the internal band {blo:.3g}–{bhi:.3g} nm", f"{c.band_share:.1%}"],
                    [f"inside the release spec {lo:g}–{hi:g} nm", f"{c.spec_share:.1%}"]])
    lim = spc.limits
    viol = ("<ul>" + "".join(f"<li>batch {esc(spc.batch_ids[v.index])} (point {v.index + 1}):"
                             f" {esc(v.text)}</li>" for v in spc.violations) + "</ul>"
            if spc.violations else "<p>No Western Electric rule fired.</p>")
    labels = list(spc.batch_ids)
    return (f"<h2>SPC of the oxide thickness (ln nm, capability against the internal band "
            f"{blo:.3g}–{bhi:.3g} nm)</h2>" + cap + shares
            + f"<p class=\"muted\">Centre {math.exp(lim.center):.3g} nm, control limits "
            f"{math.exp(lim.lcl):.3g}–{math.exp(lim.ucl):.3g} nm (x̄ ± 3·MR̄/1.128 on ln "
            "thickness). Capability limits: the internal band (control.band_nm); release "
            f"spec {lo:g}–{hi:g} nm (control.window_nm). Values: lab measurement where "
            "measured, else a reliable prediction.</p>"
            + control_chart(spc.values_nm, labels, lim, spc.violations, c.band_nm, c.window_nm)
            + moving_range_chart(spc.values_nm, lim)
            + "<h3>Western Electric rules</h3>" + viol)


def _exceptions(run: RunData, assessments: Sequence[Assessment],
                link: Callable[[str], str]) -> str:
    ex = [a for a in assessments if a.exception]
    if not ex:
        return "<h2>Exceptions</h2><p>None: every batch released without deviations.</p>"
    parts = [f"<h2>Exceptions ({len(ex)} of {len(assessments)} batches)</h2>"]
    for a in ex:
        bad = [c for c in a.checks if c.outcome in ("fail", "no_data", "flag")]
        items = [f"<li><b>{esc(c.rule)}</b> {esc(c.title)}: {esc(c.detail)}</li>" for c in bad]
        items += [f"<li>deviation: {esc(d)}</li>" for d in a.deviations]
        items += [f"<li>data gap: {esc(g)}</li>" for g in a.gaps]
        audit = run.batch_audit(a.batch_id)
        if audit is not None and not audit.empty:
            items += [f"<li>controller {esc(r.kind)} on {esc(r.loop)}: {esc(r.reason)} "
                      f"({esc(r.who)}, {esc(r.result)})</li>" for r in audit.itertuples()]
        parts.append(f'<h3><a href="{escape(link(a.batch_id))}">{esc(a.batch_id)}</a></h3>'
                     + decision_block(a).replace('id="decision"', "")
                     + "<ul>" + "".join(items) + "</ul>")
    return "".join(parts)


def _all_batches(run: RunData, assessments: Sequence[Assessment],
                 link: Callable[[str], str]) -> str:
    rows = []
    for a in assessments:
        th = a.thickness
        thick = "no data" if th.basis is None else f"{th.basis:.3g} nm ({th.source})"
        rows.append([f'<a href="{escape(link(a.batch_id))}">{esc(a.batch_id)}</a>',
                     esc(clock(run, a.row.get("end_s"))), esc(thick),
                     f'<span class="{esc(a.decision.status)}">{esc(a.decision.status)}</span>',
                     esc(a.decision.plant or None), esc(a.decision.rule),
                     "yes" if a.exception else ""])
    return "<h2>All batches</h2>" + table(
        ["batch", "finished", "oxide thickness", "decision", "plant decision", "deciding rule",
         "exception"], rows, raw=True)


def _run_notes(run: RunData) -> str:
    notes = [f"{m}: no data in the run folder" for m in run.missing]
    wip = run.in_process_ids()
    if wip:
        notes.append(f"in process at the end of the run, not assessed: {', '.join(wip)}")
    notes += list(run.problems) + list(run.audit_problems)
    if not notes:
        return ""
    return ("<h2>Run data gaps</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes)
            + "</ul>")
