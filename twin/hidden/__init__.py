"""The hidden plant: the true process behind a simulated run, a package of its own.

A real twin never sees the process it models: it learns from process values, measured inputs
with their errors and lab results. This package is that unseen process for the simulated
equipment of ``anode-twin simulate`` and for the emulated PLCs (``anode-twin plc``): the
oxidation furnace's and sputter tool's true physics, sensors and lab, with their parameters in
truth files of their own (``plant_config/truth/``), never in a plant file.

Only the harnesses import it: the simulate and study commands and the emulated PLCs (which
build the equipment a plant model runs on), and the benches' judges. The twin's own model
(``twin.plant``, ``twin.control``, ``twin.physics``, ``twin.live``, the OPC UA gateway, the live
session and the twin's server) never does; ``tests/hidden/test_boundary.py`` checks it.
"""

from __future__ import annotations

from twin.hidden.config import DEFAULT_TRUTH, TRUTH_DIR, TruthConfig, load_truth, truth_names

__all__ = ["DEFAULT_TRUTH", "TRUTH_DIR", "TruthConfig", "load_truth", "truth_names"]
