"""``anode-twin oxide``: oxide thickness for one set of conditions or a profile file.

Prints one JSON object: ``thickness_nm``, the ``law`` and ``regime`` that answered, the
``rule`` that chose the law, both candidates (``native_nm``, ``furnace_nm``) and the resolved
inputs. Bad input exits 2 with one line on stderr.

Which law answers
-----------------
* **Room air, every temperature of the run <= 100 °C** (storage, handling): the native-oxide
  law (:func:`twin.physics.oxidation_native.native_oxide_nm`: logarithmic, 0.5–0.7 nm per
  decade, self-limiting near 2 nm on Si and 2–4 nm on Sn; Archer 1957, Morita et al. 1990).
  It continues from ``--initial-nm`` at the equivalent age on its own curve (not added on
  top). The furnace laws give nothing there (Deal–Grove + thin term: 5e-24 nm in a day at
  25 °C). Why 100 °C: the native law is a room-air law (water-driven, Cabrera–Mott; its
  temperature factor is an estimate), and at 100 °C water's vapour pressure reaches 1 atm, so
  room air holds below 1.5 % RH and the adsorbed water film that drives native growth is
  gone; the growth there is no longer "native".
* **Above 100 °C**: the larger of the furnace law (Deal–Grove + thin term for Si, tin's
  logarithmic + parabolic law) and the native law run with temperatures capped at 100 °C (a
  floor: heating the same air grows at least what it grows at 100 °C). In dry or wet
  furnaces without both O2 and water the floor is zero and the furnace law answers as
  before; in humid air at 100–600 °C the furnace laws give < 0.1 nm in an hour and the
  native floor answers; above ~700–800 °C the furnace laws win within minutes. There is no
  second fixed threshold: one would make the answer jump by up to 2 nm.
* **Ambients at room temperature**: on Si the native law needs both O2 and water, so
  ``--ambient dry_o2`` (no water) and ``--ambient wet_h2o`` (no O2) grow nothing (regime
  ``none``) unless ``--ph2o-atm`` / ``--po2-atm`` add the missing gas; tin grows in dry O2
  (30 % of its humid rate) and not without O2.
* The native law sees the relative humidity at the run's temperature, from the water partial
  pressure (``--rh-percent`` is the RH the air has at 25 °C; Buck's saturation pressure scaled
  to 3.169 kPa at 25 °C). It is a flat-surface law (``--orientation`` and ``--thin-model`` do
  not apply); on a particle it is capped at the radius.
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
from twin.physics.oxidation_native import NATIVE_LAWS, native_oxide_scalar
from twin.physics.psd import SizeDistribution

AMBIENTS = ("dry_o2", "wet_h2o", "air")
WET_DEFAULT_PH2O_ATM = 640.0 / 760.0  # 640 torr, the Deal–Grove wet reference
AIR_PO2_ATM = 0.21
# Saturation vapour pressure of water at 25 °C, 3.169 kPa (CRC Handbook), in atm.
PSAT_25C_ATM = 3.169 / 101.325
# Room air: at or below this temperature the native-oxide law answers (see the docstring).
ROOM_MAX_C = 100.0
NATIVE_MIN_C = -60.0  # lower end of the native law's range
NATIVE_LAW = "native(log, Morita 1990)"
NATIVE_SUB_STEPS = 16  # sub-steps per ramp of a profile (midpoint conditions)
SELF_LIMITED_SHARE = 0.9  # regime "self-limited" from this share of the law's ceiling
RULE_ROOM = "room air (T <= 100 C): native law"
RULE_HOT = "T > 100 C: larger of the furnace law and the native law capped at 100 C"


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
    p.add_argument("--rh-percent", type=float,
                   help="relative humidity of the air at 25 °C (air only), %%; sets pH2O")
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


def saturation_pressure_atm(temperature_c: float) -> float:
    """Saturation vapour pressure of water, atm: Buck's equation (J. Appl. Meteorol. 20, 1527
    (1981), 1996 constants) scaled to 3.169 kPa at 25 °C (CRC); within 0.1 % of tables at
    0–100 °C (over supercooled water below 0 °C)."""
    def buck(t: float) -> float:
        return 0.61121 * math.exp((18.678 - t / 234.5) * (t / (257.14 + t)))
    return PSAT_25C_ATM * buck(temperature_c) / buck(25.0)


def rh_percent_at(temperature_c: float, ph2o_atm: float) -> float:
    """Relative humidity of a water partial pressure at a temperature, %, at most 100."""
    return min(100.0, 100.0 * ph2o_atm / saturation_pressure_atm(temperature_c))


def native_over_profile(profile: Profile, *, material: str, initial_nm: float,
                        cap_c: float = ROOM_MAX_C) -> float:
    """Native-oxide thickness at the end of a profile, nm, temperatures capped at ``cap_c``.

    The law depends on time only through a reduced time (time × speed at the conditions),
    so it is stepped from knot to knot, each step continuing from the thickness reached (the
    equivalent age): exact on holds, midpoint conditions on ramps. Stretches colder than the
    law's range (-60 °C) add nothing (the law is 4e-4 times slower there than at 25 °C).
    """
    x = float(initial_nm)
    t, tc = profile.time_s, profile.temperature_c
    po2, ph2o = profile.po2_atm, profile.ph2o_atm
    for i in range(t.size - 1):
        dt = float(t[i + 1] - t[i])
        if dt <= 0:
            continue
        steady = tc[i] == tc[i + 1] and po2[i] == po2[i + 1] and ph2o[i] == ph2o[i + 1]
        n = 1 if steady else NATIVE_SUB_STEPS
        for k in range(n):
            f = (k + 0.5) / n
            temp = min(float(tc[i] + f * (tc[i + 1] - tc[i])), cap_c)
            if temp < NATIVE_MIN_C:
                continue
            p_o2 = float(po2[i] + f * (po2[i + 1] - po2[i]))
            p_h2o = float(ph2o[i] + f * (ph2o[i + 1] - ph2o[i]))
            x = native_oxide_scalar(dt / n, rh_percent=rh_percent_at(temp, p_h2o),
                                    po2_atm=p_o2, temperature_c=temp, material=material,
                                    initial_nm=x)
    return x


def native_regime(thickness_nm: float, initial_nm: float, material: str) -> str:
    """``self-limited`` near the law's ceiling, ``none`` without growth, else
    ``logarithmic``."""
    if thickness_nm >= SELF_LIMITED_SHARE * NATIVE_LAWS[material].x_sat_nm:
        return "self-limited"
    return "logarithmic" if thickness_nm > initial_nm else "none"


def _check_room_range(args: argparse.Namespace, profile: Profile) -> None:
    cold = float(np.min(profile.temperature_c))
    if cold < NATIVE_MIN_C:
        where = f"--profile {args.profile}" if args.profile else "--temperature-c"
        raise UsageError(f"{where}: {cold:g} °C is below {NATIVE_MIN_C:g} °C, the lower end "
                         "of the room-air (native-oxide) law")


def _furnace(args: argparse.Namespace, profile: Profile) -> tuple[float, str, bool | None]:
    """The furnace law: thickness, regime and (for a particle) whether oxidised through."""
    kw: dict[str, Any] = dict(material=args.material, orientation=args.orientation,
                              initial_nm=args.initial_nm, thin_model=args.thin_model)
    fully: bool | None = None
    if args.radius_nm is not None:
        psd = SizeDistribution(np.array([args.radius_nm / 500.0]), np.array([1.0]))
        dist = grow_particles(profile, psd, **kw)
        thickness = dist.mean_nm
        fully = dist.fully_oxidised_share >= 1.0
    else:
        thickness = grow_flat(profile, **kw)
    regime = growth_regime(profile, thickness, material=args.material,
                           orientation=args.orientation, thin_model=args.thin_model)
    return thickness, regime, fully


def run(args: argparse.Namespace) -> int:
    """Compute and print the JSON result."""
    if args.orientation not in ("100", "111", "110"):
        raise UsageError(f"--orientation must be 100, 111 or 110, got {args.orientation!r}")
    if not (math.isfinite(args.initial_nm) and args.initial_nm >= 0):
        raise UsageError(f"--initial-nm must be >= 0, got {args.initial_nm}")
    if args.radius_nm is not None and not (math.isfinite(args.radius_nm) and args.radius_nm > 0):
        raise UsageError(f"--radius-nm must be > 0, got {args.radius_nm}")
    po2, ph2o = resolve_pressures(args)
    profile = build_profile(args, po2, ph2o)
    room = profile.max_temperature_c <= ROOM_MAX_C
    furnace_nm: float | None = None
    fully: bool | None = None
    if room:
        _check_room_range(args, profile)
    else:
        furnace_nm, regime, fully = _furnace(args, profile)
    native_nm = native_over_profile(profile, material=args.material,
                                    initial_nm=args.initial_nm)
    if args.radius_nm is not None:
        native_nm = min(native_nm, args.radius_nm)
    if furnace_nm is None or native_nm > furnace_nm:
        thickness, law = native_nm, NATIVE_LAW
        regime = native_regime(native_nm, args.initial_nm, args.material)
        if args.radius_nm is not None:
            fully = native_nm >= args.radius_nm
    else:
        thickness, law = furnace_nm, law_name(args.material, args.thin_model)
    result: dict[str, Any] = {} if fully is None else {"fully_oxidised": fully}
    out = {"thickness_nm": thickness, "law": law, "regime": regime,
           "rule": RULE_ROOM if room else RULE_HOT, **result,
           "native_nm": native_nm, "furnace_nm": furnace_nm,
           "material": args.material, "ambient": args.ambient,
           "temperature_c": args.temperature_c if not args.profile else None,
           "max_temperature_c": profile.max_temperature_c,
           "minutes": profile.duration_s / 60.0, "po2_atm": None if args.profile else po2,
           "ph2o_atm": None if args.profile else ph2o, "orientation": args.orientation,
           "initial_nm": args.initial_nm, "radius_nm": args.radius_nm,
           "thin_model": args.thin_model, "profile": args.profile}
    print(json.dumps(out))
    return 0
