"""Per-batch release report: one self-contained HTML page with inline SVG.

Every piece of text from the run (IDs, paths, reasons, operator names) goes through
:func:`html.escape`. The page carries a Content-Security-Policy that forbids scripts and any
external resource, so it is provably self-contained and safe to open from a network share.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from twin import __version__
from twin.config.schema import ALLOYING_ELEMENTS, BASE_ELEMENTS, Release
from twin.plant.release import UNIFORMITY_REL
from twin.report.charts import oxide_gauge, trajectory_charts
from twin.report.data import RunData, as_float, parents_of, recipe_vs_actual
from twin.report.energy import cradle_to_gate_energy, total_kwh
from twin.report.rules import NON_METALS, Assessment

CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
       "script-src 'none'; base-uri 'none'; form-action 'none'")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;
 margin:24px auto;max-width:1000px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;border-bottom:2px solid #ddd;
 padding-bottom:3px;margin-top:28px}h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;width:100%}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.decision{padding:12px 16px;border-radius:6px;margin:14px 0;border:2px solid}
.released{background:#ecfdf5;border-color:#16a34a}.held{background:#fffbeb;border-color:#d97706}
.rejected{background:#fef2f2;border-color:#dc2626}
.decision .status{font-size:24px;font-weight:700;letter-spacing:.04em}
.pass{color:#15803d}.fail{color:#b91c1c;font-weight:600}.no_data{color:#b45309;font-weight:600}
.flag{color:#7e22ce}.info{color:#555}.muted{color:#666}
svg.chart{max-width:100%;height:auto;display:block;margin:8px 0}
svg .ct{font-size:13px;font-weight:600}svg .tk{font-size:11px}svg .al{font-size:12px}
.sig td{height:34px}footer{margin-top:32px;color:#666;font-size:12px}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}svg{break-inside:avoid}}
"""


def esc(value: Any) -> str:
    """Escaped text of ``value`` (``—`` for None/NaN/empty)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = str(value)
    return escape(text) if text.strip() else "—"


def num(value: Any, digits: int = 4, unit: str = "") -> str:
    """A number with ``digits`` significant digits and unit, or ``no data``."""
    v = as_float(value)
    if v is None:
        return '<span class="no_data">no data</span>'
    return escape(f"{v:.{digits}g}{(' ' + unit) if unit else ''}")


def table(head: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then they must be HTML already)."""
    cells = (lambda c: c) if raw else esc
    body = "".join("<tr>" + "".join(f"<td>{cells(c)}</td>" for c in r) + "</tr>" for r in rows)
    return ("<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{body}</tbody></table>")


def page(title: str, body: str) -> str:
    """The HTML document around ``body``."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{body}"
            f"<footer>anode-twin {escape(__version__)} · release report</footer>"
            "</body></html>\n")


def clock(run: RunData, t_s: Any) -> str:
    """Simulation time ``t_s`` as wall time (run start from ``run.json``) or as t+d hh:mm."""
    t = as_float(t_s)
    if t is None:
        return "—"
    start = run_start(run)
    if start is not None:
        return (start + dt.timedelta(seconds=t)).strftime("%Y-%m-%d %H:%M")
    days, rem = divmod(int(round(t)), 86400)
    return f"t+{days}d {rem // 3600:02d}:{rem % 3600 // 60:02d}"


def run_start(run: RunData) -> dt.datetime | None:
    """Wall time of simulation time 0 from ``run.json`` (``start_utc``/``start_iso``), or None."""
    for key in ("start_utc", "start_iso", "start", "t0_utc", "start_time"):
        raw = run.meta.get(key)
        if isinstance(raw, str):
            try:
                return dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                continue
    return None


def release_people(run: RunData) -> Release:
    """Prepared-by / reviewed-by names (configuration, else the defaults)."""
    return run.config.release if run.config is not None else Release()


def decision_block(a: Assessment) -> str:
    """The coloured decision banner: the plant's decision, its rule and what is needed."""
    d = a.decision
    needs = ("<p><b>Needed before release:</b></p><ul>"
             + "".join(f"<li>{esc(n)}</li>" for n in d.needs) + "</ul>") if d.needs else ""
    plant = (f" · plant decision <b>{esc(d.plant)}</b>" if d.plant else "")
    return (f'<div class="decision {d.status}" id="decision"><div class="status">'
            f"{esc(d.status.upper())}</div><div>Decided by rule <b>{esc(d.rule)}</b>{plant}: "
            f"{esc(d.reason)}</div>{needs}</div>")


def batch_page(run: RunData, a: Assessment, generated: dt.datetime) -> str:
    """The complete HTML release report of one batch."""
    people = release_people(run)
    site = people.site
    plant = run.config.plant.name if run.config is not None else "unknown plant"
    head = (f"<h1>Batch release report · {esc(a.batch_id)}</h1>"
            f'<div class="muted">{esc(site)} · plant {esc(plant)} · form {esc(run.form)} · '
            f"run folder {esc(run.run_dir.name)}</div>"
            f'<p>Oxide thickness: <b id="thickness">{_thickness_text(a)}</b></p>'
            + decision_block(a) + _rules_note(a) + _passport_link(a))
    parts = [head, _genealogy(run, a), _process(run, a), _material(run, a), _energy(run, a),
             _oxide(a), _deviations(run, a), _checks(a), _signatures(people, generated)]
    return page(f"Release {a.batch_id}: {a.decision.status}", "".join(parts))


def _passport_link(a: Assessment) -> str:
    """Where the batch's passport is (``anode-twin passport RUN_DIR`` writes it beside the
    report: RUN_DIR/passport/), or why it has none."""
    from twin.report import safe_name

    if a.decision.status != "released":
        return '<p class="muted">No batch passport: the batch is not released.</p>'
    name = safe_name(a.batch_id)
    return (f'<p>Batch passport (Asset Administration Shell): <a id="passport" '
            f'href="../../passport/{esc(name)}.aasx">{esc(name)}.aasx</a> · '
            f'<a href="../../passport/{esc(name)}.aas.json">AAS JSON</a> '
            '<span class="muted">(written by anode-twin passport RUN_DIR)</span></p>')


def _rules_note(a: Assessment) -> str:
    r = a.rules
    if r is None:
        return ('<p class="no_data">No plant file in the run folder: the release rules cannot '
                "be read.</p>")
    reviews = [c for c in a.checks if c.review]
    flags = (f" Review flags (they do not change the decision): "
             f"{esc(', '.join(c.rule for c in reviews))}." if reviews else "")
    return ('<p class="muted">The decision is the plant model\'s, taken with the rules of '
            f"this run's plant file: release spec {r.window_nm[0]:g}–{r.window_nm[1]:g} nm, "
            f"internal band {r.band_nm[0]:.3g}–{r.band_nm[1]:.3g} nm, uniformity ≥ "
            f"{r.min_within_50pct_share:g}, VM reliability ≥ {r.min_reliability:g}, lab "
            f"against prediction ≤ {r.outlier_sigma:g} sigma, reworks ≤ {r.max_reworks}, "
            f"release on prediction {'on' if r.release_on_prediction else 'off'}."
            f"{flags}</p>")


def _thickness_text(a: Assessment) -> str:
    th = a.thickness
    if th.basis is None:
        pred = (f"; unreliable prediction {th.predicted_mean:.3g} nm"
                if th.predicted_mean is not None else "")
        return f"no trustworthy value{esc(pred)}"
    return esc(f"{th.basis:.3g} nm ({'lab measurement' if th.source == 'lab' else 'predicted'})")


def _genealogy(run: RunData, a: Assessment) -> str:
    chain = list(reversed(run.ancestors(a.batch_id))) + [run.unit(a.batch_id)]
    chain += run.children(a.batch_id)
    rows = []
    for u in chain:
        path = u.get("path") or next((u.get(k) for k in u if str(k).endswith("_path")
                                      and isinstance(u.get(k), str) and u.get(k)), None)
        rows.append([str(u.get("unit_kind") or "—"), str(u["unit_id"]), esc(path),
                     ", ".join(_ids(u.get("parent_ids"))) or "—", clock(run, u.get("start_s")),
                     clock(run, u.get("end_s")), _plain(u.get("mass_kg"), "kg")])
    missing = [u["unit_id"] for u in chain if u.get("_missing")]
    note = (f'<p class="no_data">Not in the batch record: {esc(", ".join(missing))}</p>'
            if missing else "")
    return ("<h2>Identity and genealogy</h2><p class=\"muted\">Melt heat → mill lots → "
            "oxidation charge → electrode rolls (powder), or sputter run → sheets (thin "
            "film).</p>" + table(["unit", "ID", "equipment", "parents", "start", "end", "mass"],
                                 rows) + note)


def _process(run: RunData, a: Assessment) -> str:
    rows = []
    for name, recipe, setpoint, actual in recipe_vs_actual(a.row, run.step_recipe(a.row)):
        target = setpoint if setpoint is not None else recipe
        diff = "—" if target is None or actual is None else _diff(actual - target, target)
        rows.append([name, _plain(recipe), _plain(setpoint), _plain(actual), diff])
    tab = (table(["process value", "recipe", "setpoint sent", "actual",
                  "actual − setpoint"], rows) if rows else
           '<p class="no_data">No recipe/actual process values in the batch record.</p>')
    charts = "".join(trajectory_charts(run, a.batch_id, a.row))
    return "<h2>Recipe against actual process values</h2>" + tab + charts


def _material(run: RunData, a: Assessment) -> str:
    comp = a.composition
    if comp:
        rows = [[el, f"{frac:.2%}", _element_role(el)] for el, frac in
                sorted(comp.items(), key=lambda kv: -kv[1])]
        comp_html = (f"<p class=\"muted\">Source: {esc(a.composition_source)}</p>"
                     + table(["element", "mass fraction", "check"], rows))
    else:
        comp_html = '<p class="no_data">No composition recorded.</p>'
    phases = a.phases or {}
    phase_rows = [[p, f"{f:.2%}"] for p, f in sorted(phases.items(), key=lambda kv: -kv[1])]
    r = a.row
    props = [["amorphous fraction", _pct(r.get("amorphous_frac"))]]
    if run.form == "thin_film":
        props.append(["film thickness", _plain(r.get("pred_film_nm"), "nm")])
    else:
        props += [["particle size d50", _plain(r.get("d50_um"), "µm")],
                  ["specific surface area", _plain(r.get("ssa_m2_g"), "m²/g")],
                  ["oxygen, predicted (from the layer and the surface)",
                   _plain(r.get("pred_o_wt_pct"), "wt %")],
                  ["oxygen, measured" + (f" ({r.get('lab_method')})"
                                         if isinstance(r.get("lab_method"), str) else ""),
                   _plain(r.get("lab_o_wt_pct"), "wt %")],
                  ["Si consumed by the oxide", _plain(r.get("pred_si_consumed_pct"), "%")],
                  ["oxidised powder", esc(str(r.get("pred_composition_wt") or "—"))
                   .replace(";", ", ")]]
    props.append(["oxide material", _oxide_material(r, comp)])
    inherited = (f'<p class="muted">From parent units: '
                 f'{esc(", ".join(f"{k} ({v})" for k, v in a.inherited.items()))}</p>'
                 if a.inherited else "")
    return ("<h2>Material</h2><h3>Composition (allowed alloying elements: "
            f"{esc(', '.join(sorted(ALLOYING_ELEMENTS)))})</h3>{comp_html}<h3>Phases</h3>"
            + (table(["phase", "mass fraction"], phase_rows) if phase_rows else
               '<p class="no_data">No phase fractions recorded.</p>')
            + table(["property", "value"], props) + inherited)


def _energy(run: RunData, a: Assessment) -> str:
    """This batch's step energy and its upstream steps', allocated by mass, and per kg."""
    entries = cradle_to_gate_energy(run.units, a.batch_id)
    mass = as_float(a.row.get("mass_kg"))
    own = {str(u["unit_id"]): u for u in [run.unit(a.batch_id), *run.ancestors(a.batch_id)]}

    def per_kg(kwh: float) -> str:
        return num(kwh / mass, 4, "kWh/kg") if mass else '<span class="no_data">no data</span>'

    rows = []
    for e in entries:
        unit = own.get(str(e["unit_id"]), {})
        rows.append([esc(e["step"]), esc(e["unit_id"]), esc(e["path"] or None),
                     num(unit.get("step_energy_kwh"), 4, "kWh"), num(e["share"], 4),
                     num(e["energy_kwh"], 4, "kWh"), per_kg(float(e["energy_kwh"]))])
    total = total_kwh(entries)
    rows.append(["<b>cradle to gate</b>", "", "", "", "", f"<b>{num(total, 4, 'kWh')}</b>",
                 f"<b>{per_kg(total)}</b>"])
    gaps = [f"{e['step']} of {e['unit_id']}" for e in entries
            if as_float(e["energy_kwh"]) is None]
    note = (f'<p class="no_data">No energy in the batch record for: {esc(", ".join(gaps))}; '
            "the total is incomplete.</p>" if gaps else "")
    return ('<h2 id="energy">Energy of the production steps</h2><p class="muted">Electrical '
            "energy of each step as the twin's model computed it from the step's actual record "
            "(batch record column step_energy_kwh). Upstream steps are allocated by mass along "
            "the genealogy: a parent's step energy × the share of its mass that went into this "
            "batch. Steps after this batch (coating its rolls) belong to those units.</p>"
            + table(["step", "unit", "equipment", "step energy", "mass share",
                     "allocated to this batch", "per kg of this batch"], rows, raw=True)
            + note)


def _oxide(a: Assessment) -> str:
    th = a.thickness
    spread = "—"
    if th.predicted_mean and th.p5 is not None and th.p95 is not None:
        spread = (f"p5 {th.p5 / th.predicted_mean - 1:+.0%}, p95 "
                  f"{th.p95 / th.predicted_mean - 1:+.0%} of the mean (limit "
                  f"±{UNIFORMITY_REL:.0%})")
    rows = [
        ["predicted mean (area-weighted)", num(th.predicted_mean, 4, "nm")],
        ["prediction interval", "no data" if th.pi_low is None or th.pi_high is None
         else esc(f"{th.pi_low:.3g} – {th.pi_high:.3g} nm")],
        ["prediction reliability", num(th.reliability, 3)],
        ["model version", esc(th.model_version or None)],
        ["lab measurement", num(th.measured, 4, "nm") if th.measured is not None
         else "not sampled"],
        ["spread p5 / p95", num(th.p5, 3, "nm") + " / " + num(th.p95, 3, "nm")],
        ["spread against ±50 % of the mean", esc(spread)],
        ["surface within ±50 % of the mean", _pct(th.within_50_share)],
        ["lab against the prediction", "no data" if th.lab_sigma is None
         else esc(f"{th.lab_sigma:.1f} sigma" + (" (contradicted)" if th.contradicted
                                                  else ""))],
        ["thickness used for release", _thickness_text(a)],
    ]
    checks = [c for c in a.checks if c.rule.startswith(("THK-", "VM-"))]
    return ("<h2>Oxide layer</h2>" + table(["quantity", "value"], rows, raw=True)
            + oxide_gauge(th, a.rules) + _check_table(checks))


def _deviations(run: RunData, a: Assessment) -> str:
    audit = run.batch_audit(a.batch_id)
    if audit is None:
        actions = ('<p class="no_data">No data: the run has no control audit trail '
                   f"(controller mode {esc(run.control_mode)}).</p>")
    elif audit.empty:
        actions = "<p>No controller actions recorded for this batch.</p>"
    else:
        rows = [[clock(run, r.sim_time_s), str(r.kind), str(r.loop), _kv(r.before),
                 _kv(r.after), str(r.reason), str(r.who), str(r.result)]
                for r in audit.itertuples()]
        actions = table(["time", "kind", "loop", "before", "after", "reason", "who",
                         "result"], rows)
    devs = ("<ul>" + "".join(f"<li>{esc(d)}</li>" for d in a.deviations) + "</ul>"
            if a.deviations else "<p>None.</p>")
    gaps = list(a.gaps) + [f"{m}: no data in the run folder" for m in run.missing]
    gaps += list(run.problems) + list(run.audit_problems)
    gap_html = ("<ul>" + "".join(f"<li>{esc(g)}</li>" for g in gaps) + "</ul>"
                if gaps else "<p>None.</p>")
    return ("<h2>Deviations and corrective actions</h2><h3>Process deviations</h3>" + devs
            + "<h3>Corrective actions (controller audit trail)</h3>" + actions
            + "<h3>Data gaps</h3>" + gap_html)


def _checks(a: Assessment) -> str:
    return "<h2>All release checks</h2>" + _check_table(a.checks)


def _check_table(checks: Sequence[Any]) -> str:
    rows = [[esc(c.rule), esc(c.title), f'<span class="{c.outcome}">{esc(c.outcome)}</span>',
             esc(c.detail), esc(c.severity if c.outcome in ("fail", "no_data") else "")]
            for c in checks]
    return table(["rule", "check", "outcome", "detail", "consequence"], rows, raw=True)


def _signatures(people: Release, generated: dt.datetime) -> str:
    rows = [["Prepared by", people.prepared_by, generated.isoformat(timespec="seconds"),
             "generated"],
            ["Reviewed by", people.reviewed_by, "", "pending: sign and date"]]
    return ("<h2>Approval</h2><table class=\"sig\"><thead><tr><th>role</th><th>name</th>"
            "<th>timestamp (UTC)</th><th>signature</th></tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{esc(c) if c else ''}</td>" for c in r)
                      + "</tr>" for r in rows) + "</tbody></table>")


def _element_role(el: str) -> str:
    if el in BASE_ELEMENTS:
        return "base element"
    if el in ALLOYING_ELEMENTS:
        return "allowed alloying element"
    if el in NON_METALS:
        return "oxide / pickup (not an alloying element)"
    return "NOT ALLOWED"


def _oxide_material(row: Mapping[str, Any], comp: Mapping[str, float] | None) -> str:
    if comp:
        return "SiOx (silicon oxide)" if comp.get("Si", 0) > 0 else "SnOx (tin oxide)"
    return "no data"


def _diff(d: float, ref: float) -> str:
    # Float noise (1e-18 on 0.02 atm) reads as a deviation; show it as zero.
    return "±0" if abs(d) <= 1e-9 * max(abs(ref), 1.0) else f"{d:+.4g}"


def _plain(value: Any, unit: str = "") -> str:
    v = as_float(value)
    return "no data" if v is None else f"{v:.4g}{(' ' + unit) if unit else ''}"


def _pct(value: Any) -> str:
    v = as_float(value)
    return "no data" if v is None else f"{v:.1%}"


def _ids(value: Any) -> list[str]:
    return parents_of({"parent_ids": value})


def _kv(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in value.items()) or "—"
    return "—" if value is None else str(value)
