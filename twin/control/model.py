"""The twin's process models as the controller and the virtual metrology use them.

A process model maps flat setpoints (or the process values a tool reported) and the batch's
context to a predicted oxide thickness, with the tool's learnt log rate factor ``theta``
applied on top of its configured calibration (every rate constant times ``exp(theta)``). Two
implementations share one small interface:

* :class:`FurnaceModel`: powder oxidation over a ramp–hold–cool profile
  (:func:`twin.physics.oxidation.grow_particles_batch`, vectorised over profiles; in a
  simulated plant each prediction goes through the plant's anchored physics instead);
* :class:`SputterCapModel`: the sputter tool's reactive oxide cap
  (:func:`twin.physics.coating.cap_rate_nm_min` times the oxidize time).

Knobs are named generically (``hold_time``, ``temperature``, ``po2``) in the configuration;
each model maps them onto its own setpoints and equipment limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from twin.config.schema import Calibration as CalibrationConfig
from twin.config.schema import ChargeModel, FurnaceLimits, SputterLimits
from twin.control.charge import ChargeThermal, Theta, supply_nm_s_atm, unpack
from twin.errors import PhysicsError
from twin.physics import coating
from twin.physics.oxidation import Calibration, OxideDistribution, grow_particles_batch
from twin.physics.oxidation_profile import ABSOLUTE_ZERO_C, Profile
from twin.physics.psd import SizeDistribution

FloatArray = NDArray[np.float64]

TIN_MELT_MARGIN_C = 231.9 - 5.0  # a tin charge is never set within 5 °C of its melting point
_STAT_FIELDS = ("mean_nm", "p5_nm", "p50_nm", "p95_nm", "within_50pct_share",
                "fully_oxidised_share")


@dataclass(frozen=True)
class OxidationContext:
    """What a powder charge brings to the furnace (the step's ``context``).

    Attributes
    ----------
    psd : SizeDistribution or object with ``build() -> SizeDistribution``
        Particle sizes of the charge as measured (the plant's compact log-normal form is
        accepted).
    material : {'Si', 'Sn'}
        Oxidising base element.
    initial_nm : float
        Oxide on the powder when loaded, nm.
    growth : Mapping[str, Any]
        Other growth options (``orientation``, ``thin_model``, ``si_area_fraction``,
        ``copper``).
    mass_kg : float
        Charge mass, kg (the bed lag and the oxidant demand scale with it; NaN: unknown).
    ssa_m2_g : float
        Specific surface of the charge as the lots' BET readings give it, m²/g (NaN: unknown,
        no supply limit).
    """

    psd: Any
    material: str = "Si"
    initial_nm: float = 0.0
    growth: Mapping[str, Any] = field(default_factory=dict)
    mass_kg: float = math.nan
    ssa_m2_g: float = math.nan

    @classmethod
    def from_mapping(cls, ctx: Mapping[str, Any]) -> OxidationContext:
        """Build from a step's context mapping (keys as :class:`StepRequest` documents)."""
        if "psd" not in ctx:
            raise PhysicsError("oxidation context: missing 'psd' (particle sizes of the charge)")
        return cls(psd=ctx["psd"], material=str(ctx.get("material", "Si")),
                   initial_nm=float(ctx.get("initial_nm", 0.0)),
                   growth=dict(ctx.get("growth", {})),
                   mass_kg=float(ctx.get("mass_kg", math.nan)),
                   ssa_m2_g=float(ctx.get("ssa_m2_g", math.nan)))


def binned(psd: Any) -> SizeDistribution:
    """The binned size distribution of ``psd`` (built once per compact form)."""
    if isinstance(psd, SizeDistribution):
        return psd
    return _build(psd)


@lru_cache(maxsize=1024)
def _build(psd: Any) -> SizeDistribution:
    built: SizeDistribution = psd.build()
    return built


@lru_cache(maxsize=512)
def _ramp_hold(start_c: float, hold_c: float, ramp_c_per_min: float, hold_s: float,
               cool_c_per_min: float, po2_atm: float, ph2o_atm: float) -> Profile:
    """:meth:`Profile.ramp_hold` for the controller, cached per set of setpoints.

    The controller asks for a profile per candidate and per batch (the running setpoints
    repeat from batch to batch): setpoints that pass the constructor's checks are built with
    :meth:`Profile.trusted` (the same knots; profiles are immutable, so a cached one can be
    shared); anything else goes through :meth:`Profile.ramp_hold`, which raises its error.
    """
    t1 = abs(hold_c - start_c) / ramp_c_per_min * 60.0 if ramp_c_per_min > 0 else math.nan
    t3 = (t1 + hold_s) + abs(hold_c - start_c) / cool_c_per_min * 60.0 \
        if cool_c_per_min > 0 else math.nan
    if (hold_s >= 0 and math.isfinite(t3) and math.isfinite(hold_c)
            and min(start_c, hold_c) > ABSOLUTE_ZERO_C and po2_atm >= 0 and ph2o_atm >= 0
            and math.isfinite(po2_atm) and math.isfinite(ph2o_atm)):
        return Profile.trusted(np.array([0.0, t1, t1 + hold_s, t3]),
                               np.array([start_c, hold_c, hold_c, start_c]),
                               np.full(4, po2_atm), np.full(4, ph2o_atm))
    return Profile.ramp_hold(start_c=start_c, hold_c=hold_c, ramp_c_per_min=ramp_c_per_min,
                             hold_s=hold_s, cool_c_per_min=cool_c_per_min, po2_atm=po2_atm,
                             ph2o_atm=ph2o_atm)


#: Evaluates one (bed) profile for a charge at a calibration and an oxidant-supply limit (the
#: plant passes its cached, anchored physics so that a simulated year stays fast).
Evaluator = Callable[[Profile, "OxidationContext", Calibration, "float | None"], Any]


class ProcessModel(Protocol):
    """What the controller and the VM need from a tool's model."""

    kind: str
    knobs: Mapping[str, str]

    def knob_limits(self, knob: str, context: Any) -> tuple[float, float]:
        """Equipment (and process) limits of a knob's setpoint, in its units."""
        ...

    def predict_setpoints(self, setpoints: Sequence[Mapping[str, float]], context: Any,
                          theta: Theta) -> FloatArray:
        """Predicted mean oxide thickness (nm) for each candidate setpoint set."""
        ...


def rate_calibration(base: CalibrationConfig, theta: float) -> Calibration:
    """The physics calibration of a tool with every factor times ``exp(theta)``."""
    f = math.exp(theta)
    return Calibration(b_factor=base.b_factor * f, ba_factor=base.ba_factor * f,
                       c_factor=base.c_factor * f)


class FurnaceModel:
    """Twin model of a controlled-oxidation furnace (powder charges).

    Parameters
    ----------
    calibration : twin.config.schema.Calibration
        The tool's configured rate factors (the learnt ``theta`` multiplies them).
    limits : FurnaceLimits
        Equipment limits (knob limits and input-range checks).
    evaluator : callable, optional
        ``(profile, context, calibration, supply) -> OxideDistribution`` for single
        evaluations: the VM, the current-setpoint check and the controller's search, which
        asks for one candidate at a time near the running setpoint. Without it, the exact
        physics.
    charge : ChargeModel, optional
        The charge's thermal and supply model (:mod:`twin.control.charge`); the default
        configuration when not given.

    Every prediction runs on the bed's estimated temperature (the record, or the planned
    profile, through the charge's lag and the learnt offset) with the growth capped at the
    oxidant the gas delivers; ``theta`` is a parameter vector or a plain log rate factor
    (:func:`twin.control.charge.unpack`).
    """

    kind = "oxidize"
    knobs: Mapping[str, str] = {"hold_time": "hold_min", "temperature": "hold_c",
                                "po2": "po2_atm"}

    def __init__(self, calibration: CalibrationConfig, limits: FurnaceLimits, *,
                 evaluator: Evaluator | None = None, charge: ChargeModel | None = None,
                 gas_flow_slm: float = math.nan) -> None:
        self.calibration = calibration
        self.limits = limits
        self.evaluator = evaluator
        self.charge = charge if charge is not None else ChargeModel()
        self.thermal = ChargeThermal(self.charge)
        #: The recipe's gas flow, slm: planned profiles are predicted with it.
        self.gas_flow_slm = gas_flow_slm

    def supply(self, context: OxidationContext, flow_slm: float | None = None,
               theta: Theta = 0.0) -> float | None:
        """Oxidant-supply limit of the charge at ``flow_slm`` (default: the recipe's), with the
        learnt utilisation of ``theta``."""
        flow = self.gas_flow_slm if flow_slm is None else flow_slm
        util = self.charge.gas_utilisation * math.exp(unpack(theta)[3])
        return supply_nm_s_atm(flow, context.mass_kg, context.ssa_m2_g, util)

    def knob_limits(self, knob: str, context: Any) -> tuple[float, float]:
        """Limits of a knob: the furnace's, and below tin's melting point for a tin charge."""
        name = self.knobs[knob]
        lo, hi = getattr(self.limits, {"hold_min": "hold_min", "hold_c": "temperature_c",
                                       "po2_atm": "po2_atm"}[name])
        if name == "hold_c" and _material(context) == "Sn":
            hi = min(hi, TIN_MELT_MARGIN_C)
        return float(lo), float(hi)

    def planned_profile(self, sp: Mapping[str, float]) -> Profile:
        """The ramp–hold–cool profile a set of setpoints asks for."""
        ramp_lo, ramp_hi = self.limits.ramp_c_per_min
        return _ramp_hold(
            float(sp["start_c"]), float(sp["hold_c"]),
            min(max(float(sp["ramp_c_per_min"]), ramp_lo), ramp_hi),
            max(float(sp["hold_min"]), 0.0) * 60.0,
            min(max(float(sp["cool_c_per_min"]), ramp_lo), ramp_hi),
            float(sp["po2_atm"]), float(sp.get("ph2o_atm", 0.0)))

    def bed_profile(self, profile: Profile, context: OxidationContext,
                    theta: Theta) -> Profile:
        """The bed's estimated temperature over a thermocouple record (or a plan)."""
        _, offset, log_lag, _ = unpack(theta)
        return self.thermal.bed(profile, context.mass_kg, offset, log_lag)

    def predict_profiles(self, profiles: Sequence[Profile], context: OxidationContext,
                         theta: Theta, *, flow_slm: float | None = None
                         ) -> dict[str, FloatArray]:
        """Oxide statistics (arrays keyed as OxideDistribution's fields) per profile, all at
        the parameters ``theta`` and the gas flow ``flow_slm`` (default: the recipe's)."""
        beds = [self.bed_profile(p, context, theta) for p in profiles]
        cal = rate_calibration(self.calibration, unpack(theta)[0])
        sup = self.supply(context, flow_slm, theta)
        if self.evaluator is not None and len(profiles) <= 2:
            dists = [self.evaluator(b, context, cal, sup) for b in beds]
            return {k: np.array([getattr(d, k) for d in dists]) for k in _STAT_FIELDS}
        return grow_particles_batch(beds, binned(context.psd), as_arrays=True,
                                    material=context.material, initial_nm=context.initial_nm,
                                    calibration=cal, supply_nm_s_atm=sup,
                                    **dict(context.growth))

    def predict_one(self, profile: Profile, context: OxidationContext, theta: Theta, *,
                    flow_slm: float | None = None) -> OxideDistribution:
        """Oxide of one profile (a record or a plan) at ``theta`` and ``flow_slm``."""
        bed = self.bed_profile(profile, context, theta)
        cal = rate_calibration(self.calibration, unpack(theta)[0])
        sup = self.supply(context, flow_slm, theta)
        if self.evaluator is not None:
            dist: OxideDistribution = self.evaluator(bed, context, cal, sup)
            return dist
        return grow_particles_batch([bed], binned(context.psd), material=context.material,
                                    initial_nm=context.initial_nm, calibration=cal,
                                    supply_nm_s_atm=sup, **dict(context.growth))[0]

    def predict_setpoints(self, setpoints: Sequence[Mapping[str, float]],
                          context: OxidationContext, theta: Theta) -> FloatArray:
        """Predicted area-weighted mean oxide (nm) per candidate setpoint set (each with its
        own gas flow when the setpoints carry ``gas_flow_slm``)."""
        out = np.empty(len(setpoints))
        groups: dict[float | None, list[int]] = {}
        for i, sp in enumerate(setpoints):
            flow = sp.get("gas_flow_slm")
            groups.setdefault(None if flow is None else float(flow), []).append(i)
        for flow, idx in groups.items():
            profiles = [self.planned_profile(setpoints[i]) for i in idx]
            if len(profiles) == 1 and self.evaluator is not None:
                out[idx[0]] = self.predict_one(profiles[0], context, theta,
                                               flow_slm=flow).mean_nm
            else:
                out[idx] = self.predict_profiles(profiles, context, theta,
                                                 flow_slm=flow)["mean_nm"]
        return out

    def input_problems(self, profile: Profile, context: OxidationContext) -> list[str]:
        """Reasons the reported record is outside what the model was built for."""
        out = []
        lo, hi = self.limits.temperature_c
        t = profile.temperature_c
        t_max, t_min = float(_max(t)), float(_min(t))
        if t_max > hi + 10.0 or t_min < lo - 10.0:
            out.append(f"temperature {t_min:.0f}–{t_max:.0f} °C outside the "
                       f"furnace range {lo:g}–{hi:g} °C")
        for name in ("po2_atm", "ph2o_atm"):
            a = getattr(profile, name)
            plo, phi = getattr(self.limits, name)
            a_max, a_min = float(_max(a)), float(_min(a))
            if a_max > phi * 1.05 + 1e-9 or a_min < plo - 1e-9:
                out.append(f"{name} {a_min:.3g}–{a_max:.3g} outside {plo:g}–{phi:g}")
        if context.material == "Sn" and t_max >= 231.9:
            out.append(f"tin charge at {t_max:.0f} °C (melts at 231.9 °C)")
        return out


class SputterCapModel:
    """Twin model of the sputter tool's reactive oxide cap (the ``oxidize`` part of a run).

    Parameters
    ----------
    calibration : twin.config.schema.Calibration
        Configured factors (``c_factor`` scales the cap rate).
    limits : SputterLimits
        Equipment limits.
    material : {'Si', 'Sn'}
        Target material.
    """

    kind = "sputter"
    knobs: Mapping[str, str] = {"hold_time": "oxidize_min", "po2": "o2_sccm"}

    def __init__(self, calibration: CalibrationConfig, limits: SputterLimits,
                 material: str = "Si") -> None:
        self.calibration = calibration
        self.limits = limits
        self.material = "Sn" if material == "Sn" else "Si"

    def knob_limits(self, knob: str, context: Any) -> tuple[float, float]:
        """Limits of a knob; the O2 flow also inside the cap model's calibrated O2/Ar range."""
        name = self.knobs[knob]
        if name == "oxidize_min":
            return float(self.limits.deposit_min[0]), float(self.limits.deposit_min[1])
        lo, hi = self.limits.o2_sccm
        ar = float((context or {}).get("ar_sccm", 25.0))
        r_lo, r_hi = coating.CAP_RATIO_RANGE
        return max(float(lo), r_lo * ar * 1.001), min(float(hi), r_hi * ar * 0.999)

    def cap_nm(self, values: Mapping[str, float], theta: Theta) -> float:
        """Predicted cap thickness (nm) for read-back or set values (``theta``: the log rate
        factor of the cap)."""
        m: Literal["Si", "Sn"] = "Si" if self.material == "Si" else "Sn"
        rate = coating.cap_rate_nm_min(values["ar_sccm"], values["o2_sccm"],
                                       power_w=values["power_w"],
                                       pressure_mtorr=values["pressure_mtorr"], material=m)
        return (rate * self.calibration.c_factor * math.exp(unpack(theta)[0])
                * values["oxidize_min"])

    def predict_setpoints(self, setpoints: Sequence[Mapping[str, float]], context: Any,
                          theta: Theta) -> FloatArray:
        """Predicted cap thickness (nm) per candidate setpoint set."""
        return np.array([self.cap_nm(sp, theta) for sp in setpoints])

    def input_problems(self, values: Mapping[str, float]) -> list[str]:
        """Reasons the read-back values are outside what the cap model was fitted on."""
        out = []
        for key in ("power_w", "pressure_mtorr", "ar_sccm", "o2_sccm"):
            if key not in values or not math.isfinite(values[key]):
                out.append(f"no reading of {key}")
        if out:
            return out
        ratio = values["o2_sccm"] / values["ar_sccm"]
        r_lo, r_hi = coating.CAP_RATIO_RANGE
        if not r_lo <= ratio <= r_hi:
            out.append(f"O2/Ar ratio {ratio:.3g} outside the cap model's {r_lo}–{r_hi}")
        for key in ("power_w", "pressure_mtorr", "ar_sccm"):
            lo, hi = getattr(self.limits, key)
            if not lo <= values[key] <= hi:
                out.append(f"{key} {values[key]:g} outside {lo:g}–{hi:g}")
        return out


# ndarray.max/min without their Python layers (the same reductions).
_max = np.maximum.reduce
_min = np.minimum.reduce


def _material(context: Any) -> str:
    if isinstance(context, OxidationContext):
        return context.material
    if isinstance(context, Mapping):
        return str(context.get("material", "Si"))
    return "Si"
