"""Gateway tests: make the helper module ``kit.py`` importable as ``opcua_kit``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("opcua_kit", Path(__file__).with_name("kit.py"))
assert _spec is not None and _spec.loader is not None
_kit = importlib.util.module_from_spec(_spec)
sys.modules["opcua_kit"] = _kit
_spec.loader.exec_module(_kit)
