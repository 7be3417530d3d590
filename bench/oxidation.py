"""Benchmark: batch oxide predictions per second (vectorised vs plain Python).

One prediction = oxide distribution over a 64-bin particle-size distribution after a 2-hour
ramp-and-hold profile (25 -> 650 °C at 10 °C/min, hold, cool at 25 °C/min, humid air). The
twin's whole charge model is timed too: each record through the charge's bed lag and offset,
the growth capped at the oxidant the gas delivers (a 58 kg charge of 13 m²/g at 250 slm), as
the VM and the controller evaluate it (:meth:`twin.control.model.FurnaceModel.predict_profiles`).
The plain-Python reference runs the same integration (same grid rule, Strang-split flat
solve, Heun steps in the flat thickness for every bin) with loops and :mod:`math`, in the same
run, so the ratio does not depend on the machine.

Run: ``python bench/oxidation.py [--batches N] [--reference N]``; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from twin.config.schema import Calibration, FurnaceLimits
from twin.control.model import FurnaceModel, OxidationContext
from twin.physics import oxidation_rates as R
from twin.physics.oxidation import BatchProfile, Profile, grow_particles_batch
from twin.physics.oxidation_solver import DEFAULT_SPHERE_STEPS, DEFAULT_STEPS
from twin.physics.psd import SizeDistribution, lognormal

PO2, PH2O = 0.21, 0.6
Z = R.VOLUME_EXPANSION["Si"]


def make_profiles(n: int, rng: np.random.Generator) -> list[Profile]:
    """Two-hour ramp-and-hold profiles with hold temperatures scattered around 650 °C."""
    out = []
    for hold_c in 650.0 + rng.normal(0.0, 5.0, n):
        ramp_s = (hold_c - 25.0) / 10.0 * 60.0
        cool_s = (hold_c - 25.0) / 25.0 * 60.0
        out.append(Profile.ramp_hold(start_c=25.0, hold_c=hold_c, ramp_c_per_min=10.0,
                                     hold_s=7200.0 - ramp_s - cool_s, cool_c_per_min=25.0,
                                     po2_atm=PO2, ph2o_atm=PH2O))
    return out


# --- plain-Python reference ---------------------------------------------------------------

def _coeffs(t_c: float) -> tuple[list[tuple[float, float]], float]:
    kt = R.K_B_EV * (t_c + 273.15)
    f100 = R.ORIENTATION_BA_FACTOR["100"]
    b = R.DRY_B0 * math.exp(-R.DRY_EB / kt) * PO2
    ba = R.DRY_BA0_111 * math.exp(-R.DRY_EBA / kt) * f100 * PO2**R.DRY_BA_P_EXP
    pw = PH2O / R.WET_P_REF_ATM
    bw = R.WET_B0 * math.exp(-R.WET_EB / kt) * pw
    baw = R.WET_BA0_111 * math.exp(-R.WET_EBA / kt) * f100 * pw
    c0, ec, _ = R.SUPREM_THIN["100"]
    thin = c0 * math.exp(-ec / kt) * PO2 * (1 + R.THIN_P_HALF_ATM) / (PO2 + R.THIN_P_HALF_ATM)
    return [(b, b / ba), (bw, bw / baw)], thin


def _temp(p: Profile, t: float) -> float:
    ts, tc = p.time_s, p.temperature_c
    for i in range(len(ts) - 1):
        if t <= ts[i + 1]:
            span = ts[i + 1] - ts[i]
            return float(tc[i] + (tc[i + 1] - tc[i]) * ((t - ts[i]) / span if span else 0.0))
    return float(tc[-1])


def _grid(p: Profile, n: int) -> list[float]:
    m, dur = 97, p.duration_s
    tp = [dur * i / (m - 1) for i in range(m)]
    w = []
    for t in tp:
        ch, c = _coeffs(_temp(p, t))
        w.append(c + sum(pp / qq for pp, qq in ch))
    cum = [0.0]
    for i in range(1, m):
        cum.append(cum[-1] + 0.5 * (w[i] + w[i - 1]))
    phi = [0.5 * i / (m - 1) + 0.5 * cum[i] / cum[-1] for i in range(m)]
    knots, j = [], 0
    for k in range(n + 1):
        q = k / n
        while j < m - 2 and phi[j + 1] < q:
            j += 1
        f = (q - phi[j]) / (phi[j + 1] - phi[j])
        knots.append(tp[j] + min(max(f, 0.0), 1.0) * (tp[j + 1] - tp[j]))
    knots[0], knots[-1] = 0.0, dur
    return knots


def _rate(ch: list[tuple[float, float]], c: float, length: float, x: float, xe: float) -> float:
    return c * math.exp(-x / length) + sum(pp / (2 * xe + qq) for pp, qq in ch)


def _shell(r0: float, d: float) -> tuple[float, float]:
    a = max(r0 - d, 0.0)
    vol = Z * d * (r0 * r0 + r0 * a + a * a)
    b = (a**3 + vol) ** (1.0 / 3.0)
    x = vol / (b * b + a * b + a * a)
    return x, x * a / b


def reference_prediction(p: Profile, psd: SizeDistribution) -> float:
    """Area-weighted mean thickness, nm, by the same scheme in plain Python."""
    n, m = DEFAULT_STEPS, DEFAULT_SPHERE_STEPS
    length = R.SUPREM_THIN["100"][2]
    knots = _grid(p, n)
    x, s, co = 0.0, [0.0], [_coeffs(_temp(p, 0.0))]
    for j in range(n):
        h = knots[j + 1] - knots[j]
        ch, c = _coeffs(_temp(p, 0.5 * (knots[j] + knots[j + 1])))
        x += length * math.log1p(0.5 * c * h / length * math.exp(-x / length))
        for pp, qq, frac in ((*ch[0], 0.5), (*ch[1], 1.0), (*ch[0], 0.5)):
            g = 2 * x + qq
            x += 2 * pp * frac * h / (g + math.sqrt(g * g + 4 * pp * frac * h))
        x += length * math.log1p(0.5 * c * h / length * math.exp(-x / length))
        s.append(x)
        co.append(_coeffs(_temp(p, knots[j + 1])))
    idx = [0]
    for k in range(1, m + 1):
        target = s[0] + (s[-1] - s[0]) * k / m
        i = idx[-1]
        while i < n and s[i] < target:
            i += 1
        idx.append(i)
    idx[-1] = n
    total = 0.0
    for r, wa in zip(psd.radius_nm, psd.area_fraction, strict=True):
        r0, d = float(r), 0.0

        def slope(i: int, dd: float, r0: float = r0) -> float:
            xx, xe = _shell(r0, dd)
            ch, c = co[i]
            flat = _rate(ch, c, length, s[i], s[i])
            return _rate(ch, c, length, xx, xe) / flat / Z if flat > 0 else 1.0 / Z

        k1 = slope(idx[0], d)
        for k in range(m):
            hs = s[idx[k + 1]] - s[idx[k]]
            k2 = slope(idx[k + 1], min(d + hs * k1, r0))
            d = min(d + 0.5 * hs * (k1 + k2), r0)
            k1 = slope(idx[k + 1], d)
        total += wa * _shell(r0, d)[0]
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--reference", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(20240601)
    profiles = make_profiles(args.batches, rng)
    psd = lognormal(0.2, 1.8, n_bins=64)
    bp = BatchProfile.stack(profiles)
    kw = dict(initial_nm=0.0, orientation="100")

    grow_particles_batch([profiles[0]], psd, **kw)  # warm-up
    best = math.inf
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        fast = grow_particles_batch(bp, psd, as_arrays=True, **kw)["mean_nm"]
        best = min(best, time.perf_counter() - t0)
    fast_rate = args.batches / best

    t0 = time.perf_counter()
    ref = [reference_prediction(p, psd) for p in profiles[:args.reference]]
    ref_rate = args.reference / (time.perf_counter() - t0)
    agree = float(np.max(np.abs(np.array(ref) / fast[:args.reference] - 1.0)))

    objects = args.batches / _time_objects(bp, psd)
    charge_rate = args.batches / min(_time_charge_model(profiles, psd)
                                     for _ in range(args.repeat))
    print(f"vectorised (arrays):      {fast_rate:10.0f} predictions/s  "
          f"({args.batches} batches x 64 bins, best of {args.repeat})")
    print(f"vectorised (objects):     {objects:10.0f} predictions/s")
    print(f"twin's charge model:      {charge_rate:10.0f} predictions/s  (bed lag and offset, "
          "supply limit)")
    print(f"plain-Python reference:   {ref_rate:10.1f} predictions/s  ({args.reference} runs)")
    print(f"speed-up:                 {fast_rate / ref_rate:10.0f} x")
    print(f"max relative difference:  {agree:10.2e}  (mean thickness {np.mean(fast):.3f} nm)")
    print(json.dumps({"bench": "oxidation", "batches": args.batches, "bins": 64,
                      "profile": "25->650C 10C/min, hold, 25C/min cool, 2 h",
                      "predictions_per_s": round(fast_rate, 1),
                      "predictions_per_s_objects": round(objects, 1),
                      "charge_model_predictions_per_s": round(charge_rate, 1),
                      "reference_predictions_per_s": round(ref_rate, 2),
                      "ratio": round(fast_rate / ref_rate, 1), "max_rel_diff": agree,
                      "target_per_s": 5000,
                      "meets_target": min(fast_rate, charge_rate) >= 5000}))


def _time_charge_model(profiles: list[Profile], psd: SizeDistribution) -> float:
    model = FurnaceModel(Calibration(), FurnaceLimits(), gas_flow_slm=250.0)
    ctx = OxidationContext(psd=psd, material="Si", initial_nm=0.5, mass_kg=58.0,
                           ssa_m2_g=13.0)
    t0 = time.perf_counter()
    model.predict_profiles(profiles, ctx, (0.0, 2.0, 0.1))
    return time.perf_counter() - t0


def _time_objects(bp: BatchProfile, psd: SizeDistribution) -> float:
    t0 = time.perf_counter()
    grow_particles_batch(bp, psd)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
