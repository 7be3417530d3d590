"""Plant configuration: TOML files validated once into frozen pydantic objects."""

from twin.config.load import (
    CONFIG_DIR,
    DEFAULT_PLANT,
    apply_overrides,
    load_plant,
    read_toml,
    validate_model,
)
from twin.config.schema import ALLOYING_ELEMENTS, PlantConfig

__all__ = [
    "ALLOYING_ELEMENTS",
    "CONFIG_DIR",
    "DEFAULT_PLANT",
    "PlantConfig",
    "apply_overrides",
    "load_plant",
    "read_toml",
    "validate_model",
]
