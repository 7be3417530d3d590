"""A simulated run of a plant on the hidden plant of a truth file (what ``simulate`` does)."""

from __future__ import annotations

from pathlib import Path

from twin.config.schema import PlantConfig
from twin.hidden.config import TruthConfig
from twin.hidden.world import HiddenPlant
from twin.plant.run import SimulationResult
from twin.plant.run import simulate as run_plant


def simulate(cfg: PlantConfig, days: float, seed: int, *,
             truth: str | Path | TruthConfig | None = None,
             physics: str = "fast", count_events: bool = True) -> SimulationResult:
    """Simulate ``days`` of plant ``cfg`` on truth ``truth`` (a shipped name or a file).

    The plant model (the twin) gets the hidden plant only as its tool provider; the truth's
    name is kept in ``result.extra['truth']`` for the run folder.
    """
    if isinstance(truth, TruthConfig):  # built in memory (a bench's scenario)
        hidden = HiddenPlant(truth, cfg, seed, physics=physics,
                             source=f"<truth {truth.truth.name}>")
        hidden.check(cfg)
    else:
        hidden = HiddenPlant.load(truth, cfg, seed, physics=physics)
    result = run_plant(cfg, days, seed, tools=hidden, physics=physics,
                       count_events=count_events)
    result.extra["truth"] = hidden.name
    result.extra["truth_source"] = hidden.source
    return result
