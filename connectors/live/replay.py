"""A resumed live twin replays what its journal recorded instead of running it again.

``anode-twin run --resume RUN_DIR`` rebuilds the twin that was killed by running the same
plant model (same plant file, seed and options, from the journal) as fast as it goes up to the
last moment the journal knew. On the stations that ran on a PLC, :class:`ReplayTool` hands
the model each finished step's journaled result at the moment the model took it, and
:class:`ReplayLab` each lab result; nothing is written to a PLC and no setpoint is replayed.
The batch that was running on a PLC when the twin died is reconciled with the PLC: if the PLC
still knows it (a site PLC that kept running), its lab result is asked for as usual; its
process record is lost from the moment the twin died (a gap), so it is reported aborted with
that gap and held for the lab.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from typing import Any

import numpy as np
import simpy

from twin.equipment.base import Equipment, StepRequest, StepResult
from twin.physics.oxidation_profile import Profile


class ReplayLab:
    """A journaled lab result, handed to the model when it was taken."""

    mean_nm = math.nan

    def __init__(self, taken_s: float, value_nm: float,
                 values: Mapping[str, float] | None = None) -> None:
        self.taken_s = taken_s
        self.value_nm = value_nm
        self.values = dict(values or {})

    def __getitem__(self, key: str) -> float:
        return self.values.get(key, math.nan)

    def measure(self, env: simpy.Environment) -> Generator[simpy.Event, Any, float]:
        """Wait until the result was taken; return it."""
        yield env.timeout(max(0.0, self.taken_s - float(env.now)))
        return self.value_nm


class _NoRecord:
    """A batch whose process record was lost with the twin (what the tools summarise)."""

    samples: list[tuple[float, str, float]] = []
    rows: list[tuple[float, float, float, float]] = []

    def profile(self) -> None:
        return None


class ReplayTool:
    """A live station's equipment while a resumed twin replays its journal.

    Parameters
    ----------
    live : Equipment
        The station's OPC UA tool (for a batch the journal does not have: asked after the
        replay, the PLC's own state decides).
    steps, labs : mapping
        The journaled steps and lab results (:func:`twin.store.journal.read_steps`,
        :func:`~twin.store.journal.read_labs`).
    until_s : float
        The last moment the journal knew (the replay ends there), s.
    lab_source : callable
        ``(path, batch_id, truth_values) -> LabSource`` asking the PLC's lab (a batch whose
        result the journal lacks).
    plc_batch : (str, str) or None
        The batch id and step state the PLC reported when the twin came back (a site PLC
        that kept running knows whether the batch the twin died during finished).
    """

    def __init__(self, live: Equipment, steps: Mapping[str, tuple[float, dict[str, Any]]],
                 labs: Mapping[str, tuple[float, float]], until_s: float,
                 lab_source: Any, plc_batch: tuple[str, str] | None = None) -> None:
        self.path = live.path
        self.live = live
        self.steps = steps
        self.labs = labs
        self.until_s = until_s
        self.lab_source = lab_source
        self.plc_batch = plc_batch

    def execute(self, env: simpy.Environment,
                step: StepRequest) -> Generator[simpy.Event, Any, StepResult]:
        """The journaled result of ``step`` at the time it was taken, or (the batch the twin
        died during) an aborted result at the end of the replay."""
        got = self.steps.get(step.batch_id)
        if got is None:
            start = float(env.now)
            yield env.timeout(max(0.0, self.until_s - start))
            if step.on_download is not None:
                step.on_download({}, "the twin was down: the download is not confirmed")
            end = float(env.now)
            values = getattr(self.live, "values", None)
            finished = (self.plc_batch is not None and self.plc_batch[0] == step.batch_id
                        and "complete" in self.plc_batch[1].lower())
            # Finished on the PLC while the twin was down: complete, with a gap in its record
            # (its lab result comes from the PLC); otherwise lost with the twin: aborted.
            return StepResult(self.path, step.batch_id, "gap" if finished else "aborted",
                              start, end, actual=None, gaps=((start, end),),
                              values=values(_NoRecord(), step, end - start)
                              if values is not None else {"duration_s": end - start},
                              fault="" if finished else
                              "the twin was down while this batch ran and the PLC does not "
                              "report it finished: its record is lost; held for the lab",
                              truth=self.lab_source(self.path, step.batch_id, {}),
                              on_line=True)
        taken_s, rec = got
        yield env.timeout(max(0.0, taken_s - float(env.now)))
        if step.on_download is not None:
            failed = rec["fault"] if rec["status"] == "aborted" and "write" in rec["fault"] \
                else ""
            step.on_download({} if failed else dict(step.setpoints), failed)
        prof = rec.get("profile")
        actual = None if prof is None else Profile(
            *(np.asarray(prof[k], dtype=float)
              for k in ("time_s", "temperature_c", "po2_atm", "ph2o_atm")))
        lab = self.labs.get(step.batch_id)
        truth = (ReplayLab(lab[0], lab[1], rec.get("truth_values")) if lab is not None
                 else self.lab_source(self.path, step.batch_id, rec.get("truth_values", {})))
        return StepResult(self.path, step.batch_id, rec["status"], float(rec["start_s"]),
                          float(rec["end_s"]), actual=actual, values=dict(rec["values"]),
                          gaps=tuple((float(a), float(b)) for a, b in rec["gaps"]),
                          fault=rec["fault"], truth=truth, on_line=True)

    def recover(self, env: simpy.Environment,
                result: StepResult) -> Generator[simpy.Event, Any, float]:
        """As the live tool does (the PLC's own state machine)."""
        down: float = yield from self.live.recover(env, result)
        return down

    def maintain(self, env: simpy.Environment,
                 duration_s: float) -> Generator[simpy.Event, Any, float]:
        """As the live tool does."""
        took: float = yield from self.live.maintain(env, duration_s)
        return took
