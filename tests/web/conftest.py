"""Shared by the web view tests: a real run folder (``anode-twin simulate``) and a browser."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from twin.cli import main as cli

#: Debian's chromium (Playwright drives it through ``executable_path``: no browser download).
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three simulated days of the powder line in advisory mode (proposals in the audit)."""
    out = tmp_path_factory.mktemp("web") / "sim"
    assert cli(["simulate", "--days", "3", "--seed", "3", "--out", str(out),
                "--set", "control.mode=advisory"]) == 0
    return out


def need_browser() -> str:
    """The chromium path; outside CI a machine without it skips, in CI (CI=true) it fails."""
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed, and CI=true: .ci/run installs Debian's "
                        "chromium", pytrace=False)
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("playwright is not installed, and CI=true", pytrace=False)
        pytest.skip("playwright is not installed (pip install -e .[test])")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()
