"""Shared fixtures for the control tests: the default plant's furnace and a charge."""

from __future__ import annotations

import pytest

from twin.config import load_plant
from twin.config.schema import ControlConfig, PlantConfig
from twin.control.model import FurnaceModel, OxidationContext
from twin.physics.psd import lognormal


@pytest.fixture(scope="session")
def plant() -> PlantConfig:
    return load_plant()


@pytest.fixture(scope="session")
def model(plant: PlantConfig) -> FurnaceModel:
    ox = plant.stations.oxidizer
    assert ox is not None
    return FurnaceModel(ox.calibration, ox.limits)


@pytest.fixture(scope="session")
def ctx() -> OxidationContext:
    return OxidationContext(psd=lognormal(5.0, 1.8, n_bins=24), material="Si", initial_nm=1.0)


@pytest.fixture(scope="session")
def recipe(plant: PlantConfig) -> dict[str, float]:
    r = plant.recipes.oxidation
    assert r is not None
    return {"start_c": r.start_c, "hold_c": r.hold_c, "ramp_c_per_min": r.ramp_c_per_min,
            "hold_min": r.hold_min, "cool_c_per_min": r.cool_c_per_min,
            "po2_atm": r.po2_atm, "ph2o_atm": r.ph2o_atm}


@pytest.fixture()
def cfg() -> ControlConfig:
    return ControlConfig()
