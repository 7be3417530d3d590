"""Small hand-written inline-SVG charts for the release reports.

Hand-written rather than matplotlib's SVG backend: the output is a few kilobytes of plain
``<line>``/``<polyline>``/``<text>`` elements, identical for identical data, with live text
that a browser searches and a screen reader reads; every label is XML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#1f5fa8", "#c2410c", "#15803d", "#7e22ce", "#a16207", "#0e7490")


@dataclass(frozen=True)
class Series:
    """One line (and/or its markers) of a chart."""

    x: Sequence[float]
    y: Sequence[float]
    label: str
    color: str = PALETTE[0]
    dashed: bool = False
    markers: bool = False
    line: bool = True


@dataclass(frozen=True)
class HLine:
    """A horizontal reference line (limit, centre, specification)."""

    y: float
    label: str
    color: str = "#555"
    dashed: bool = True


@dataclass(frozen=True)
class Band:
    """A shaded horizontal band (e.g. the specification window)."""

    y0: float
    y1: float
    label: str
    color: str = "#16a34a"


@dataclass(frozen=True)
class Mark:
    """A highlighted point with a short note (e.g. a Western Electric rule)."""

    x: float
    y: float
    note: str
    color: str = "#dc2626"


@dataclass
class Chart:
    """A single-panel line chart; :meth:`svg` renders it."""

    title: str
    x_label: str
    y_label: str
    series: list[Series] = field(default_factory=list)
    hlines: list[HLine] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] | None = None
    x_ticks: list[tuple[float, str]] | None = None
    x_range: tuple[float, float] | None = None
    width: int = 720
    height: int = 260

    def svg(self, chart_id: str = "") -> str:
        """The chart as an ``<svg>`` element (a string; safe to embed in HTML)."""
        left, right, top, bottom = 64, 110, 28, 44
        pw, ph = self.width - left - right, self.height - top - bottom
        legend = _legend_layout([(s.label, s.color, s.dashed) for s in self.series if s.label],
                                left, left + pw)
        height = self.height + (legend[-1][1] + 8 if legend else 0)
        xs = [v for s in self.series for v in s.x if _ok(v)] + [m.x for m in self.marks]
        ys = ([v for s in self.series for v in s.y if _ok(v)] + [h.y for h in self.hlines]
              + [m.y for m in self.marks] + [b for bd in self.bands for b in (bd.y0, bd.y1)])
        x0, x1 = self.x_range or _span(xs)
        y0, y1 = _span(ys, pad=0.06)

        def px(v: float) -> float:
            return left + (v - x0) / (x1 - x0) * pw

        def py(v: float) -> float:
            return top + ph - (v - y0) / (y1 - y0) * ph

        out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
               f'viewBox="0 0 {self.width} {height}" width="{self.width}" '
               f'height="{height}"' + (f' id="{escape(chart_id)}"' if chart_id else "")
               + f' aria-label="{escape(self.title)}">',
               f"<title>{escape(self.title)}</title>",
               f'<text x="{left}" y="16" class="ct">{escape(self.title)}</text>',
               f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" '
               f'stroke="#999"/>']
        for b in self.bands:
            lo, hi = sorted((max(min(b.y0, b.y1), y0), min(max(b.y0, b.y1), y1)))
            if hi > lo:
                out.append(f'<rect x="{left}" y="{py(hi):.1f}" width="{pw}" '
                           f'height="{py(lo) - py(hi):.1f}" fill="{b.color}" '
                           f'fill-opacity="0.09"><title>{escape(b.label)}</title></rect>')
        ticks = self.y_ticks if self.y_ticks is not None else [
            (t, _fmt(t)) for t in _nice_ticks(y0, y1)]
        for t, label in ticks:
            if y0 <= t <= y1:
                out.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" '
                           f'y2="{py(t):.1f}" stroke="#eee"/>'
                           f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end" '
                           f'class="tk">{escape(label)}</text>')
        xt = self.x_ticks if self.x_ticks is not None else [
            (t, _fmt(t)) for t in _nice_ticks(x0, x1)]
        for t, label in xt:
            out.append(f'<text x="{px(t):.1f}" y="{top + ph + 16}" text-anchor="middle" '
                       f'class="tk">{escape(label)}</text>')
        out.append(f'<text x="{left + pw / 2:.1f}" y="{self.height - 8}" text-anchor="middle" '
                   f'class="al">{escape(self.x_label)}</text>')
        out.append(f'<text transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" '
                   f'text-anchor="middle" class="al">{escape(self.y_label)}</text>')
        for h in self.hlines:
            if y0 <= h.y <= y1:
                out.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(h.y):.1f}" '
                           f'y2="{py(h.y):.1f}" stroke="{h.color}"'
                           + (' stroke-dasharray="5 3"' if h.dashed else "") + "/>"
                           f'<text x="{left + pw + 4}" y="{py(h.y) + 4:.1f}" class="tk" '
                           f'fill="{h.color}">{escape(h.label)}</text>')
        for s in self.series:
            pts = [(px(a), py(b)) for a, b in zip(s.x, s.y, strict=False) if _ok(a) and _ok(b)]
            if s.line and len(pts) > 1:
                out.append(f'<polyline fill="none" stroke="{s.color}" stroke-width="1.8"'
                           + (' stroke-dasharray="6 4"' if s.dashed else "")
                           + ' points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
                           + f'"><title>{escape(s.label)}</title></polyline>')
            if s.markers or len(pts) == 1:
                out.extend(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{s.color}"/>'
                           for a, b in pts)
        for m in self.marks:
            out.append(f'<circle cx="{px(m.x):.1f}" cy="{py(m.y):.1f}" r="6" fill="none" '
                       f'stroke="{m.color}" stroke-width="2"><title>{escape(m.note)}</title>'
                       f"</circle>")
        for lx, dy, (label, color, dashed) in legend:
            ly = self.height + dy
            out.append(f'<line x1="{lx:.0f}" x2="{lx + 20:.0f}" y1="{ly - 4}" '
                       f'y2="{ly - 4}" stroke="{color}" stroke-width="2"'
                       + (' stroke-dasharray="6 4"' if dashed else "") + "/>"
                       f'<text x="{lx + 24:.0f}" y="{ly}" class="tk">{escape(label)}</text>')
        out.append("</svg>")
        return "".join(out)


def _legend_layout(items: list[tuple[str, str, bool]], x_start: float, x_end: float
                   ) -> list[tuple[float, int, tuple[str, str, bool]]]:
    """Legend entries laid out in rows below the chart: (x, row offset in px, item)."""
    out = []
    x, dy = x_start, 12
    for item in items:
        w = 24 + 6.2 * len(item[0]) + 18  # line, text at ~6.2 px per character, gap
        if x > x_start and x + w > x_end:
            x, dy = x_start, dy + 17
        out.append((x, dy, item))
        x += w
    return out


def log_ticks(lo_nm: float, hi_nm: float) -> list[tuple[float, str]]:
    """Ticks at 1-2-5 nm positions for a chart whose y axis is ``ln(nm)``."""
    out = []
    for e in range(math.floor(math.log10(max(lo_nm, 1e-3))) - 1,
                   math.ceil(math.log10(max(hi_nm, 1e-3))) + 2):
        for m in (1, 2, 5):
            v = m * 10.0**e
            if lo_nm / 1.5 <= v <= hi_nm * 1.5:
                out.append((math.log(v), f"{v:g} nm"))
    return out


def _ok(v: float) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _span(values: list[float], pad: float = 0.0) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - max(abs(lo) * 0.1, 0.5), hi + max(abs(hi) * 0.1, 0.5)
    d = (hi - lo) * pad
    return lo - d, hi + d


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"
