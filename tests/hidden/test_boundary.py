"""The twin's own model never imports the hidden plant (the structural half of the rule)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Packages that make up the twin: its model, its learning and control, its live stack.
TWIN_PARTS = ("twin/plant", "twin/control", "twin/physics", "twin/live", "twin/equipment",
              "twin/config", "twin/report", "twin/store", "connectors/opcua",
              "connectors/live", "connectors/twin_server.py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def _modules() -> list[Path]:
    files: list[Path] = []
    for part in TWIN_PARTS:
        p = ROOT / part
        files.extend([p] if p.is_file() else sorted(p.rglob("*.py")))
    return files


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_twin_module_never_imports_the_hidden_plant(path: Path) -> None:
    hidden = {m for m in _imports(path) if m == "twin.hidden" or m.startswith("twin.hidden.")}
    assert not hidden, f"{path.relative_to(ROOT)} imports {sorted(hidden)}"


def test_the_boundary_covers_the_twin() -> None:
    assert len(_modules()) > 60  # the walk found the packages (a moved package fails here)
