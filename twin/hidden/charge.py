"""A charge in the hidden furnace: its true powder, its run, its true oxide (exact or fast).

:class:`ChargeOxidation` turns a furnace run (true wall temperatures per zone, true gas
flows) and a charge's true powder into its :class:`~twin.hidden.sample.TrueCharge` with the
physics of :mod:`twin.hidden.bed`. One solve costs about 13 ms, too much for a simulated year
of thousands of charges, so the ``fast`` mode evaluates a local quadratic expansion of the same
solver around *anchors*, as the twin's own physics cache does for the twin's model (the two
never share anything): an anchor is the solver run once, vectorised, at a charge's conditions
and at ± one step in each of the scalars that vary from charge to charge:

0. the wall's offset over the planned profile, K (thermocouple offset and drift, the charge's
   load disturbance)
1. the hold time, min (the controller corrects it)
2. ln of the true total gas flow (MFC bias and drift)
3. ln of the true H2O share (the humidifier's bias and wander)
4. ln charge mass, 5. ln d50, 6. ln BET surface, 7. the oxide at loading (nm),
8. ln of the tube's rate factor (ageing).

Another charge of the same recipe shape (temperatures, ramps, O2 share), powder spread, phase
and material is evaluated from the expansion while every scalar is inside the anchor's trust
region; otherwise it gets an anchor of its own. The fast value is checked against the exact
solve in ``tests/hidden/test_charge.py``: the mean within 2 %, the tray means within 4 %, the
tails (p5, p95) within 8 % and the share within ±50 % within 0.06 (quantiles and shares over
the classes are rougher functions of the inputs than the mean). The wall is the planned
profile through the furnace loop's lag plus the offset (the thermocouple's seeded noise, about
1 °C, is left out of the expansion: its effect on the oxide is far below the expansion's
error).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from twin.hidden.bed import ChargeInputs, ChargeResult, solve_charges
from twin.hidden.config import LabTruth
from twin.hidden.kinetics import BedParams, Kinetics
from twin.hidden.sample import TrueCharge
from twin.physics.oxidation_profile import Profile
from twin.physics.thermal import lag_profile

FloatArray = NDArray[np.float64]
#: Standard litres per mole (0 °C, 1 atm: the reference of slm).
SL_PER_MOL = 22.414
#: Knots of a run handed to the solver (its own march refines where needed).
N_KNOTS = 200
#: Expansion steps and trust radii of the nine scalars (see the module notes).
STEPS = np.array([4.0, 8.0, 0.1, 0.15, 0.05, 0.08, 0.08, 0.3, 0.1])
TRUST = np.array([10.0, 16.0, 0.25, 0.4, 0.15, 0.2, 0.2, 0.8, 0.3])
_N = STEPS.size
_LOG_OUT = ("mean_nm", "p5_nm", "p50_nm", "p95_nm")
_LIN_OUT = ("within_50pct_share", "fully_oxidised_share")
_EXTRA = ("heat_mj", "o2_consumed_mol", "h2o_consumed_mol", "peak_self_heating_k",
          "supply_limited_share")


@dataclass(frozen=True)
class ChargeTruth:
    """A charge's true powder as it is loaded."""

    mass_kg: float
    d50_um: float
    gsd: float
    ssa_m2_g: float
    initial_nm: float
    phase_fraction: float
    feed_oxygen_wt_pct: float
    material: str = "Si"


@dataclass(frozen=True)
class Recipe:
    """The furnace recipe of a run (setpoints), the shape an anchor is kept for."""

    start_c: float
    hold_c: float
    ramp_c_per_min: float
    hold_min: float
    cool_c_per_min: float
    po2_atm: float
    ph2o_atm: float

    def shape_key(self) -> tuple[float, ...]:
        """What must agree for two runs to share an anchor (the hold may differ)."""
        return (round(self.start_c, 3), round(self.hold_c, 3), round(self.ramp_c_per_min, 4),
                round(self.cool_c_per_min, 4), round(self.po2_atm, 5))


@dataclass(frozen=True)
class TrueRun:
    """What a charge really went through in the furnace."""

    time_s: FloatArray          # (n,)
    wall_c: FloatArray          # (Z, n) true wall temperature per zone
    total_mol_s: FloatArray     # (n,) true gas flows
    o2_mol_s: FloatArray
    h2o_mol_s: FloatArray
    # The same run as scalars (what the fast mode expands in).
    offset_c: float
    flow_mol_s: float
    h2o_share: float
    rate_factor: float


@dataclass
class _Anchor:
    x: FloatArray
    y0: FloatArray
    grad: FloatArray
    curv: FloatArray
    cells_w: FloatArray
    xf: tuple[float, ...] = ()
    n_cells: int = 0

    def __post_init__(self) -> None:
        self.xf = tuple(float(v) for v in self.x)


@dataclass
class ChargeOxidation:
    """True oxide of charges in one furnace (see the module notes).

    Parameters
    ----------
    kinetics, bed : Kinetics, BedParams
        The hidden process's physics.
    lab_truth : LabTruth
        The lab's systematic errors (carried by every :class:`TrueCharge` it makes).
    zone_offsets_c : tuple of float
        Fixed zone-to-zone pattern of the wall over the mean, K (one per zone).
    loop_tau_s : float
        The furnace temperature loop's lag (the wall follows the setpoints with it).
    mode : {'fast', 'exact'}
    """

    kinetics: Kinetics
    bed: BedParams
    lab_truth: LabTruth
    zone_offsets_c: tuple[float, ...] = (0.0, 0.0, 0.0)
    loop_tau_s: float = 120.0
    mode: str = "fast"
    anchors: dict[tuple[object, ...], list[_Anchor]] = field(default_factory=dict)
    exact_calls: int = 0
    fast_calls: int = 0
    _walls: dict[tuple[float, ...], tuple[FloatArray, FloatArray]] = field(
        default_factory=dict)

    # -- runs ---------------------------------------------------------------------------
    def planned_wall(self, recipe: Recipe, hold_min: float) -> tuple[FloatArray, FloatArray]:
        """Times (s) and the wall's mean temperature (°C) of a recipe without offset or
        noise: the setpoints through the loop's lag, on :data:`N_KNOTS` knots."""
        key = (*recipe.shape_key(), round(hold_min, 6))
        hit = self._walls.get(key)
        if hit is not None:
            return hit
        prof = Profile.ramp_hold(start_c=recipe.start_c, hold_c=recipe.hold_c,
                                 ramp_c_per_min=recipe.ramp_c_per_min, hold_s=hold_min * 60.0,
                                 cool_c_per_min=recipe.cool_c_per_min, po2_atm=recipe.po2_atm,
                                 ph2o_atm=recipe.ph2o_atm)
        lagged = lag_profile(prof, self.loop_tau_s, dt_s=30.0)
        t = np.linspace(0.0, float(lagged.time_s[-1]), N_KNOTS)
        out = (t, np.interp(t, lagged.time_s, lagged.temperature_c))
        if len(self._walls) > 256:
            self._walls.pop(next(iter(self._walls)))
        self._walls[key] = out
        return out

    def _inputs(self, recipe: Recipe, xs: FloatArray, charge: ChargeTruth) -> ChargeInputs:
        """Solver inputs of runs given by rows of scalars ``xs`` (nb, 9)."""
        rows_t, rows_w = [], []
        for x in xs:
            t, w = self.planned_wall(recipe, float(x[1]))
            rows_t.append(t)
            rows_w.append(w)
        time = np.stack(rows_t)
        base = np.stack(rows_w)  # (nb, n)
        zones = np.asarray(self.zone_offsets_c, dtype=float)[None, :, None]
        wall = base[:, None, :] + xs[:, 0][:, None, None] + zones
        flow = np.exp(xs[:, 2])[:, None] * np.ones_like(time)
        o2 = flow * recipe.po2_atm
        h2o = flow * np.exp(xs[:, 3])[:, None]
        total = np.maximum(flow, o2 + h2o)
        nb = xs.shape[0]
        return ChargeInputs(time, wall, o2, h2o, total, np.exp(xs[:, 4]), np.exp(xs[:, 6]),
                            np.exp(xs[:, 5]), np.full(nb, charge.gsd), np.maximum(xs[:, 7], 0.0),
                            np.full(nb, charge.phase_fraction), np.exp(xs[:, 8]))

    # -- evaluation -----------------------------------------------------------------------
    def of_run(self, recipe: Recipe, run: TrueRun, charge: ChargeTruth) -> TrueCharge:
        """The true oxide of a charge after ``run`` (fast or exact by :attr:`mode`)."""
        if self.mode == "exact":
            self.exact_calls += 1
            return self._solve_run(run, charge)
        return self.fast(recipe, self.scalars(recipe, run, charge), charge)

    def of_cut_run(self, run: TrueRun, charge: ChargeTruth) -> TrueCharge:
        """The true oxide after a run cut short (a breakdown): always solved exactly (a
        one-off shape no anchor fits)."""
        self.exact_calls += 1
        return self._solve_run(run, charge)

    def _solve_run(self, run: TrueRun, charge: ChargeTruth) -> TrueCharge:
        inp = ChargeInputs(run.time_s[None], run.wall_c[None], run.o2_mol_s[None],
                           run.h2o_mol_s[None], run.total_mol_s[None],
                           np.array([charge.mass_kg]), np.array([charge.ssa_m2_g]),
                           np.array([charge.d50_um]), np.array([charge.gsd]),
                           np.array([charge.initial_nm]), np.array([charge.phase_fraction]),
                           np.array([run.rate_factor]))
        res = solve_charges(inp, self.kinetics, self.bed, material=charge.material)
        return self._true(res, 0, charge)

    @staticmethod
    def scalars(recipe: Recipe, run: TrueRun, charge: ChargeTruth) -> FloatArray:
        """The nine scalars of a run and charge (see the module notes)."""
        return np.array([run.offset_c, recipe.hold_min, math.log(run.flow_mol_s),
                         math.log(max(run.h2o_share, 1e-9)), math.log(charge.mass_kg),
                         math.log(charge.d50_um), math.log(charge.ssa_m2_g), charge.initial_nm,
                         math.log(run.rate_factor)])

    def exact_scalars(self, recipe: Recipe, x: FloatArray, charge: ChargeTruth) -> TrueCharge:
        """The exact solve of the planned run given by scalars ``x`` (the fast mode's
        reference)."""
        self.exact_calls += 1
        res = solve_charges(self._inputs(recipe, x[None], charge), self.kinetics, self.bed,
                            material=charge.material)
        return self._true(res, 0, charge)

    def fast(self, recipe: Recipe, x: FloatArray, charge: ChargeTruth) -> TrueCharge:
        """The anchored expansion at scalars ``x`` (a new anchor when outside every trust
        region)."""
        self.fast_calls += 1
        key = (*recipe.shape_key(), round(charge.gsd, 2), round(charge.phase_fraction, 2),
               charge.material, round(math.log(max(recipe.ph2o_atm, 1e-9)), 1))
        for a in self.anchors.get(key, ()):
            u = [x[i] - a.xf[i] for i in range(_N)]
            if all(abs(u[i]) <= TRUST[i] for i in range(_N)):
                return self._expand(a, np.array(u), charge)
        a = self._anchor(recipe, x, charge)
        self.anchors.setdefault(key, []).append(a)
        return self._expand(a, np.zeros(_N), charge)

    def _anchor(self, recipe: Recipe, x: FloatArray, charge: ChargeTruth) -> _Anchor:
        pts = [x.copy()]
        for i in range(_N):
            for sgn in (1.0, -1.0):
                p = x.copy()
                p[i] += sgn * STEPS[i]
                if i == 7:
                    p[i] = max(p[i], 0.0)
                if i == 1:
                    p[i] = max(p[i], 0.0)
                pts.append(p)
        xs = np.stack(pts)
        res = solve_charges(self._inputs(recipe, xs, charge), self.kinetics, self.bed,
                            material=charge.material)
        self.exact_calls += 1
        y = _outputs(res)
        y0 = y[0]
        grad = np.zeros((y.shape[1], _N))
        curv = np.zeros((y.shape[1], _N))
        for i in range(_N):
            hp, hm = xs[1 + 2 * i, i] - x[i], x[i] - xs[2 + 2 * i, i]
            yp, ym = y[1 + 2 * i], y[2 + 2 * i]
            if hp <= 0:
                continue
            if hm <= 0:
                grad[:, i] = (yp - y0) / hp
                continue
            grad[:, i] = (yp * hm**2 - ym * hp**2 - y0 * (hm**2 - hp**2)) / (hp * hm * (hp + hm))
            curv[:, i] = 2.0 * (yp * hm + ym * hp - y0 * (hp + hm)) / (hp * hm * (hp + hm))
        cells_w = res.class_weight[0].sum(axis=(2, 3))
        return _Anchor(x.copy(), y0, grad, curv, cells_w, n_cells=cells_w.size)

    def _expand(self, a: _Anchor, u: FloatArray, charge: ChargeTruth) -> TrueCharge:
        y = a.y0 + a.grad @ u + 0.5 * (a.curv @ (u * u))
        return _true_from(y, a.cells_w, charge, self.lab_truth)

    def _true(self, res: ChargeResult, i: int, charge: ChargeTruth) -> TrueCharge:
        y = _outputs(res)[i]
        cells_w = res.class_weight[i].sum(axis=(2, 3))
        return _true_from(y, cells_w, charge, self.lab_truth)


def _outputs(res: ChargeResult) -> FloatArray:
    """Rows per charge: log statistics, shares, log cell means, extras (the expansion's
    outputs)."""
    parts = [np.log(np.maximum(getattr(res, k), 1e-12))[:, None] for k in _LOG_OUT]
    parts += [getattr(res, k)[:, None] for k in _LIN_OUT]
    cells = res.zone_layer_mean_nm.reshape(res.mean_nm.size, -1)
    parts.append(np.log(np.maximum(cells, 1e-12)))
    parts += [np.asarray(getattr(res, k), dtype=float)[:, None] for k in _EXTRA]
    return np.concatenate(parts, axis=1)


def _true_from(y: FloatArray, cells_w: FloatArray, charge: ChargeTruth,
               lab: LabTruth) -> TrueCharge:
    mean, p5, p50, p95 = (float(math.exp(v)) for v in y[:4])
    within = min(max(float(y[4]), 0.0), 1.0)
    full = min(max(float(y[5]), 0.0), 1.0)
    n = cells_w.size
    cells = np.exp(y[6:6 + n]).reshape(cells_w.shape)
    extra = {k: float(v) for k, v in zip(_EXTRA, y[6 + n:], strict=True)}
    return TrueCharge(mean, min(p5, p50), p50, max(p95, p50), within, full, cells, cells_w,
                      charge.ssa_m2_g, charge.feed_oxygen_wt_pct, charge.material, lab, extra)


def flow_mol_s(flow_slm: float) -> float:
    """A flow in standard litres per minute as mol/s."""
    return flow_slm / SL_PER_MOL / 60.0


def truncate_run(run: TrueRun, t_end: float) -> TrueRun:
    """The run up to ``t_end`` s (a step cut short), interpolating its last knot."""
    t_end = max(t_end, 1.0)
    keep = run.time_s < t_end
    t = np.append(run.time_s[keep], t_end)

    def cut(a: FloatArray) -> FloatArray:
        return np.append(a[keep], np.interp(t_end, run.time_s, a))

    wall = np.stack([cut(w) for w in run.wall_c])
    return TrueRun(t, wall, cut(run.total_mol_s), cut(run.o2_mol_s), cut(run.h2o_mol_s),
                   run.offset_c, run.flow_mol_s, run.h2o_share, run.rate_factor)
