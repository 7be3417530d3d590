"""Small study files on the real default plant, for fast tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from twin.config.load import DEFAULT_PLANT


def write_study(tmp: Path, name: str = "quick", *, days: float = 4.0, reps: int = 3,
                extra: str = "", scenarios: str | None = None) -> Path:
    """A study file on the default plant: base and a fourth mill (the bottleneck station)."""
    if scenarios is None:
        scenarios = ('[scenarios.base]\nset = []\n'
                     '[scenarios.four_mills]\nset = ["stations.mill.count=4"]\n')
    text = (f'[study]\nname = "{name}"\nplant = "{DEFAULT_PLANT}"\ndays = {days}\n'
            f'warmup_days = 1.0\nseed = 5\nreplications = {reps}\nbucket_h = 2.0\n'
            f'{extra}\n{scenarios}')
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture
def quick_study(tmp_path: Path) -> Path:
    return write_study(tmp_path)


@pytest.fixture
def make_study() -> Callable[..., Path]:
    """The :func:`write_study` helper (tests import nothing from conftest)."""
    return write_study
