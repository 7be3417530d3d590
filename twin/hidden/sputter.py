"""The hidden true process of the sputter tool.

Shared by the simulated sputter tool of :mod:`twin.hidden.equipment` and the emulated
sputter-tool PLC. Deposition and reactive-oxidation rates are the coating physics' rates times
a drifting rate factor; the O2 the target sees is the set flow times ``1 + o2_flow_bias_rel``;
each run gets a seeded spread of ``thickness_spread_rel``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from twin.config.schema import SputterLimits
from twin.equipment.base import LabResult
from twin.hidden.config import LabTruth, SputterTruth
from twin.hidden.furnace import drifted
from twin.physics import composition


@dataclass(frozen=True, slots=True)
class SputterState:
    """Instantaneous state of one sputter tool.

    Attributes
    ----------
    time_s : float
        Run time, s.
    power_w : float
        Target power, W.
    o2_sccm : float
        O2 flow actually reaching the chamber, sccm.
    film_nm : float
        True film deposited on the current sheets in this run, nm.
    cap_nm : float
        True reactive oxide cap grown in this run, nm.
    """

    time_s: float = 0.0
    power_w: float = 0.0
    o2_sccm: float = 0.0
    film_nm: float = 0.0
    cap_nm: float = 0.0


class TrueSputter:
    """Hidden true deposition and reactive-oxidation rates of one sputter tool.

    Parameters
    ----------
    truth : SputterTruth
        Rate factor, drift, O2 bias and spread of this tool.
    limits : SputterLimits
        Equipment limits; setpoints are clipped to them.
    rng : numpy.random.Generator
        This tool's own stream.
    material : {'Si', 'Sn'}
        Target material.
    tau_s : float
        Time constant of the power supply and flow controllers, s.
    """

    def __init__(self, truth: SputterTruth, limits: SputterLimits, rng: np.random.Generator,
                 *, material: str = "Si", tau_s: float = 5.0,
                 lab: LabTruth | None = None) -> None:
        if material not in ("Si", "Sn"):
            raise ValueError(f"material must be 'Si' or 'Sn', got {material!r}")
        self.material: Literal["Si", "Sn"] = "Si" if material == "Si" else "Sn"
        self.truth = truth
        self.limits = limits
        self.rng = rng
        self.tau_s = float(tau_s)
        self.lab_truth = lab if lab is not None else LabTruth()

    def rate_factor(self, t_s: float) -> float:
        """True/textbook rate factor at run time ``t_s`` (s), with its drift."""
        return drifted(self.truth.rate_factor, self.truth.rate_drift_per_day, t_s)

    def _clip(self, name: str, value: float) -> float:
        lo, hi = getattr(self.limits, name)
        return min(max(float(value), lo), hi)

    def actual(self, setpoints: Mapping[str, float]) -> dict[str, float]:
        """Process values the chamber actually runs at for ``setpoints`` (clipped, biased).

        Keys: ``power_w``, ``pressure_mtorr``, ``ar_sccm``, ``o2_sccm`` (true flow),
        ``substrate_temperature_c``.
        """
        out = {k: self._clip(k, setpoints[k])
               for k in ("power_w", "pressure_mtorr", "ar_sccm", "substrate_temperature_c")
               if k in setpoints}
        out["o2_sccm"] = self._clip("o2_sccm", setpoints.get("o2_sccm", 0.0)) * (
            1.0 + self.truth.o2_flow_bias_rel)
        return out

    def film_rate(self, act: Mapping[str, float], t_s: float) -> float:
        """True film deposition rate for actual process values at run time ``t_s``, nm/min."""
        from twin.physics import coating

        p = act.get("pressure_mtorr", coating.REF_PRESSURE_MTORR)
        w = act.get("power_w", coating.REF_POWER_W)
        return self.rate_factor(t_s) * coating.deposition_rate_nm_min(w, p,
                                                                      material=self.material)

    def cap_rate(self, act: Mapping[str, float], t_s: float) -> float:
        """True reactive-cap rate for actual process values at run time ``t_s``, nm/min.

        Only meaningful while O2 bleeds (the oxidize part of a run): the caller asks for it
        in oxidize mode only, so a deposit with the O2 valve shut never evaluates it. The
        coating physics is fitted for O2/Ar in ``CAP_RATIO_RANGE``; the real chamber also
        runs outside it (a set flow at the window's edge plus the flow controller's bias),
        so the truth continues the fit there: log-linear above the window (deeper target
        poisoning), proportional to the O2 supply below it (oxygen-starved, 0 without O2).
        """
        from twin.physics import coating

        p = act.get("pressure_mtorr", coating.REF_PRESSURE_MTORR)
        w = act.get("power_w", coating.REF_POWER_W)
        ar = act.get("ar_sccm", 25.0)
        o2 = max(0.0, float(act["o2_sccm"]))
        lo, hi = coating.CAP_RATIO_RANGE
        ratio = o2 / ar if ar > 0 else math.inf

        def at(o2_sccm: float) -> float:
            return coating.cap_rate_nm_min(ar, o2_sccm, power_w=w, pressure_mtorr=p,
                                           material=self.material)

        if not math.isfinite(ratio):
            return 0.0
        if ratio < lo:
            edge = lo * ar * (1.0 + 1e-9)  # just inside: the fit checks its range
            rate = at(edge) * o2 / edge
        elif ratio > hi:
            edge, inner = hi * ar * (1.0 - 1e-9), 0.9 * hi * ar
            e_edge = at(edge)
            rate = e_edge * (e_edge / at(inner)) ** ((o2 - edge) / (edge - inner))
        else:
            rate = at(o2)
        return self.rate_factor(t_s) * rate

    def step(self, state: SputterState, setpoints: Mapping[str, float], dt_s: float, *,
             mode: str) -> SputterState:
        """Advance by ``dt_s`` s in ``mode`` ``'idle'``, ``'deposit'`` or ``'oxidize'``.

        Deposition adds film at the coating physics' rate for the actual power and pressure
        times the drifting rate factor; ``'oxidize'`` grows the reactive cap at the rate for
        the actual O2 flow. The run-to-run spread is :meth:`run_spread`, not per step.
        """
        if mode not in ("idle", "deposit", "oxidize"):
            raise ValueError(f"mode must be 'idle', 'deposit' or 'oxidize', got {mode!r}")
        act = self.actual(setpoints)
        alpha = 1.0 - math.exp(-dt_s / self.tau_s)
        target = act.get("power_w", 0.0) if mode != "idle" else 0.0
        power = state.power_w + alpha * (target - state.power_w)
        film, cap = state.film_nm, state.cap_nm
        now = {**act, "power_w": max(power, 1e-6)}
        if mode == "deposit":
            film += self.film_rate(now, state.time_s) * dt_s / 60.0
        elif mode == "oxidize":
            cap += self.cap_rate(now, state.time_s) * dt_s / 60.0
        return SputterState(time_s=state.time_s + dt_s, power_w=power, o2_sccm=act["o2_sccm"],
                            film_nm=film, cap_nm=cap)

    def run_recipe(self, setpoints: Mapping[str, float], t_s: float) -> dict[str, float]:
        """One whole deposit + oxidize run, in closed form (what :meth:`step` integrates).

        Parameters
        ----------
        setpoints : Mapping[str, float]
            ``power_w``, ``pressure_mtorr``, ``ar_sccm``, ``o2_sccm``, ``deposit_min``,
            ``oxidize_min`` (and optionally ``substrate_temperature_c``).
        t_s : float
            Run time at the start, s (sets the drifted rate factor).

        Returns
        -------
        dict
            Actual process values (``power_w``, ``pressure_mtorr``, ``ar_sccm``,
            ``o2_sccm``), and the true ``film_nm`` and ``cap_nm`` with this run's spread.
        """
        act = self.actual(setpoints)
        dep = self._clip("deposit_min", setpoints.get("deposit_min", 0.0))
        ox = max(0.0, float(setpoints.get("oxidize_min", 0.0)))
        film = self.film_rate(act, t_s) * dep if dep > 0 else 0.0
        # The cap rate only exists while O2 bleeds: a run without an oxidize part (or with
        # the valve shut) never evaluates it.
        cap = self.cap_rate(act, t_s) * ox if ox > 0 else 0.0
        spread = self.run_spread()
        return TrueCap({**act, "film_nm": film * spread, "cap_nm": cap * spread},
                       lab=self.lab_truth)

    def run_spread(self) -> float:
        """Seeded run-to-run thickness factor (log-normal, relative size thickness_spread_rel)."""
        s = self.truth.thickness_spread_rel
        return float(np.exp(s * self.rng.standard_normal())) if s > 0 else 1.0


class TrueCap(dict[str, float]):
    """A sputter run's true film and cap (the values by name), as the lab receives it.

    The lab measures the cap by XPS on the flat film: only inside XPS's valid range (about
    1-8 nm; a thicker cap gets no value, with the reason), with the plant file's stated noise
    and this lab's hidden bias (truth ``[lab]``).
    """

    def __init__(self, values: Mapping[str, float], *, lab: LabTruth) -> None:
        super().__init__(values)
        self.lab = lab

    @property
    def mean_nm(self) -> float:
        """The true cap, nm."""
        return float(self["cap_nm"])

    def analyse(self, lab: Any, rng: np.random.Generator) -> LabResult:
        """The lab's XPS result for the cap."""
        x = self.mean_nm
        if not bool(composition.xps_valid(x)):
            return LabResult(math.nan, "xps", note=(
                f"cap outside the XPS range ({composition.XPS_MIN_NM:g}-"
                f"{composition.XPS_MAX_NM:g} nm)"))
        sd = math.hypot(lab.noise_abs_nm, lab.noise_rel * x)
        return LabResult(max(x + self.lab.xps_bias_nm + sd * float(rng.standard_normal()),
                             0.0), "xps")
