"""Composition of the oxidised powder, the O2 and heat of growing its oxide skin, and the lab's
inversion of an oxygen content into a shell thickness.

Sources are the plant notes (``shared/notes/powder_bed.md``): §1 oxygen demand, oxide per area
and wt % O; §6 native oxide; §8 metrology of the powder oxide. "computed" is arithmetic shown in
the notes; "estimate" has no published source.

Conventions
-----------
* ``thickness_nm`` x is the oxide layer **grown from the gas** (its O is taken up during the
  step). O already in the starting powder (milling pickup, native oxide formed before the step)
  is ``feed_oxygen_wt_pct``, in wt % of the starting powder. Product mass = starting mass + O
  taken up by the layer.
* ``ssa_m2_g`` S and ``radius_nm`` r refer to one ``basis``:

  - ``"starting"`` (default): S per gram of the unoxidised (starting) powder; r the radius of a
    starting particle. The oxide straddles the original surface: the metal consumed moves the
    interface inward by 0.441 nm per nm of SiO2 (§1) and the oxide's outer surface moves
    outward by the rest. On a sphere of starting radius r0 with inner (metal) radius a and
    outer radius b = a + x, ``b³ - a³ = E (r0³ - a³)`` (E the oxide/metal volume ratio, 2.27
    for SiO2 on Si at 2.2 g/cm³, §1), and the oxide volume per starting area is
    ``(b³ - a³) / (3 r0²)``.
  - ``"oxidised"``: S per gram of the oxidised product, r the **outer** radius of an oxidised
    particle. The shell of thickness x then lies inside r, and its volume per outer area is
    §8's ``S·x·(1 - x/r + x²/(3r²))`` exactly.

  §8's "the flat formula reads ~10 % low at d_BET = 184 nm and x = 10 nm" (factor 0.895) holds
  when r is the outer radius of the oxidised particle. Measured from the starting radius the
  same shell holds ~1 % **more** oxide than the flat formula (the shell's mid-surface lies
  just outside the original surface), so on the starting basis the flat formula is nearly
  right for x << r.
* A particle fully oxidised cannot hold more oxide than its own metal makes: on the starting
  basis the shell stops at ``x = E^(1/3) r0`` (metal core gone; the twin's sphere model reports
  this outer radius as the thickness), on the oxidised basis at ``x = r``; larger thicknesses
  are capped there. Independently of geometry, the oxide never exceeds complete conversion of
  the metal in the powder (``metal_fraction`` of the starting mass).

Density of the oxide: 2.2 g/cm³ is used (amorphous silica; the BYU oxide calculator and all of
§1's and §8's worked numbers: 3.66e-5 mol/(m²·nm), 0.441 nm Si per nm, 854, 14.1 wt % O). It
also gives the oxide/Si volume ratio 2.27 that the growth model uses
(:data:`twin.physics.oxidation_rates.VOLUME_EXPANSION`), so thicknesses passed between the two
modules mean the same amount of oxide. Dense thermal oxide on wafers is 2.27 g/cm³
(:data:`SIO2_THERMAL_DENSITY_G_CM3`), 3 % more oxide per nm; oxide density also varies by
> 3 % with growth temperature (§4), so 2.2 is within the material's own spread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twin.errors import PhysicsError

FloatArray = NDArray[np.float64]
Basis = Literal["starting", "oxidised"]
Oxidant = Literal["O2", "H2O"]

# Molar masses, g/mol (IUPAC standard atomic weights; SiO2 60.08 as in §1).
M_O = 15.999
M_SI = 28.086
M_SN = 118.71
M_SIO2 = 60.08
M_SNO2 = 150.71

#: SiO2 density used, g/cm³ (§1, BYU oxide calculator; see the module docstring for why).
SIO2_DENSITY_G_CM3 = 2.2
#: Dense thermal SiO2 on wafers, g/cm³ (§1); not used by the functions here.
SIO2_THERMAL_DENSITY_G_CM3 = 2.27
#: Cassiterite SnO2 density, g/cm³ (CRC Handbook).
SNO2_DENSITY_G_CM3 = 6.95
#: Si density, g/cm³ (§1).
SI_DENSITY_G_CM3 = 2.33
#: White (β) tin density at 25 °C, g/cm³ (CRC Handbook).
SN_DENSITY_G_CM3 = 7.265

#: Standard enthalpies of formation, kJ/mol: SiO2 (quartz) −910.86 (NIST-JANAF, §1), SnO2
#: −577.63 (OECD-NEA vol. 12, §7), H2O(g) −241.82 (§1). Amorphous SiO2 is ~1 % less
#: exothermic (−903.5 kJ/mol, JANAF glass); the note's quartz value is kept.
DHF_SIO2_KJ_MOL = -910.86
DHF_SNO2_KJ_MOL = -577.63
DHF_H2O_G_KJ_MOL = -241.82


@dataclass(frozen=True)
class OxideSystem:
    """Constants of one metal and its oxide skin (MO2 for both Si and Sn).

    Attributes
    ----------
    metal, oxide : str
        Element and oxide formula.
    m_metal, m_oxide : float
        Molar masses, g/mol.
    rho_metal, rho_oxide : float
        Densities, g/cm³.
    dh_dry_kj_mol : float
        Reaction enthalpy of M + O2 → MO2, kJ/mol of oxide (< 0: heat released).
    dh_wet_kj_mol : float
        Reaction enthalpy of M + 2 H2O → MO2 + 2 H2, kJ/mol of oxide (computed from the
        formation enthalpies, §1).
    """

    metal: str
    oxide: str
    m_metal: float
    m_oxide: float
    rho_metal: float
    rho_oxide: float
    dh_dry_kj_mol: float

    @property
    def dh_wet_kj_mol(self) -> float:
        """M + 2 H2O(g) → MO2 + 2 H2, kJ/mol (−427 for SiO2, −94 for SnO2; computed)."""
        return self.dh_dry_kj_mol - 2.0 * DHF_H2O_G_KJ_MOL

    @property
    def mol_per_m2_nm(self) -> float:
        """Oxide per area per nm of layer, mol/(m²·nm): 3.66e-5 for SiO2 (§1), 4.61e-5 SnO2."""
        return self.rho_oxide * 1e6 * 1e-9 / self.m_oxide

    @property
    def o_g_per_m2_nm(self) -> float:
        """O in the layer per area per nm, g/(m²·nm): 1.171e-3 for SiO2 (§8; 1/854 per kg)."""
        return 2.0 * M_O * self.mol_per_m2_nm

    @property
    def metal_nm_per_oxide_nm(self) -> float:
        """Metal depth consumed per nm of oxide: 0.441 for Si (§1), 0.754 for Sn (computed)."""
        return self.mol_per_m2_nm * self.m_metal / (self.rho_metal * 1e6 * 1e-9)

    @property
    def expansion(self) -> float:
        """Oxide volume per metal volume consumed: 2.27 for SiO2/Si (§1), 1.33 SnO2/Sn."""
        return 1.0 / self.metal_nm_per_oxide_nm


OXIDES: dict[str, OxideSystem] = {
    "Si": OxideSystem("Si", "SiO2", M_SI, M_SIO2, SI_DENSITY_G_CM3, SIO2_DENSITY_G_CM3,
                      DHF_SIO2_KJ_MOL),
    "Sn": OxideSystem("Sn", "SnO2", M_SN, M_SNO2, SN_DENSITY_G_CM3, SNO2_DENSITY_G_CM3,
                      DHF_SNO2_KJ_MOL),
}

#: SiO2 per area per nm at 2.2 g/cm³, mol/(m²·nm) (§1: 3.66e-5).
SIO2_MOL_PER_M2_NM = OXIDES["Si"].mol_per_m2_nm
#: SnO2 per area per nm at 6.95 g/cm³, mol/(m²·nm).
SNO2_MOL_PER_M2_NM = OXIDES["Sn"].mol_per_m2_nm
#: Si consumed per nm of SiO2, nm (§1: 0.441 at 2.2 g/cm³).
SI_NM_PER_SIO2_NM = OXIDES["Si"].metal_nm_per_oxide_nm


@dataclass(frozen=True)
class MethodPrecision:
    """Relative standard deviations of a lab method, as (low, high) ranges.

    Attributes
    ----------
    repeatability_rel : tuple of float
        Within one lab (same instrument, short time).
    reproducibility_rel : tuple of float
        Between labs.
    estimate : bool
        True when no published figure backs the range.
    source : str
        Where the range comes from.
    """

    repeatability_rel: tuple[float, float]
    reproducibility_rel: tuple[float, float]
    estimate: bool
    source: str

    @property
    def nominal_repeatability_rel(self) -> float:
        """Mid-range within-lab relative SD (the value to simulate when none is chosen)."""
        return 0.5 * sum(self.repeatability_rel)

    @property
    def nominal_reproducibility_rel(self) -> float:
        """Mid-range between-lab relative SD."""
        return 0.5 * sum(self.reproducibility_rel)


#: Inert-gas-fusion O (ASTM E1409 principle): 1–2 % relative within lab, 3–5 % between labs
#: (estimate, §8; vacuum fusion MS showed CV 5 % at 116 ppm, and oxidised Si at 2–16 wt % O
#: lies above the scopes of E1409, E1019 and C1494).
OXYGEN_IGF = MethodPrecision((0.01, 0.02), (0.03, 0.05), True,
                             "powder_bed.md §8 (estimate; no precision data above 1.5 wt % O)")
#: BET surface area (ISO 9277): 1–3 % within lab, 5–10 % between labs (estimate, §8).
BET = MethodPrecision((0.01, 0.03), (0.05, 0.10), True,
                      "powder_bed.md §8 (estimate; no BET repeatability figure found)")

#: XPS overlayer thickness: the reference method covers 1.5–8 nm on wafers (J. Surf. Anal.
#: 28(3) S16); the method is accurate up to ~3λ ≈ 8–10 nm (Alexander et al. 2002). Below
#: 1.5 nm the 0.15 nm inter-lab scatter (CCQM pilot, Seah et al.) is 10–15 % of the value;
#: 1 nm is taken as the lower limit of useful results (estimate). 8 nm is the upper limit.
XPS_MIN_NM = 1.0
XPS_MAX_NM = 8.0
#: The reference-method range, nm (§8).
XPS_REFERENCE_RANGE_NM = (1.5, 8.0)


# --------------------------------------------------------------------------- checks


def _system(material: str) -> OxideSystem:
    sysm = OXIDES.get(material)
    if sysm is None:
        raise PhysicsError(f"composition: unknown material {material!r}; expected Si or Sn")
    return sysm


def _basis(basis: str) -> Basis:
    if basis not in ("starting", "oxidised"):
        raise PhysicsError(f"composition: basis must be 'starting' or 'oxidised', got {basis!r}")
    return "starting" if basis == "starting" else "oxidised"


def _array(name: str, value: ArrayLike, *, positive: bool = False) -> FloatArray:
    """``value`` as a float array; finite and >= 0 (> 0 with ``positive``)."""
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise PhysicsError(f"composition: {name} must be a number or an array of numbers, "
                           f"got {value!r}") from None
    bad = ~np.isfinite(a) | ((a <= 0) if positive else (a < 0))
    if np.any(bad):
        raise PhysicsError(f"composition: {name} must be finite and {'> 0' if positive else '>= 0'}"
                           f", got {float(a[bad].flat[0])}")
    return a


def _percent(name: str, value: ArrayLike) -> FloatArray:
    """A wt % in [0, 100), as a mass fraction."""
    a = _array(name, value)
    if np.any(a >= 100.0):
        raise PhysicsError(f"composition: {name} must be below 100 wt %, "
                           f"got {float(a[a >= 100.0].flat[0])}")
    return a / 100.0


def _fraction(name: str, value: float) -> float:
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise PhysicsError(f"composition: {name} must be in (0, 1], got {value}")
    return float(value)


def _radius(radius_nm: ArrayLike | None) -> FloatArray | None:
    return None if radius_nm is None else _array("radius_nm", radius_nm, positive=True)


def _out(a: FloatArray) -> float | FloatArray:
    return float(a) if a.ndim == 0 else a


# --------------------------------------------------------------------------- geometry
# y is the oxide volume per unit reference area expressed as a flat-equivalent thickness, nm
# (reference area: the starting surface, or the oxidised outer surface; see the docstring).


def _x_from_y_start(y: FloatArray, r0: FloatArray, e: float) -> FloatArray:
    """Shell thickness x from the oxide volume per starting area y on a sphere of starting
    radius r0 (closed form, written without cancellation for x << r0)."""
    eps = np.minimum(3.0 * y / (e * r0), 1.0)  # share of the metal volume consumed
    with np.errstate(divide="ignore", invalid="ignore"):
        la = np.log1p(-eps) / 3.0  # ln(a / r0)
        lb = np.log1p(3.0 * y * (1.0 - 1.0 / e) / r0) / 3.0  # ln(b / r0)
        x = r0 * np.exp(la) * np.expm1(lb - la)
    return np.where(eps >= 1.0, r0 * np.exp(lb), x)


def _dxdy_start(y: FloatArray, r0: FloatArray, e: float) -> FloatArray:
    """d x / d y of :func:`_x_from_y_start` (infinite when the core is gone)."""
    a3 = np.maximum(1.0 - 3.0 * y / (e * r0), 0.0)  # (a / r0)³
    b3 = 1.0 + 3.0 * y * (1.0 - 1.0 / e) / r0  # (b / r0)³
    with np.errstate(divide="ignore"):
        return (1.0 - 1.0 / e) / np.cbrt(b3) ** 2 + 1.0 / (e * np.cbrt(a3) ** 2)


def _y_from_x_start(x: FloatArray, r0: FloatArray, e: float) -> FloatArray:
    """Inverse of :func:`_x_from_y_start` for 0 <= x <= E^(1/3) r0 (safeguarded Newton)."""
    x, r0 = np.broadcast_arrays(x, r0)
    y_full = e * r0 / 3.0
    lo, hi = np.zeros_like(x), y_full.copy()
    y = np.minimum(x, y_full)
    for _ in range(100):
        f = _x_from_y_start(y, r0, e) - x
        lo = np.where(f <= 0, y, lo)
        hi = np.where(f >= 0, y, hi)
        with np.errstate(invalid="ignore"):
            y_new = y - f / _dxdy_start(y, r0, e)
        # Keep Newton steps strictly inside the bracket (at the oxidised-through end the
        # slope is infinite and a zero step would stall); otherwise bisect.
        inside = (y_new > lo) & (y_new < hi)
        y_new = np.where(f == 0, y, np.where(inside, y_new, 0.5 * (lo + hi)))
        done = np.all(np.abs(y_new - y) <= 1e-15 * np.maximum(y_new, 1e-300))
        y = y_new
        if done:
            break
    return y


def _x_full(r: FloatArray, e: float, basis: Basis) -> FloatArray:
    """Shell thickness of a particle oxidised through, nm."""
    return np.cbrt(e) * r if basis == "starting" else r


def _y_full(r: FloatArray, e: float, basis: Basis) -> FloatArray:
    """Oxide volume per reference area of a particle oxidised through, nm."""
    return e * r / 3.0 if basis == "starting" else r / 3.0


def _volume_nm(x: FloatArray, r: FloatArray | None, e: float, basis: Basis) -> FloatArray:
    """Oxide volume per reference area (flat-equivalent nm) of a shell x, capped at the
    particle oxidised through."""
    if r is None:
        return x
    xc = np.minimum(x, _x_full(r, e, basis))
    if basis == "oxidised":
        return xc * (1.0 - xc / r + xc * xc / (3.0 * r * r))
    return _y_from_x_start(xc, r, e)


def _thickness_nm(y: FloatArray, r: FloatArray | None, e: float, basis: Basis) -> FloatArray:
    """Inverse of :func:`_volume_nm` (y may be slightly negative: measurement noise)."""
    if r is None:
        return y
    if basis == "oxidised":
        with np.errstate(divide="ignore"):  # log1p(-1) = -inf: oxidised through, x = r
            return -r * np.expm1(np.log1p(-np.minimum(3.0 * y / r, 1.0)) / 3.0)
    return _x_from_y_start(y, r, e)


def _mol_per_kg(x: FloatArray, s: FloatArray, r: FloatArray | None, sysm: OxideSystem,
                basis: Basis, metal_fraction: float) -> FloatArray:
    """Mol oxide per kg of starting powder, capped at complete conversion of the metal."""
    y = _volume_nm(x, r, sysm.expansion, basis)
    cap = 1000.0 * metal_fraction / sysm.m_metal
    n_ref = sysm.mol_per_m2_nm * 1000.0 * s * y  # per kg of the basis powder
    if basis == "starting":
        return np.minimum(n_ref, cap)
    w_layer = sysm.o_g_per_m2_nm * s * y  # layer O per mass of product
    with np.errstate(divide="ignore", invalid="ignore"):
        n_start = np.where(w_layer < 1.0, n_ref / (1.0 - w_layer), np.inf)
    return np.minimum(n_start, cap)


# --------------------------------------------------------------------------- forward


def oxide_per_kg(thickness_nm: ArrayLike, ssa_m2_g: ArrayLike, *, material: str = "Si",
                 radius_nm: ArrayLike | None = None, basis: str = "starting",
                 metal_fraction: float = 1.0) -> float | FloatArray:
    """Oxide (SiO2 or SnO2) per kg of starting (unoxidised) powder.

    Flat: ``n = 3.66e-5 mol/(m²·nm) × 1000·S × x`` for SiO2 (§1, computed). With
    ``radius_nm`` the shell volume on a sphere replaces ``S·x`` (module docstring: on the
    starting basis the oxide straddles the original surface; on the oxidised basis §8's
    ``S·x·(1 − x/r + x²/(3r²))``).

    Parameters
    ----------
    thickness_nm : float or array_like
        Oxide layer grown, nm (>= 0).
    ssa_m2_g : float or array_like
        Specific surface area (BET), m²/g, on ``basis`` (> 0).
    material : {"Si", "Sn"}
        Metal whose dioxide forms the layer.
    radius_nm : float or array_like, optional
        Particle radius, nm (> 0): of the starting particle (``basis="starting"``) or the
        outer radius of the oxidised particle (``basis="oxidised"``); flat if omitted.
    basis : {"starting", "oxidised"}
        Powder on which S (and r) were measured.
    metal_fraction : float
        Mass fraction of ``material`` in the starting powder, (0, 1]; caps the oxide at
        complete conversion of that metal.

    Returns
    -------
    float or ndarray
        mol oxide per kg of starting powder (5.13 for 10 nm SiO2 at S = 14, §1). A particle
        oxidised through (x >= E^(1/3)·r0 starting basis, x >= r oxidised basis) is capped at
        its own metal content.

    Raises
    ------
    PhysicsError
        Unknown material or basis, negative thickness, S or r <= 0, bad metal_fraction.
    """
    sysm, b = _system(material), _basis(basis)
    x = _array("thickness_nm", thickness_nm)
    s = _array("ssa_m2_g", ssa_m2_g, positive=True)
    mf = _fraction("metal_fraction", metal_fraction)
    return _out(_mol_per_kg(x, s, _radius(radius_nm), sysm, b, mf))


def o2_mol_per_kg_nm(ssa_m2_g: ArrayLike, *, material: str = "Si") -> float | FloatArray:
    """O2 to grow 1 nm of flat oxide per kg of starting powder, mol/(kg·nm).

    ``3.66e-5 × 1000·S`` for SiO2: 0.439 at S = 12 m²/g (§1, computed). This is the ``n_O2``
    of §1's supply-limited rate ``dx/dt = min(kinetic, F_O2 / (n_O2·m))``.
    """
    sysm = _system(material)
    s = _array("ssa_m2_g", ssa_m2_g, positive=True)
    return _out(sysm.mol_per_m2_nm * 1000.0 * s)


def oxygen_wt_pct(thickness_nm: ArrayLike, ssa_m2_g: ArrayLike, *, material: str = "Si",
                  radius_nm: ArrayLike | None = None, feed_oxygen_wt_pct: ArrayLike = 0.0,
                  basis: str = "starting", metal_fraction: float = 1.0) -> float | FloatArray:
    """Total O content of the oxidised product, wt %.

    ``w = (w_feed + u) / (1 + u)``, u = O taken up by the layer per mass of starting powder
    (``2·M_O·n``, n from :func:`oxide_per_kg`) and ``w_feed`` the O already in the starting
    powder. 10 nm SiO2 at S = 14 m²/g (starting basis, flat): 164 g O per kg → 14.1 wt %
    (§1, computed).

    Parameters
    ----------
    thickness_nm, ssa_m2_g, material, radius_nm, basis, metal_fraction
        As :func:`oxide_per_kg`.
    feed_oxygen_wt_pct : float or array_like
        O in the starting powder (milling pickup, native oxide), wt % of the starting powder,
        [0, 100).

    Returns
    -------
    float or ndarray
        O, wt % of the oxidised product.
    """
    sysm, b = _system(material), _basis(basis)
    x = _array("thickness_nm", thickness_nm)
    s = _array("ssa_m2_g", ssa_m2_g, positive=True)
    w_f = _percent("feed_oxygen_wt_pct", feed_oxygen_wt_pct)
    mf = _fraction("metal_fraction", metal_fraction)
    u = 2.0 * M_O * _mol_per_kg(x, s, _radius(radius_nm), sysm, b, mf) / 1000.0
    return _out(100.0 * (w_f + u) / (1.0 + u))


def si_consumed_wt_pct(thickness_nm: ArrayLike, ssa_m2_g: ArrayLike, *, material: str = "Si",
                       radius_nm: ArrayLike | None = None, basis: str = "starting",
                       metal_fraction: float = 1.0) -> float | FloatArray:
    """Share of the starting metal (Si or Sn) mass turned into oxide, %.

    ``100 · n · M_metal / (1000 · metal_fraction)``, n from :func:`oxide_per_kg`: 0.441 nm of
    Si per nm of SiO2 (§1). 10 nm at S = 14 m²/g consumes 14.4 % of a pure Si powder.

    Parameters
    ----------
    thickness_nm, ssa_m2_g, material, radius_nm, basis, metal_fraction
        As :func:`oxide_per_kg` (``metal_fraction``: share of the metal in the starting
        powder, so that the result is per metal mass).

    Returns
    -------
    float or ndarray
        % of the starting metal consumed (100 when oxidised through).
    """
    sysm, b = _system(material), _basis(basis)
    x = _array("thickness_nm", thickness_nm)
    s = _array("ssa_m2_g", ssa_m2_g, positive=True)
    mf = _fraction("metal_fraction", metal_fraction)
    n = _mol_per_kg(x, s, _radius(radius_nm), sysm, b, mf)
    return _out(100.0 * n * sysm.m_metal / (1000.0 * mf))


def oxidised_composition(composition_wt: Mapping[str, float], thickness_nm: ArrayLike,
                         ssa_m2_g: ArrayLike, *, feed_oxygen_wt_pct: ArrayLike = 0.0,
                         radius_nm: ArrayLike | None = None, basis: str = "starting",
                         material: str | None = None) -> dict[str, float | FloatArray]:
    """Element mass fractions of the oxidised product (for batch records and certificates).

    The starting powder's elements are diluted by the O the layer takes up and O is added:
    ``f_X' = f_X / (1 + u)`` and ``f_O' = (w_feed + u) / (1 + u)`` (u as in
    :func:`oxygen_wt_pct`). Elements are reported in total (a Si atom in SiO2 is still Si);
    :func:`si_consumed_wt_pct` gives the share bound in the oxide.

    Parameters
    ----------
    composition_wt : mapping of str to float
        Mass fractions summing to 1: the alloy (e.g. ``{"Si": 0.8, "Ti": 0.2}``), or the
        starting powder including its O (``{"Si": 0.78, "Ti": 0.195, "O": 0.025}``; then
        ``feed_oxygen_wt_pct`` must be 0).
    thickness_nm, ssa_m2_g, radius_nm, basis
        As :func:`oxide_per_kg`.
    feed_oxygen_wt_pct : float or array_like
        O in the starting powder, wt % (the alloy elements make up the rest).
    material : {"Si", "Sn"}, optional
        Metal forming the oxide; default Si when the composition holds Si, else Sn (as the
        plant configuration's ``Alloy.base``). Its mass caps the oxide (oxidised through).

    Returns
    -------
    dict of str to float or ndarray
        Mass fractions of the product, the composition's elements then ``"O"``; they sum to 1.
        Multiply by 100 for wt %.

    Raises
    ------
    PhysicsError
        Empty or invalid composition (negative, not summing to 1 within 1e-6), no oxidising
        metal, O given twice, plus the checks of :func:`oxide_per_kg`.
    """
    comp = _composition(composition_wt)
    if material is None:
        material = "Si" if comp.get("Si", 0.0) > 0 else "Sn"
    sysm, b = _system(material), _basis(basis)
    if comp.get(material, 0.0) <= 0:
        raise PhysicsError(f"composition: the composition holds no {material} to oxidise "
                           "(Si or Sn needed)")
    w_f_in = _percent("feed_oxygen_wt_pct", feed_oxygen_wt_pct)
    if "O" in comp:
        if np.any(w_f_in > 0):
            raise PhysicsError("composition: O is given both in composition_wt and as "
                               "feed_oxygen_wt_pct; give it once")
        w_f = np.asarray(comp["O"])
        start = {e: np.asarray(f) for e, f in comp.items() if e != "O"}
    else:
        w_f = w_f_in
        start = {e: f * (1.0 - w_f) for e, f in comp.items()}
    x = _array("thickness_nm", thickness_nm)
    s = _array("ssa_m2_g", ssa_m2_g, positive=True)
    r = _radius(radius_nm)
    # Oxidised through: at most all of the starting powder's metal becomes oxide.
    n = np.minimum(_mol_per_kg(x, s, r, sysm, b, 1.0), 1000.0 * start[material] / sysm.m_metal)
    u = 2.0 * M_O * n / 1000.0
    out: dict[str, float | FloatArray] = {e: _out(np.asarray(f / (1.0 + u)))
                                          for e, f in start.items()}
    out["O"] = _out(np.asarray((w_f + u) / (1.0 + u)))
    return out


def _composition(composition_wt: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(composition_wt, Mapping) or not composition_wt:
        raise PhysicsError("composition: composition_wt must be a non-empty mapping of "
                           "element to mass fraction")
    comp: dict[str, float] = {}
    for element, fraction in composition_wt.items():
        f = float(fraction)
        if not (math.isfinite(f) and 0.0 <= f <= 1.0):
            raise PhysicsError(f"composition: mass fraction of {element} must be within 0..1, "
                               f"got {fraction}")
        comp[str(element)] = f
    total = sum(comp.values())
    if abs(total - 1.0) > 1e-6:
        raise PhysicsError(f"composition: mass fractions must sum to 1, got {total:.6g}")
    return comp


# --------------------------------------------------------------------------- O2 and heat


def o2_demand_mol(thickness_nm: ArrayLike, ssa_m2_g: ArrayLike, mass_kg: ArrayLike, *,
                  material: str = "Si", radius_nm: ArrayLike | None = None,
                  oxidant: str = "O2", initial_nm: ArrayLike = 0.0,
                  basis: str = "starting") -> float | FloatArray:
    """Oxidant consumed to grow the layer from ``initial_nm`` to ``thickness_nm``, mol.

    One O2 per MO2 (dry), or two H2O per MO2 (steam: M + 2 H2O → MO2 + 2 H2, which also
    releases two H2). 58 kg at S = 12 m²/g, 0 → 10 nm SiO2: 255 mol O2 = 8.2 kg (§1, computed).

    Parameters
    ----------
    thickness_nm, ssa_m2_g, material, radius_nm, basis
        As :func:`oxide_per_kg`.
    mass_kg : float or array_like
        Starting (unoxidised) powder mass, kg (>= 0).
    oxidant : {"O2", "H2O"}
        Gas that oxidises.
    initial_nm : float or array_like
        Oxide already present, nm (<= ``thickness_nm``).

    Returns
    -------
    float or ndarray
        mol O2 (dry) or mol H2O (steam).
    """
    n = _grown_mol(thickness_nm, ssa_m2_g, mass_kg, material, radius_nm, initial_nm, basis)
    return _out(n * _per_oxide(oxidant))


def reaction_heat_mj(thickness_nm: ArrayLike, ssa_m2_g: ArrayLike, mass_kg: ArrayLike, *,
                     material: str = "Si", radius_nm: ArrayLike | None = None,
                     oxidant: str = "O2", initial_nm: ArrayLike = 0.0,
                     basis: str = "starting") -> float | FloatArray:
    """Heat released by growing the layer, MJ (positive: exothermic).

    Per mol SiO2: 911 kJ dry (Si + O2), 427 kJ in steam (Si + 2 H2O → SiO2 + 2 H2) (§1,
    computed from NIST-JANAF). Per mol SnO2: 578 kJ dry, 94 kJ in steam (OECD-NEA; computed).
    58 kg at S = 12 m²/g, 0 → 10 nm SiO2: 232 MJ dry, 109 MJ in steam (§1).

    Parameters are those of :func:`o2_demand_mol`.
    """
    n = _grown_mol(thickness_nm, ssa_m2_g, mass_kg, material, radius_nm, initial_nm, basis)
    sysm = _system(material)
    dh = sysm.dh_dry_kj_mol if _per_oxide(oxidant) == 1.0 else sysm.dh_wet_kj_mol
    return _out(-dh * n / 1000.0)


def _per_oxide(oxidant: str) -> float:
    if oxidant not in ("O2", "H2O"):
        raise PhysicsError(f"composition: oxidant must be 'O2' or 'H2O', got {oxidant!r}")
    return 1.0 if oxidant == "O2" else 2.0


def _grown_mol(thickness_nm: ArrayLike, ssa_m2_g: ArrayLike, mass_kg: ArrayLike,
               material: str, radius_nm: ArrayLike | None, initial_nm: ArrayLike,
               basis: str) -> FloatArray:
    sysm, b = _system(material), _basis(basis)
    x = _array("thickness_nm", thickness_nm)
    x0 = _array("initial_nm", initial_nm)
    if np.any(x0 > x):
        raise PhysicsError("composition: initial_nm must not exceed thickness_nm")
    s = _array("ssa_m2_g", ssa_m2_g, positive=True)
    m = _array("mass_kg", mass_kg)
    r = _radius(radius_nm)
    n = _mol_per_kg(x, s, r, sysm, b, 1.0) - _mol_per_kg(x0, s, r, sysm, b, 1.0)
    return np.asarray(n * m)


# --------------------------------------------------------------------------- lab inversion


def thickness_from_oxygen_nm(o_wt_pct_product: ArrayLike, ssa_m2_g: ArrayLike, *,
                             feed_oxygen_wt_pct: ArrayLike = 0.0,
                             radius_nm: ArrayLike | None = None, basis: str = "starting",
                             material: str = "Si") -> float | FloatArray:
    """Oxide shell thickness from the product's O content and BET surface (the lab's method).

    Flat, starting basis: ``x = 854·w/((1 − w)·S)`` (§8, computed), generalised to a feed
    that already holds O: the layer's O per mass of starting powder is
    ``u = (w − w_feed)/(1 − w)`` and ``x = u / (1.171e-3 · S)``. (Subtracting the feed's
    wt % from the product's is not exact: the uptake dilutes the feed O.) The mass fraction of
    the product attributable to the layer is ``w_layer = (w − w_feed)/(1 − w_feed)``;
    §8's formula is this with w → w_layer.

    Oxidised basis (S per gram of the oxidised product): ``x = w_layer / (1.171e-3 · S)``.
    Using a product-basis S in the starting-basis formula reads 1 + u too thick: 16 % at
    10 nm on 14 m²/g (§8). For a flat or rough surface the outer area is unchanged by the
    layer, so ``S_starting = S_product · (1 + u)`` (:func:`ssa_starting_m2_g`).

    With ``radius_nm`` the sphere geometry of :func:`oxide_per_kg` is inverted in closed form
    (starting basis: ``a³ = r0³ − 3r0²y/E``, ``b³ = a³ + 3r0²y``, ``x = b − a``; oxidised basis:
    ``x = r − (r³ − 3r²y)^(1/3)``; y the flat-equivalent oxide volume).

    Parameters
    ----------
    o_wt_pct_product : float or array_like
        Total O of the oxidised product (inert-gas fusion), wt %, [0, 100).
    ssa_m2_g : float or array_like
        BET specific surface, m²/g, on ``basis`` (> 0).
    feed_oxygen_wt_pct : float or array_like
        O of the starting powder (native oxide, milling pickup), wt % of the starting powder.
    radius_nm : float or array_like, optional
        Particle radius on ``basis`` (starting radius, or oxidised outer radius), nm.
    basis : {"starting", "oxidised"}
        Powder on which S (and r) were measured.
    material : {"Si", "Sn"}
        Metal whose dioxide forms the layer.

    Returns
    -------
    float or ndarray
        Layer thickness, nm. A product O below the feed O (measurement noise) gives a negative
        thickness, returned as is so that averages of repeated results stay unbiased.

    Raises
    ------
    PhysicsError
        Bad inputs, or an O content above what complete oxidation of the metal (or of a
        sphere of the given radius) can hold.
    """
    sysm, b = _system(material), _basis(basis)
    w = _percent("o_wt_pct_product", o_wt_pct_product)
    w_f = _percent("feed_oxygen_wt_pct", feed_oxygen_wt_pct)
    s = _array("ssa_m2_g", ssa_m2_g, positive=True)
    r = _radius(radius_nm)
    k = sysm.o_g_per_m2_nm
    if b == "starting":
        u = (w - w_f) / (1.0 - w)
        y = u / (k * s)
    else:
        w_layer = (w - w_f) / (1.0 - w_f)
        u = w_layer / (1.0 - w_layer)
        y = w_layer / (k * s)
    u_max = 2.0 * M_O / sysm.m_metal  # every metal atom oxidised (pure-metal powder)
    if np.any(u > u_max * (1.0 + 1e-12)):
        raise PhysicsError(f"composition: O content above complete oxidation of {sysm.metal} "
                           f"to {sysm.oxide} (feed O included)")
    if r is not None:
        y_full = _y_full(r, sysm.expansion, b)
        if np.any(y > y_full * (1.0 + 1e-12)):
            raise PhysicsError("composition: O content above a particle of radius_nm oxidised "
                               "through; check radius_nm and the basis")
        y = np.minimum(y, y_full)
        if b == "starting" and np.any(3.0 * y * (1.0 - 1.0 / sysm.expansion) <= -r):
            raise PhysicsError("composition: o_wt_pct_product far below the feed O")
    return _out(np.asarray(_thickness_nm(y, r, sysm.expansion, b)))


def ssa_starting_m2_g(ssa_product_m2_g: ArrayLike, o_wt_pct_product: ArrayLike, *,
                      feed_oxygen_wt_pct: ArrayLike = 0.0) -> float | FloatArray:
    """Specific surface on the starting basis from one measured on the oxidised product, m²/g.

    ``S_start = S_product · (1 + u)``, u = O uptake per mass of starting powder
    (:func:`thickness_from_oxygen_nm`): the product weighs 1 + u per unit starting mass and a
    flat or rough surface keeps its area (a sphere's outer area grows by (b/r0)², ~1 % at
    10 nm on a 92 nm radius; use ``basis="oxidised"`` with the outer radius instead).
    """
    s = _array("ssa_product_m2_g", ssa_product_m2_g, positive=True)
    w = _percent("o_wt_pct_product", o_wt_pct_product)
    w_f = _percent("feed_oxygen_wt_pct", feed_oxygen_wt_pct)
    return _out(s * (1.0 + (w - w_f) / (1.0 - w)))


def thickness_sigma_rel_o_bet(o_rel_sd: ArrayLike, bet_rel_sd: ArrayLike, *,
                              o_wt_pct: ArrayLike = 0.0, feed_oxygen_wt_pct: ArrayLike = 0.0,
                              feed_rel_sd: ArrayLike = 0.0, basis: str = "starting",
                              thickness_nm: ArrayLike | None = None,
                              radius_nm: ArrayLike | None = None,
                              material: str = "Si") -> float | FloatArray:
    """Relative SD of the O + BET thickness, first-order error propagation (§8).

    ``σ_x/x = G·√((s_w·σ_w/w)² + (s_f·σ_f/w_f)² + (σ_S/S)²)`` with the exact sensitivities of
    :func:`thickness_from_oxygen_nm`:

    * starting basis: ``s_w = w/(w − w_f) + w/(1 − w)`` (``1/(1 − w)`` without feed O: §8's
      ``√((σ_w/w)² + (σ_S/S)²)`` omits this factor, 1.16 at 14 wt % O),
      ``s_f = −w_f/(w − w_f)``;
    * oxidised basis: ``s_w = w/(w − w_f)``, ``s_f = −w_f/(w − w_f) + w_f/(1 − w_f)``;
    * G = d ln x / d ln y of the sphere geometry (1 flat; 1.12 at x/r = 0.1 on the oxidised
      basis, needs ``thickness_nm`` and ``radius_nm``).

    With the defaults (w → 0, no feed O, flat) this is §8's formula: 3–6 % for 1–2 % O and
    1–3 % BET repeatability (:data:`OXYGEN_IGF`, :data:`BET`, estimates).

    Parameters
    ----------
    o_rel_sd, bet_rel_sd : float or array_like
        Relative SDs of the product O (σ_w/w) and of S (σ_S/S), >= 0.
    o_wt_pct : float or array_like
        Product O, wt % (the 1/(1 − w) term; 0 gives §8's approximation).
    feed_oxygen_wt_pct, feed_rel_sd : float or array_like
        Feed O, wt %, and its relative SD (independent measurement).
    basis : {"starting", "oxidised"}
        As :func:`thickness_from_oxygen_nm`.
    thickness_nm, radius_nm : float or array_like, optional
        Thickness and radius for the sphere factor G.
    material : {"Si", "Sn"}
        Oxide system (sphere factor only).

    Returns
    -------
    float or ndarray
        Relative SD of the thickness, dimensionless.
    """
    sysm, b = _system(material), _basis(basis)
    sw = _array("o_rel_sd", o_rel_sd)
    ss = _array("bet_rel_sd", bet_rel_sd)
    sf = _array("feed_rel_sd", feed_rel_sd)
    w = _percent("o_wt_pct", o_wt_pct)
    w_f = _percent("feed_oxygen_wt_pct", feed_oxygen_wt_pct)
    if np.any((w_f > 0) & (w <= w_f)):
        raise PhysicsError("composition: o_wt_pct must exceed feed_oxygen_wt_pct for the "
                           "error propagation")
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(w_f > 0, w / (w - w_f), 1.0)  # d ln(w − w_f) / d ln w
        feed = np.where(w_f > 0, -w_f / (w - w_f), 0.0)
    if b == "starting":
        s_w, s_f = share + w / (1.0 - w), feed
    else:
        s_w, s_f = share, feed + w_f / (1.0 - w_f)
    g = _geometry_gain(thickness_nm, radius_nm, sysm, b)
    return _out(np.asarray(g * np.sqrt((s_w * sw) ** 2 + (s_f * sf) ** 2 + ss**2)))


def _geometry_gain(thickness_nm: ArrayLike | None, radius_nm: ArrayLike | None,
                   sysm: OxideSystem, basis: Basis) -> FloatArray:
    """d ln x / d ln y of the sphere geometry (1 for a flat surface)."""
    if radius_nm is None:
        return np.asarray(1.0)
    if thickness_nm is None:
        raise PhysicsError("composition: the sphere factor needs thickness_nm with radius_nm")
    r = _array("radius_nm", radius_nm, positive=True)
    x = _array("thickness_nm", thickness_nm, positive=True)
    e = sysm.expansion
    if np.any(x >= _x_full(r, e, basis)):
        raise PhysicsError("composition: thickness_nm reaches the particle oxidised through")
    y = _volume_nm(x, r, e, basis)
    dxdy = _dxdy_start(y, r, e) if basis == "starting" else 1.0 / (1.0 - x / r) ** 2
    return np.asarray(y / x * dxdy)


# --------------------------------------------------------------------------- method validity


def xps_valid(thickness_nm: ArrayLike) -> bool | NDArray[np.bool_]:
    """Whether XPS (Si 2p / Sn 3d overlayer method) can measure this oxide thickness.

    True for :data:`XPS_MIN_NM` <= x <= :data:`XPS_MAX_NM` (1–8 nm): the reference method
    covers 1.5–8 nm and the method holds up to ~3λ ≈ 8–10 nm (§8); thicker shells need the
    O + BET route (:func:`thickness_from_oxygen_nm`) or TEM.

    Returns
    -------
    bool or ndarray of bool
        Same shape as ``thickness_nm``.
    """
    x = _array("thickness_nm", thickness_nm)
    ok = (x >= XPS_MIN_NM) & (x <= XPS_MAX_NM)
    return bool(ok) if ok.ndim == 0 else ok
