"""Study outputs: Parquet tables, PNG and SVG plots, a self-contained HTML report and the
plain-text summary table the command line prints.

Plots use matplotlib's Agg backend (no display needed). The HTML report embeds its plots as
inline SVG, so the single file opens in any browser, offline, and can be mailed.
"""

from __future__ import annotations

import html
import io
import math
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from twin.store.study import ReplicationStore  # noqa: E402
from twin.studies.analysis import HEADLINE, StudyResult  # noqa: E402
from twin.studies.definition import Study  # noqa: E402
from twin.studies.kpi import STATES  # noqa: E402
from twin.studies.runner import RunStats  # noqa: E402

#: Plant-level KPIs in table order, with display labels and units.
PLANT_KPIS: dict[str, str] = {
    "throughput_kg_per_day": "throughput, kg/day",
    "throughput_batches_per_day": "throughput, batches/day",
    "cycle_time_h": "cycle time, h",
    "wip_kg": "WIP, kg",
    "oxide_in_window_share": "oxide in window, share",
}
STATE_COLOURS = {"working": "#2e7d32", "setup": "#f9a825", "blocked": "#8e24aa",
                 "starved": "#90a4ae", "idle": "#cfd8dc", "down": "#c62828"}


def fmt_ci(mean: float, hw: float) -> str:
    """``12.3 ± 0.4`` with sensible significant figures (``nan`` shown as ``-``)."""
    if not math.isfinite(mean):
        return "-"
    if not math.isfinite(hw):
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {hw:.2g}"


def summary_frame(study: Study, res: StudyResult) -> pd.DataFrame:
    """Display table: one row per scenario, plant KPIs as 'mean ± half-width', the paired
    throughput gain over the base and the most frequent bottleneck."""
    rows = []
    s = res.summary[res.summary.station == ""]
    for sc in study.scenarios:
        row: dict[str, str] = {"scenario": sc.name}
        for k, label in PLANT_KPIS.items():
            hit = s[(s.scenario == sc.name) & (s.kpi == k)]
            if not hit.empty:
                row[label] = fmt_ci(hit["mean"].iloc[0], hit["half_width"].iloc[0])
        d = res.differences
        if sc.name == study.base:
            row["Δ throughput vs base, kg/day"] = "(base)"
        elif not d.empty:
            hit = d[(d.scenario == sc.name) & (d.kpi == HEADLINE) & (d.station == "")]
            if not hit.empty:
                h = hit.iloc[0]
                star = " *" if h["significant"] else ""
                row["Δ throughput vs base, kg/day"] = fmt_ci(h["mean"], h["half_width"]) + star
        b = res.bottlenecks[res.bottlenecks.scenario == sc.name]
        if not b.empty:
            top = b.iloc[0]
            row["bottleneck"] = (f"{top['group'].split('.')[-1]} "
                                 f"({100 * top['share_of_replications']:.0f} % of reps)")
        n = s[(s.scenario == sc.name) & (s.kpi == HEADLINE)]
        row["n"] = str(int(n["n"].iloc[0])) if not n.empty else "0"
        rows.append(row)
    return pd.DataFrame(rows)


def text_table(df: pd.DataFrame) -> str:
    """A plain, aligned text table."""
    cols = list(df.columns)
    cells = [[str(c) for c in cols]] + [[str(v) for v in r] for r in df.itertuples(index=False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ranking_text(res: StudyResult) -> str:
    """'Which change buys the most throughput', ranked, as text lines."""
    lines = []
    for _, r in res.ranking.iterrows():
        if r["is_base"]:
            lines.append(f"  {r['rank']}. {r['scenario']} (base): "
                         f"{fmt_ci(r['mean'], r['half_width'])} kg/day")
            continue
        sig = "significant" if r["significant"] else "not significant"
        lines.append(f"  {r['rank']}. {r['scenario']}: {r['gain']:+.4g} kg/day "
                     f"[{r['gain_low']:+.3g}, {r['gain_high']:+.3g}] "
                     f"({100 * r['gain_rel']:+.1f} %, {sig})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Plots
# ----------------------------------------------------------------------------------------------


def plot_kpis(study: Study, res: StudyResult) -> Figure:
    """Plant KPIs per scenario with 95 % CI error bars, one panel per KPI."""
    s = res.summary[(res.summary.station == "") & res.summary.kpi.isin(PLANT_KPIS)]
    kpis = [k for k in PLANT_KPIS if k in set(s.kpi)]
    names = [sc.name for sc in study.scenarios]
    fig, axes = plt.subplots(1, max(len(kpis), 1), figsize=(3.2 * max(len(kpis), 1), 3.6),
                             squeeze=False)
    for ax, k in zip(axes[0], kpis, strict=False):
        sub = s[s.kpi == k].set_index("scenario").reindex(names)
        x = np.arange(len(names))
        ax.bar(x, sub["mean"], color="#90caf9", edgecolor="#1565c0")
        ax.errorbar(x, sub["mean"], yerr=sub["half_width"].fillna(0), fmt="none",
                    ecolor="black", capsize=4)
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_title(PLANT_KPIS[k], fontsize=9)
    fig.suptitle(f"{study.name}: KPIs with 95 % CI (n = {_n(res)})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_states(study: Study, res: StudyResult) -> Figure:
    """Stacked state shares per station, one panel per scenario."""
    s = res.summary[res.summary.kpi.str.startswith("share_")]
    scen = [sc.name for sc in study.scenarios]
    fig, axes = plt.subplots(1, len(scen), figsize=(4.2 * len(scen), 3.8), squeeze=False,
                             sharey=True)
    for ax, name in zip(axes[0], scen, strict=True):
        sub = s[s.scenario == name]
        stations = sorted(sub.station.unique())
        left = np.zeros(len(stations))
        for state in STATES:
            vals = (sub[sub.kpi == f"share_{state}"].set_index("station")["mean"]
                    .reindex(stations).fillna(0).to_numpy())
            ax.barh(stations, vals, left=left, color=STATE_COLOURS[state], label=state)
            left += vals
        ax.set_xlim(0, 1)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(STATES), fontsize=8)
    fig.suptitle(f"{study.name}: state shares per station (mean over replications)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot_wip(study: Study, res: StudyResult) -> Figure:
    """WIP over time per scenario with the 95 % band across replications and the warm-up."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for sc in study.scenarios:
        w = res.wip[res.wip.scenario == sc.name]
        days = w["t_h"] / 24.0
        ax.plot(days, w["wip_kg"], label=sc.name, lw=1.2)
        ax.fill_between(days, w["low"], w["high"], alpha=0.15)
    ax.axvline(res.warmup_h / 24.0, color="grey", ls="--", lw=1)
    ax.text(res.warmup_h / 24.0, ax.get_ylim()[1], f" warm-up ({res.warmup_how})",
            va="top", fontsize=8, color="grey")
    ax.set_xlabel("time, days")
    ax.set_ylabel("WIP, kg")
    ax.legend(fontsize=8)
    ax.set_title(f"{study.name}: work in process over time", fontsize=10)
    fig.tight_layout()
    return fig


def _n(res: StudyResult) -> str:
    n = res.summary[res.summary.kpi == HEADLINE]["n"]
    return str(int(n.min())) if len(n) else "0"


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# Writing everything
# ----------------------------------------------------------------------------------------------


def write_outputs(study: Study, res: StudyResult, store: ReplicationStore,
                  stats: RunStats) -> dict[str, Path]:
    """Write Parquet tables, PNG/SVG plots and ``report.html`` under the study folder."""
    out: dict[str, Path] = {}
    for name, df in (("replications", res.replications), ("summary", res.summary),
                     ("differences", res.differences), ("ranking", res.ranking),
                     ("bottlenecks", res.bottlenecks), ("wip", res.wip)):
        out[name] = store.write_table(name, df)
    svgs = {}
    plots = store.root / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    for name, make in (("kpis", plot_kpis), ("states", plot_states), ("wip", plot_wip)):
        fig = make(study, res)
        png = plots / f"{name}.png"
        tmp = png.with_name(f".{png.name}.tmp")
        fig.savefig(tmp, format="png", dpi=120)
        tmp.replace(png)
        svg_text = _svg(fig)  # rendered once: the file and the inline copy in the report
        svg = plots / f"{name}.svg"
        tmp = svg.with_name(f".{svg.name}.tmp")
        tmp.write_text(svg_text, encoding="utf-8")
        tmp.replace(svg)
        out[f"{name}_png"], out[f"{name}_svg"] = png, svg
        svgs[name] = svg_text[svg_text.index("<svg"):]
        plt.close(fig)
    page = store.root / "report.html"
    tmp = page.with_name(".report.html.tmp")
    tmp.write_text(render_html(study, res, stats, svgs), encoding="utf-8")
    tmp.replace(page)
    out["report"] = page
    return out


def _table_html(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(study: Study, res: StudyResult, stats: RunStats, svgs: dict[str, str]) -> str:
    """The self-contained HTML study report."""
    rank = res.ranking.copy()
    if not rank.empty:
        rank = pd.DataFrame({
            "rank": rank["rank"], "scenario": rank["scenario"],
            "throughput, kg/day": [fmt_ci(m, h) for m, h in zip(rank["mean"],
                                                                 rank["half_width"],
                                                                 strict=True)],
            "gain vs base, kg/day (95 % CI)": [
                f"{g:+.4g} [{lo:+.3g}, {hi:+.3g}]" for g, lo, hi in
                zip(rank["gain"], rank["gain_low"], rank["gain_high"], strict=True)],
            "gain, %": [f"{100 * g:+.1f}" for g in rank["gain_rel"]],
            "significant": ["yes" if s else "no" for s in rank["significant"]],
        })
    bott = res.bottlenecks.copy()
    for c in ("share_of_replications", "active_share_mean", "share_of_days"):
        if c in bott:
            bott[c] = bott[c].map(lambda v: f"{100 * v:.0f} %")
    if "shifts_per_30d" in bott:
        bott["shifts_per_30d"] = bott["shifts_per_30d"].map(lambda v: f"{v:.1f}")
    station = res.summary[res.summary.station != ""]
    station = station[station.kpi.isin(["utilisation", "oee"])]
    st = station.pivot_table(index=["station"], columns=["kpi", "scenario"], values="mean")
    st_df = pd.DataFrame(
        {f"{c[0]} [{c[1]}]": st[c].map(lambda v: f"{v:.3f}") for c in st.columns},
        index=st.index).reset_index() if not st.empty else pd.DataFrame()
    scen = pd.DataFrame([{"scenario": sc.name + (" (base)" if sc.name == study.base else ""),
                          "overrides": ", ".join(sc.overrides) or "-",
                          "description": sc.description} for sc in study.scenarios])
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = (f"precision mode ({stats.replications} replications"
            + (f"; targets not met: {'; '.join(stats.unmet)}" if stats.unmet else
               "; all targets met") + ")"
            if study.precision is not None else f"{stats.replications} replications")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Study {html.escape(study.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1300px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #eceff1; }} td:first-child, th:first-child {{ text-align: left; }}
svg {{ max-width: 100%; height: auto; }} .note {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>What-if study: {html.escape(study.name)}</h1>
<p>{html.escape(study.description)}</p>
<p class="note">Base plant {html.escape(study.plant_path.name)}; horizon {study.days:g} days;
warm-up deleted {res.warmup_h / 24:.2f} days ({html.escape(res.warmup_how)}); {mode};
seed {study.seed}; common random numbers across scenarios (replication r uses the same
streams in every scenario); 95 % Student-t intervals; differences are paired by replication.
Generated {when}.</p>
<h2>Scenarios</h2>{_table_html(scen)}
<h2>Which change buys the most throughput</h2>{_table_html(rank)}
<h2>Summary (mean ± 95 % CI half-width)</h2>{_table_html(summary_frame(study, res))}
<h2>KPIs</h2><figure>{svgs.get("kpis", "")}</figure>
<h2>Bottleneck (highest working + setup + down share)</h2>
<p class="note">Share of replications in which each station group is the bottleneck, its mean
active share, the share of days it is the day's bottleneck, and how often the daily
bottleneck shifts per 30 days.</p>{_table_html(bott)}
<h2>Utilisation and OEE per station (means)</h2>{_table_html(st_df)}
<h2>State shares per station</h2><figure>{svgs.get("states", "")}</figure>
<h2>Work in process over time</h2><figure>{svgs.get("wip", "")}</figure>
</body></html>
"""
