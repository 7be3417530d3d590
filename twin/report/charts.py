"""The report's charts: furnace trajectory, oxide gauge and the individuals control chart.

Builds :class:`twin.report.svg.Chart` objects from a run's data; :mod:`twin.report.svg` draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from twin.plant.release import ReleaseRules
from twin.report.data import RunData, as_float
from twin.report.rules import Thickness
from twin.report.spc import Limits, Violation
from twin.report.svg import PALETTE, Band, Chart, HLine, Mark, Series, log_ticks

TEMPERATURE_UNITS = ("_c",)
ATMOSPHERE_UNITS = ("_atm", "_slm", "_sccm", "_mbar", "_mtorr", "_pa")


def trajectory_charts(run: RunData, batch_id: str, row: Mapping[str, Any]) -> list[str]:
    """Temperature and atmosphere against time: setpoints (dashed) and actual (solid), SVG.

    With a recorded process-value trajectory both panels show it beside the recipe profile;
    without one, the recipe profile is shown with the recorded actual hold values (scalars)
    and the title says that no trajectory was recorded.
    """
    traj = run.batch_trajectory(batch_id)
    recipe = recipe_profile(run, row)
    out = []
    for panel, units, y_label in (("Temperature", TEMPERATURE_UNITS, "°C"),
                                  ("Atmosphere", ATMOSPHERE_UNITS, "partial pressure / flow")):
        chart = Chart(f"{panel}: setpoint vs actual" + ("" if traj is not None else
                      " (no PV trajectory; actual = hold means)"),
                      "time since step start (min)", y_label)
        keys = [k for k in recipe if k != "time_s" and k.endswith(units)]
        for i, k in enumerate(keys):
            chart.series.append(Series([t / 60 for t in recipe["time_s"]], recipe[k],
                                       f"setpoint {k}", PALETTE[i % 6], dashed=True))
        if traj is not None:
            t0 = float(traj["time_s"].min())
            sigs = sorted(s for s in traj["signal"].unique() if str(s).endswith(units))
            for i, sig in enumerate(sigs):
                d = traj[traj["signal"] == sig]
                chart.series.append(Series([(t - t0) / 60 for t in d["time_s"]],
                                            list(d["value"].astype(float)), f"actual {sig}",
                                            PALETTE[(i + 2) % 6], dashed="_sp" in str(sig)))
        else:
            _actual_scalars(chart, recipe, row, keys)
        if chart.series:
            out.append(chart.svg(f"trajectory-{panel.lower()}"))
    return out


def recipe_profile(run: RunData, row: Mapping[str, Any]) -> dict[str, list[float]]:
    """Ramp–hold–cool knots of the batch's setpoints (else recipe, else configuration)."""
    ox = run.config.recipes.oxidation if run.config is not None else None

    def pick(name: str, default: float | None) -> float | None:
        # What the furnace was told (after any controller correction), else the recipe.
        v = as_float(row.get(f"sp_{name}"))
        return v if v is not None else default

    start = pick("start_c", ox.start_c if ox else 25.0)
    hold = pick("hold_c", ox.hold_c if ox else None)
    ramp = pick("ramp_c_per_min", ox.ramp_c_per_min if ox else None)
    hold_min = pick("hold_min", ox.hold_min if ox else None)
    cool = pick("cool_c_per_min", ox.cool_c_per_min if ox else None)
    if None in (start, hold, ramp, hold_min, cool) or not ramp or not cool:
        return {}
    assert start is not None and hold is not None and hold_min is not None
    t1 = abs(hold - start) / ramp * 60
    t2 = t1 + hold_min * 60
    t3 = t2 + abs(hold - start) / cool * 60
    prof: dict[str, list[float]] = {"time_s": [0.0, t1, t2, t3],
                                    "temperature_c": [start, hold, hold, start]}
    for gas in ("po2_atm", "ph2o_atm"):
        v = pick(gas, getattr(ox, gas) if ox else None)
        if v is not None:
            prof[gas] = [v] * 4
    return prof


def _actual_scalars(chart: Chart, recipe: Mapping[str, list[float]], row: Mapping[str, Any],
                    keys: Sequence[str]) -> None:
    # Without a trajectory, draw what was recorded: the actual value over the actual hold.
    if not recipe:
        return
    t1 = recipe["time_s"][1] / 60
    hold_min = next((v for k in ("actual_hold_min", "actual_hold_band_min")
                     if (v := as_float(row.get(k))) is not None), recipe["time_s"][2] / 60 - t1)
    for i, k in enumerate(keys):
        name = "hold_c" if k == "temperature_c" else k
        v = next((v for key in (f"actual_{name}", f"actual_{name}_mean")
                  if (v := as_float(row.get(key))) is not None), None)
        if v is not None:
            chart.series.append(Series([t1, t1 + hold_min], [v, v], f"actual {name} (mean)",
                                       PALETTE[(i + 2) % 6], markers=True))


#: Display range of the oxide axis, nm (the axis only; no rule uses it).
AXIS_NM = (0.2, 1000.0)


def oxide_gauge(th: Thickness, rules: ReleaseRules | None) -> str:
    """Prediction (with interval) and lab value on a log axis against the release spec and
    the internal band of the run's plant file."""
    chart = Chart("Oxide thickness against the specification", "", "thickness (log)",
                  width=560, height=240)
    if rules is not None:
        (lo, hi), (blo, bhi) = rules.window_nm, rules.band_nm
        chart.bands = [Band(math.log(lo), math.log(hi), "release spec", "#16a34a"),
                       Band(math.log(blo), math.log(bhi), "internal band", "#2563eb")]
        chart.hlines = [HLine(math.log(lo), f"LSL {lo:g} nm", "#15803d"),
                        HLine(math.log(hi), f"USL {hi:g} nm", "#15803d")]
    vals = [v for v in (th.predicted_mean, th.pi_low, th.pi_high, th.measured, th.p5, th.p95)
            if v is not None and v > 0]
    if th.predicted_mean and th.predicted_mean > 0:
        if th.pi_low and th.pi_high and th.pi_low > 0:
            chart.series.append(Series([1, 1], [math.log(th.pi_low), math.log(th.pi_high)],
                                       "prediction interval", PALETTE[0]))
        if th.p5 and th.p95 and th.p5 > 0:
            chart.series.append(Series([1.15, 1.15], [math.log(th.p5), math.log(th.p95)],
                                       "p5–p95 spread", PALETTE[3]))
        chart.series.append(Series([1], [math.log(th.predicted_mean)], "predicted mean",
                                   PALETTE[0], markers=True, line=False))
    if th.measured:
        chart.series.append(Series([2], [math.log(th.measured)], "lab measurement", PALETTE[1],
                                   markers=True, line=False))
    chart.x_range = (0.5, 2.5)
    chart.x_ticks = [(1.0, "virtual metrology"), (2.0, "lab")]
    chart.y_ticks = [(math.log(v), f"{v:g} nm") for v in (0.2, 1, 10, 100, 1000)
                     if v >= min(vals + [AXIS_NM[0]]) and v <= max(vals + [AXIS_NM[1]])]
    return chart.svg("oxide-gauge")


def control_chart(values_nm: Sequence[float], labels: Sequence[str], limits: Limits,
                  violations: Sequence[Violation], band_nm: tuple[float, float],
                  window_nm: tuple[float, float]) -> str:
    """Individuals chart of ln(thickness) with its limits, the internal band (the capability's
    limits) and the release spec, and the Western Electric marks."""
    x = list(range(1, len(values_nm) + 1))
    y = [math.log(v) for v in values_nm]
    chart = Chart("Individuals chart of ln(oxide thickness), batch order", "batch (production "
                  "order)", "thickness (log scale)", width=860, height=300)
    chart.series.append(Series(x, y, "batch thickness", PALETTE[0], markers=True))
    (blo, bhi), (lo, hi) = band_nm, window_nm
    chart.hlines = [HLine(limits.ucl, f"UCL {math.exp(limits.ucl):.3g} nm", "#b91c1c"),
                    HLine(limits.center, f"CL {math.exp(limits.center):.3g} nm", "#111",
                          dashed=False),
                    HLine(limits.lcl, f"LCL {math.exp(limits.lcl):.3g} nm", "#b91c1c"),
                    HLine(math.log(blo), f"band {blo:.3g} nm", "#2563eb"),
                    HLine(math.log(bhi), f"band {bhi:.3g} nm", "#2563eb")]
    for k in (1, 2):
        for sign in (1, -1):
            chart.hlines.append(HLine(limits.center + sign * k * limits.sigma,
                                      f"{'+' if sign > 0 else '−'}{k}σ", "#bbb"))
    chart.bands = [Band(math.log(blo), math.log(bhi), f"internal band {blo:.3g}–{bhi:.3g} nm",
                        "#2563eb"),
                   Band(math.log(lo), math.log(hi), f"release spec {lo:g}–{hi:g} nm")]
    for v in violations:
        chart.marks.append(Mark(x[v.index], y[v.index], f"{labels[v.index]}: {v.text}"))
    shown = list(values_nm) + [blo, bhi]
    chart.y_ticks = log_ticks(min(shown) / 1.2, max(shown) * 1.2)
    return chart.svg("control-chart")


def moving_range_chart(values_nm: Sequence[float], limits: Limits) -> str:
    """Moving range of ln(thickness) with its upper limit ``D4·MR̄``."""
    y = [abs(math.log(b) - math.log(a)) for a, b in zip(values_nm, values_nm[1:], strict=False)]
    chart = Chart("Moving range of ln(thickness)", "batch (production order)", "MR of ln(nm)",
                  width=860, height=200)
    chart.series.append(Series(list(range(2, len(values_nm) + 1)), y, "moving range",
                               PALETTE[2], markers=True))
    chart.hlines = [HLine(limits.mr_ucl, f"UCL {limits.mr_ucl:.3g}", "#b91c1c"),
                    HLine(limits.mr_bar, f"MR̄ {limits.mr_bar:.3g}", "#111", dashed=False)]
    return chart.svg("mr-chart")
