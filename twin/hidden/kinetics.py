"""Kinetic constants of the hidden oxidation process, and the bed's physical parameters.

The hidden plant has its own parameter set: :class:`Kinetics` starts from the published
standard values (``Kinetics()``) and may be moved anywhere inside the published spread
(:meth:`Kinetics.spread_end` is the other end of it), independently of the twin's defaults in
:mod:`twin.physics.oxidation_rates`. :class:`BedParams` holds the tray bed's heat and gas
transport parameters. Sources are cited next to each value; "estimate" marks values for which
no source was found (see ``/work/shared/notes/powder_bed.md``, quoted as "note §n").

Rate laws, per oxide class (units nm, s, atm, eV)
-------------------------------------------------
* Deal–Grove (Deal & Grove, J. Appl. Phys. 36, 3770 (1965)): ``dx/dt = B / (2 x_eff + A)``
  for the O2 and the H2O channel in parallel, ``A = B / (B/A)``. Dry ``B ∝ p`` (Henry's law),
  ``B/A ∝ p^n_dry``; wet ``B`` and ``B/A ∝ p^n_wet`` (note §5; FLOOXS gives B and B/A separate
  pressure exponents). B/A and the thin-oxide term scale with crystal orientation, B does not
  (note §4: ViennaPS psOxidation.hpp, SOSim constants).
* Thin-oxide regime, one of: SUPREM-IV ``C exp(-x/L)`` added to the rate, or Massoud, Plummer
  & Irene (J. Electrochem. Soc. 132, 2685 (1985)) ``Σ K_i exp(-t/τ_i)`` added to B, with their
  own B and B/A fits (note §5, /work/shared/reference/README.md).
* Second phase (silicide / intermetallic): its own Arrhenius energies, anchored to the Si
  rates at ``silicide_t_ref_c``; TiSi2 in steam has 46.2 kcal/mol (reaction) and 32 kcal/mol
  (diffusion) (Chen et al., Appl. Phys. Lett. 1980; note §7). Factors are estimates.
* Tin: logarithmic growth ``r exp(-x/l)`` plus a parabolic channel switched on above ~180 °C
  (Ea 0.34 eV; Acta Phys. Sin. 49, 1014 (2000); note §7). Prefactors are estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from twin.errors import PhysicsError

FloatArray = NDArray[np.float64]

K_B_EV = 8.617333262e-5  # Boltzmann constant, eV/K
K_B_J = 1.380649e-23  # Boltzmann constant, J/K
R_GAS = 8.314462618  # J/(mol K)
ATM_PA = 101325.0
SIGMA_SB = 5.670374419e-8  # Stefan–Boltzmann, W/(m² K⁴)
UM2_PER_H = 1e6 / 3600.0  # µm²/h -> nm²/s
UM_PER_H = 1e3 / 3600.0  # µm/h -> nm/s
UM_PER_MIN = 1e3 / 60.0  # µm/min -> nm/s
KCAL_MOL_EV = 4184.0 / 96485.33212  # kcal/mol -> eV per particle

# Oxide per area and nm (note §1): SiO2 at 2.2 g/cm³, 60.08 g/mol -> 3.66e-5 mol/(m² nm)
# (computed); SnO2 at 6.95 g/cm³, 150.71 g/mol (handbook density; estimate of the film's).
SIO2_MOL_M2_NM = 2.2e6 * 1e-9 / 60.08
SNO2_MOL_M2_NM = 6.95e6 * 1e-9 / 150.71
# Heats (note §1, §7): ΔfH°(SiO2) −910.86 kJ/mol (NIST-JANAF), ΔfH°(H2O, g) −241.82 kJ/mol,
# so Si + 2 H2O -> SiO2 + 2 H2 releases 910.86 − 2·241.82 = 427.2 kJ/mol (computed);
# ΔfH°(SnO2) −577.63 kJ/mol (OECD-NEA vol. 12): 577.6 (O2) and 94.0 kJ/mol (H2O) (computed).
HEAT_SIO2_O2_J = 910.86e3
HEAT_SIO2_H2O_J = 910.86e3 - 2 * 241.82e3
HEAT_SNO2_O2_J = 577.63e3
HEAT_SNO2_H2O_J = 577.63e3 - 2 * 241.82e3
# Oxide volume per metal volume consumed: SiO2/Si 2.27 (note §1, §4), SnO2/Sn 1.31 (note §7).
EXPANSION = {"Si": 2.27, "Sn": 1.31}
SN_MELT_C = 231.928  # ITS-90 freezing point of tin (NIST SRM 741a; note §7)
MATERIALS = ("Si", "Sn")
THIN_MODELS = ("suprem", "massoud", "none")
ORIENTATIONS = ("100", "111", "110")
N_CLASSES = 4  # (100), (111), (110) facets of the free phase, then the second phase


def _check(name: str, value: float, lo: float, hi: float, *, lo_open: bool = False,
           owner: str = "Kinetics") -> None:
    ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        bracket = "(" if lo_open else "["
        raise PhysicsError(f"{owner}.{name} must be in {bracket}{lo:g}, {hi:g}], got {value!r}")


@dataclass(frozen=True)
class Kinetics:
    """Rate constants of the hidden process (all published standard values by default).

    Units: B in nm²/s, B/A and thin-term prefactors in nm/s, energies in eV, pressures in atm;
    the dry constants refer to 1 atm O2, the wet ones to ``wet_p_ref_atm`` of H2O. Orientation
    tuples are ordered (100), (111), (110).
    """

    # Deal–Grove standard table (Plummer, Deal & Griffin, Silicon VLSI Technology, Table 6-2;
    # note §5: 772 µm²/h 1.23 eV; B/A(111) 6.23e6 µm/h 2.00 eV; wet 386 µm²/h 0.78 eV,
    # 1.63e8 µm/h 2.05 eV at 640 torr).
    dry_b0_nm2_s: float = 772.0 * UM2_PER_H
    dry_eb_ev: float = 1.23
    dry_ba0_111_nm_s: float = 6.23e6 * UM_PER_H
    dry_eba_ev: float = 2.00
    n_dry: float = 0.75  # B/A ∝ p^n_dry; "0.7-0.8 commonly quoted" (note §5): estimate
    wet_b0_nm2_s: float = 386.0 * UM2_PER_H
    wet_eb_ev: float = 0.78
    wet_ba0_111_nm_s: float = 1.63e8 * UM_PER_H
    wet_eba_ev: float = 2.05
    wet_p_ref_atm: float = 640.0 / 760.0
    n_wet: float = 1.0  # B, B/A ∝ p^n_wet, 0.5..1 (note §5: n ≈ 1 wet, estimate)
    # B/A relative to (111): (100) 1/1.68 (Deal–Grove; note §4), (110) 1.45/1.68 (Plummer).
    ba_orientation: tuple[float, float, float] = (1.0 / 1.68, 1.0, 1.45 / 1.68)
    # Facet mix of milled powder: random facets, an average is used (note §4): estimate.
    orientation_weights: tuple[float, float, float] = (0.40, 0.35, 0.25)
    thin_model: str = "suprem"
    # SUPREM-IV thin term (C0 nm/s, Ec eV, L nm) for (100), (111) (SUPREM-IV.GS modelrc;
    # /work/shared/reference/README.md); (110) = (100) scaled like B/A: estimate.
    suprem_thin: tuple[tuple[float, float, float], ...] = (
        (6.57e6 * UM_PER_MIN, 2.37, 6.9),
        (5.87e6 * UM_PER_MIN, 2.32, 7.8),
        (6.57e6 * UM_PER_MIN * 1.45, 2.37, 6.9),
    )
    # Pressure law of the thin term p (p_ref + p_half) / ((p + p_half) p_ref), p_ref 1 atm:
    # nearly flat between 0.2 and 1 atm as the reference data assume, linear when starved.
    thin_p_half_atm: float = 0.02  # estimate
    # Massoud, Plummer & Irene 1985, (100), nm and min (note §5): (B0, EB, BA0, EBA) at or below
    # and above massoud_switch_c, and ((K0, EK, τ0, Eτ), ...), τ = τ0 exp(+Eτ/kT).
    massoud_low: tuple[float, float, float, float] = (1.70e11, 2.22, 7.35e6, 1.76)
    massoud_high: tuple[float, float, float, float] = (1.31e5, 0.68, 3.53e12, 3.20)
    massoud_k: tuple[tuple[float, float, float, float], ...] = (
        (2.49e11, 2.18, 4.14e-6, 1.38),
        (3.72e11, 2.28, 2.71e-7, 1.88),
    )
    massoud_switch_c: float = 1000.0
    # Stress retardation of curved surfaces (Kao et al., IEEE TED 34, 1008 (1987); note §4):
    # k_s and D times exp(-σ V / kT), σ = σ0 x / (x + r) · relief(T). σ0 = 4.5e9 dyn/cm²
    # (J. Appl. Phys. 65, 3667 (1989)); activation volumes: estimate.
    stress_sigma0_pa: float = 4.5e8
    stress_v_react_nm3: float = 0.025
    stress_v_diff_nm3: float = 0.075
    # Viscous relief above ~950-1000 °C (note §4: no source, estimate): logistic switch.
    relief_onset_c: float = 975.0
    relief_width_k: float = 20.0
    # Second phase: factors on the Si rates at silicide_t_ref_c (estimate: "silicides oxidise
    # faster than Si", note §7) and its own energies (TiSi2 in steam, Chen et al. 1980).
    silicide_b_factor: float = 1.5
    silicide_ba_factor: float = 2.0
    silicide_thin_factor: float = 1.0
    silicide_eb_ev: float = 32.0 * KCAL_MOL_EV
    silicide_eba_ev: float = 46.2 * KCAL_MOL_EV
    silicide_t_ref_c: float = 900.0
    # Tin (note §7, reference README): log law 1.6e-3 nm/s at 25 °C in air, l = 1/ln 10 nm,
    # parabolic k_p = 108 nm²/s · exp(-0.34 eV/kT) above 180 °C with A = 1 nm (prefactors:
    # estimate); water counts half as much as O2 (estimate); intermetallic factor: estimate.
    sn_log_rate_25c_nm_s: float = 1.6e-3
    sn_log_ea_ev: float = 0.34
    sn_log_length_nm: float = 1.0 / math.log(10.0)
    sn_par_k0_nm2_s: float = 108.0
    sn_par_ea_ev: float = 0.34
    sn_par_a_nm: float = 1.0
    sn_par_onset_c: float = 180.0
    sn_par_width_k: float = 8.0
    sn_p_half_atm: float = 0.01
    sn_p_ref_atm: float = 0.21
    sn_h2o_weight: float = 0.5
    sn_intermetallic_factor: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float | int) and not math.isfinite(v):
                raise PhysicsError(f"Kinetics.{f.name} must be finite, got {v!r}")
        for name in ("dry_b0_nm2_s", "dry_ba0_111_nm_s", "wet_b0_nm2_s", "wet_ba0_111_nm_s",
                     "wet_p_ref_atm", "relief_width_k", "sn_log_rate_25c_nm_s",
                     "sn_log_length_nm", "sn_par_k0_nm2_s", "sn_par_a_nm", "sn_par_width_k",
                     "sn_p_half_atm", "sn_p_ref_atm", "thin_p_half_atm"):
            _check(name, getattr(self, name), 0.0, math.inf, lo_open=True)
        for name in ("dry_eb_ev", "dry_eba_ev", "wet_eb_ev", "wet_eba_ev", "silicide_eb_ev",
                     "silicide_eba_ev", "sn_log_ea_ev", "sn_par_ea_ev"):
            _check(name, getattr(self, name), 0.0, 5.0)
        _check("n_dry", self.n_dry, 0.5, 1.0)
        _check("n_wet", self.n_wet, 0.5, 1.0)
        _check("silicide_ba_factor", self.silicide_ba_factor, 0.0, math.inf, lo_open=True)
        for name in ("stress_sigma0_pa", "stress_v_react_nm3", "stress_v_diff_nm3",
                     "silicide_b_factor", "silicide_thin_factor",
                     "sn_h2o_weight", "sn_intermetallic_factor"):
            _check(name, getattr(self, name), 0.0, math.inf)
        _check("silicide_t_ref_c", self.silicide_t_ref_c, 200.0, 1400.0)
        if self.thin_model not in THIN_MODELS:
            raise PhysicsError(f"Kinetics.thin_model must be one of {', '.join(THIN_MODELS)}, "
                               f"got {self.thin_model!r}")
        for name in ("ba_orientation", "orientation_weights"):
            t = tuple(float(v) for v in getattr(self, name))
            positive = name == "ba_orientation"
            if len(t) != 3 or any(not (math.isfinite(v) and (v > 0 if positive else v >= 0))
                                  for v in t):
                rel = "> 0" if positive else ">= 0"
                raise PhysicsError(f"Kinetics.{name} must be 3 finite values {rel} for (100), "
                                   f"(111), (110), got {getattr(self, name)!r}")
            object.__setattr__(self, name, t)
        if abs(sum(self.orientation_weights) - 1.0) > 1e-9:
            raise PhysicsError(f"Kinetics.orientation_weights must sum to 1, got "
                               f"{self.orientation_weights!r}")
        if len(self.suprem_thin) != 3 or any(len(c) != 3 or c[0] < 0 or c[2] <= 0
                                              for c in self.suprem_thin):
            raise PhysicsError("Kinetics.suprem_thin must be 3 triples (C0 >= 0 nm/s, Ec eV, "
                               f"L > 0 nm), got {self.suprem_thin!r}")
        if len(self.massoud_k) != 2 or any(len(c) != 4 or c[0] < 0 or c[2] <= 0
                                            for c in self.massoud_k):
            raise PhysicsError("Kinetics.massoud_k must be 2 quadruples (K0 >= 0, EK, τ0 > 0, "
                               f"Eτ), got {self.massoud_k!r}")

    @classmethod
    def spread_end(cls) -> Kinetics:
        """The other end of the published spread (note §5).

        Massoud's thin regime with his own B and B/A fits (Ea of B 2.22 eV instead of 1.23 eV),
        B/A of dry O2 ∝ p^0.7 and wet rates ∝ p^0.5: 16.7 nm instead of 7.8 nm on bare (100)
        in 50 min at 900 °C in O2, and less steam growth at low humidity.
        """
        return cls(thin_model="massoud", n_dry=0.7, n_wet=0.5)


@dataclass(frozen=True)
class BedParams:
    """Tray bed of a static batch furnace: heat and gas transport (SI units unless named).

    Attributes
    ----------
    tray_depth_m : float
        Powder depth h on a tray, m (10-15 mm typical).
    layers : int
        Depth layers the bed is split into (equal mass each).
    bulk_density_kg_m3 : float
        Bed bulk density ρ_b (note §2: 1000 kg/m³, estimate).
    cp_j_kg_k : float
        Heat capacity, 0.94 J/(g K) (c_p(Si) at 1000 K, NIST WebBook; note §1).
    k_eff_w_m_k : float
        Effective bed conductivity. Zehner–Schlünder gives 0.43 W/(m K) for Si spheres in N2
        at 800 °C; submicron, milled powder conducts worse (Smoluchowski, note §2): 0.25 is an
        estimate inside the note's 0.2-0.43 range.
    emissivity : float
        Radiative exchange factor wall-bed surface (estimate).
    h_conv_w_m2_k : float
        Convective transfer at the bed surface (estimate).
    heated_faces : int
        1: heated from the top surface only (depth h counts fully, note §2); 2: also from
        the tray bottom.
    d_molecular_cm2_s, d_knudsen_cm2_s : float
        O2-N2 molecular (∝ T^1.75) and 1 µm-pore Knudsen (∝ T^0.5) diffusivities at 800 °C
        (note §3: 1.9 estimate, 2.8 computed).
    porosity_over_tortuosity : float
        ε/τ of the bed (note §3: 0.5/3, estimate); D_eff = ε/τ / (1/D_m + 1/D_K) ≈ 0.19 cm²/s.
    h2o_diffusivity_factor : float
        D(H2O)/D(O2) in the bed (lighter, faster molecule; estimate).
    zone_weights : tuple of float or None
        Mass share of the charge per heating zone (equal when None).
    pressure_atm : float
        Furnace pressure.
    """

    tray_depth_m: float = 0.012
    layers: int = 3
    bulk_density_kg_m3: float = 1000.0
    cp_j_kg_k: float = 940.0
    k_eff_w_m_k: float = 0.25
    emissivity: float = 0.8
    h_conv_w_m2_k: float = 10.0
    heated_faces: int = 1
    d_molecular_cm2_s: float = 1.9
    d_knudsen_cm2_s: float = 2.8
    porosity_over_tortuosity: float = 0.5 / 3.0
    h2o_diffusivity_factor: float = 1.3
    zone_weights: tuple[float, ...] | None = None
    pressure_atm: float = 1.0

    def __post_init__(self) -> None:
        own = "BedParams"
        _check("tray_depth_m", self.tray_depth_m, 0.0, 0.2, lo_open=True, owner=own)
        if not (isinstance(self.layers, int) and 1 <= self.layers <= 20):
            raise PhysicsError(f"{own}.layers must be an integer in [1, 20], got "
                               f"{self.layers!r}")
        if self.heated_faces not in (1, 2):
            raise PhysicsError(f"{own}.heated_faces must be 1 or 2, got {self.heated_faces!r}")
        for name in ("bulk_density_kg_m3", "cp_j_kg_k", "k_eff_w_m_k", "d_molecular_cm2_s",
                     "d_knudsen_cm2_s", "porosity_over_tortuosity", "h2o_diffusivity_factor",
                     "pressure_atm"):
            _check(name, getattr(self, name), 0.0, math.inf, lo_open=True, owner=own)
        _check("emissivity", self.emissivity, 0.0, 1.0, owner=own)
        _check("h_conv_w_m2_k", self.h_conv_w_m2_k, 0.0, math.inf, owner=own)
        if self.zone_weights is not None:
            w = tuple(float(v) for v in self.zone_weights)
            if not w or any(not (math.isfinite(v) and v >= 0) for v in w) or (
                    abs(sum(w) - 1.0) > 1e-9):
                raise PhysicsError(f"{own}.zone_weights must be values >= 0 summing to 1, got "
                                   f"{self.zone_weights!r}")
            object.__setattr__(self, "zone_weights", w)

    def d_eff_m2_s(self, temperature_k: FloatArray) -> FloatArray:
        """Effective O2 diffusivity in the bed at ``temperature_k``, m²/s (note §3)."""
        t = np.asarray(temperature_k) / 1073.15
        d_m = self.d_molecular_cm2_s * t**1.75
        d_k = self.d_knudsen_cm2_s * np.sqrt(t)
        return self.porosity_over_tortuosity * 1e-4 / (1.0 / d_m + 1.0 / d_k)


@dataclass(frozen=True)
class RateLaw:
    """Rate-law arrays for one material, over the :data:`N_CLASSES` classes.

    Rows of ``pre``/``ea_ev`` (value = pre · exp(-ea / kT)): dry B, dry A, wet B, wet A, thin
    C; with Massoud also dry B and A above the switch temperature and K1, K2. A = B / (B/A) is
    kept as a row of its own so that no division is needed per step. Prefactors refer to the
    pressure references below; the caller multiplies B and C by its rate factor (A unchanged).
    """

    pre: FloatArray
    ea_ev: FloatArray
    inv_length_nm: FloatArray  # (C,) 1 / L of the thin (or logarithmic) term
    has_thin: bool
    massoud: bool
    massoud_switch_c: float
    tau_pre_s: FloatArray  # (2,) Massoud τ0, s
    tau_ea_ev: FloatArray  # (2,)
    dry_p_ref_atm: float
    n_dry: float
    wet_weight: float
    wet_p_ref_atm: float
    n_wet: float
    thin_p_half_atm: float
    thin_p_ref_atm: float
    switch_onset_c: float | None  # parabolic channels switched on above (tin)
    switch_width_k: float
    expansion: float
    mol_m2_nm: float
    heat_o2_j_mol: float
    heat_h2o_j_mol: float
    melt_c: float | None


def rate_law(kin: Kinetics, material: str) -> RateLaw:
    """Build the rate-law arrays of ``material`` ('Si' or 'Sn') from ``kin``."""
    if material == "Si":
        return _silicon(kin)
    if material == "Sn":
        return _tin(kin)
    raise PhysicsError(f"hidden bed: material must be one of {', '.join(MATERIALS)}, got "
                       f"{material!r}")


def _silicon(kin: Kinetics) -> RateLaw:
    orient = np.array(kin.ba_orientation)
    w = np.array(kin.orientation_weights)
    massoud = kin.thin_model == "massoud"
    pre = np.zeros((9 if massoud else 5, N_CLASSES))
    ea = np.zeros_like(pre)
    if massoud:
        # Massoud's own (100) fits, nm/min -> nm/s; B/A and K scale with facet like B/A.
        rel = orient / orient[0]
        lo, hi = kin.massoud_low, kin.massoud_high
        pre[0, :3], ea[0, :3] = lo[0] / 60.0, lo[1]
        pre[1, :3], ea[1, :3] = lo[2] / 60.0 * rel, lo[3]
        pre[5, :3], ea[5, :3] = hi[0] / 60.0, hi[1]
        pre[6, :3], ea[6, :3] = hi[2] / 60.0 * rel, hi[3]
        for i, (k0, ek, _, _) in enumerate(kin.massoud_k):
            pre[7 + i, :3], ea[7 + i, :3] = k0 / 60.0 * rel, ek
    else:
        pre[0, :3], ea[0, :3] = kin.dry_b0_nm2_s, kin.dry_eb_ev
        pre[1, :3], ea[1, :3] = kin.dry_ba0_111_nm_s * orient, kin.dry_eba_ev
    pre[2, :3], ea[2, :3] = kin.wet_b0_nm2_s, kin.wet_eb_ev
    pre[3, :3], ea[3, :3] = kin.wet_ba0_111_nm_s * orient, kin.wet_eba_ev
    inv_len = np.full(N_CLASSES, 1.0 / kin.suprem_thin[0][2])
    if kin.thin_model == "suprem":
        for i, (c0, ec, length) in enumerate(kin.suprem_thin):
            pre[4, i], ea[4, i], inv_len[i] = c0, ec, 1.0 / length
    # Second phase: the facet-averaged Si rates at t_ref, carried to other temperatures with the
    # silicide's own energies (B: diffusion, B/A: reaction); thin term like Si (100).
    inv_kt_ref = 1.0 / (K_B_EV * (kin.silicide_t_ref_c + 273.15))
    rows: list[tuple[int, float, float | None]] = [
        (0, kin.silicide_b_factor, kin.silicide_eb_ev),
        (1, kin.silicide_ba_factor, kin.silicide_eba_ev),
        (2, kin.silicide_b_factor, kin.silicide_eb_ev),
        (3, kin.silicide_ba_factor, kin.silicide_eba_ev)]
    if massoud:
        rows += [(5, kin.silicide_b_factor, kin.silicide_eb_ev),
                 (6, kin.silicide_ba_factor, kin.silicide_eba_ev),
                 (7, kin.silicide_thin_factor, None), (8, kin.silicide_thin_factor, None)]
    rows.append((4, kin.silicide_thin_factor, None))
    for r, factor, e_new in rows:
        at_ref = float(w @ (pre[r, :3] * np.exp(-ea[r, :3] * inv_kt_ref)))
        if e_new is None:  # thin terms keep the (100) energy
            pre[r, 3], ea[r, 3] = factor * pre[r, 0], ea[r, 0]
        else:
            pre[r, 3], ea[r, 3] = factor * at_ref * np.exp(e_new * inv_kt_ref), e_new
    _b_over_ba(pre, ea, ((0, 1), (2, 3), (5, 6)) if massoud else ((0, 1), (2, 3)))
    tau = np.array([k[2] * 60.0 for k in kin.massoud_k])
    tau_ea = np.array([k[3] for k in kin.massoud_k])
    return RateLaw(pre, ea, inv_len, kin.thin_model == "suprem", massoud, kin.massoud_switch_c,
                   tau, tau_ea, 1.0, kin.n_dry, 1.0, kin.wet_p_ref_atm, kin.n_wet,
                   kin.thin_p_half_atm, 1.0, None, 1.0, EXPANSION["Si"], SIO2_MOL_M2_NM,
                   HEAT_SIO2_O2_J, HEAT_SIO2_H2O_J, None)


def _b_over_ba(pre: FloatArray, ea: FloatArray, pairs: tuple[tuple[int, int], ...]) -> None:
    """Turn the B/A rows of each (B row, B/A row) pair into A = B / (B/A) rows, in place."""
    for rb, rba in pairs:
        pre[rba] = pre[rb] / pre[rba]
        ea[rba] = ea[rb] - ea[rba]


def _tin(kin: Kinetics) -> RateLaw:
    # β-Sn has no facet data: the three facet classes are equal; the intermetallic phase grows
    # SnO2 at sn_intermetallic_factor times the tin rates (estimate).
    f = np.array([1.0, 1.0, 1.0, kin.sn_intermetallic_factor])
    k0 = kin.sn_par_k0_nm2_s
    log_pre = kin.sn_log_rate_25c_nm_s * math.exp(kin.sn_log_ea_ev / (K_B_EV * 298.15))
    pre = np.vstack([k0 * f, k0 / kin.sn_par_a_nm * f, k0 * f, k0 / kin.sn_par_a_nm * f,
                     log_pre * f])
    ea = np.array([[kin.sn_par_ea_ev] * N_CLASSES] * 4 + [[kin.sn_log_ea_ev] * N_CLASSES])
    _b_over_ba(pre, ea, ((0, 1), (2, 3)))
    inv_len = np.full(N_CLASSES, 1.0 / kin.sn_log_length_nm)
    return RateLaw(pre, ea, inv_len, True, False, 0.0, np.ones(2), np.zeros(2),
                   kin.sn_p_ref_atm, 1.0, kin.sn_h2o_weight, kin.sn_p_ref_atm, 1.0,
                   kin.sn_p_half_atm, kin.sn_p_ref_atm, kin.sn_par_onset_c, kin.sn_par_width_k,
                   EXPANSION["Sn"], SNO2_MOL_M2_NM, HEAT_SNO2_O2_J, HEAT_SNO2_H2O_J, SN_MELT_C)


def coefficients(law: RateLaw, temperature_c: FloatArray, po2_atm: FloatArray | float,
                 ph2o_atm: FloatArray | float, rate_factor: FloatArray | float = 1.0,
                 massoud_theta: FloatArray | None = None
                 ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Rate coefficients on any grid: inputs broadcast to a shape S, outputs have (C,) + S.

    Returns ``(b_dry, a_dry, b_wet, a_wet, c_thin)``: B (nm²/s) and A (nm) of the two
    Deal–Grove channels and the thin-term prefactor C (nm/s) at p and T, B and C times
    ``rate_factor`` (no stress). ``massoud_theta`` (2,) + S: reduced times Σ dt/τ_i of
    Massoud's terms (zero when None). The class axis comes first so that a caller's class
    arrays (…, C, cells) broadcast over contiguous blocks.
    """
    t_c = np.asarray(temperature_c, dtype=float)
    inv_kt = 1.0 / (K_B_EV * (t_c + 273.15))
    rows = law.pre.shape[0]
    shape = (rows, N_CLASSES) + (1,) * t_c.ndim
    k = law.pre.reshape(shape) * np.exp(law.ea_ev.reshape(shape) * -inv_kt)
    if law.massoud:
        # The fit changes above the switch; a bed held at exactly the switch temperature must
        # not flip between the two on rounding.
        high = t_c > law.massoud_switch_c + 1e-6
        k_b, k_a = np.where(high, k[5], k[0]), np.where(high, k[6], k[1])
    else:
        k_b, k_a = k[0], k[1]
    pd = np.maximum(po2_atm, 0.0) * (1.0 / law.dry_p_ref_atm)
    pw = np.maximum(ph2o_atm, 0.0) * (law.wet_weight / law.wet_p_ref_atm)
    # A ∝ p^(1 - n) (B ∝ p, B/A ∝ p^n); the floor keeps 2 x + A > 0 on a bare surface.
    a_dry = k_a * pd ** (1.0 - law.n_dry) + 1e-9
    a_wet = k[3] + 1e-9
    p_half, p_ref = law.thin_p_half_atm, law.thin_p_ref_atm
    p_o2 = pd * law.dry_p_ref_atm
    thin_p = p_o2 * ((p_ref + p_half) / p_ref) / (p_o2 + p_half) * rate_factor
    pd = pd * rate_factor
    pw = pw ** law.n_wet * rate_factor
    if law.switch_onset_c is not None:
        on = 1.0 / (1.0 + np.exp((law.switch_onset_c - t_c) / law.switch_width_k))
        pd, pw = pd * on, pw * on
    b_dry = k_b * pd
    if law.massoud:
        theta = np.zeros((2,) + t_c.shape) if massoud_theta is None else massoud_theta
        b_dry = b_dry + (k[7] * np.exp(-theta[0]) + k[8] * np.exp(-theta[1])) * thin_p
    return b_dry, a_dry, k[2] * pw, a_wet, k[4] * thin_p


def massoud_inverse_tau(law: RateLaw, temperature_c: FloatArray) -> FloatArray:
    """1/τ_i (1/s) of Massoud's two terms at ``temperature_c``, shape (2,) + shape of T."""
    inv_kt = 1.0 / (K_B_EV * (np.asarray(temperature_c) + 273.15))
    ex = law.tau_ea_ev.reshape((2,) + (1,) * inv_kt.ndim) * inv_kt[None]
    return np.exp(-ex) / law.tau_pre_s.reshape((2,) + (1,) * inv_kt.ndim)
