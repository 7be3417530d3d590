"""Alloy melting: liquidus, melt energy and time, and phases after solidification.

The charge is a Si- or Sn-base alloy (or a Si+Sn mix) with any of the alloying elements
Ti, Co, Ni, Cu, Mg, Zr, V, Mo, W, Mn, Fe, given as weight fractions.

Model summary
-------------
* **Phases (lever rule at room temperature).** Solid solubilities of the alloying elements in
  Si and Sn are ppm-level, so the equilibrium solid is the base element (Si or Sn) beside the
  *base-richest* stable intermetallic of each alloying element, both treated as line
  compounds. The lever rule then reduces to an atom balance: each alloying element takes its
  stoichiometric share of Si (or Sn) and the rest is the free base phase.
* **Si + Sn charges.** Si and Sn are practically immiscible in the solid (< 0.1 at %), and
  silicides are far more stable than stannides (formation enthalpies of the disilicides are
  roughly twice those of the Sn intermetallics), so: every alloying element first forms its
  silicide; if Si runs out, the remainder of that element (and of later elements, in the
  order of :data:`ALLOYING_ELEMENTS`) forms its stannide. Leftover Si and Sn are separate
  free phases. A charge must keep at least one free Si or Sn phase.
* **Liquidus.** Per binary, a piecewise-linear line on the base-rich side: from the pure base
  melting point to the base/compound eutectic, then up to the compound's melting (or
  peritectic) temperature at its stoichiometry. For several solutes, the base-primary
  branch adds the binary depressions (dilute-solution additivity) and the liquidus is the
  highest primary-phase branch, never below the lowest binary eutectic present (ternary
  eutectics are not modelled). This is an engineering approximation good to tens of kelvin
  near the base corner; far from it, treat it as an estimate.
* **Energy.** Heat to bring every element from 25 °C to the pour temperature (mean heat
  capacity) plus its heat of fusion (Kopp–Neumann additivity; heats of mixing and of
  compound formation, which are exothermic and reduce the demand, are ignored), divided by
  the furnace efficiency. The default efficiency is calibrated so that a 250 kW induction
  furnace melts 87 kg of Si with 75 °C superheat in 21 min (process notes; the same furnace
  does 130 kg in 32 min). The notes' "about 1.26 kWh/kg" is a plant meter figure that
  includes holding, tapping and idle losses; it is not used for melt time.

Sources: melting points and heats of fusion from the CRC Handbook of Chemistry and Physics;
binary eutectics and compound melting points from Massalski, *Binary Alloy Phase Diagrams*
(ASM, 2nd ed. 1990) and the ASM Alloy Phase Diagram Database as remembered; values marked
"estimate" in :data:`_SI_COMPOUNDS` / :data:`_SN_COMPOUNDS` are uncertain by more than
±20 K or ±3 at % and should be replaced by a plant's own data when available.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from twin.errors import PhysicsError

BASE_ELEMENTS = ("Si", "Sn")
ALLOYING_ELEMENTS = ("Ti", "Co", "Ni", "Cu", "Mg", "Zr", "V", "Mo", "W", "Mn", "Fe")

#: Tolerance on the sum of the weight fractions.
FRACTION_TOLERANCE = 1e-6

#: Standard atomic weights, g/mol (IUPAC 2021, abridged).
ATOMIC_MASS_G_MOL: Mapping[str, float] = MappingProxyType({
    "Si": 28.085, "Sn": 118.710, "Ti": 47.867, "Co": 58.933, "Ni": 58.693, "Cu": 63.546,
    "Mg": 24.305, "Zr": 91.224, "V": 50.942, "Mo": 95.95, "W": 183.84, "Mn": 54.938,
    "Fe": 55.845,
})

#: Melting points, °C (CRC Handbook).
MELTING_POINT_C: Mapping[str, float] = MappingProxyType({
    "Si": 1414.0, "Sn": 231.93, "Ti": 1668.0, "Co": 1495.0, "Ni": 1455.0, "Cu": 1084.6,
    "Mg": 650.0, "Zr": 1855.0, "V": 1910.0, "Mo": 2623.0, "W": 3422.0, "Mn": 1246.0,
    "Fe": 1538.0,
})

#: Heat of fusion, J/g (CRC Handbook molar values divided by the atomic weight).
HEAT_OF_FUSION_J_G: Mapping[str, float] = MappingProxyType({
    "Si": 1787.0, "Sn": 59.2, "Ti": 295.6, "Co": 272.5, "Ni": 297.8, "Cu": 208.7,
    "Mg": 348.9, "Zr": 153.5, "V": 422.0, "Mo": 390.6, "W": 284.5, "Mn": 235.0,
    "Fe": 247.3,
})

#: Mean specific heat between 25 °C and ~1400 °C (solid and liquid lumped), J/(g·K).
#: Estimate from NIST-JANAF / CRC room-temperature values raised for the high-temperature
#: rise (±15 %); only the sum over the charge matters, and Si dominates it.
MEAN_CP_J_GK: Mapping[str, float] = MappingProxyType({
    "Si": 0.90, "Sn": 0.245, "Ti": 0.62, "Co": 0.55, "Ni": 0.56, "Cu": 0.45,
    "Mg": 1.20, "Zr": 0.33, "V": 0.60, "Mo": 0.30, "W": 0.15, "Mn": 0.70, "Fe": 0.68,
})

AMBIENT_C = 25.0


@dataclass(frozen=True)
class Compound:
    """A line compound ``M_a B_b`` of an alloying element M with the base B (Si or Sn).

    ``eutectic_c``/``eutectic_x`` locate the base-rich eutectic (x = atom fraction of M in the
    M–B binary); ``melt_c`` is the compound's congruent melting or peritectic temperature.
    ``b == 0`` means no compound: M stays as its own phase and does not change the liquidus.
    """

    name: str
    a: int
    b: float
    eutectic_c: float
    eutectic_x: float
    melt_c: float


# Si-richest stable silicide per element, with the Si-rich eutectic.
_SI_COMPOUNDS: Mapping[str, Compound] = MappingProxyType({
    # Si–Ti eutectic 78Si–22Ti wt % (~86 at % Si) at ~1330 °C; TiSi2 congruent ~1500 °C.
    "Ti": Compound("TiSi2", 1, 2, 1330.0, 0.14, 1500.0),
    # CoSi2/Si eutectic 1259 °C; composition ~25 at % Co (estimate); CoSi2 1336 °C (notes).
    "Co": Compound("CoSi2", 1, 2, 1259.0, 0.25, 1336.0),
    # NiSi2/Si eutectic 966 °C at ~27 at % Ni; NiSi2 forms peritectically at 993 °C.
    "Ni": Compound("NiSi2", 1, 2, 966.0, 0.27, 993.0),
    # Cu: the Si-richest stable silicide is eta-Cu3Si (congruent ~859 °C); eutectic with Si
    # at 802 °C, ~30.5 at % Si (~16 wt % Si).
    "Cu": Compound("Cu3Si", 3, 1, 802.0, 0.695, 859.0),
    # Mg2Si (1085 °C); Si-rich eutectic ~946 °C at ~46 at % Mg (estimate, ±3 at %).
    "Mg": Compound("Mg2Si", 2, 1, 946.0, 0.46, 1085.0),
    # ZrSi2 (peritectic ~1620 °C); Si-rich eutectic ~1360 °C, ~10 at % Zr (estimate).
    "Zr": Compound("ZrSi2", 1, 2, 1360.0, 0.10, 1620.0),
    # VSi2 (1677 °C); eutectic very near Si, ~1385 °C, ~3 at % V (estimate).
    "V": Compound("VSi2", 1, 2, 1385.0, 0.03, 1677.0),
    # MoSi2 (2020 °C); degenerate eutectic ~1400 °C, ~2 at % Mo (estimate).
    "Mo": Compound("MoSi2", 1, 2, 1400.0, 0.02, 2020.0),
    # WSi2 (2160 °C); degenerate eutectic ~1400 °C, ~1 at % W (estimate).
    "W": Compound("WSi2", 1, 2, 1400.0, 0.01, 2160.0),
    # Higher manganese silicide MnSi1.75 (Mn4Si7 / Mn11Si19 family, congruent ~1155 °C);
    # eutectic with Si ~1150 °C, ~30 at % Mn (estimate).
    "Mn": Compound("MnSi1.75", 4, 7, 1150.0, 0.30, 1155.0),
    # alpha-FeSi2 (congruent ~1220 °C; beta-FeSi2 below ~937 °C, same stoichiometry used);
    # Si-rich eutectic 1207 °C, ~27 at % Fe.
    "Fe": Compound("FeSi2", 1, 2, 1207.0, 0.27, 1220.0),
})

# Sn-richest stable intermetallic per element, with the Sn-rich eutectic. Most Sn-side
# eutectics are degenerate (within ~1 K and < 1 at % of pure Sn); those are estimates.
_SN_COMPOUNDS: Mapping[str, Compound] = MappingProxyType({
    # Ti2Sn3 is reported stable below ~750 °C (peritectic, uncertain); fast-cooled melts
    # often show Ti6Sn5 instead. Degenerate eutectic (estimate).
    "Ti": Compound("Ti2Sn3", 2, 3, 231.5, 0.005, 750.0),
    # CoSn3 is the Sn-richest phase in current assessments (stable below ~345 °C,
    # uncertain); CoSn2 forms above that. Eutectic ~229 °C, ~1 at % Co (estimate).
    "Co": Compound("CoSn3", 1, 3, 229.0, 0.01, 345.0),
    # Ni3Sn4 (congruent ~795 °C); eutectic 231 °C, ~0.2 at % Ni.
    "Ni": Compound("Ni3Sn4", 3, 4, 231.0, 0.002, 795.0),
    # eta-Cu6Sn5 (peritectic 415 °C); eutectic 227 °C at 0.9 wt % Cu (1.7 at %).
    "Cu": Compound("Cu6Sn5", 6, 5, 227.0, 0.017, 415.0),
    # Mg2Sn (771 °C); Sn-rich eutectic 203.5 °C at ~2.2 wt % Mg (~10 at % Mg).
    "Mg": Compound("Mg2Sn", 2, 1, 203.5, 0.099, 771.0),
    # ZrSn2 (peritectic ~1142 °C, uncertain); degenerate eutectic (estimate).
    "Zr": Compound("ZrSn2", 1, 2, 231.5, 0.002, 1142.0),
    # V2Sn3 (peritectic ~757 °C, uncertain); degenerate eutectic (estimate).
    "V": Compound("V2Sn3", 2, 3, 231.5, 0.002, 757.0),
    # MoSn2 (peritectic ~800 °C, uncertain); degenerate eutectic (estimate).
    "Mo": Compound("MoSn2", 1, 2, 231.5, 0.002, 800.0),
    # No W–Sn compound and negligible mutual solubility: W stays as its own solid phase and
    # does not melt in the furnace (3422 °C); it rides in the Sn melt as particles.
    "W": Compound("W", 1, 0, MELTING_POINT_C["Sn"], 0.0, MELTING_POINT_C["Sn"]),
    # MnSn2 (peritectic ~549 °C); degenerate eutectic (estimate).
    "Mn": Compound("MnSn2", 1, 2, 231.0, 0.005, 549.0),
    # FeSn2 (peritectic ~513 °C); degenerate eutectic (estimate).
    "Fe": Compound("FeSn2", 1, 2, 231.5, 0.002, 513.0),
})

# Si liquidus in Si–Sn (Olesinski & Abbaschian, Bull. Alloy Phase Diagr. 5, 273 (1984), read
# off the diagram: estimate): (atom fraction Sn, °C). Degenerate eutectic at pure Sn.
_SI_SN_LIQUIDUS = ((0.0, 1414.0), (0.5, 1300.0), (0.9, 1050.0), (0.99, 750.0),
                   (1.0, 231.93))


@dataclass(frozen=True)
class MeltResult:
    """Outcome of melting and solidifying one charge.

    Attributes
    ----------
    liquidus_c : float
        Liquidus temperature, °C.
    pour_temperature_c : float
        Liquidus plus superheat, °C.
    energy_kwh : float
        Electrical energy drawn from the furnace supply, kWh.
    heat_kwh : float
        Heat absorbed by the charge (sensible + latent), kWh.
    duration_s : float
        Time at full power to reach the pour temperature, s.
    phases_kg : Mapping[str, float]
        Mass of each phase after equilibrium solidification, kg (sums to the charge mass).
    phase_mass_fraction : Mapping[str, float]
        ``phases_kg`` divided by the charge mass.
    free_phase : str
        The larger free base phase, ``'Si'`` or ``'Sn'``.
    alloy_phase : str or None
        The most abundant intermetallic (or W) phase; ``None`` for an unalloyed charge.
    alloy_phases : tuple of str
        All intermetallic (or W) phases present.
    """

    liquidus_c: float
    pour_temperature_c: float
    energy_kwh: float
    heat_kwh: float
    duration_s: float
    phases_kg: Mapping[str, float]
    phase_mass_fraction: Mapping[str, float]
    free_phase: str
    alloy_phase: str | None
    alloy_phases: tuple[str, ...]


@dataclass(frozen=True)
class Solidified:
    """Phases after equilibrium solidification (see :func:`solidify`)."""

    phases_kg: Mapping[str, float]
    free_phase: str
    alloy_phases: tuple[str, ...]


def validate_composition(composition: Mapping[str, float]) -> dict[str, float]:
    """Check a composition (weight fractions) and return it without zero entries.

    Raises
    ------
    PhysicsError
        Unknown element, negative or non-finite fraction, fractions not summing to 1 within
        :data:`FRACTION_TOLERANCE`, or no Si or Sn in the charge.
    """
    allowed = BASE_ELEMENTS + ALLOYING_ELEMENTS
    for element, frac in composition.items():
        if element not in allowed:
            raise PhysicsError(f"composition: unknown element {element!r} "
                               f"(allowed: {', '.join(allowed)})")
        if not math.isfinite(frac) or frac < 0:
            raise PhysicsError(f"composition: fraction of {element} must be a finite number "
                               f">= 0, got {frac}")
    total = math.fsum(composition.values())
    if abs(total - 1.0) > FRACTION_TOLERANCE:
        raise PhysicsError(f"composition: weight fractions must sum to 1 (±{FRACTION_TOLERANCE}),"
                           f" got {total:.9g}")
    clean = {el: float(f) for el, f in composition.items() if f > 0}
    if not any(el in clean for el in BASE_ELEMENTS):
        raise PhysicsError("composition: charge contains neither Si nor Sn")
    return clean


def _atom_fractions(wt: Mapping[str, float]) -> dict[str, float]:
    moles = {el: f / ATOMIC_MASS_G_MOL[el] for el, f in wt.items()}
    total = math.fsum(moles.values())
    return {el: n / total for el, n in moles.items()}


def _interp(x: float, points: tuple[tuple[float, float], ...]) -> float:
    xs, ys = zip(*points, strict=True)
    return float(_lerp_table(x, xs, ys))


def _lerp_table(x: float, xs: tuple[float, ...], ys: tuple[float, ...]) -> float:
    # Tiny pure-Python interpolation: keeps this module free of array plumbing for scalars.
    for i in range(len(xs) - 1):
        if x <= xs[i + 1]:
            t = (x - xs[i]) / (xs[i + 1] - xs[i])
            return ys[i] + t * (ys[i + 1] - ys[i])
    return ys[-1]


def _depression_k(base: str, comp: Compound, x: float) -> float:
    """Drop of the base-primary liquidus caused by atom fraction ``x`` of one solute, K."""
    if comp.b == 0 or comp.eutectic_x == 0:
        return 0.0
    return (MELTING_POINT_C[base] - comp.eutectic_c) * x / comp.eutectic_x


def _compound_branch_c(comp: Compound, x_binary: float) -> float:
    """Compound-primary liquidus: line from the eutectic to the compound, °C."""
    if comp.b == 0:
        return -math.inf
    x_c = comp.a / (comp.a + comp.b)
    return comp.eutectic_c + ((comp.melt_c - comp.eutectic_c)
                              * (x_binary - comp.eutectic_x) / (x_c - comp.eutectic_x))


def liquidus_c(composition: Mapping[str, float]) -> float:
    """Liquidus temperature of a charge, °C (piecewise-linear binary approximation).

    Parameters
    ----------
    composition : Mapping[str, float]
        Weight fractions by element symbol; must sum to 1.

    Returns
    -------
    float
        Liquidus, °C. For a Si-bearing charge the Si-primary branch uses the Si–Sn liquidus
        for Sn and the Si-rich binary lines for the alloying elements; for a Sn-base charge
        the Sn-rich binary lines. See the module docstring for the combination rule.
    """
    wt = validate_composition(composition)
    x = _atom_fractions(wt)
    base = "Si" if "Si" in x else "Sn"
    table = _SI_COMPOUNDS if base == "Si" else _SN_COMPOUNDS
    t_base = MELTING_POINT_C[base]
    floor = t_base
    drop = 0.0
    branches = [-math.inf]
    if base == "Si" and "Sn" in x:
        t_sisn = _interp(x["Sn"], _SI_SN_LIQUIDUS)
        drop += t_base - t_sisn
        floor = min(floor, _SI_SN_LIQUIDUS[-1][1])
    for el in ALLOYING_ELEMENTS:
        if el not in x:
            continue
        comp = table[el]
        drop += _depression_k(base, comp, x[el])
        floor = min(floor, comp.eutectic_c)
        x_bin = x[el] / (x[el] + x[base])
        branches.append(_compound_branch_c(comp, x_bin))
    return max(t_base - drop, floor, *branches)


def solidify(composition: Mapping[str, float], mass_kg: float) -> Solidified:
    """Phase masses after equilibrium solidification (lever rule on line compounds).

    Parameters
    ----------
    composition : Mapping[str, float]
        Weight fractions by element symbol.
    mass_kg : float
        Charge mass, kg (> 0).

    Returns
    -------
    Solidified
        ``phases_kg`` sums to ``mass_kg`` to float rounding: the last free phase is computed
        as the exact (``math.fsum``) remainder.

    Raises
    ------
    PhysicsError
        Bad composition or mass, or so much alloying element that no free Si or Sn is left.
    """
    _check_positive("mass_kg", mass_kg)
    wt = validate_composition(composition)
    mol = {el: f * mass_kg * 1000.0 / ATOMIC_MASS_G_MOL[el] for el, f in wt.items()}
    free_mol = {b: mol.get(b, 0.0) for b in BASE_ELEMENTS}
    phases: dict[str, float] = {}
    for el in ALLOYING_ELEMENTS:
        if el in mol:
            _bind(el, mol[el], free_mol, phases)
    free = [b for b in BASE_ELEMENTS if free_mol[b] > 1e-12 * max(mol.get(b, 0.0), 1e-300)]
    if not free:
        raise PhysicsError(f"composition: alloying elements bind all Si/Sn, no free Si or Sn "
                           f"phase is left ({_describe(wt)})")
    # Mass balance closes exactly on the last free phase (largest, least relative rounding).
    free.sort(key=lambda b: free_mol[b] * ATOMIC_MASS_G_MOL[b])
    for b in free[:-1]:
        phases[b] = free_mol[b] * ATOMIC_MASS_G_MOL[b] / 1000.0
    last = free[-1]
    phases[last] = mass_kg - math.fsum(phases.values())
    alloy = tuple(p for p in phases if p not in BASE_ELEMENTS)
    return Solidified(MappingProxyType(phases), last, alloy)


def _bind(el: str, n_el: float, free_mol: dict[str, float], phases: dict[str, float]) -> None:
    """Turn ``n_el`` mol of ``el`` into silicide, then stannide if Si runs out (mol, kg)."""
    remaining = n_el
    for base, table in (("Si", _SI_COMPOUNDS), ("Sn", _SN_COMPOUNDS)):
        if remaining <= 0:
            return
        comp = table[el]
        ratio = comp.b / comp.a
        if ratio == 0:
            _add(phases, comp.name, remaining * ATOMIC_MASS_G_MOL[el] / 1000.0)
            return
        if free_mol[base] <= 0:
            continue
        n = min(remaining, free_mol[base] / ratio)
        free_mol[base] -= n * ratio
        remaining -= n
        _add(phases, comp.name,
             n * (ATOMIC_MASS_G_MOL[el] + ratio * ATOMIC_MASS_G_MOL[base]) / 1000.0)
    if remaining > 1e-12 * n_el:
        raise PhysicsError(f"composition: too much {el} to leave a free Si or Sn phase "
                           f"(all Si/Sn is bound in intermetallics)")


def _add(phases: dict[str, float], name: str, kg: float) -> None:
    phases[name] = phases.get(name, 0.0) + kg


def _describe(wt: Mapping[str, float]) -> str:
    return ", ".join(f"{el}={f:g}" for el, f in wt.items())


def _check_positive(name: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise PhysicsError(f"{name} must be a finite number > 0, got {value}")


def heat_kwh(composition: Mapping[str, float], mass_kg: float, pour_temperature_c: float) -> float:
    """Heat absorbed by the charge from 25 °C to the pour temperature, kWh.

    Sum over elements of mean-cp sensible heat plus heat of fusion (Kopp–Neumann); heats of
    mixing and compound formation are neglected (they are exothermic, so this is an upper
    bound that the calibrated efficiency absorbs).
    """
    _check_positive("mass_kg", mass_kg)
    wt = validate_composition(composition)
    dt = pour_temperature_c - AMBIENT_C
    j_per_g = math.fsum(f * (MEAN_CP_J_GK[el] * dt + HEAT_OF_FUSION_J_G[el])
                        for el, f in wt.items())
    return j_per_g * mass_kg * 1000.0 / 3.6e6


# Calibration point (process notes): 250 kW induction, 87 kg (taken as Si, 75 °C superheat)
# in 21 min. Efficiency = heat absorbed / electrical energy.
_CAL_POWER_KW, _CAL_MASS_KG, _CAL_MINUTES, _CAL_SUPERHEAT_C = 250.0, 87.0, 21.0, 75.0
DEFAULT_EFFICIENCY = (heat_kwh({"Si": 1.0}, _CAL_MASS_KG, 1414.0 + _CAL_SUPERHEAT_C)
                      / (_CAL_POWER_KW * _CAL_MINUTES / 60.0))
DEFAULT_SUPERHEAT_C = 75.0  # mid of the 50–100 °C vacuum-induction practice


def melt(composition: Mapping[str, float], mass_kg: float, *, power_kw: float,
         superheat_c: float = DEFAULT_SUPERHEAT_C,
         efficiency: float = DEFAULT_EFFICIENCY) -> MeltResult:
    """Melt a charge: pour temperature, energy, time at power, and solidified phases.

    Parameters
    ----------
    composition : Mapping[str, float]
        Weight fractions by element symbol (Si and/or Sn plus alloying elements).
    mass_kg : float
        Charge mass, kg (> 0).
    power_kw : float
        Furnace supply power, kW (> 0).
    superheat_c : float
        Superheat over the liquidus, K (>= 0); 50–100 K is vacuum-induction practice.
    efficiency : float
        Heat into the charge / electrical energy, in (0, 1]. Default calibrated to
        250 kW · 21 min for 87 kg Si.

    Returns
    -------
    MeltResult
    """
    _check_positive("power_kw", power_kw)
    if not math.isfinite(superheat_c) or superheat_c < 0:
        raise PhysicsError(f"superheat_c must be >= 0, got {superheat_c}")
    if not (0 < efficiency <= 1):
        raise PhysicsError(f"efficiency must be in (0, 1], got {efficiency}")
    solid = solidify(composition, mass_kg)
    t_liq = liquidus_c(composition)
    t_pour = t_liq + superheat_c
    q = heat_kwh(composition, mass_kg, t_pour)
    energy = q / efficiency
    phases = dict(solid.phases_kg)
    alloy = max(solid.alloy_phases, key=lambda p: phases[p]) if solid.alloy_phases else None
    return MeltResult(
        liquidus_c=t_liq, pour_temperature_c=t_pour, energy_kwh=energy, heat_kwh=q,
        duration_s=energy / power_kw * 3600.0, phases_kg=solid.phases_kg,
        phase_mass_fraction=MappingProxyType({p: m / mass_kg for p, m in phases.items()}),
        free_phase=solid.free_phase, alloy_phase=alloy, alloy_phases=solid.alloy_phases,
    )
