"""A charge's true oxide as the lab receives it: a grab sample, oxygen and BET, or XPS.

The lab does not see the charge's mean. It takes a sample composed of a few increments (trays)
of the charge, so the bed's spread from tray to tray reaches the result; it measures the
sample's oxygen content by inert-gas fusion and the specific surface by BET (each with the
repeatability the plant file states and a bias of this lab, truth ``[lab]``), and derives the
layer thickness with the published inversion (:func:`twin.physics.composition.
thickness_from_oxygen_nm`, sphere-corrected with the BET diameter, powder_bed.md §8). The
layer's oxygen is the product's total oxygen: the milling pickup counts as starting oxide, as
the twin feeds it forward. XPS reads layers only inside its valid range (about 1–8 nm); a
thicker layer gets no XPS value (with the reason), never an extrapolated one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twin.equipment.base import LabResult
from twin.hidden.config import LabTruth
from twin.physics import composition

FloatArray = NDArray[np.float64]
#: Density of the powder for its BET diameter, g/cm³ (Si; the alloy's silicide is close).
POWDER_DENSITY_G_CM3 = 2.33


@dataclass(frozen=True)
class TrueCharge:
    """A charge's true oxide (an opaque truth handle: only the hidden plant and its lab read
    it; ``mean_nm`` is also kept as the run's true column for the benchmarks).

    Attributes
    ----------
    mean_nm, p5_nm, p50_nm, p95_nm : float
        Area-weighted statistics over the whole charge, nm.
    within_50pct_share, fully_oxidised_share : float
    cell_nm, cell_weight : ndarray, shape (trays, layers)
        Mean thickness per bed position (a tray in a heating zone, a depth layer) and its share
        of the charge's surface.
    ssa_m2_g : float
        True BET surface of the starting powder, m²/g.
    feed_oxygen_wt_pct : float
        True oxygen of the starting powder (milling pickup), wt %.
    material : str
        ``Si`` or ``Sn`` (the oxide's system).
    lab_truth : LabTruth
        This lab's systematic errors.
    extra : dict
        Other true figures of the run (heat, gas consumed, bed temperatures ...).
    """

    mean_nm: float
    p5_nm: float
    p50_nm: float
    p95_nm: float
    within_50pct_share: float
    fully_oxidised_share: float
    cell_nm: FloatArray
    cell_weight: FloatArray
    ssa_m2_g: float
    feed_oxygen_wt_pct: float
    material: str
    lab_truth: LabTruth
    extra: dict[str, float] = field(default_factory=dict)

    def sample_nm(self, increments: int, rng: np.random.Generator) -> float:
        """True mean thickness of a sample of ``increments`` equal increments: each a scoop
        through the whole depth of a tray drawn by its share of the charge (the tray's
        surface-weighted mean), so the tray-to-tray spread reaches the sample."""
        w = np.atleast_2d(self.cell_weight)
        x = np.atleast_2d(self.cell_nm)
        tray_w = w.sum(axis=1)
        tray_nm = (w * x).sum(axis=1) / np.maximum(tray_w, 1e-300)
        idx = rng.choice(tray_nm.size, size=max(1, increments), p=tray_w / tray_w.sum())
        return float(tray_nm[idx].mean())

    def analyse(self, lab: Any, rng: np.random.Generator) -> LabResult:
        """The lab's result for a sample of this charge (see the module notes)."""
        method = "o_bet" if lab.method == "auto" else str(lab.method)
        x = self.sample_nm(lab.increments, rng)
        bias = self.lab_truth
        if method == "xps":
            if not bool(composition.xps_valid(x)):
                return LabResult(math.nan, "xps", note=(
                    f"layer outside the XPS range ({composition.XPS_MIN_NM:g}-"
                    f"{composition.XPS_MAX_NM:g} nm): measure oxygen and BET instead"))
            sd = math.hypot(lab.noise_abs_nm, lab.noise_rel * x)
            return LabResult(max(x + bias.xps_bias_nm + sd * float(rng.standard_normal()),
                                 0.0), "xps")
        # Oxygen and surface of the sample, as the instruments read them.
        o_true = float(composition.oxygen_wt_pct(
            x, self.ssa_m2_g, material=self.material, radius_nm=_bet_radius_nm(self.ssa_m2_g),
            feed_oxygen_wt_pct=self.feed_oxygen_wt_pct))
        z = rng.standard_normal(2)
        o_read = o_true * math.exp(bias.oxygen_bias_rel + lab.oxygen_rsd * float(z[0]))
        s_read = self.ssa_m2_g * math.exp(bias.bet_bias_rel + lab.bet_rsd * float(z[1]))
        try:
            x_read = float(composition.thickness_from_oxygen_nm(
                o_read, s_read, material=self.material, radius_nm=_bet_radius_nm(s_read)))
        except ValueError as exc:  # beyond complete conversion: the lab cannot invert it
            return LabResult(math.nan, "o_bet", o_read, s_read, note=str(exc))
        return LabResult(x_read, "o_bet", o_read, s_read)


def _bet_radius_nm(ssa_m2_g: float) -> float:
    """Radius of the sphere with the powder's BET surface, nm: ``d = 6 / (rho S)``."""
    return 3000.0 / (POWDER_DENSITY_G_CM3 * ssa_m2_g)
