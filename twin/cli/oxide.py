"""``anode-twin oxide``: oxide thickness for one set of conditions or a profile file.

Prints one JSON object: ``thickness_nm``, the ``law`` and ``regime`` used and the resolved
inputs. Bad input exits 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import numpy as np

from twin.errors import UsageError
from twin.physics.oxidation import (
    Profile,
    grow_flat,
    grow_particles,
    growth_regime,
)
from twin.physics.psd import SizeDistribution

AMBIENTS = ("dry_o2", "wet_h2o", "air")
WET_DEFAULT_PH2O_ATM = 640.0 / 760.0  # 640 torr, the Deal–Grove wet reference
AIR_PO2_ATM = 0.21
# Saturation vapour pressure of water at 25 °C, 3.169 kPa (CRC Handbook), in atm.
PSAT_25C_ATM = 3.169 / 101.325


def register(subparsers: Any) -> None:
    """Add the ``oxide`` sub-command."""
    p = subparsers.add_parser("oxide", help="oxide thickness on Si or Sn (flat or particle)",
                              description=__doc__)
    p.add_argument("--material", choices=("Si", "Sn"), default="Si")
    p.add_argument("--ambient", choices=AMBIENTS, default="dry_o2")
    p.add_argument("--temperature-c", type=float, help="isothermal temperature, °C")
    p.add_argument("--minutes", type=float, help="duration, min")
    p.add_argument("--po2-atm", type=float, help="O2 partial pressure, atm")
    p.add_argument("--ph2o-atm", type=float, help="H2O partial pressure, atm")
    p.add_argument("--rh-percent", type=float, help="relative humidity at 25 °C (air), %%")
    p.add_argument("--orientation", default="100", help="Si face: 100, 111 or 110")
    p.add_argument("--initial-nm", type=float, default=0.0, help="oxide at the start, nm")
    p.add_argument("--radius-nm", type=float, help="particle radius, nm (flat if omitted)")
    p.add_argument("--thin-model", choices=("suprem", "massoud", "none"), default="suprem")
    p.add_argument("--profile", help="CSV profile: time_s|minutes, temperature_c, po2_atm, "
                                     "ph2o_atm (replaces --temperature-c/--minutes/pressures)")
    p.set_defaults(func=run)


def resolve_pressures(args: argparse.Namespace) -> tuple[float, float]:
    """pO2 and pH2O (atm) from the ambient and the optional overrides."""
    if args.rh_percent is not None:
        if args.ambient != "air":
            raise UsageError("--rh-percent applies to --ambient air only")
        if not 0.0 <= args.rh_percent <= 100.0:
            raise UsageError(f"--rh-percent must be within 0..100, got {args.rh_percent}")
        if args.ph2o_atm is not None:
            raise UsageError("give --rh-percent or --ph2o-atm, not both")
    defaults = {"dry_o2": (1.0, 0.0), "wet_h2o": (0.0, WET_DEFAULT_PH2O_ATM),
                "air": (AIR_PO2_ATM, (args.rh_percent or 0.0) / 100.0 * PSAT_25C_ATM)}
    po2, ph2o = defaults[args.ambient]
    po2 = po2 if args.po2_atm is None else args.po2_atm
    ph2o = ph2o if args.ph2o_atm is None else args.ph2o_atm
    for name, v in (("--po2-atm", po2), ("--ph2o-atm", ph2o)):
        if not (math.isfinite(v) and v >= 0):
            raise UsageError(f"{name} must be a number >= 0, got {v}")
    return po2, ph2o


def build_profile(args: argparse.Namespace, po2: float, ph2o: float) -> Profile:
    """Profile from ``--profile`` or from ``--temperature-c`` and ``--minutes``."""
    if args.profile:
        return Profile.from_csv(args.profile)
    if args.temperature_c is None or args.minutes is None:
        raise UsageError("give --temperature-c and --minutes, or --profile FILE.csv")
    if not (math.isfinite(args.minutes) and args.minutes >= 0):
        raise UsageError(f"--minutes must be >= 0, got {args.minutes}")
    if not math.isfinite(args.temperature_c) or args.temperature_c <= -273.15:
        raise UsageError(f"--temperature-c must be above -273.15, got {args.temperature_c}")
    return Profile.constant(args.temperature_c, args.minutes * 60.0, po2, ph2o)


def law_name(material: str, thin_model: str) -> str:
    """Human-readable name of the rate law."""
    if material == "Sn":
        return "tin(logarithmic+parabolic)"
    return "deal-grove" if thin_model == "none" else f"deal-grove+thin({thin_model})"


def run(args: argparse.Namespace) -> int:
    """Compute and print the JSON result."""
    if args.orientation not in ("100", "111", "110"):
        raise UsageError(f"--orientation must be 100, 111 or 110, got {args.orientation!r}")
    if not (math.isfinite(args.initial_nm) and args.initial_nm >= 0):
        raise UsageError(f"--initial-nm must be >= 0, got {args.initial_nm}")
    po2, ph2o = resolve_pressures(args)
    profile = build_profile(args, po2, ph2o)
    kw: dict[str, Any] = dict(material=args.material, orientation=args.orientation,
                              initial_nm=args.initial_nm, thin_model=args.thin_model)
    result: dict[str, Any] = {}
    if args.radius_nm is not None:
        if not (math.isfinite(args.radius_nm) and args.radius_nm > 0):
            raise UsageError(f"--radius-nm must be > 0, got {args.radius_nm}")
        psd = SizeDistribution(np.array([args.radius_nm / 500.0]), np.array([1.0]))
        dist = grow_particles(profile, psd, **kw)
        thickness = dist.mean_nm
        result["fully_oxidised"] = dist.fully_oxidised_share >= 1.0
    else:
        thickness = grow_flat(profile, **kw)
    regime = growth_regime(profile, thickness, material=args.material,
                           orientation=args.orientation, thin_model=args.thin_model)
    out = {"thickness_nm": thickness, "law": law_name(args.material, args.thin_model),
           "regime": regime, **result, "material": args.material, "ambient": args.ambient,
           "temperature_c": args.temperature_c if not args.profile else None,
           "max_temperature_c": profile.max_temperature_c,
           "minutes": profile.duration_s / 60.0, "po2_atm": None if args.profile else po2,
           "ph2o_atm": None if args.profile else ph2o, "orientation": args.orientation,
           "initial_nm": args.initial_nm, "radius_nm": args.radius_nm,
           "thin_model": args.thin_model, "profile": args.profile}
    print(json.dumps(out))
    return 0
