"""The control loops of a simulated plant: built once per run, called by the stations.

:class:`PlantControl` owns one :class:`~twin.control.loop.ControlLoop` per oxidation furnace
and per sputter tool (its reactive oxide cap), and the run's
:class:`~twin.control.audit.AuditBuffer`. The SimPy processes only call the loops (pure
computation, records kept in memory); the run writes the buffered records to
``RUN_DIR/control_audit.jsonl`` after the simulation (:meth:`PlantControl.write_audit`), so
no SimPy process ever does I/O. The live twin uses a file :class:`AuditTrail` as the sink
instead (fsync per record, operators' decisions read back from it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twin.config.schema import OxidizerConfig, PlantConfig, SputterConfig
from twin.control.audit import AuditBuffer, AuditSink, AuditTrail
from twin.control.baseline import BaselineLoop
from twin.control.loop import ControlLoop
from twin.control.model import Evaluator, FurnaceModel, OxidationContext, SputterCapModel


class PlantControl:
    """Control loops and audit buffer of one plant run.

    Parameters
    ----------
    cfg : PlantConfig
        The plant (its ``[control]`` section configures every loop).
    evaluator : callable, optional
        Fast physics for single predictions (see :class:`FurnaceModel`).
    sink : AuditSink, optional
        Where records go; a fresh :class:`AuditBuffer` by default.
    learn_only_on_line : bool
        Learn only from batches that ran on the line (a PLC): a live twin never calibrates on
        its own simulated warm-up or on tools it only models.
    start : mapping of str to tuple of float, optional
        Parameters a loop's calibration starts from, by tool path (a live twin's own record
        of an earlier run, :func:`calibration_of_run`); others start from the plant file.
    """

    def __init__(self, cfg: PlantConfig, *, evaluator: Evaluator | None = None,
                 sink: AuditSink | None = None, learn_only_on_line: bool = False,
                 start: Mapping[str, tuple[float, ...]] | None = None) -> None:
        self.cfg = cfg
        self.learn_only_on_line = learn_only_on_line
        self.start = dict(start or {})
        self.evaluator = evaluator
        self.sink: AuditSink = sink if sink is not None else AuditBuffer()
        self.loops: dict[str, ControlLoop] = {}

    def furnace_loop(self, path: str, ocfg: OxidizerConfig,
                     recipe: Mapping[str, float]) -> ControlLoop:
        """The loop of the furnace at ``path`` (created on first use)."""
        if path not in self.loops:
            model = FurnaceModel(ocfg.calibration, ocfg.limits, evaluator=self.evaluator,
                                 charge=ocfg.charge,
                                 gas_flow_slm=float(recipe.get("gas_flow_slm", math.nan)))
            strategy = self.cfg.control.strategy
            kw: dict[str, Any] = {"learn_only_on_line": self.learn_only_on_line,
                                  "lab": self.cfg.stations.lab}
            self.loops[path] = (
                ControlLoop(path, model, self.cfg.control, recipe, self.sink, **kw)
                if strategy == "twin" else
                BaselineLoop(path, model, self.cfg.control, recipe, self.sink,
                             double=strategy == "dewma", **kw))
            self._started(path)
        return self.loops[path]

    def _started(self, path: str) -> None:
        if path in self.start:
            self.loops[path].start_calibration(self.start[path])

    def sputter_loop(self, path: str, scfg: SputterConfig,
                     recipe: Mapping[str, float]) -> ControlLoop:
        """The loop of the sputter tool at ``path`` (created on first use).

        Its model is the reactive cap of the plant's base element; its knobs are the
        oxidize time (``hold_time`` in ``control.knob_order``) and the O2 flow (``po2``),
        inside ``scfg.limits``; ``recipe`` is the tool's flat run setpoints.
        """
        if path not in self.loops:
            model = SputterCapModel(scfg.calibration, scfg.limits, self.cfg.alloy.base)
            self.loops[path] = ControlLoop(path, model, self.cfg.control, recipe, self.sink,
                                           learn_only_on_line=self.learn_only_on_line)
            self._started(path)
        return self.loops[path]

    def write_audit(self, run_dir: str | Path) -> int:
        """Append the buffered records to the run folder's audit trail; return how many."""
        if not isinstance(self.sink, AuditBuffer):
            return 0
        return self.sink.drain_into(AuditTrail(Path(run_dir)))


def furnace_context(psd: Any, material: str, initial_nm: float,
                    growth: Mapping[str, Any], *, mass_kg: float = math.nan,
                    ssa_m2_g: float = math.nan) -> OxidationContext:
    """The charge as the furnace model's context (its measured sizes, surface and mass)."""
    return OxidationContext(psd=psd, material=material, initial_nm=initial_nm,
                            growth=dict(growth), mass_kg=mass_kg, ssa_m2_g=ssa_m2_g)


def sputter_context(setpoints: Mapping[str, float], material: str) -> dict[str, Any]:
    """A sputter run as the cap model's context (the Ar flow bounds the O2 knob's range)."""
    return {"ar_sccm": float(setpoints["ar_sccm"]), "material": material}


def physics_evaluator(physics: Any) -> Evaluator:
    """Wrap the plant's cached physics (``OxidePhysics.predict``) as a model evaluator."""

    def evaluate(profile: Any, context: OxidationContext, calibration: Any,
                 supply: float | None) -> Any:
        return physics.predict(profile, context.psd, material=context.material,
                               calibration=calibration, initial_nm=context.initial_nm,
                               growth=context.growth, supply_nm_s_atm=supply)

    return evaluate


def calibration_of_run(run_dir: str | Path) -> dict[str, tuple[float, ...]]:
    """Each loop's calibration at the end of an earlier run, from its audit trail.

    The last calibration record of each tool: its log rate factor and, for a furnace, the
    bed offset and lag it had learnt (what :meth:`ControlLoop.start_calibration` takes).

    Raises
    ------
    UsageError
        No audit trail in ``run_dir``, or no calibration in it.
    """
    from twin.control.audit import AUDIT_FILE, read_audit
    from twin.errors import UsageError

    p = Path(run_dir)
    if not (p / AUDIT_FILE).is_file():
        raise UsageError(f"{p}: no {AUDIT_FILE}: not the run folder of a twin")
    out: dict[str, tuple[float, ...]] = {}
    for r in read_audit(p):
        after = r.get("after") or {}
        if r.get("kind") != "calibration" or "log_rate_factor" not in after:
            continue
        theta = [float(after["log_rate_factor"])]
        if "bed_offset_c" in after:
            theta += [float(after["bed_offset_c"]),
                      math.log(float(after.get("bed_lag_factor", 1.0))),
                      math.log(float(after.get("gas_utilisation_factor", 1.0)))]
        out[str(r["loop"])] = tuple(theta)
    if not out:
        raise UsageError(f"{p}: its audit trail has no calibration to start from")
    return out
