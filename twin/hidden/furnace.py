"""The hidden true process of an oxidation furnace: its thermocouples, its gas, its charges.

Shared by the simulated furnace of :mod:`twin.hidden.equipment` and the emulated furnace PLC
(``connectors/emulators``), so that a simulated run and a live run against an emulator see the
same plant. The twin never imports this module: it only sees the process values the equipment
reports and the lab's results.

What the furnace really does (truth file ``[furnace]``)
    * The PLC controls each zone's *indicated* temperature (its thermocouple). It follows its
      setpoint with a first-order lag (``tau_s``), never faster than the furnace's maximum
      ramp rate, with a seeded fluctuation of stationary size ``temperature_noise_c``. The
      wall of zone ``z`` is at ``indicated + thermocouple_offset_c + drift(t) +
      zone_offsets_c[z]``; the drift grows with the furnace's hours.
    * The gas: the MFC reads its setpoint while the true flow is ``1 + o2_flow_bias_rel``
      (plus a drift per day) times it; the humidifier delivers its set water times ``1 +
      humidifier_bias_rel + wander(t)`` (an hourly AR(1) of size ``humidifier_wander_rel``);
      the dew-point sensor reads the true water with ``dew_point_bias_c``.
    * The tube's activity is ``rate_factor`` times the kinetics, changing by
      ``tube_ageing_per_day``.
What a charge becomes
    The charge's physics (:mod:`twin.hidden.bed`, via :mod:`twin.hidden.charge`) on the true
    wall temperatures and gas flows, with the charge's true powder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from twin.config.schema import FurnaceLimits
from twin.hidden.charge import SL_PER_MOL, TrueRun
from twin.hidden.config import GROSS_FAULTS, FurnaceEvent, FurnaceTruth
from twin.physics.oxidation_profile import Profile
from twin.physics.psychrometry import dew_point_to_ph2o_atm, ph2o_atm_to_dew_point

SECONDS_PER_DAY = 86400.0

#: Knots per block of the closed-form lag (keeps ``r**-k`` far from overflow).
_LAG_BLOCK = 256
#: Record grids a furnace keeps (one per recipe it runs; a controller's corrections add more).
_GRID_CACHE = 16

#: Setpoint names a furnace step understands (the PLC's writable tags).
FURNACE_SETPOINTS: tuple[str, ...] = ("temperature_c", "ramp_c_per_min", "po2_atm", "ph2o_atm")


def drifted(factor: float, drift_per_day: float, t_s: float, floor: float = 0.01) -> float:
    """A factor after ``t_s`` seconds of linear relative drift (never below ``floor`` of its
    start)."""
    return factor * max(floor, 1.0 + drift_per_day * t_s / SECONDS_PER_DAY)


@dataclass(frozen=True, slots=True)
class FurnaceState:
    """Instantaneous state of one furnace zone (what its PLC would show, plus the truth).

    Attributes
    ----------
    time_s : float
        Process time since the start of the run, s.
    indicated_c : float
        Indicated (thermocouple) temperature, °C: the controlled variable.
    true_c : float
        The zone's true wall temperature, °C.
    po2_atm, ph2o_atm : float
        Partial pressures of the gas actually delivered, atm.
    """

    time_s: float = 0.0
    indicated_c: float = 25.0
    true_c: float = 25.0
    po2_atm: float = 0.0
    ph2o_atm: float = 0.0


class TrueFurnace:
    """Hidden true dynamics of one oxidation furnace (see the module notes).

    Parameters
    ----------
    truth : FurnaceTruth
        Offsets, drifts, biases and the tube's activity (the truth file's ``[furnace]``).
    limits : FurnaceLimits
        Equipment limits; setpoints are clipped to them as a PLC would.
    rng : numpy.random.Generator
        This furnace's own stream (noise, the humidifier's wander).
    tau_s : float
        Time constant of the temperature loop, s.
    zones : int
        Heating zones (each with its thermocouple).
    """

    def __init__(self, truth: FurnaceTruth, limits: FurnaceLimits, rng: np.random.Generator,
                 *, tau_s: float = 120.0, zones: int = 3) -> None:
        if tau_s <= 0:
            raise ValueError(f"tau_s must be > 0, got {tau_s}")
        self.truth = truth
        self.limits = limits
        self.rng = rng
        self.tau_s = float(tau_s)
        self.zones = int(zones)
        pattern = tuple(truth.zone_offsets_c) + (0.0,) * self.zones
        self.zone_offsets_c: tuple[float, ...] = pattern[:self.zones]
        self._grids: dict[tuple[int, float], _Grid] = {}
        self._wander: list[float] = []  # the humidifier's hourly wander, grown as asked
        self._faults = sorted((e for e in truth.events if e.kind in GROSS_FAULTS),
                              key=lambda e: e.start_h)
        self._changes = tuple(e for e in truth.events if e.kind not in GROSS_FAULTS)

    def _since(self, kind: str, t_s: float) -> list[tuple[float, float]]:
        """(size, seconds since its start) of the started events of ``kind``."""
        return [(e.size, t_s - 3600.0 * e.start_h) for e in self._changes
                if e.kind == kind and t_s >= 3600.0 * e.start_h]

    def take_fault(self, t_s: float) -> FurnaceEvent | None:
        """The gross fault of the charge starting at ``t_s`` (each fault hits one charge)."""
        if self._faults and t_s >= 3600.0 * self._faults[0].start_h:
            return self._faults.pop(0)
        return None

    # -- what drifts -----------------------------------------------------------------------
    def offset_c(self, t_s: float, zone: int | None = None) -> float:
        """True wall minus indicated at ``t_s``, K (a zone's, or the zones' mean)."""
        tr = self.truth
        base = tr.thermocouple_offset_c + tr.thermocouple_drift_c_per_1000h * t_s / 3.6e6
        if self._changes:
            base += sum(size for size, _ in self._since("thermocouple_step", t_s))
            base += sum(size * dt / SECONDS_PER_DAY
                        for size, dt in self._since("thermocouple_drift", t_s))
        if zone is None:
            return base + sum(self.zone_offsets_c) / self.zones
        return base + self.zone_offsets_c[zone]

    def rate_factor(self, t_s: float) -> float:
        """The tube's activity over the kinetics at ``t_s`` (ageing; never below 5 %)."""
        f = drifted(self.truth.rate_factor, self.truth.tube_ageing_per_day, t_s, 0.05)
        for size, dt in self._since("tube_ageing", t_s) if self._changes else ():
            f *= max(0.05, 1.0 + size * dt / SECONDS_PER_DAY)
        return f

    def flow_factor(self, t_s: float) -> float:
        """True gas flow over the MFC's reading at ``t_s``."""
        tr = self.truth
        return max(0.05, 1.0 + tr.o2_flow_bias_rel
                   + tr.flow_drift_rel_per_day * t_s / SECONDS_PER_DAY)

    def humidity_factor(self, t_s: float) -> float:
        """True water delivered over its setpoint at ``t_s`` (bias and wander)."""
        tr = self.truth
        hour = max(int(t_s // 3600.0), 0)
        scale = max([tr.humidifier_wander_rel]
                    + ([size for size, _ in self._since("humidifier_wander", t_s)]
                       if self._changes else []))
        if scale > 0:
            phi = math.exp(-1.0 / tr.humidifier_wander_h)
            while len(self._wander) <= hour:
                z = float(self.rng.standard_normal())
                prev = self._wander[-1] if self._wander else None
                self._wander.append(z if prev is None else phi * prev + math.sqrt(1 - phi**2) * z)
            wander = scale * self._wander[hour]
        else:
            wander = 0.0
        return max(0.0, 1.0 + tr.humidifier_bias_rel + wander)

    def dew_point_reading(self, ph2o_atm: float) -> float:
        """What the dew-point sensor makes of a true water pressure, as a pressure, atm."""
        if ph2o_atm <= 0:
            return 0.0
        return dew_point_to_ph2o_atm(ph2o_atm_to_dew_point(ph2o_atm)
                                     + self.truth.dew_point_bias_c)

    def _clip(self, name: str, value: float) -> float:
        lo, hi = getattr(self.limits, name)
        return min(max(float(value), lo), hi)

    # -- dynamics ------------------------------------------------------------------------
    def initial_state(self, t_s: float = 0.0, temperature_c: float = 25.0,
                      zone: int = 0) -> FurnaceState:
        """A cold, gas-free zone at ``temperature_c`` (indicated) at time ``t_s``."""
        return FurnaceState(time_s=t_s, indicated_c=temperature_c,
                            true_c=temperature_c + self.offset_c(t_s, zone))

    def step(self, state: FurnaceState, setpoints: Mapping[str, float], dt_s: float, *,
             zone: int = 0) -> FurnaceState:
        """Advance one zone by ``dt_s`` seconds toward ``setpoints``.

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
        zone : int
            Which zone (its thermocouple's offset).

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
        t = state.time_s + dt_s
        po2 = self._clip("po2_atm", setpoints.get("po2_atm", 0.0))
        ph2o = self._clip("ph2o_atm", setpoints.get("ph2o_atm", 0.0)) * self.humidity_factor(t)
        return FurnaceState(time_s=t, indicated_c=indicated,
                            true_c=indicated + self.offset_c(t, zone), po2_atm=po2,
                            ph2o_atm=ph2o)

    def run_profile(self, setpoints_profile: Profile, dt_s: float = 30.0, *,
                    t0_s: float = 0.0, offset_c: float = 0.0,
                    flow_slm: float = 0.0) -> tuple[Profile, TrueRun]:
        """Run a whole setpoint profile: the record the PLC reports, and the true run.

        The same temperature dynamics as :meth:`step` (for the mean of the zones), on a
        grid of ``dt_s`` seconds, starting from the profile's first setpoint (a furnace
        loaded at its start temperature).

        Parameters
        ----------
        setpoints_profile : Profile
            Indicated-temperature and gas setpoints over time.
        dt_s : float
            Grid step, s.
        t0_s : float
            Run time at which the profile starts, s (the drifts use it).
        offset_c : float
            A process disturbance of this charge (load, controller tuning), °C at the peak
            setpoint: the controlled temperature settles this far off its setpoint, in
            proportion to the elevation above the start. The PLC sees it.
        flow_slm : float
            The process-gas flow setpoint, standard L/min.

        Returns
        -------
        (Profile, TrueRun)
            The indicated record the PLC reports (temperature, the O2 share it sets, the
            dew-point sensor's water) and what really happened (per-zone wall, true flows).
        """
        g = self._grid(setpoints_profile, dt_s)
        ind = self._lag_on(g)
        if offset_c:
            ind = ind + offset_c * g.rise / g.lift
        # The humidifier wanders over hours: one level per charge; the sensor reads it with
        # its bias (the recipe's water setting is constant through the profile).
        h = self.humidity_factor(t0_s)
        ph2o_true = g.ph2o * h
        set_h2o = float(g.ph2o.max())
        read = self.dew_point_reading(set_h2o * h) / set_h2o if set_h2o > 0 else 1.0
        # The grid's arrays are read-only and shared by every record on it; the records are
        # built by this method alone, so the profile checks have nothing left to find.
        indicated = Profile.trusted(g.times, ind, g.po2_indicated, g.ph2o * read)
        tc = self.offset_c(t0_s)
        zones = np.asarray(self.zone_offsets_c) - sum(self.zone_offsets_c) / self.zones
        wall = ind[None, :] + tc + zones[:, None]
        flow = flow_slm * self.flow_factor(t0_s) / SL_PER_MOL / 60.0
        total = np.full(g.times.size, flow)
        run = TrueRun(g.times, wall, total, total * g.po2_indicated, total * ph2o_true,
                      offset_c=tc + offset_c, flow_mol_s=max(flow, 1e-12),
                      h2o_share=set_h2o * h,
                      rate_factor=self.rate_factor(t0_s))
        return indicated, run

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
