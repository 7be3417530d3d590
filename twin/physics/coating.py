"""Electrode making: slurry-coated electrodes and sputtered thin films.

Slurry electrodes
-----------------
A recipe gives the dry mass fractions of active material, binder and conductive carbon with
their densities. For a dry areal loading (mg/cm² of coating solids) and a porosity, the coat
thickness follows from the skeletal density (mass-weighted harmonic mean of the component
densities). The wet film carries ``loading·(1 − s)/s`` of solvent (s = solids mass fraction);
the dryer evaporates it at a constant rate per area (constant-rate period, which dominates for
thin electrodes), so the line speed is capped at ``dryer_length / drying_time``. The roll time
is its length over the line speed. Example practice (process notes): anode ~12 mg/cm², 91/9
alloy/LiPAA on 15 µm Cu, calendered to ~30 % porosity, vacuum-dried at 120 °C for 2 h; coaters
run anodes at tens of m/min.

Sputtered films
---------------
* Metal (Si) rate ∝ target power density (sputter yield roughly linear in power at fixed
  voltage) times a thermalisation factor ``exp(−p·d/(p·d)0)`` for gas scattering between
  target and substrate (Keller–Simmons-type attenuation; (p·d)0 = 100 mTorr·cm is an
  estimate). Calibrated to Si 1.4 nm/min at 8 mTorr and 250 W on a 3-inch target.
* Reactive oxide cap (SiOx, poisoned mode): rate falls exponentially with the O2/Ar flow
  ratio as the target oxidises; fitted through 4.3 nm/min at O2/Ar = 2.5/25 and 2.6 nm/min
  at 5/25 (lab tool, process notes), scaled with power density and thermalisation like the
  metal. Outside O2/Ar 0.05–0.4 the fit is not trusted and an error is raised. Target
  poisoning hysteresis is not modelled (the cap is run well inside the poisoned branch).
* Tin: the Sn rate is scaled from Si by sputter yield and atomic volume (estimate: Sn/Si
  ≈ 3.2); the SnOx cap uses the same ratio (estimate, no published calibration found).
* Non-uniformity across the substrate grows with the square of the span (cosine-law
  fall-off from the target axis): 3 % over 50 mm static, < 0.3 % with rotation (notes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from twin.errors import PhysicsError

Material = Literal["Si", "Sn"]

VACUUM_DRY_C = 120.0
VACUUM_DRY_S = 2 * 3600.0


def _check(name: str, value: float, *, positive: bool = True) -> None:
    ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        raise PhysicsError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, "
                           f"got {value}")


def _check_open_fraction(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise PhysicsError(f"{name} must be in (0, 1), got {value}")


# --------------------------------------------------------------------------- slurry


@dataclass(frozen=True)
class SlurryRecipe:
    """Dry composition of an electrode and the slurry solids content.

    Attributes
    ----------
    active_fraction, binder_fraction, conductive_fraction : float
        Dry mass fractions (sum to 1).
    active_density_g_cm3, binder_density_g_cm3, conductive_density_g_cm3 : float
        Skeletal densities, g/cm³ (Si 2.33; LiPAA ~1.4; carbon black ~1.9–2.0).
    solids_fraction : float
        Solids mass fraction of the slurry, (0, 1).
    """

    active_fraction: float = 0.91
    binder_fraction: float = 0.09
    conductive_fraction: float = 0.0
    active_density_g_cm3: float = 2.33
    binder_density_g_cm3: float = 1.4
    conductive_density_g_cm3: float = 1.95
    solids_fraction: float = 0.45

    def __post_init__(self) -> None:
        fracs = (self.active_fraction, self.binder_fraction, self.conductive_fraction)
        for name, f in zip(("active_fraction", "binder_fraction", "conductive_fraction"),
                           fracs, strict=True):
            if not (math.isfinite(f) and 0.0 <= f <= 1.0):
                raise PhysicsError(f"slurry recipe: {name} must be in [0, 1], got {f}")
        if abs(math.fsum(fracs) - 1.0) > 1e-6:
            raise PhysicsError(f"slurry recipe: active + binder + conductive fractions must "
                               f"sum to 1, got {math.fsum(fracs):.6g}")
        for name in ("active_density_g_cm3", "binder_density_g_cm3",
                     "conductive_density_g_cm3"):
            _check(f"slurry recipe: {name}", getattr(self, name))
        _check_open_fraction("slurry recipe: solids_fraction", self.solids_fraction)

    @property
    def skeletal_density_g_cm3(self) -> float:
        """Pore-free density of the dry coating, g/cm³ (mass-weighted harmonic mean)."""
        return 1.0 / math.fsum((self.active_fraction / self.active_density_g_cm3,
                                self.binder_fraction / self.binder_density_g_cm3,
                                self.conductive_fraction / self.conductive_density_g_cm3))


def coat_thickness_um(loading_mg_cm2: float, porosity: float, recipe: SlurryRecipe) -> float:
    """Dry coat thickness, µm, for a solids loading (mg/cm²) at a porosity (0..1).

    ``t = m/(ρs·(1 − ε))``; 1 mg/cm² at 1 g/cm³ is 10 µm.
    """
    _check("loading_mg_cm2", loading_mg_cm2)
    _check_open_fraction("porosity", porosity)
    return 10.0 * loading_mg_cm2 / (recipe.skeletal_density_g_cm3 * (1.0 - porosity))


def porosity_from_thickness(loading_mg_cm2: float, thickness_um: float,
                            recipe: SlurryRecipe) -> float:
    """Porosity of a coat of given loading and (calendered) thickness, 0..1."""
    _check("loading_mg_cm2", loading_mg_cm2)
    _check("thickness_um", thickness_um)
    eps = 1.0 - 10.0 * loading_mg_cm2 / (recipe.skeletal_density_g_cm3 * thickness_um)
    if eps <= 0:
        raise PhysicsError(f"thickness_um={thickness_um} is thinner than a pore-free coat of "
                           f"{loading_mg_cm2} mg/cm²")
    return eps


def solvent_g_m2(loading_mg_cm2: float, recipe: SlurryRecipe) -> float:
    """Solvent in the wet film, g/m² (1 mg/cm² = 10 g/m²)."""
    _check("loading_mg_cm2", loading_mg_cm2)
    s = recipe.solids_fraction
    return 10.0 * loading_mg_cm2 * (1.0 - s) / s


def drying_time_s(solvent_g_m2_: float, evaporation_g_m2_s: float) -> float:
    """Constant-rate drying time of a wet film, s."""
    _check("solvent_g_m2", solvent_g_m2_, positive=False)
    _check("evaporation_g_m2_s", evaporation_g_m2_s)
    return solvent_g_m2_ / evaporation_g_m2_s


def coat_time_s(roll_length_m: float, line_speed_m_min: float) -> float:
    """Time to coat a roll of the given length at a line speed, s."""
    _check("roll_length_m", roll_length_m)
    _check("line_speed_m_min", line_speed_m_min)
    return 60.0 * roll_length_m / line_speed_m_min


@dataclass(frozen=True)
class SlurryCoatResult:
    """One coated roll.

    Attributes
    ----------
    loading_mg_cm2 : float
        Dry solids loading, mg/cm².
    active_loading_mg_cm2 : float
        Active-material loading, mg/cm².
    as_coated_thickness_um, thickness_um : float
        Dry coat thickness before and after calendering, µm.
    porosity : float
        Calendered porosity, 0..1.
    solvent_g_m2 : float
        Solvent to evaporate, g/m².
    drying_time_s : float
        Residence needed in the dryer, s.
    line_speed_m_min : float
        Speed actually run: the requested speed, capped by the dryer, m/min.
    dryer_limited : bool
        True when the dryer, not the request, set the speed.
    coat_time_s : float
        Time to coat the roll, s.
    area_m2 : float
        Coated area, m².
    solids_kg : float
        Dry coating solids used, kg.
    vacuum_dry_s : float
        Post-coating vacuum drying time, s.
    """

    loading_mg_cm2: float
    active_loading_mg_cm2: float
    as_coated_thickness_um: float
    thickness_um: float
    porosity: float
    solvent_g_m2: float
    drying_time_s: float
    line_speed_m_min: float
    dryer_limited: bool
    coat_time_s: float
    area_m2: float
    solids_kg: float
    vacuum_dry_s: float


def coat_slurry(recipe: SlurryRecipe, *, loading_mg_cm2: float = 12.0,
                porosity: float = 0.30, as_coated_porosity: float = 0.50,
                roll_length_m: float = 1000.0, web_width_m: float = 1.0,
                line_speed_m_min: float = 30.0, dryer_length_m: float = 40.0,
                evaporation_g_m2_s: float = 2.5,
                vacuum_dry_s: float = VACUUM_DRY_S) -> SlurryCoatResult:
    """Coat, dry and calender one roll of slurry electrode.

    Parameters
    ----------
    recipe : SlurryRecipe
    loading_mg_cm2 : float
        Dry solids loading, mg/cm².
    porosity : float
        Calender target porosity; must not exceed ``as_coated_porosity``.
    as_coated_porosity : float
        Porosity of the dried, uncalendered coat (estimate 0.5).
    roll_length_m, web_width_m : float
        Roll size, m.
    line_speed_m_min : float
        Requested coater speed, m/min.
    dryer_length_m : float
        Dryer length, m.
    evaporation_g_m2_s : float
        Constant-rate evaporation flux, g/(m²·s) (estimate 2.5 for a convective dryer).
    vacuum_dry_s : float
        Post-drying (120 °C vacuum, 2 h by default), s.
    """
    _check_open_fraction("as_coated_porosity", as_coated_porosity)
    if porosity > as_coated_porosity:
        raise PhysicsError(f"porosity={porosity} exceeds as_coated_porosity="
                           f"{as_coated_porosity}: calendering only densifies")
    _check("web_width_m", web_width_m)
    _check("dryer_length_m", dryer_length_m)
    _check("vacuum_dry_s", vacuum_dry_s, positive=False)
    solvent = solvent_g_m2(loading_mg_cm2, recipe)
    t_dry = drying_time_s(solvent, evaporation_g_m2_s)
    dryer_cap = 60.0 * dryer_length_m / t_dry if t_dry > 0 else math.inf
    _check("line_speed_m_min", line_speed_m_min)
    speed = min(line_speed_m_min, dryer_cap)
    area = roll_length_m * web_width_m
    return SlurryCoatResult(
        loading_mg_cm2=loading_mg_cm2,
        active_loading_mg_cm2=loading_mg_cm2 * recipe.active_fraction,
        as_coated_thickness_um=coat_thickness_um(loading_mg_cm2, as_coated_porosity, recipe),
        thickness_um=coat_thickness_um(loading_mg_cm2, porosity, recipe),
        porosity=porosity, solvent_g_m2=solvent, drying_time_s=t_dry,
        line_speed_m_min=speed, dryer_limited=dryer_cap < line_speed_m_min,
        coat_time_s=coat_time_s(roll_length_m, speed), area_m2=area,
        solids_kg=loading_mg_cm2 * 1e-2 * area, vacuum_dry_s=vacuum_dry_s,
    )


# --------------------------------------------------------------------------- sputtering

#: Calibration: Si 1.4 nm/min at 8 mTorr, 250 W, 3-inch (76.2 mm) target (process notes).
SI_RATE_REF_NM_MIN = 1.4
REF_POWER_W = 250.0
REF_PRESSURE_MTORR = 8.0
TARGET_DIAMETER_MM = 76.2
#: Thermalisation pressure-distance product, mTorr·cm (estimate).
THERMALISATION_PD_MTORR_CM = 100.0
THROW_DISTANCE_CM = 10.0
#: Sn/Si rate ratio: sputter yield (~1.2 vs ~0.5 atoms/ion at 500 eV Ar) × atomic volume
#: (16.3 vs 12.1 cm³/mol) ≈ 3.2 (estimate).
SN_RATE_FACTOR = 3.2
#: Reactive cap fit through (O2/Ar, nm/min) = (0.1, 4.3), (0.2, 2.6).
_CAP_DECAY = math.log(4.3 / 2.6) / 0.1
_CAP_RATE_0 = 4.3 * math.exp(0.1 * _CAP_DECAY)
CAP_RATIO_RANGE = (0.05, 0.4)
PRESSURE_RANGE_MTORR = (1.0, 30.0)
#: Non-uniformity at 50 mm span: static and rotating substrate, % (process notes).
NONUNIFORMITY_50MM_PCT = {False: 3.0, True: 0.25}


def _power_density_w_cm2(power_w: float, target_diameter_mm: float) -> float:
    _check("power_w", power_w)
    _check("target_diameter_mm", target_diameter_mm)
    return power_w / (math.pi * (target_diameter_mm / 20.0) ** 2)


def _thermalisation(pressure_mtorr: float, throw_cm: float) -> float:
    lo, hi = PRESSURE_RANGE_MTORR
    if not (lo <= pressure_mtorr <= hi):
        raise PhysicsError(f"pressure_mtorr must be in {lo}–{hi} mTorr (magnetron discharge "
                           f"range of the calibration), got {pressure_mtorr}")
    _check("throw_cm", throw_cm)
    return math.exp(-pressure_mtorr * throw_cm / THERMALISATION_PD_MTORR_CM)


def _scale(power_w: float, pressure_mtorr: float, target_diameter_mm: float,
           throw_cm: float) -> float:
    """Rate relative to the calibration point (power density × thermalisation)."""
    pd = _power_density_w_cm2(power_w, target_diameter_mm)
    pd_ref = _power_density_w_cm2(REF_POWER_W, TARGET_DIAMETER_MM)
    return (pd / pd_ref) * (_thermalisation(pressure_mtorr, throw_cm)
                            / _thermalisation(REF_PRESSURE_MTORR, THROW_DISTANCE_CM))


def _material_factor(material: str) -> float:
    if material not in ("Si", "Sn"):
        raise PhysicsError(f"material must be 'Si' or 'Sn', got {material!r}")
    return 1.0 if material == "Si" else SN_RATE_FACTOR


def deposition_rate_nm_min(power_w: float, pressure_mtorr: float, *, material: Material = "Si",
                           target_diameter_mm: float = TARGET_DIAMETER_MM,
                           throw_cm: float = THROW_DISTANCE_CM) -> float:
    """Metal film deposition rate, nm/min (linear in power density, thermalisation in p)."""
    return (SI_RATE_REF_NM_MIN * _material_factor(material)
            * _scale(power_w, pressure_mtorr, target_diameter_mm, throw_cm))


def cap_rate_nm_min(ar_sccm: float, o2_sccm: float, *, power_w: float = REF_POWER_W,
                    pressure_mtorr: float = REF_PRESSURE_MTORR, material: Material = "Si",
                    target_diameter_mm: float = TARGET_DIAMETER_MM,
                    throw_cm: float = THROW_DISTANCE_CM) -> float:
    """Reactive oxide (SiOx / SnOx) cap deposition rate, nm/min.

    Exponential fall with the O2/Ar flow ratio (target poisoning), fitted to 4.3 nm/min at
    2.5/25 sccm and 2.6 nm/min at 5/25 sccm.
    """
    _check("ar_sccm", ar_sccm)
    _check("o2_sccm", o2_sccm)
    ratio = o2_sccm / ar_sccm
    lo, hi = CAP_RATIO_RANGE
    if not (lo <= ratio <= hi):
        raise PhysicsError(f"O2/Ar flow ratio {ratio:.3g} outside the calibrated {lo}–{hi} "
                           f"(o2_sccm={o2_sccm}, ar_sccm={ar_sccm})")
    return (_CAP_RATE_0 * math.exp(-_CAP_DECAY * ratio) * _material_factor(material)
            * _scale(power_w, pressure_mtorr, target_diameter_mm, throw_cm))


def deposition_time_s(thickness_nm: float, rate_nm_min: float) -> float:
    """Time to deposit a thickness at a rate, s."""
    _check("thickness_nm", thickness_nm, positive=False)
    _check("rate_nm_min", rate_nm_min)
    return 60.0 * thickness_nm / rate_nm_min


def nonuniformity_pct(span_mm: float, *, rotation: bool = True) -> float:
    """Across-substrate thickness non-uniformity, % (max−min over mean), ∝ span²."""
    _check("span_mm", span_mm, positive=False)
    return NONUNIFORMITY_50MM_PCT[bool(rotation)] * (span_mm / 50.0) ** 2


@dataclass(frozen=True)
class SputterResult:
    """One sputtered film with its oxide cap.

    Attributes
    ----------
    film_nm, cap_nm : float
        Metal film and oxide cap thicknesses, nm.
    film_rate_nm_min, cap_rate_nm_min : float
        Deposition rates, nm/min.
    film_time_s, cap_time_s : float
        Deposition times, s.
    nonuniformity_pct : float
        Across-substrate thickness non-uniformity, %.
    """

    film_nm: float
    cap_nm: float
    film_rate_nm_min: float
    cap_rate_nm_min: float
    film_time_s: float
    cap_time_s: float
    nonuniformity_pct: float

    @property
    def duration_s(self) -> float:
        """Total deposition time, s."""
        return self.film_time_s + self.cap_time_s


def sputter(film_nm: float, cap_nm: float, *, power_w: float = REF_POWER_W,
            pressure_mtorr: float = REF_PRESSURE_MTORR, ar_sccm: float = 25.0,
            o2_sccm: float = 2.5, material: Material = "Si",
            target_diameter_mm: float = TARGET_DIAMETER_MM, throw_cm: float = THROW_DISTANCE_CM,
            rotation: bool = True, span_mm: float = 50.0) -> SputterResult:
    """Deposit a metal film then a reactive oxide cap; rates, times and uniformity."""
    r_film = deposition_rate_nm_min(power_w, pressure_mtorr, material=material,
                                    target_diameter_mm=target_diameter_mm, throw_cm=throw_cm)
    r_cap = cap_rate_nm_min(ar_sccm, o2_sccm, power_w=power_w, pressure_mtorr=pressure_mtorr,
                            material=material, target_diameter_mm=target_diameter_mm,
                            throw_cm=throw_cm)
    return SputterResult(
        film_nm=film_nm, cap_nm=cap_nm, film_rate_nm_min=r_film, cap_rate_nm_min=r_cap,
        film_time_s=deposition_time_s(film_nm, r_film), cap_time_s=deposition_time_s(cap_nm, r_cap),
        nonuniformity_pct=nonuniformity_pct(span_mm, rotation=rotation),
    )
