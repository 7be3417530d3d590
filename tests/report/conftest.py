"""Fixtures of the report tests; the builders live in :mod:`report_runs`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# The tests import their helpers (report_runs, report_browser) from this folder.
sys.path.insert(0, str(Path(__file__).parent))

from report_runs import campaign_units, write_run  # noqa: E402


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_run(values, name=..., **write_run kwargs)`` -> run folder."""

    def make(values: list[dict[str, Any]], name: str = "run", **kw: Any) -> Path:
        return write_run(tmp_path / name, campaign_units(values), **kw)

    return make
