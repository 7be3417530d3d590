"""Plant configuration: shipped files load; every kind of bad input is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from twin.config import CONFIG_DIR, DEFAULT_PLANT, load_plant
from twin.config.load import apply_overrides, parse_override, read_toml
from twin.errors import ConfigError

SHIPPED = sorted(CONFIG_DIR.glob("*_line.toml"))


def test_shipped_plants_are_found() -> None:
    names = {p.name for p in SHIPPED}
    assert {"powder_line.toml", "thin_film_line.toml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_plants_load(path: Path) -> None:
    plant = load_plant(path)
    assert plant.plant.name
    lo, hi = plant.control.window_nm
    assert lo <= plant.control.aim_nm <= hi


def test_default_is_powder_line() -> None:
    plant = load_plant()
    assert DEFAULT_PLANT.name == "powder_line.toml"
    assert plant.plant.form == "powder"
    assert plant.stations.coater is not None and plant.stations.sputter is None


def test_config_is_frozen() -> None:
    plant = load_plant()
    with pytest.raises(ValidationError):
        plant.stations.mill.count = 9  # type: ignore[misc, union-attr]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("stations.mil.count=3", "unknown key 'stations.mil'"),
        ("stations.mill.cont=3", "did you mean 'count'"),
        ("stations.mill.count=-1", "key 'stations.mill.count'"),
        ("recipes.oxidation.hold_c=\"hot\"", "got 'hot'"),
        ("alloy.composition_wt={Si=0.8,Xe=0.2}", "element 'Xe' is not allowed"),
        ("alloy.composition_wt={Si=0.8,Ti=0.3}", "must sum to 1"),
        ("alloy.composition_wt={Ti=1.0}", "needs Si or Sn"),
        ("control.aim_nm=500", "outside window_nm"),
        ("plant.form=thin_film", "needs [stations.sputter]"),
        ("stations.oxidizer.limits.temperature_c=[900,100]", "(low, high)"),
        ("recipes.slurry.binder_fraction=0.2", "must be 1"),
        ("operators.shifts=[{start_h=10,end_h=8}]", "must be after start_h"),
    ],
)
def test_bad_values_name_file_and_key(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_plant(overrides=[override])
    message = str(info.value)
    assert expected in message
    assert "powder_line.toml" in message
    assert "\n" not in message


def test_tin_oxidation_above_melting_point_is_refused() -> None:
    with pytest.raises(ConfigError, match="melts tin"):
        load_plant(overrides=["alloy.composition_wt={Sn=0.8,Ni=0.2}"])
    plant = load_plant(overrides=["alloy.composition_wt={Sn=0.8,Ni=0.2}",
                                  "recipes.oxidation.hold_c=200"])
    assert plant.alloy.base == "Sn"


def test_override_is_applied_and_checked_like_the_file() -> None:
    plant = load_plant(overrides=["stations.mill.count=5", "control.mode=advisory"])
    assert plant.stations.mill is not None and plant.stations.mill.count == 5
    assert plant.control.mode == "advisory"


def test_bare_word_override_is_a_string() -> None:
    assert parse_override("control.mode=advisory") == (["control", "mode"], "advisory")
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1", ""])
def test_malformed_override(bad: str) -> None:
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override(bad)


def test_override_through_a_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match="is a value, not a table"):
        apply_overrides({"plant": {"name": "x"}}, ["plant.name.first=1"])


def test_overrides_do_not_mutate_input() -> None:
    data = {"a": {"b": 1}}
    out = apply_overrides(data, ["a.b=2"])
    assert data == {"a": {"b": 1}} and out == {"a": {"b": 2}}


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        read_toml(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[plant\nname = 1\n")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_plant(bad)


def test_missing_section_is_named(tmp_path: Path) -> None:
    text = DEFAULT_PLANT.read_text().replace("[alloy]", "[alloy_]")
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_plant(path)
    assert "alloy" in str(info.value)


@given(count=st.integers(min_value=-5, max_value=80))
def test_station_count_range(count: int) -> None:
    if 0 <= count <= 50:
        plant = load_plant(overrides=[f"stations.mill.count={count}"])
        assert plant.stations.mill is not None and plant.stations.mill.count == count
    else:
        with pytest.raises(ConfigError, match="stations.mill.count"):
            load_plant(overrides=[f"stations.mill.count={count}"])
