"""Oxide physics per charge, cheap enough for a simulated year.

One call of :func:`twin.physics.oxidation.grow_particles` costs several milliseconds (a
stiff integration over the whole profile and the size bins), too much for thousands of
charges. Two evaluation modes give the same physics:

``exact``
    Calls the physics for every charge (tests use it as the reference).
``fast`` (default)
    A local expansion of the same physics around *anchors*. An anchor is the full physics
    solved, in one vectorised call, at one charge's conditions and at ± steps in each input
    that varies from charge to charge: a temperature shift of the profile, the particle size
    (d50), the initial oxide and the three calibration factors. Another charge with the same
    recipe shape is then evaluated from its own conditions by a second-order (diagonal)
    Taylor expansion in those inputs. The temperature input is the charge's *thermal-budget
    shift*: the uniform offset of the anchor's profile whose Arrhenius integral
    (activation energy :data:`BUDGET_EA_EV`) equals that of the charge's actual record, so
    lags, noise and offsets in the record all count. The *hold time* is an input too (the
    run-to-run controller corrects it from charge to charge): the anchor is also solved with
    its hold window (where the record is within :data:`HOT_K` of its peak) stretched by
    ± :data:`HOLD_STEP_MIN`, plus one point stretched and shifted for the mixed
    temperature–hold term, and a charge's hold input is its duration minus the anchor's. Only
    records of the same shape share an anchor: the same ramp-up time to the hold window,
    cool-down tail and end temperature (so a record cut short by a breakdown never passes
    for a shorter hold). A charge outside the anchor's trust region gets a new anchor of its
    own. The expansion's error against ``exact`` is checked in
    ``tests/plant/test_physics_cache.py`` (within 2 % on the mean over the trust region and
    over the controller's hold-time range).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin.physics.oxidation import (
    Calibration,
    OxideDistribution,
    Profile,
    grow_particles_batch,
)
from twin.physics.psd import SizeDistribution
from twin.plant.prediction import LognormalPsd, as_distribution, predict_oxide

K_B_EV = 8.617333262e-5
#: Activation energy weighting the thermal budget, eV (between the thin-oxide and
#: linear-rate energies of Si; only the weighting of ramps against the hold depends on it).
BUDGET_EA_EV = 2.0
#: Expansion steps and trust radii: temperature shift (K), ln d50, initial oxide (nm),
#: ln of each calibration factor, hold time (min).
STEPS = np.array([3.0, 0.1, 0.3, 0.1, 0.1, 0.1, 6.0, 0.1, 0.1])
TRUST = np.array([8.0, 0.25, 0.8, 0.25, 0.25, 0.25, 12.0, 0.25, 0.3])
#: The hold window of a record: where it is within this of its peak temperature, K.
HOT_K = 15.0
#: Step of the hold-time input, min (``STEPS[6]``).
HOLD_STEP_MIN = float(STEPS[6])
#: Records share an anchor only when their ramp-up time to the hold window and their
#: cool-down tail agree within this (s; one and a half knots of a 60 s furnace record) ...
SHAPE_TOL_S = 90.0
#: ... and their end temperatures over their start within this, K (a cut-short record ends
#: hot).
END_TOL_K = 5.0
#: A hold window shorter than this (min) is not stretched: the hold input is then off and
#: only records of the same duration (to the second) share the anchor.
MIN_HOLD_MIN = 2.0 * HOLD_STEP_MIN
_SHIFT_GRID = np.linspace(-60.0, 60.0, 241)
_OUT = ("mean_nm", "p5_nm", "p50_nm", "p95_nm", "within_50pct_share", "fully_oxidised_share")
_LOG = np.array([True, True, True, True, False, False])
_TRUST = tuple(float(v) for v in TRUST)
#: Records described at a time (a charge's record is re-evaluated within a few charges).
_RECORD_CACHE = 64
_N_IN = 9


class _ByIdentity:
    """Values derived from objects, kept by the objects' identity (the newest ``size``).

    An entry keeps its objects alive, so their ids cannot be reused while it exists; a hit
    also checks that the objects are the very ones stored.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[tuple[int, ...], tuple[tuple[Any, ...], Any]] = {}

    def get(self, *objs: Any) -> Any:
        """The value stored for ``objs``, or None."""
        hit = self._entries.get(tuple(map(id, objs)))
        if hit is not None and all(a is b for a, b in zip(hit[0], objs, strict=True)):
            return hit[1]
        return None

    def put(self, objs: tuple[Any, ...], value: Any) -> None:
        """Store ``value`` for ``objs`` (the oldest entry goes when full)."""
        if len(self._entries) >= self.size:
            self._entries.pop(next(iter(self._entries)))
        self._entries[tuple(map(id, objs))] = (objs, value)


def _owned_read_only(*arrays: np.ndarray) -> bool:
    # Only arrays that own read-only data can be keyed by identity (nothing can change them).
    return all(a.base is None and not a.flags.writeable for a in arrays)


def _budget(time_s: np.ndarray, temp_c: np.ndarray) -> float:
    """ln of the Arrhenius integral of a record (trapezoid on its knots)."""
    w = np.exp(_NEG_EA_K / (temp_c + 273.15))
    area = float(w @ _trapezoid_weights(time_s))
    return float(math.log(max(area, 1e-300)))


#: -Ea / k_B of the thermal budget, K.
_NEG_EA_K = -BUDGET_EA_EV / K_B_EV


def _trapezoid_weights(t: np.ndarray) -> np.ndarray:
    """Weights ``w`` with ``w @ f`` the trapezoid integral of ``f`` on knots ``t``.

    Records of one furnace grid share their read-only time array: its weights are kept by
    identity (the same sums as the trapezoid over segments, regrouped per knot).
    """
    hit: np.ndarray | None = _WEIGHTS.get(t)
    if hit is not None:
        return hit
    dt = np.diff(t)
    w = np.zeros(t.size)
    w[:-1] += 0.5 * dt
    w[1:] += 0.5 * dt
    if _owned_read_only(t):
        _WEIGHTS.put((t,), w)
    return w


#: Trapezoid weights of shared read-only time arrays.
_WEIGHTS = _ByIdentity(64)


@dataclass(frozen=True)
class _Shape:
    """What a record's shape is compared on: duration, ramp-up time to the hold window,
    cool-down tail after it, end temperature over the start (an offset cancels), and the
    window's knot indices."""

    duration_s: float
    ramp_s: float
    tail_s: float
    end_k: float
    i_on: int
    i_off: int

    @property
    def hold_min(self) -> float:
        """Length of the hold window, min."""
        return (self.duration_s - self.ramp_s - self.tail_s) / 60.0

    def same_as(self, other: _Shape) -> bool:
        """Same ramp-up, cool-down and end (the hold may differ)."""
        return (abs(self.ramp_s - other.ramp_s) <= SHAPE_TOL_S
                and abs(self.tail_s - other.tail_s) <= SHAPE_TOL_S
                and abs(self.end_k - other.end_k) <= END_TOL_K)


def _shape(profile: Profile) -> _Shape:
    t, temp = profile.time_s, profile.temperature_c
    hot = temp >= float(_max(temp)) - HOT_K
    i_on = int(hot.argmax())
    i_off = temp.size - 1 - int(hot[::-1].argmax())
    end = float(t[-1])
    return _Shape(end, float(t[i_on]), end - float(t[i_off]), float(temp[-1] - temp[0]), i_on,
                  i_off)


_max = np.maximum.reduce


_sum = np.add.reduce


def _mean(a: np.ndarray) -> float:
    # ndarray.mean's own arithmetic (a pairwise sum over the count) without its Python layers.
    return float(_sum(a) / a.size)


@dataclass
class _Anchor:
    profile: Profile
    psd: SizeDistribution
    shape: _Shape
    x: np.ndarray           # [0, ln d50, x0, ln b, ln ba, ln c, 0, ln supply, ln pH2O]
    area_out: np.ndarray    # Arrhenius integral outside / inside the hold window of the
    area_in: np.ndarray     # anchor profile shifted by _SHIFT_GRID
    y0: np.ndarray
    grad: np.ndarray        # (6 outputs, 9 inputs)
    curv: np.ndarray        # diagonal second derivatives, same shape
    mixed: np.ndarray       # d2y / d(shift) d(hold), (6 outputs,)
    thickness: np.ndarray   # per-bin thickness at the anchor (for scaling)
    xf: tuple[float, ...] = ()  # x as floats (the trust test runs on floats)
    mean0: float = 1.0          # mean thickness at the anchor, nm
    budget_grid: np.ndarray = field(default_factory=lambda: np.zeros(0))  # hold unchanged
    hold_trust: float = 0.0     # trust radius of the hold input, min (0: off)

    coef: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [grad | curv/2 | mixed]

    def __post_init__(self) -> None:
        self.xf = tuple(float(v) for v in self.x)
        self.mean0 = float(math.exp(self.y0[0]))
        # One matrix for the whole second-order expansion: y = y0 + coef @ [u, u*u, u0*u6].
        self.coef = np.hstack([self.grad, 0.5 * self.curv, self.mixed[:, None]])
        self.budget_grid = np.log(np.maximum(self.area_out + self.area_in, 1e-300))
        self.hold_trust = _TRUST[6] if self.shape.hold_min >= MIN_HOLD_MIN else 0.0

    def fits(self, shape: _Shape) -> float | None:
        """The hold input of a record of ``shape`` (min), or None when it is not this
        anchor's shape or outside the hold trust region."""
        a = self.shape
        if not a.same_as(shape):
            return None
        d_s = shape.duration_s - a.duration_s
        if self.hold_trust > 0.0:
            return d_s / 60.0 if abs(d_s) <= self.hold_trust * 60.0 else None
        return 0.0 if abs(d_s) < 0.5 else None

    def shift(self, budget: float, hold: float) -> float:
        """Temperature shift of the anchor, stretched by ``hold`` min, with ``budget``."""
        if hold == 0.0:
            grid = self.budget_grid
        else:
            stretch = 1.0 + hold / self.shape.hold_min
            grid = np.log(np.maximum(self.area_out + self.area_in * stretch, 1e-300))
        return _interp_shift(budget, grid)


def _interp_shift(budget: float, grid: np.ndarray) -> float:
    """``np.interp(budget, grid, _SHIFT_GRID)`` for one value (``grid`` increasing).

    The same arithmetic as numpy's interp (slope times offset plus the left value, the ends
    held outside the range), with the interval found by a binary search instead of the
    wrapper's per-call checks.
    """
    n = grid.size
    j = int(_searchsorted(grid, budget, side="right")) - 1
    if j < 0:
        return _SHIFT_LIST[0]
    if j >= n - 1:
        return _SHIFT_LIST[-1]
    g0, g1 = float(grid[j]), float(grid[j + 1])
    s0, s1 = _SHIFT_LIST[j], _SHIFT_LIST[j + 1]
    return (s1 - s0) / (g1 - g0) * (budget - g0) + s0


_searchsorted = np.searchsorted
_SHIFT_LIST: list[float] = _SHIFT_GRID.tolist()


def _gas_key(po2: np.ndarray, ph2o: np.ndarray) -> tuple[int, int, float]:
    """The gas part of a record's key: its O2 (to 1 %), its water coarsely (a factor e^0.5;
    within that the water is an input of the expansion, as a humidifier wanders from charge to
    charge), and ln of its mean water pressure (the input; 0 for a dry gas)."""
    # Records on one furnace grid share their (read-only) gas arrays: key them once.
    hit: tuple[int, int, float] | None = _GAS_KEYS.get(po2, ph2o)
    if hit is not None:
        return hit
    water = _mean(ph2o)
    ln_w = math.log(water) if water > WET_ATM else 0.0
    key = (round(math.log(max(_mean(po2), 1e-9)) / 0.01),
           round(ln_w / 0.5) if water > WET_ATM else -10**6, ln_w)
    if _owned_read_only(po2, ph2o):
        _GAS_KEYS.put((po2, ph2o), key)
    return key


#: Mean water pressure below which a record counts as dry (the water input is then off), atm.
WET_ATM = 1e-6


#: Gas part of the key, by the identity of shared read-only gas arrays.
_GAS_KEYS = _ByIdentity(64)


class OxidePhysics:
    """Evaluates charge oxide, exactly or by the anchored expansion (see module notes)."""

    def __init__(self, mode: str = "fast") -> None:
        if mode not in ("fast", "exact"):
            raise ValueError(f"physics mode must be 'fast' or 'exact', got {mode!r}")
        self.mode = mode
        self.anchors: dict[tuple[Any, ...], list[_Anchor]] = {}
        # Record shapes solved exactly so far, per key (a second record of a shape gets an
        # anchor).
        self._seen: dict[tuple[Any, ...], list[_Shape]] = {}
        self.exact_calls = 0
        self.fast_calls = 0
        # What a record is compared on (gas key, shape, thermal budget), by profile identity:
        # a record is evaluated several times (truth, VM, the calibration's secant; the
        # controller's planned profile for every charge) but described once.
        self._records = _ByIdentity(_RECORD_CACHE)

    # -- public ------------------------------------------------------------------------------
    def predict(self, actual: Profile, psd: SizeDistribution | LognormalPsd, *, material: str,
                calibration: Calibration, initial_nm: float, growth: Mapping[str, Any],
                supply_nm_s_atm: float | None = None) -> OxideDistribution:
        """The twin's prediction (:func:`twin.plant.prediction.predict_oxide`)."""
        if self.mode == "exact":
            self.exact_calls += 1
            return predict_oxide(actual, psd, material=material, calibration=calibration,
                                 initial_nm=initial_nm, growth=growth,
                                 supply_nm_s_atm=supply_nm_s_atm)
        return self.evaluate(actual, psd, material=material, calibration=calibration,
                             initial_nm=initial_nm, growth=growth,
                             supply_nm_s_atm=supply_nm_s_atm)

    def evaluate(self, profile: Profile, psd: SizeDistribution | LognormalPsd, *, material: str,
                 calibration: Calibration, initial_nm: float, growth: Mapping[str, Any],
                 supply_nm_s_atm: float | None = None) -> OxideDistribution:
        """Oxide by the anchored expansion (new anchor when outside every trust region)."""
        cal = (math.log(calibration.b_factor), math.log(calibration.ba_factor),
               math.log(calibration.c_factor))
        return self._evaluate(profile, psd, material, cal, lambda: calibration, initial_nm,
                              growth, supply_nm_s_atm)

    def _describe(self, profile: Profile) -> tuple[tuple[int, int, float], _Shape, float]:
        """Gas key, shape and thermal budget of a record (cached by identity)."""
        hit: tuple[tuple[int, int, float], _Shape, float] | None = self._records.get(profile)
        if hit is not None:
            return hit
        described = (_gas_key(profile.po2_atm, profile.ph2o_atm), _shape(profile),
                     _budget(profile.time_s, profile.temperature_c))
        self._records.put((profile,), described)
        return described

    def _evaluate(self, profile: Profile, psd: SizeDistribution | LognormalPsd, material: str,
                  cal: tuple[float, float, float], calibration: Callable[[], Calibration],
                  initial_nm: float, growth: Mapping[str, Any],
                  supply: float | None = None) -> OxideDistribution:
        # ``cal``: ln of the three factors; ``calibration`` builds the object (only an exact
        # solve or a new anchor needs it, so the common path skips its validation).
        # ``supply``: the oxidant-supply limit (nm/s per atm; None: unlimited).
        self.fast_calls += 1
        gas, shape, budget = self._describe(profile)
        key = (material, tuple(sorted(growth.items())), supply is None, gas[0], gas[1])
        ln_water = gas[2]
        anchors = self.anchors.get(key, ())
        if anchors:
            ln_d50 = math.log(psd.d50_um)
            _, t1, t2, t3, t4, t5, _, t7, t8 = _TRUST
            t0 = _TRUST[0]
            ln_sup = math.log(supply) if supply is not None else 0.0
            for a in anchors:
                # The trust test in plain floats (cheaper than arrays); the shift last.
                u6 = a.fits(shape)
                if u6 is None:
                    continue
                x = a.xf
                u1, u2 = ln_d50 - x[1], initial_nm - x[2]
                u3, u4, u5 = cal[0] - x[3], cal[1] - x[4], cal[2] - x[5]
                u7, u8 = ln_sup - x[7], ln_water - x[8]
                if not (abs(u1) <= t1 and abs(u2) <= t2 and abs(u3) <= t3 and abs(u4) <= t4
                        and abs(u5) <= t5 and abs(u7) <= t7 and abs(u8) <= t8):
                    continue
                u0 = a.shift(budget, u6)
                if abs(u0) <= t0:
                    return _expand(a, (u0, u1, u2, u3, u4, u5, u6, u7, u8))
        seen = self._seen.setdefault(key, [])
        if not any(shape.same_as(o) and abs(shape.duration_s - o.duration_s)
                   <= _TRUST[6] * 60.0 for o in seen):
            # A shape seen once (an aborted, truncated profile; a one-off recipe) is solved
            # exactly; an anchor pays off from the second charge of a shape on.
            seen.append(shape)
            self.exact_calls += 1
            return predict_oxide(profile, psd, material=material, calibration=calibration(),
                                 initial_nm=initial_nm, growth=growth, supply_nm_s_atm=supply)
        a = _make_anchor(profile, shape, as_distribution(psd), material, calibration(),
                         initial_nm, growth, supply, ln_water)
        self.anchors.setdefault(key, []).append(a)
        return _expand(a, (0.0,) * _N_IN)


def _stretched(profile: Profile, shape: _Shape, hold_min: float, shift_k: float,
               water: float = 1.0) -> Profile:
    """``profile`` with its hold window lengthened by ``hold_min``, shifted by ``shift_k`` and
    its water times ``water`` (the window's knots spread evenly: the added time is at hold
    temperature)."""
    t = profile.time_s
    if hold_min:
        t_on, t_off = float(t[shape.i_on]), float(t[shape.i_off])
        t = t + hold_min * 60.0 * np.clip((t - t_on) / (t_off - t_on), 0.0, 1.0)
    ph2o = profile.ph2o_atm * water if water != 1.0 else profile.ph2o_atm
    return Profile(t, profile.temperature_c + shift_k, profile.po2_atm, ph2o)


def _areas(profile: Profile, shape: _Shape) -> tuple[np.ndarray, np.ndarray]:
    """Arrhenius integrals outside and inside the hold window, per shift of _SHIFT_GRID."""
    t, temp = profile.time_s, profile.temperature_c
    w = np.exp(-BUDGET_EA_EV / (K_B_EV * (temp[None, :] + _SHIFT_GRID[:, None] + 273.15)))
    seg = 0.5 * (w[:, 1:] + w[:, :-1]) * (t[1:] - t[:-1])
    inside = np.zeros(t.size - 1, dtype=bool)
    inside[shape.i_on:shape.i_off] = True
    return seg[:, ~inside].sum(axis=1), seg[:, inside].sum(axis=1)


def _make_anchor(profile: Profile, shape: _Shape, psd: SizeDistribution, material: str,
                 calibration: Calibration, initial_nm: float,
                 growth: Mapping[str, Any], supply: float | None = None,
                 ln_water: float = 0.0) -> _Anchor:
    """Solve the physics at the anchor, at ± one step in each input and at one point for
    the mixed temperature–hold term (one vectorised call)."""
    base = np.array([0.0, math.log(psd.d50_um), initial_nm, math.log(calibration.b_factor),
                     math.log(calibration.ba_factor), math.log(calibration.c_factor), 0.0,
                     math.log(supply) if supply is not None else 0.0, ln_water])
    hold_on = shape.hold_min >= MIN_HOLD_MIN
    held = {6} if not hold_on else set()
    if supply is None:
        held.add(7)  # no supply limit: the input does not exist
    if ln_water == 0.0:
        held.add(8)  # a dry gas: no water to scale
    points = [base]
    for i in range(_N_IN):
        for sgn in (1.0, -1.0):
            p = base.copy()
            p[i] += sgn * STEPS[i] if i not in held else 0.0
            if i == 2:
                p[i] = max(p[i], 0.0)
            points.append(p)
    mixed_pt = base.copy()
    mixed_pt[0] += STEPS[0]
    mixed_pt[6] += STEPS[6] if hold_on else 0.0
    points.append(mixed_pt)
    profiles, psds, x0s, cals, sups = [], [], [], [], []
    for p in points:
        sups.append(math.exp(p[7]))
        profiles.append(_stretched(profile, shape, float(p[6]), float(p[0]),
                                   math.exp(p[8] - base[8])))
        scale = math.exp(p[1] - base[1])
        psds.append(SizeDistribution(psd.diameter_um * scale, psd.volume_fraction))
        x0s.append(p[2])
        cals.append(Calibration(math.exp(p[3]), math.exp(p[4]), math.exp(p[5])))
    out = grow_particles_batch(profiles, psds, as_arrays=True, material=material,
                               initial_nm=np.array(x0s), calibration=cals,
                               supply_nm_s_atm=np.array(sups) if supply is not None else None,
                               **dict(growth))
    y = np.stack([np.asarray(out[k], dtype=float) for k in _OUT], axis=1)  # (16, 6)
    y[:, _LOG] = np.log(np.maximum(y[:, _LOG], 1e-12))
    y0 = y[0]
    grad = np.zeros((6, _N_IN))
    curv = np.zeros((6, _N_IN))
    for i in range(_N_IN):
        hp = points[1 + 2 * i][i] - base[i]
        hm = base[i] - points[2 + 2 * i][i]
        yp, ym = y[1 + 2 * i], y[2 + 2 * i]
        if hp <= 0:  # an input held fixed (the hold of a too short window)
            continue
        if hm <= 0:  # one-sided (initial oxide at 0)
            grad[:, i] = (yp - y0) / hp
            continue
        grad[:, i] = (yp * hm**2 - ym * hp**2 - y0 * (hm**2 - hp**2)) / (hp * hm * (hp + hm))
        curv[:, i] = 2.0 * (yp * hm + ym * hp - y0 * (hp + hm)) / (hp * hm * (hp + hm))
    mixed = np.zeros(6)
    if hold_on:
        # (y(+s, +h) - y(+s, 0) - y(0, +h) + y0) / (s h)
        mixed = (y[-1] - y[1] - y[1 + 2 * 6] + y0) / (STEPS[0] * STEPS[6])
    area_out, area_in = _areas(profile, shape)
    return _Anchor(profile, psd, shape, base, area_out, area_in, y0, grad, curv, mixed,
                   np.asarray(out["thickness_nm"][0], dtype=float))


def _expand(a: _Anchor, u: tuple[float, ...]) -> OxideDistribution:
    """The second-order expansion of anchor ``a`` at input offsets ``u`` (7 floats)."""
    u0, u1, u2, u3, u4, u5, u6, u7, u8 = u
    v = np.array([u0, u1, u2, u3, u4, u5, u6, u7, u8, u0 * u0, u1 * u1, u2 * u2, u3 * u3,
                  u4 * u4, u5 * u5, u6 * u6, u7 * u7, u8 * u8, u0 * u6])
    lm, l5, l50, l95, within, full = (a.y0 + a.coef @ v).tolist()
    mean, p5, p50, p95 = math.exp(lm), math.exp(l5), math.exp(l50), math.exp(l95)
    p5, p95 = min(p5, p50), max(p95, p50)
    within = min(max(within, 0.0), 1.0)
    full = min(max(full, 0.0), 1.0)
    return OxideDistribution(mean, p5, p50, p95, within, full, a.thickness * (mean / a.mean0))
