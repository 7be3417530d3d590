"""Endpoint and tag-map configuration: the site example loads; bad maps are one clear line."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.opcua.backoff import Backoff
from connectors.opcua.variants import coerce, same_value
from twin.cli import main
from twin.config import CONFIG_DIR, PlantConfig, load_plant, read_toml, validate_model
from twin.config.tags import Endpoint, Tag, browse_path_elements
from twin.errors import ConfigError

SITE = CONFIG_DIR / "site_example.toml"


def test_site_example_loads_and_validates(capsys: pytest.CaptureFixture[str]) -> None:
    plant = load_plant(SITE)
    assert set(plant.endpoints) == {"furnace1", "sputter1"}
    sp = plant.tags["line1.oxidizer1.zone1_temperature_sp"]
    assert sp.node == "ns=2;s=furnace1.Temperature.Zone1.SP" and sp.type == "Double"
    assert sp.writable and sp.readable and sp.limits == (20.0, 1000.0)
    assert plant.tags["line1.oxidizer1.start"].type == "Method"
    assert all(t.endpoint in plant.endpoints for t in plant.tags.values())
    furnace = plant.endpoints["furnace1"]
    assert furnace.security_mode == "SignAndEncrypt" and furnace.heartbeat is not None
    assert main(["validate", str(SITE)]) == 0
    assert "ok" in capsys.readouterr().out


def test_plain_plant_files_need_no_tags() -> None:
    plant = load_plant()
    assert plant.endpoints == {} and plant.tags == {}


def _edit(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """The site file's data with one key set (or deleted when value is None)."""
    data = read_toml(SITE)
    node = data
    for part in path[:-1]:
        node = node[part]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


STEP = "line1.oxidizer1.step"


@pytest.mark.parametrize(("path", "value", "expected"), [
    (("endpoints", "furnace1", "password"), "hunter2",
     "a password is never stored in the plant file"),
    (("tags", STEP, "endpoint"), "furnace9",
     "tag 'line1.oxidizer1.step': endpoint 'furnace9' is not in [endpoints] (furnace1, sputter1)"),
    (("tags", "line2.oxidizer1.x"), {"endpoint": "furnace1", "node": "i=85", "type": "Double"},
     "tag 'line2.oxidizer1.x': must start with the plant name 'line1.'"),
    (("tags", "line1.x"), {"endpoint": "furnace1", "node": "i=85", "type": "Double"},
     "tag 'line1.x': name must be a dotted path"),
    (("tags", STEP, "node"), "furnace1/Zone1", "neither a NodeId"),
    (("tags", STEP, "type"), "Decimal", "key 'tags.line1.oxidizer1.step.type'"),
    (("tags", STEP, "unit"), "°C", "did you mean 'units'?"),
    (("endpoints", "furnace1", "url"), "http://10.0.0.5", "must be opc.tcp://host:port"),
    (("endpoints", "furnace1", "security_policy"), "None", "must both be 'None' or both be set"),
    (("endpoints", "furnace1", "password_file"), "pw.txt", "not both"),
    (("endpoints", "sputter1", "server_certificate"), None, "needs server_certificate"),
    (("endpoints", "sputter1", "server_certificate"), "", "must be a file path"),
    (("endpoints", "furnace1", "password_env"), "not a name", "NAME of an environment variable"),
    (("tags", STEP, "limits"), [0, 1], "limits apply to numeric types only"),
    (("tags", "line1.oxidizer1.po2_sp", "limits"), [1, 0], "limits must be (low, high)"),
    (("endpoints", "furnace1", "reconnect_min_s"), 100, "reconnect_min_s (100.0) must be <="),
])
def test_bad_site_file_is_one_line(path: tuple[str, ...], value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_model(PlantConfig, _edit(path, value), "site.toml")
    text = str(info.value)
    assert text.startswith("site.toml: ") and "\n" not in text
    assert expected in text, text
    assert "hunter2" not in text  # a password given by mistake is never echoed


def test_endpoint_rules() -> None:
    with pytest.raises(ValidationError, match="needs certificate, private_key"):
        Endpoint(url="opc.tcp://h:4840", security_mode="Sign", security_policy="Basic256Sha256")
    with pytest.raises(ValidationError, match="needs password_env or password_file"):
        Endpoint(url="opc.tcp://h:4840", username="operator")
    with pytest.raises(ValidationError, match="needs a username"):
        Endpoint(url="opc.tcp://h:4840", password_env="PW")
    ok = Endpoint(url="opc.tcp://[::1]:4840/x", username="op", password_env="PW")
    assert ok.security_mode == "None" and ok.reconnect_max_s == 30.0


def test_node_syntax() -> None:
    assert browse_path_elements("/Objects/2:furnace1/2:SP") == ["2:furnace1", "2:SP"]
    assert browse_path_elements("Root/Objects/Server") == ["Server"]
    guid = "ns=3;g=09087e75-8e5e-499b-954f-f2a9603db28a"
    for good in ("ns=2;s=a.b", "nsu=urn:x:y;s=a", "i=2258", guid):
        assert Tag(endpoint="e", node=good, type="Double").node == good
    for bad in ("furnace1.SP", "Objects", "Types/2:x", "Objects/2:a:b"):
        with pytest.raises(ValidationError):
            Tag(endpoint="e", node=bad, type="Double")


def test_values_are_checked_against_the_tag_type() -> None:
    assert coerce("Double", 3) == 3.0 and isinstance(coerce("Double", 3), float)
    assert coerce("Int16", 7.0) == 7
    for tag_type, value in (("Int16", 40000), ("Byte", -1), ("Boolean", 1), ("String", 3),
                            ("Float", 1e39), ("UInt32", True)):
        with pytest.raises(ValueError):
            coerce(tag_type, value)
    assert same_value("Float", 2.7, 2.700000047683716)  # 2.7 rounded to 32 bits
    assert not same_value("Double", 2.7, 2.700000047683716)
    assert not same_value("Int32", 1, True)


def test_backoff_doubles_to_the_cap_and_resets() -> None:
    b = Backoff(0.5, 4.0)
    assert [b.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next() == 0.5


@given(st.floats(0.01, 10), st.floats(1, 100), st.floats(0, 1), st.integers(0, 2**32 - 1))
def test_jittered_backoff_is_bounded_and_reproducible(lo: float, span: float, jitter: float,
                                                      seed: int) -> None:
    import numpy as np

    hi = lo * span
    a = Backoff(lo, hi, jitter, np.random.default_rng(seed))
    b = Backoff(lo, hi, jitter, np.random.default_rng(seed))
    da, db = [a.next() for _ in range(12)], [b.next() for _ in range(12)]
    assert da == db
    assert all(lo * (1 - jitter) - 1e-12 <= d <= hi for d in da)
