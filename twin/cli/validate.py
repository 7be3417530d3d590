"""``anode-twin validate FILE.toml``: check a plant file; exit 0 with a summary, 2 on error."""

from __future__ import annotations

import argparse

from twin.config import load_plant
from twin.config.schema import PlantConfig


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check a plant file and print a one-line summary")
    p.add_argument("file", help="plant configuration (TOML)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration key (checked like the file); repeatable")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    plant = load_plant(args.file, args.overrides)
    print(f"{args.file}: ok: {summary(plant)}")
    return 0


def summary(plant: PlantConfig) -> str:
    """One line: plant name and form, alloy, stations with counts, control aim."""
    stations = ", ".join(
        f"{name}x{getattr(cfg, 'count', 1)}"
        for name, cfg in plant.stations
        if cfg is not None
    )
    lo, hi = plant.control.window_nm
    return (f"plant '{plant.plant.name}' ({plant.plant.form}), alloy {plant.alloy.label}, "
            f"stations {stations}, oxide aim {plant.control.aim_nm:g} nm in "
            f"[{lo:g}, {hi:g}] nm, control {plant.control.mode}")
