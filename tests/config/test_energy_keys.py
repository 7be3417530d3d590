"""The stations' energy parameters (the batch record's step_energy_kwh): defaults from
twin.physics.energy, ranges validated, unknown keys refused, like every other key."""

from __future__ import annotations

import pytest

from twin.cli import main
from twin.config import CONFIG_DIR, load_plant
from twin.errors import ConfigError
from twin.physics import energy


def test_the_shipped_plants_take_the_physics_defaults() -> None:
    powder = load_plant()
    ox, coater, melter = (powder.stations.oxidizer, powder.stations.coater,
                          powder.stations.melter)
    assert ox is not None and coater is not None and melter is not None
    assert ox.energy.loss_kw_per_k == energy.FURNACE_LOSS_KW_PER_K
    assert ox.energy.thermal_mass_kj_per_k == energy.FURNACE_THERMAL_MASS_KJ_K
    assert ox.energy.heater_efficiency == energy.HEATER_EFFICIENCY
    assert ox.energy.tray_kg_per_charge_kg == energy.TRAY_KG_PER_CHARGE_KG
    assert ox.energy.credit_reaction_heat is True
    assert coater.dryer_efficiency == energy.DRYER_EFFICIENCY
    assert coater.drive_power_kw == energy.COATER_DRIVE_POWER_KW
    assert melter.heat_up_power_share == energy.MELTER_HEAT_UP_POWER_SHARE
    assert powder.recipes.slurry is not None and powder.recipes.slurry.solvent == "water"
    sputter = load_plant(CONFIG_DIR / "thin_film_line.toml").stations.sputter
    assert sputter is not None
    assert sputter.base_load_kw == energy.SPUTTER_BASE_LOAD_KW
    assert sputter.generator_efficiency == energy.SPUTTER_GENERATOR_EFFICIENCY


@pytest.mark.parametrize(("override", "expected"), [
    ("stations.oxidizer.energy.heater_efficiency=0", "greater than 0"),
    ("stations.oxidizer.energy.loss_kw_per_k=-0.1", "greater than or equal to 0"),
    ("stations.oxidizer.energy.lossy=1", "unknown key"),
    ("stations.coater.dryer_efficiency=1.5", "less than or equal to 1"),
    ("stations.melter.heat_up_power_share=2", "less than or equal to 1"),
    ("recipes.slurry.solvent='acetone'", "water"),
])
def test_bad_energy_values_name_the_key(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_plant(overrides=[override])
    assert expected in str(info.value) and override.split("=")[0] in str(info.value)


def test_every_shipped_plant_file_still_validates(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("powder_line.toml", "thin_film_line.toml", "site_example.toml"):
        assert main(["validate", str(CONFIG_DIR / name)]) == 0, capsys.readouterr().err
    assert main(["validate", str(CONFIG_DIR / "thin_film_line.toml"),
                 "--set", "stations.sputter.base_load_kw=1.5"]) == 0
