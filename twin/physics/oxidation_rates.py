"""Rate constants of oxide growth on Si and Sn, as arrays over (batch, time) grids.

Every law used by :mod:`twin.physics.oxidation` is written in one generic form so that one
integrator serves all of them::

    dx/dt = sum_i P_i / (2 x_eff + Q_i) + C * exp(-x / L)

``P_i`` (nm²/s) and ``Q_i`` (nm) are Deal–Grove channels (``P = B``, ``Q = A = B / (B/A)``), one
per oxidant (dry O2, H2O, Cu3Si-catalysed O2); ``C`` (nm/s) and ``L`` (nm) are the thin-oxide
(SUPREM-IV) or logarithmic (tin, native) term. ``x_eff`` is the diffusion length, equal to the
thickness ``x`` on a flat surface and shorter on a sphere.

Sources of the constants are given next to each one; values marked *estimate* have no public
source and are plant parameters to calibrate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from twin.errors import PhysicsError

FloatArray = NDArray[np.float64]

K_B_EV = 8.617333262e-5  # Boltzmann constant, eV/K
UM2_PER_H = 1e6 / 3600.0  # µm²/h -> nm²/s
UM_PER_H = 1e3 / 3600.0  # µm/h -> nm/s
UM_PER_MIN = 1e3 / 60.0  # µm/min -> nm/s

# Deal–Grove standard constants (Plummer, Deal & Griffin, Silicon VLSI Technology, Table 6-2).
DRY_B0, DRY_EB = 772.0 * UM2_PER_H, 1.23  # B, nm²/s at p = 1 atm; eV
DRY_BA0_111, DRY_EBA = 6.23e6 * UM_PER_H, 2.00  # B/A(111), nm/s; eV
WET_B0, WET_EB = 386.0 * UM2_PER_H, 0.78  # at 640 torr H2O
WET_BA0_111, WET_EBA = 1.63e8 * UM_PER_H, 2.05
WET_P_REF_ATM = 640.0 / 760.0  # pressure the wet constants refer to, atm
# B/A relative to (111): (100) = 1/1.68 (Deal–Grove); (110) = 1.45/1.68 (Plummer et al.).
ORIENTATION_BA_FACTOR = {"111": 1.0, "100": 1.0 / 1.68, "110": 1.45 / 1.68}
# Pressure exponents: B ∝ p; B/A ∝ p^0.75 in O2 (Plummer et al. §6.5), ∝ p in H2O.
DRY_BA_P_EXP = 0.75

# SUPREM-IV thin-oxide term C0 (nm/s), Ec (eV), L (nm) (SUPREM-IV.GS modelrc). No (110) values
# are published in that file: (110) uses the (100) values scaled like B/A (estimate).
SUPREM_THIN = {
    "100": (6.57e6 * UM_PER_MIN, 2.37, 6.9),
    "111": (5.87e6 * UM_PER_MIN, 2.32, 7.8),
    "110": (6.57e6 * UM_PER_MIN * 1.45, 2.37, 6.9),
}
# The reference data keep the thin term unscaled between 0.21 and 1 atm O2; a Langmuir factor
# with this half-saturation pressure makes it vanish (continuously) without O2.
THIN_P_HALF_ATM = 1e-3

# Massoud, Plummer & Irene, J. Electrochem. Soc. 132, 2685 (1985): B (nm²/min) and B/A (nm/min)
# fits below / above 1000 °C, and x² + Ax = Bt + Σ K_i τ_i (1 - exp(-t/τ_i)) with
# K_i = K_i0 exp(-E_Ki/kT) (nm²/min), τ_i = τ_i0 exp(+E_τi/kT) (min).
MASSOUD_LOW = {  # orientation: (B0, EB, BA0, EBA)
    "100": (1.70e11, 2.22, 7.35e6, 1.76),
    "111": (1.34e9, 1.71, 1.32e7, 1.74),
    "110": (3.73e8, 1.63, 4.73e8, 2.10),
}
MASSOUD_HIGH = {  # above 1000 °C; (110) has no high-temperature fit, the low one is kept
    "100": (1.31e5, 0.68, 3.53e12, 3.20),
    "111": (2.56e5, 0.76, 6.50e11, 2.95),
    "110": (3.73e8, 1.63, 4.73e8, 2.10),
}
MASSOUD_K = {  # orientation: ((K10, EK1, tau10, Etau1), (K20, EK2, tau20, Etau2))
    "100": ((2.49e11, 2.18, 4.14e-6, 1.38), (3.72e11, 2.28, 2.71e-7, 1.88)),
    "111": ((2.70e9, 1.74, 1.72e-6, 1.45), (1.33e9, 1.76, 1.56e-7, 1.90)),
    "110": ((4.07e8, 1.54, 5.38e-9, 2.02), (1.20e8, 1.56, 1.63e-8, 2.12)),
}
MASSOUD_SWITCH_C = 1000.0

# Cu3Si-catalysed oxidation (Harper et al., Appl. Phys. Lett. 56, 2519 (1990)): > 1 µm SiO2 in
# weeks at room temperature in air. B_cu = 0.5 nm²/s at 25 °C in air gives 1 µm in ~3 weeks;
# its activation energy and A_cu are estimates (no published values).
CU_B_25C, CU_EA, CU_A_NM, CU_P_REF_ATM = 0.5, 0.3, 20.0, 0.21

# Tin: logarithmic growth dx/dt = r exp(-x/l) (1 nm per decade of time, so native SnOx reaches
# 2-4 nm in a day in air) plus a parabolic channel switched on above ~180 °C with Ea 0.34 eV
# (Acta Phys. Sin. 49, 1014 (2000)). Prefactors are estimates: k_p gives ~20 nm in 1 h at 300 °C
# for a film. Pilling–Bedworth ratio SnO2/Sn 1.31.
SN_LOG_L_NM = 1.0 / np.log(10.0)
SN_LOG_R_25C, SN_LOG_EA = 1.6e-3, 0.34  # nm/s in air at 25 °C; eV
SN_PAR_K0, SN_PAR_EA, SN_PAR_A_NM = 108.0, 0.34, 1.0  # nm²/s; eV; nm
SN_PAR_ONSET_C, SN_PAR_WIDTH_C = 180.0, 8.0
SN_MELT_C = 231.9
SN_P_HALF_ATM, SN_P_REF_ATM = 0.01, 0.21

# Oxide volume per volume of metal consumed (SiO2/Si from the reference; SnO2/Sn).
VOLUME_EXPANSION = {"Si": 2.27, "Sn": 1.31}

ORIENTATIONS = ("100", "111", "110")
THIN_MODELS = ("suprem", "massoud", "none")
MATERIALS = ("Si", "Sn")


@dataclass(frozen=True)
class RateParams:
    """Scalar choices of a rate law (shared by a whole batch)."""

    material: str = "Si"
    orientation: str = "100"
    thin_model: str = "suprem"
    copper: bool = False

    def __post_init__(self) -> None:
        if self.material not in MATERIALS:
            raise PhysicsError(f"oxidation: unknown material {self.material!r}; "
                               f"expected one of {', '.join(MATERIALS)}")
        if self.orientation not in ORIENTATIONS:
            raise PhysicsError(f"oxidation: unknown orientation {self.orientation!r}; "
                               f"expected one of {', '.join(ORIENTATIONS)}")
        if self.thin_model not in THIN_MODELS:
            raise PhysicsError(f"oxidation: unknown thin_model {self.thin_model!r}; "
                               f"expected one of {', '.join(THIN_MODELS)}")
        if self.copper and self.material != "Si":
            raise PhysicsError("oxidation: the copper (Cu3Si) rule applies to Si-bearing "
                               "alloys only, not to material 'Sn'")

    @property
    def thin_length_nm(self) -> float:
        """Decay length L of the exponential term, nm."""
        if self.material == "Sn":
            return float(SN_LOG_L_NM)
        return SUPREM_THIN[self.orientation][2]


@dataclass(frozen=True)
class Coefficients:
    """Generic-law coefficients on a (batch, time) grid; see the module docstring."""

    channels: tuple[tuple[FloatArray, FloatArray], ...]  # (P nm²/s, Q nm)
    c: FloatArray  # nm/s
    length_nm: float


def arrhenius(prefactor: float, ea_ev: float, temperature_c: FloatArray) -> FloatArray:
    """``prefactor * exp(-ea / kT)`` for temperatures in °C."""
    return prefactor * np.exp(-ea_ev / (K_B_EV * (np.asarray(temperature_c) + 273.15)))


def langmuir(p_atm: FloatArray, p_half: float, p_ref: float) -> FloatArray:
    """Saturating pressure factor, 1 at ``p_ref`` and 0 at p = 0 (dimensionless)."""
    return p_atm * (p_ref + p_half) / ((p_atm + p_half) * p_ref)


def coefficients(params: RateParams, time_s: FloatArray, temperature_c: FloatArray,
                 po2_atm: FloatArray, ph2o_atm: FloatArray, cal: FloatArray) -> Coefficients:
    """Coefficients of the generic rate law on a grid.

    Parameters
    ----------
    params : RateParams
        Material, orientation, thin-oxide model and copper flag.
    time_s, temperature_c, po2_atm, ph2o_atm : ndarray, shape (nb, n)
        Grid times (s, increasing along axis 1) and the conditions there (°C, atm).
    cal : ndarray, shape (nb, 3)
        Calibration factors on B, B/A and C for each batch row.
    """
    b_f, ba_f, c_f = (cal[:, i:i + 1] for i in range(3))
    if params.material == "Sn":
        return _tin(temperature_c, po2_atm, ph2o_atm, b_f, ba_f, c_f)
    chans: list[tuple[FloatArray, FloatArray]] = []
    c = np.zeros_like(temperature_c)
    if np.any(po2_atm > 0):
        b, ba = _dry_b_ba(params, temperature_c, po2_atm)
        p_dry, q_dry = _channel(b, ba, b_f, ba_f)
        if params.thin_model == "massoud":
            # Massoud's enhancement adds to B over the same (2x + A): A itself is unchanged.
            p_dry = p_dry + c_f * _massoud_k(params.orientation, time_s, temperature_c) * (
                langmuir(po2_atm, THIN_P_HALF_ATM, 1.0))
        elif params.thin_model == "suprem":
            c0, ec, _ = SUPREM_THIN[params.orientation]
            c = arrhenius(c0, ec, temperature_c) * langmuir(po2_atm, THIN_P_HALF_ATM, 1.0)
        chans.append((p_dry, q_dry))
    if np.any(ph2o_atm > 0):
        p = ph2o_atm / WET_P_REF_ATM
        b = arrhenius(WET_B0, WET_EB, temperature_c) * p
        ba = arrhenius(WET_BA0_111, WET_EBA, temperature_c) * p
        chans.append(_channel(b, ba * ORIENTATION_BA_FACTOR[params.orientation], b_f, ba_f))
    if params.copper and np.any(po2_atm > 0):
        b_cu = CU_B_25C * np.exp(-CU_EA / K_B_EV * (1.0 / (temperature_c + 273.15) - 1 / 298.15))
        b_cu = b_cu * po2_atm / CU_P_REF_ATM
        chans.append((b_cu * b_f, np.full_like(b_cu, CU_A_NM) * b_f / ba_f))
    return Coefficients(tuple(chans), c * c_f, params.thin_length_nm)


def _channel(b: FloatArray, ba: FloatArray, b_f: FloatArray,
             ba_f: FloatArray) -> tuple[FloatArray, FloatArray]:
    # A = B / (B/A); a zero B/A (no oxidant) would make A infinite, which the integrator
    # tolerates only as a large finite number.
    b = b * b_f
    ba = ba * ba_f
    return b, b / np.maximum(ba, 1e-300)


def _dry_b_ba(params: RateParams, t_c: FloatArray,
              po2: FloatArray) -> tuple[FloatArray, FloatArray]:
    if params.thin_model == "massoud":
        lo, hi = MASSOUD_LOW[params.orientation], MASSOUD_HIGH[params.orientation]
        high = t_c > MASSOUD_SWITCH_C
        b = np.where(high, arrhenius(hi[0], hi[1], t_c), arrhenius(lo[0], lo[1], t_c)) / 60.0
        ba = np.where(high, arrhenius(hi[2], hi[3], t_c), arrhenius(lo[2], lo[3], t_c)) / 60.0
    else:
        b = arrhenius(DRY_B0, DRY_EB, t_c)
        ba = arrhenius(DRY_BA0_111, DRY_EBA, t_c) * ORIENTATION_BA_FACTOR[params.orientation]
    return b * po2, ba * po2**DRY_BA_P_EXP


def _massoud_k(orientation: str, time_s: FloatArray, t_c: FloatArray) -> FloatArray:
    """Massoud's enhancement K1 e^{-θ1} + K2 e^{-θ2}, nm²/s, with θ_i = ∫ dt / τ_i(T).

    Massoud's integrated law is written for constant temperature; differentiating it gives
    (2x + A) dx/dt = B + Σ K_i exp(-t/τ_i), and a varying temperature enters through the
    reduced times θ_i (the number of time constants elapsed).
    """
    total = np.zeros_like(t_c)
    for k0, ek, tau0, etau in MASSOUD_K[orientation]:
        inv_tau = 1.0 / (60.0 * tau0 * np.exp(etau / (K_B_EV * (t_c + 273.15))))
        theta = np.zeros_like(t_c)
        theta[:, 1:] = np.cumsum(0.5 * (inv_tau[:, 1:] + inv_tau[:, :-1]) * np.diff(time_s),
                                 axis=1)
        total += arrhenius(k0, ek, t_c) / 60.0 * np.exp(-theta)
    return total


def _tin(t_c: FloatArray, po2: FloatArray, ph2o: FloatArray, b_f: FloatArray, ba_f: FloatArray,
         c_f: FloatArray) -> Coefficients:
    # Water oxidises tin too; counted as half as effective as O2 (estimate).
    p_ox = po2 + 0.5 * ph2o
    f_p = langmuir(p_ox, SN_P_HALF_ATM, SN_P_REF_ATM)
    r_log = SN_LOG_R_25C * np.exp(-SN_LOG_EA / K_B_EV * (1.0 / (t_c + 273.15) - 1 / 298.15))
    switch = 1.0 / (1.0 + np.exp(-(t_c - SN_PAR_ONSET_C) / SN_PAR_WIDTH_C))
    kp = arrhenius(SN_PAR_K0, SN_PAR_EA, t_c) * switch * f_p
    ba = kp / SN_PAR_A_NM
    return Coefficients((_channel(kp, ba, b_f, ba_f),), r_log * f_p * c_f, float(SN_LOG_L_NM))
