"""The hidden true process of the oxidation furnace.

Shared by the simulated furnace of :mod:`twin.hidden.equipment` and the emulated furnace PLC
(``connectors/emulators``), so that a simulated run and a live run against an emulator see the
same plant. The twin never imports this module: it only sees the process values the equipment
reports and the lab's results.

What the truth adds to the textbook physics
-------------------------------------------
* The PLC controls the *indicated* temperature (its thermocouple). The charge sits at
  ``indicated + thermocouple_offset_c``.
* The indicated temperature follows its setpoint with a first-order lag (time constant
  ``tau_s``), never faster than the furnace's maximum ramp rate, with a seeded fluctuation
  whose stationary standard deviation is ``temperature_noise_c`` whatever the step size.
* The gas the charge sees is the set partial pressure times ``1 + o2_flow_bias_rel`` (a
  mass-flow controller that reads low or high).
* Oxide grows with the oxidation physics, its rate constants scaled by
  ``rate_factor * (1 + rate_drift_per_day * days)`` (a real tube furnace grows about half the
  textbook oxide; the factor drifts as the tube ages), and each charge gets a seeded
  batch-to-batch factor of relative size ``thickness_spread_rel / 2`` plus a bed-position
  spread of relative size ``thickness_spread_rel`` inside the charge.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.config.schema import FurnaceLimits
from twin.hidden.config import FurnaceTruth
from twin.physics.oxidation_profile import Profile

if TYPE_CHECKING:
    from twin.physics.oxidation import OxideDistribution
    from twin.physics.psd import SizeDistribution

SECONDS_PER_DAY = 86400.0

#: Knots per block of the closed-form lag (keeps ``r**-k`` far from overflow).
_LAG_BLOCK = 256
#: Record grids a furnace keeps (one per recipe it runs; a controller's corrections add more).
_GRID_CACHE = 16

#: Setpoint names a furnace step understands (the PLC's writable tags).
FURNACE_SETPOINTS: tuple[str, ...] = ("temperature_c", "ramp_c_per_min", "po2_atm", "ph2o_atm")


def drifted(factor: float, drift_per_day: float, t_s: float) -> float:
    """Rate factor after ``t_s`` seconds of linear relative drift (never below 1 % of start)."""
    return factor * max(0.01, 1.0 + drift_per_day * t_s / SECONDS_PER_DAY)


@dataclass(frozen=True, slots=True)
class FurnaceState:
    """Instantaneous state of one furnace (what its PLC would show, plus the truth).

    Attributes
    ----------
    time_s : float
        Process time since the start of the run, s.
    indicated_c : float
        Indicated (thermocouple) temperature, °C: the controlled variable.
    true_c : float
        Temperature the charge actually sees, °C.
    po2_atm, ph2o_atm : float
        Partial pressures the charge actually sees, atm.
    oxide_nm : float
        True oxide accumulated on a flat Si witness surface in this furnace run, nm
        (only advanced by :meth:`TrueFurnace.step` when ``track_oxide`` is on).
    """

    time_s: float = 0.0
    indicated_c: float = 25.0
    true_c: float = 25.0
    po2_atm: float = 0.0
    ph2o_atm: float = 0.0
    oxide_nm: float = 0.0


class TrueFurnace:
    """Hidden true dynamics and oxide growth of one oxidation furnace.

    Parameters
    ----------
    truth : FurnaceTruth
        Offsets, biases, rate factor and spreads of this furnace (configuration).
    limits : FurnaceLimits
        Equipment limits; setpoints are clipped to them as a PLC would.
    rng : numpy.random.Generator
        This furnace's own stream (noise, batch-to-batch spread).
    tau_s : float
        Time constant of the temperature loop, s.
    """

    def __init__(self, truth: FurnaceTruth, limits: FurnaceLimits, rng: np.random.Generator,
                 *, tau_s: float = 120.0) -> None:
        if tau_s <= 0:
            raise ValueError(f"tau_s must be > 0, got {tau_s}")
        self.truth = truth
        self.limits = limits
        self.rng = rng
        self.tau_s = float(tau_s)
        self._grids: dict[tuple[int, float], _Grid] = {}

    # -- rates ---------------------------------------------------------------------------
    def rate_factor(self, t_s: float) -> float:
        """True/textbook rate factor at run time ``t_s`` (s), with its drift."""
        return drifted(self.truth.rate_factor, self.truth.rate_drift_per_day, t_s)

    def _clip(self, name: str, value: float) -> float:
        lo, hi = getattr(self.limits, name)
        return min(max(float(value), lo), hi)

    # -- dynamics ------------------------------------------------------------------------
    def initial_state(self, t_s: float = 0.0, temperature_c: float = 25.0) -> FurnaceState:
        """A cold, gas-free furnace at ``temperature_c`` (indicated) at time ``t_s``."""
        return FurnaceState(time_s=t_s, indicated_c=temperature_c,
                            true_c=temperature_c + self.truth.thermocouple_offset_c)

    def step(self, state: FurnaceState, setpoints: Mapping[str, float], dt_s: float, *,
             track_oxide: bool = False) -> FurnaceState:
        """Advance the furnace by ``dt_s`` seconds toward ``setpoints``.

        Parameters
        ----------
        state : FurnaceState
            State at the start of the step.
        setpoints : Mapping[str, float]
            ``temperature_c`` (indicated setpoint, °C; required), optional ``ramp_c_per_min``
            (ramp limit, °C/min), ``po2_atm`` and ``ph2o_atm`` (set partial pressures, atm).
            Values are clipped to the furnace limits.
        dt_s : float
            Step, s (> 0).
        track_oxide : bool
            Also grow the flat-witness oxide in ``state.oxide_nm`` (costs one physics call).

        Returns
        -------
        FurnaceState
        """
        if dt_s <= 0:
            raise ValueError(f"dt_s must be > 0, got {dt_s}")
        sp = self._clip("temperature_c", setpoints["temperature_c"])
        ramp_max = self.limits.ramp_c_per_min[1]
        ramp = min(self._clip("ramp_c_per_min", setpoints.get("ramp_c_per_min", ramp_max)),
                   ramp_max)
        alpha = 1.0 - math.exp(-dt_s / self.tau_s)
        move = alpha * (sp - state.indicated_c)
        max_move = ramp / 60.0 * dt_s
        move = min(max(move, -max_move), max_move)
        # Noise scaled so that its stationary spread is temperature_noise_c for any dt_s.
        sd = self.truth.temperature_noise_c * math.sqrt(1.0 - (1.0 - alpha) ** 2)
        indicated = state.indicated_c + move + (sd * float(self.rng.standard_normal())
                                                if sd > 0 else 0.0)
        bias = 1.0 + self.truth.o2_flow_bias_rel
        po2 = min(self._clip("po2_atm", setpoints.get("po2_atm", 0.0)) * bias, 1.0)
        ph2o = self._clip("ph2o_atm", setpoints.get("ph2o_atm", 0.0))
        true_c = indicated + self.truth.thermocouple_offset_c
        oxide = state.oxide_nm
        if track_oxide:
            oxide = self._grow_witness(state, true_c, po2, ph2o, dt_s)
        return FurnaceState(time_s=state.time_s + dt_s, indicated_c=indicated, true_c=true_c,
                            po2_atm=po2, ph2o_atm=ph2o, oxide_nm=oxide)

    def _grow_witness(self, state: FurnaceState, true_c: float, po2: float, ph2o: float,
                      dt_s: float) -> float:
        from twin.physics.oxidation import Calibration, grow_flat

        if po2 <= 0 and ph2o <= 0:
            return state.oxide_nm
        rf = self.rate_factor(state.time_s)
        mid_c = 0.5 * (state.true_c + true_c)
        prof = Profile.constant(temperature_c=mid_c, duration_s=dt_s, po2_atm=po2,
                                ph2o_atm=ph2o)
        return float(grow_flat(prof, initial_nm=state.oxide_nm,
                               calibration=Calibration(b_factor=rf, ba_factor=rf, c_factor=rf)))

    def run_profile(self, setpoints_profile: Profile, dt_s: float = 30.0, *,
                    t0_s: float = 0.0, offset_c: float = 0.0) -> tuple[Profile, Profile]:
        """Run a whole setpoint profile; return the (indicated, true) process profiles.

        The same dynamics as :meth:`step`, on a grid of ``dt_s`` seconds, starting from the
        profile's first setpoint (a furnace loaded at its start temperature).

        Parameters
        ----------
        setpoints_profile : Profile
            Indicated-temperature and gas setpoints over time.
        dt_s : float
            Grid step, s.
        t0_s : float
            Run time at which the profile starts, s (only the rate drift uses it).
        offset_c : float
            A process disturbance of this charge (load, controller tuning), °C at the peak
            setpoint: the controlled temperature settles this far off its setpoint, in
            proportion to the elevation above the start. The PLC sees it.

        Returns
        -------
        tuple of Profile
            ``(indicated, true)``: the indicated process value the PLC reports and what
            the charge actually saw, on the same time knots.
        """
        g = self._grid(setpoints_profile, dt_s)
        ind = self._lag_on(g)
        if offset_c:
            ind = ind + offset_c * g.rise / g.lift
        # The grid's arrays are read-only and shared by every record on it; the records are
        # built by this method alone, so the profile checks have nothing left to find.
        indicated = Profile.trusted(g.times, ind, g.po2_indicated, g.ph2o)
        true = Profile.trusted(g.times, ind + self.truth.thermocouple_offset_c, g.po2_true,
                               g.ph2o)
        return indicated, true

    def _grid(self, setpoints_profile: Profile, dt_s: float) -> _Grid:
        """The setpoints of a profile on its record grid (cached: a recipe repeats)."""
        key = (id(setpoints_profile), float(dt_s))
        g = self._grids.get(key)
        if g is not None and g.source is setpoints_profile:
            return g
        g = _Grid.build(self, setpoints_profile, dt_s)
        if len(self._grids) >= _GRID_CACHE:
            self._grids.pop(next(iter(self._grids)))  # oldest first
        self._grids[key] = g
        return g

    def _lag(self, sp_c: np.ndarray, dt_s: float) -> np.ndarray:
        """:meth:`step`'s loop on arrays (setpoints ``sp_c`` on a grid of ``dt_s``)."""
        lo, hi = self.limits.temperature_c
        sp = np.clip(sp_c, lo, hi)
        alpha = 1.0 - math.exp(-dt_s / self.tau_s)
        max_move = self.limits.ramp_c_per_min[1] / 60.0 * dt_s
        sd = self.truth.temperature_noise_c * math.sqrt(1.0 - (1.0 - alpha) ** 2)
        return self._lag_core(sp, alpha * sp, alpha, max_move, sd, None)

    def _lag_on(self, g: _Grid) -> np.ndarray:
        return self._lag_core(g.sp, g.alpha_sp, g.alpha, g.max_move, g.sd, g.powers)

    def _lag_core(self, sp: np.ndarray, alpha_sp: np.ndarray, alpha: float, max_move: float,
                  sd: float, powers: list[np.ndarray] | None) -> np.ndarray:
        # A rate-limited first-order lag plus the same noise as step().
        noise = sd * self.rng.standard_normal(sp.size) if sd > 0 else np.zeros(sp.size)
        out = _linear_lag(sp, noise, alpha, alpha_sp=alpha_sp, powers=powers)
        moves = alpha * (sp[1:] - out[:-1])
        if moves.size == 0 or np.abs(moves).max() <= max_move:
            return out  # the ramp limit never bound: the linear filter is the loop's result
        x = float(sp[0])
        out[0] = x
        for i in range(1, sp.size):  # sequential when the ramp limit binds
            move = alpha * (float(sp[i]) - x)
            x += min(max(move, -max_move), max_move) + float(noise[i])
            out[i] = x
        return out

    # -- oxide ---------------------------------------------------------------------------
    def true_oxide(self, true_profile: Profile, psd: SizeDistribution, *, material: str,
                   initial_nm: float, t_s: float, **kw: Any) -> OxideDistribution:
        """True oxide of one charge: the physics at the true rate, plus seeded spreads.

        Parameters
        ----------
        true_profile : Profile
            What the charge actually saw (second item of :meth:`run_profile`).
        psd : SizeDistribution
            Particle sizes of the charge.
        material : str
            Oxidising base element (``'Si'`` or ``'Sn'``).
        initial_nm : float
            Oxide present when the charge was loaded (native oxide), nm.
        t_s : float
            Run time of the charge, s (sets the drifted rate factor).
        **kw
            Passed on to :func:`twin.physics.oxidation.grow_particles` (orientation,
            thin_model, si_area_fraction, copper ...).

        Returns
        -------
        OxideDistribution
        """
        from twin.physics.oxidation import Calibration, grow_particles

        rf = self.rate_factor(t_s)
        cal = Calibration(b_factor=rf, ba_factor=rf, c_factor=rf)
        dist = grow_particles(true_profile, psd, material=material, initial_nm=initial_nm,
                              calibration=cal, **kw)
        return spread_oxide(dist, self.rng, self.truth.thickness_spread_rel)


def spread_oxide(dist: OxideDistribution, rng: np.random.Generator,
                 spread_rel: float) -> OxideDistribution:
    """Apply a seeded batch factor and a bed-position spread to an oxide distribution.

    The batch factor is log-normal with relative size ``spread_rel / 2``; the bed-position
    spread widens p5/p95 (and lowers the within-±50 % share) as a log-normal of relative
    size ``spread_rel`` combined with the particle-size spread.
    """
    if spread_rel <= 0:
        return dist
    factor = float(np.exp(0.5 * spread_rel * rng.standard_normal()))
    s_bed = math.log1p(spread_rel)
    mean = dist.mean_nm * factor
    p50 = dist.p50_nm * factor

    def widen(p: float, z: float) -> float:
        # Combine log-spreads in quadrature around the median.
        if p <= 0 or p50 <= 0:
            return p * factor
        s_psd = abs(math.log(p * factor / p50)) / abs(z)
        return p50 * math.exp(math.copysign(math.hypot(s_psd, s_bed), z) * abs(z))

    p5 = widen(dist.p5_nm, -1.645)
    p95 = widen(dist.p95_nm, 1.645)
    # Share of the charge within ±50 % of the mean once the bed spread is added (log-normal).
    s_tot = max((math.log(p95) - math.log(p5)) / (2 * 1.645), 1e-9) if p5 > 0 else s_bed
    mu = math.log(p50) if p50 > 0 else 0.0
    within = (_norm_cdf((math.log(1.5 * mean) - mu) / s_tot)
              - _norm_cdf((math.log(0.5 * mean) - mu) / s_tot)) if mean > 0 else 0.0
    within = min(within, dist.within_50pct_share) if dist.within_50pct_share > 0 else within
    # The distribution's own type, built directly (dataclasses.replace re-reads every field).
    return type(dist)(mean, p5, p50, p95, within, dist.fully_oxidised_share,
                      np.asarray(dist.thickness_nm) * factor)


def _linear_lag(sp: np.ndarray, noise: np.ndarray, alpha: float, block: int = _LAG_BLOCK, *,
                alpha_sp: np.ndarray | None = None,
                powers: list[np.ndarray] | None = None) -> np.ndarray:
    """``x[i] = x[i-1] + alpha*(sp[i] - x[i-1]) + noise[i]``, ``x[0] = sp[0]``, vectorised.

    Solved in closed form, ``x[i] = r**i * (x0 + sum_j r**-j * u[j])`` with ``r = 1 - alpha``,
    in blocks short enough that ``r**-j`` stays far from overflow. ``alpha_sp`` (``alpha *
    sp``) and ``powers`` (``r**k`` per block, from :func:`_block_powers`) may be passed
    precomputed; the result is the same.
    """
    out = np.empty(sp.size)
    out[0] = sp[0]
    u = (alpha * sp if alpha_sp is None else alpha_sp) + noise
    if powers is None:
        powers = _block_powers(1.0 - alpha, sp.size, block)
    x = float(sp[0])
    i = 1
    for pw in powers:
        j = i + pw.size
        out[i:j] = pw * (x + np.cumsum(u[i:j] / pw))
        x = float(out[j - 1])
        i = j
    return out


def _block_powers(r: float, size: int, block: int = _LAG_BLOCK) -> list[np.ndarray]:
    """``r**k`` (k = 1 ...) for each block of :func:`_linear_lag` over ``size`` knots."""
    out = []
    i = 1
    while i < size:
        j = min(i + block, size)
        out.append(r ** np.arange(1, j - i + 1, dtype=float))
        i = j
    return out



@dataclass(frozen=True, slots=True, eq=False)
class _Grid:
    """Everything of a setpoint profile on a record grid that does not change per charge."""

    source: Profile          # the setpoint profile (kept alive: its id is the cache key)
    times: np.ndarray        # record knots, s
    sp: np.ndarray           # temperature setpoint clipped to the limits, °C
    alpha_sp: np.ndarray     # alpha * sp
    rise: np.ndarray         # unclipped setpoint above its start, °C
    lift: float              # largest rise (1 when flat), °C
    po2_indicated: np.ndarray
    po2_true: np.ndarray
    ph2o: np.ndarray
    alpha: float
    max_move: float
    sd: float
    powers: list[np.ndarray]

    @staticmethod
    def build(furnace: TrueFurnace, sp_prof: Profile, dt_s: float) -> _Grid:
        t_end = float(sp_prof.duration_s)
        n = max(1, int(math.ceil(t_end / dt_s)))
        # An array that owns its data (linspace returns a view), so that the physics can
        # key what it derives from the grid by the array's identity.
        times = np.linspace(0.0, t_end, n + 1).copy()
        sp_t = np.asarray(sp_prof.time_s, dtype=float)
        sp_c = np.interp(times, sp_t, np.asarray(sp_prof.temperature_c, dtype=float))
        sp_o2 = np.interp(times, sp_t, np.asarray(sp_prof.po2_atm, dtype=float))
        sp_h2o = np.interp(times, sp_t, np.asarray(sp_prof.ph2o_atm, dtype=float))
        step_s = float(times[1] - times[0])
        lo, hi = furnace.limits.temperature_c
        sp = np.clip(sp_c, lo, hi)
        alpha = 1.0 - math.exp(-step_s / furnace.tau_s)
        sd = furnace.truth.temperature_noise_c * math.sqrt(1.0 - (1.0 - alpha) ** 2)
        lo2, hi2 = furnace.limits.po2_atm
        po2_ind = np.clip(sp_o2, lo2, hi2)
        po2_true = np.minimum(po2_ind * (1.0 + furnace.truth.o2_flow_bias_rel), 1.0)
        arrays = (times, sp, po2_ind, po2_true)
        ph2o = np.clip(sp_h2o, *furnace.limits.ph2o_atm)
        for a in (*arrays, ph2o):
            a.flags.writeable = False
        return _Grid(source=sp_prof, times=times, sp=sp, alpha_sp=alpha * sp,
                     rise=sp_c - sp_c[0], lift=float(sp_c.max() - sp_c[0]) or 1.0,
                     po2_indicated=po2_ind, po2_true=po2_true, ph2o=ph2o, alpha=alpha,
                     max_move=furnace.limits.ramp_c_per_min[1] / 60.0 * step_s, sd=sd,
                     powers=_block_powers(1.0 - alpha, times.size))


def _norm_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
