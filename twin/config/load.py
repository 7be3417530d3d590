"""Load and validate configuration files once, with one-line errors that name file and key.

``--set key=value`` overrides are applied to the parsed TOML before validation, so an override
is checked exactly like the file (a wrong key or value is an error naming the key).
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from twin.config.schema import PlantConfig
from twin.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

M = TypeVar("M", bound=BaseModel)

#: Directory of the shipped plant and study files (``plant_config/`` in the source tree).
CONFIG_DIR = Path(__file__).resolve().parents[2] / "plant_config"
DEFAULT_PLANT = CONFIG_DIR / "powder_line.toml"


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; raise :class:`ConfigError` naming the file on any problem."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a key path and a TOML-typed value.

    The value is parsed as a TOML value (``3``, ``2.5``, ``true``, ``"x"``, ``[1, 2]``); a bare
    word that is not valid TOML is taken as a string, so ``--set plant.form=thin_film`` works.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. stations.mill.count=3")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key=value`` override set (creating tables)."""
    out = _deep_copy(data)
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for i, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(path[: i + 1])
                raise ConfigError(f"--set {item!r}: key '{where}' is a value, not a table")
            node = child
        node[path[-1]] = value
    return out


def validate_model(model: type[M], data: Mapping[str, Any], source: str) -> M:
    """Validate ``data`` against ``model``; raise one :class:`ConfigError` line on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model, source)) from None


def load_plant(path: str | Path | None = None, overrides: Iterable[str] = ()) -> PlantConfig:
    """Load, override and validate a plant file (the default plant when ``path`` is None)."""
    p = Path(path) if path is not None else DEFAULT_PLANT
    overrides = list(overrides)
    data = apply_overrides(read_toml(p), overrides)
    source = f"{p} (with --set {', '.join(overrides)})" if overrides else str(p)
    return validate_model(PlantConfig, data, source)


def format_validation_error(exc: ValidationError, model: type[BaseModel], source: str) -> str:
    """Turn pydantic's first error into ``file: key 'a.b': problem (expected ..., got ...)``."""
    errors = exc.errors()
    err = errors[0]
    loc = [str(p) for p in err["loc"]]
    if not loc:  # a whole-model rule (e.g. the routing a product form needs)
        return f"{source}: {err['msg'].removeprefix('Value error, ')}"
    key = ".".join(loc)
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    if err["type"] == "extra_forbidden" and loc[-1] in ("truth", "disturbances") \
            and model is PlantConfig:
        return (f"{source}: unknown key '{key}': a plant file carries no hidden process; "
                "put it in a truth file (plant_config/truth/) and pass --truth NAME|FILE"
                f"{more}")
    if err["type"] == "extra_forbidden":
        expected = _allowed_keys(model, loc[:-1])
        hint = difflib.get_close_matches(loc[-1], expected, n=1)
        did_you = f"; did you mean '{hint[0]}'?" if hint else ""
        return (f"{source}: unknown key '{key}' (expected one of: "
                f"{', '.join(expected)}){did_you}{more}")
    if err["type"] == "missing":
        return f"{source}: missing key '{key}'{more}"
    msg = err["msg"].removeprefix("Value error, ")
    given = err.get("input")
    got = "" if isinstance(given, dict) else f" (got {given!r})"
    return f"{source}: key '{key}': {msg}{got}{more}"


def _allowed_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the nested model at ``loc`` (best effort, for error hints)."""
    current: Any = model
    for part in loc:
        if isinstance(current, _DictOf):  # ``dict[str, Model]``: ``part`` is a user's key
            current = current.model
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return []
        annotation = fields[part].annotation
        args: tuple[Any, ...] = getattr(annotation, "__args__", ())
        if getattr(annotation, "__origin__", None) is dict and len(args) == 2 \
                and _model_of(args[-1]) is not None:
            current = _DictOf(_model_of(args[-1]))
        else:
            current = _model_of(annotation)
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


class _DictOf:
    """Marks a ``dict[str, Model]`` level while walking an error location."""

    def __init__(self, model: Any) -> None:
        self.model = model


def _model_of(annotation: Any) -> Any:
    """The BaseModel class inside ``X`` or ``X | None`` (or None)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}
