"""One control loop per tool: VM, calibration, controller and audit trail wired together.

What the plant model (and the live twin, and the bench) calls, in batch order:

1. :meth:`ControlLoop.before_batch` when a batch is about to be loaded: predicts the batch
   under the current setpoints and, outside the deadband, proposes corrective setpoints.
   ``closed_loop`` writes them at once; ``advisory`` records an open proposal; ``off`` only
   predicts.
2. :meth:`ControlLoop.resolve` when the batch starts (after loading: the operator's window to
   decide an advisory proposal): accepted proposals are written, undecided ones expire.
3. :meth:`ControlLoop.supervisor` gives the step its in-batch endpoint control
   (:mod:`twin.control.endpoint`): the equipment calls it during the hold with the record so
   far; it trims the hold, or ends it on a gross fault.
4. :meth:`ControlLoop.after_step` with the tool's report: the VM prediction of the batch and
   the hold rule (an unreliable prediction holds the batch for the lab).
5. :meth:`ControlLoop.on_lab` whenever a lab result arrives (late, out of order, or never).

Every proposal, decision, write, expiry, hold and calibration outcome goes to the loop's
:class:`~twin.control.audit.AuditSink`. Nothing here does I/O by itself: inside SimPy the sink
is an :class:`~twin.control.audit.AuditBuffer` drained by the run outside the SimPy processes.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from twin.config.schema import ControlConfig, LabConfig
from twin.control.audit import AuditRecord, AuditSink
from twin.control.calibration import CalState, LabObservation, Outcome, ToolCalibration
from twin.control.cap import CapController
from twin.control.endpoint import EndpointControl
from twin.control.furnace_cal import FurnaceCalibration
from twin.control.model import FurnaceModel, OxidationContext, SputterCapModel
from twin.control.r2r import (
    Proposal,
    RunToRunController,
)
from twin.control.vm import VirtualMetrology, VmPrediction, release_basis
from twin.equipment.base import StepResult
from twin.physics.oxidation_profile import Profile

Mode = Literal["off", "advisory", "closed_loop"]
#: Batches whose lab result is still awaited, kept per loop (older ones are dropped: their
#: result is taken as never coming).
MAX_PENDING = 2000


@dataclass
class Plan:
    """Setpoints decided for one batch.

    Attributes
    ----------
    batch_id : str
    setpoints : dict
        What the tool is to run (after :meth:`ControlLoop.resolve`: final).
    proposal : Proposal or None
        The correction computed for the batch (None inside the deadband or when off).
    state : str
        ``none``, ``written``, ``open``, ``accepted``, ``rejected`` or ``expired``.
    predicted_nm : float
        Prediction under the setpoints before any correction, nm.
    """

    batch_id: str
    setpoints: dict[str, float]
    proposal: Proposal | None = None
    state: str = "none"
    predicted_nm: float = math.nan
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Pending:
    result: StepResult
    context: Any
    prediction: VmPrediction
    problems: tuple[str, ...] = ()  # why the record cannot be trusted (empty: it can)


class ControlLoop:
    """VM + calibration + run-to-run controller + audit for one tool.

    Parameters
    ----------
    path : str
        Tool path (``line1.oxidizer1``): the loop's name in the audit trail.
    model : FurnaceModel or SputterCapModel
        The twin's model of the tool.
    cfg : ControlConfig
        The plant's ``[control]`` section.
    recipe : Mapping[str, float]
        The recipe's setpoints.
    sink : AuditSink
        Where audit records go.
    mode : {'off', 'advisory', 'closed_loop'}, optional
        Overrides the mode the configuration gives this loop.
    learn_only_on_line : bool
        Learn only from batches whose step ran on the line's own equipment (a PLC).
    lab : LabConfig, optional
        The lab's method and repeatability (a furnace's calibration weighs results with it).
    """

    def __init__(self, path: str, model: FurnaceModel | SputterCapModel, cfg: ControlConfig,
                 recipe: Mapping[str, float], sink: AuditSink, *,
                 mode: Mode | None = None, learn_only_on_line: bool = False,
                 lab: LabConfig | None = None) -> None:
        self.path = path
        self.learn_only_on_line = learn_only_on_line
        self.model = model
        self.cfg = cfg
        self.sink = sink
        # A furnace learns its charge model's parameters (a Kalman filter); a sputter tool's
        # cap, one rate factor (double-EWMA).
        self.calibration: ToolCalibration | FurnaceCalibration = (
            FurnaceCalibration(cfg, model.charge, lab) if isinstance(model, FurnaceModel)
            else ToolCalibration(cfg))
        self.vm = VirtualMetrology(path, model, self.calibration, cfg)
        # The sputter cap's scalar model is inverted exactly (twin.control.cap).
        self.controller = (CapController if isinstance(model, SputterCapModel)
                           else RunToRunController)(path, model, cfg, recipe)
        self.mode: Mode = mode or loop_mode(cfg, path, model.kind)
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self.predictions: dict[str, VmPrediction] = {}
        # Knob setpoints now on the tool (the last ones resolved before a batch): the next
        # batch starts from them, so the deadband is about the running setpoints, not the
        # recipe. Mid-step trims answer one batch's conditions and are not carried over.
        self.running: dict[str, float] = {}
        self._endpoints: dict[str, EndpointControl] = {}
        #: Set by the station while its tool is live equipment: writes are then audited as
        #: pending and confirmed by the tool's read-back.
        self.writes_pending = False
        self._unconfirmed: dict[str, tuple[Proposal, str, str]] = {}
        #: Process time now (the station sets its environment's clock), s.
        self.clock: Any = lambda: math.nan
        # Non-empty while a lab result contradicting the model awaits confirmation (why).
        self.distrust = ""
        self.monitor_gap_c = 0.0
        self._monitor_seen = 0
        #: d log(thickness)/d(hold °C) and /d log(water) at a recipe (endpoint screening).
        self.endpoint_sens: dict[tuple[float, float], tuple[float, float]] = {}

    def start_calibration(self, theta: Any) -> None:
        """Start the tool's calibration from ``theta`` (its parameters, or a log rate factor),
        forgetting any result learnt so far."""
        cal = self.calibration
        if isinstance(cal, FurnaceCalibration):
            cal.restart((theta,) if isinstance(theta, (int, float)) else tuple(theta))
        else:
            fresh = ToolCalibration(self.cfg)
            fresh.state = CalState(level=float(theta if isinstance(theta, (int, float))
                                               else theta[0]))
            self.calibration = self.vm.calibration = fresh

    # -- before the batch --------------------------------------------------------------
    def before_batch(self, batch_id: str, setpoints: Mapping[str, float], context: Any,
                     t_s: float) -> Plan:
        """Predict the batch under the running setpoints; propose (advisory) or write.

        ``setpoints`` are the recipe's; the knobs the loop corrected before override them.
        """
        sp = {**setpoints, **self.running} if self.mode != "off" else dict(setpoints)
        theta = self.calibration.theta_at(t_s)
        pred = float(self.model.predict_setpoints([sp], context, theta)[0])
        plan = self._before_batch(batch_id, sp, context, t_s, theta, pred)
        # What the plan was made with (the endpoint control screens against it).
        plan.extra["theta"] = tuple(np.atleast_1d(np.asarray(theta, dtype=float)).tolist())
        return plan

    def _before_batch(self, batch_id: str, sp: dict[str, float], context: Any, t_s: float,
                      theta: Any, pred: float) -> Plan:
        if self.mode == "off":
            return Plan(batch_id, sp, None, "none", pred)
        if self.distrust:
            # The lab contradicted a prediction and the calibration has not re-learnt yet:
            # a correction computed from the same model would act on a wrong prediction.
            return Plan(batch_id, sp, None, "suspended", pred, {"why": self.distrust})
        prop = self.controller.propose(batch_id, sp, context, theta, predicted_nm=pred)
        if prop is None:
            return Plan(batch_id, sp, None, "none", pred)
        if self.mode == "closed_loop":
            self._write(prop, t_s, who="controller", why=prop.reason)
            return Plan(batch_id, prop.apply(sp), prop, "written", pred)
        self._audit("proposal", prop, t_s, result="open", who="controller", reason=prop.reason)
        return Plan(batch_id, sp, prop, "open", pred)

    def resolve(self, plan: Plan, t_s: float) -> dict[str, float]:
        """Final setpoints when the batch starts: apply an accepted proposal, expire the rest."""
        prop = plan.proposal
        knobs = [self.model.knobs[k] for k in self.controller.knobs]
        if prop is None or plan.state != "open":
            self.running = {k: plan.setpoints[k] for k in knobs if k in plan.setpoints}
            return plan.setpoints
        decision = self.sink.decision(prop.proposal_id)
        if decision is None:
            plan.state = "expired"
            self._audit("expire", prop, t_s, result="expired", who="controller",
                        reason="batch started before an operator decided; ran unchanged")
        elif decision.result == "accepted":
            plan.state = "accepted"
            plan.setpoints = prop.apply(plan.setpoints)
            self._write(prop, t_s, who=decision.who, why=f"accepted by {decision.who}")
        else:
            plan.state = "rejected"
        self.running = {k: plan.setpoints[k] for k in knobs if k in plan.setpoints}
        return plan.setpoints

    def _write(self, prop: Proposal, t_s: float, *, who: str, why: str,
               result: str = "ok") -> None:
        if self.writes_pending and result == "ok":
            # Live equipment: the write is committed as pending before the download, and
            # audited again with what the tool confirmed (:meth:`confirm_download`).
            self._unconfirmed[prop.batch_id] = (prop, who, why)
            result = "pending"
        self._audit("write", prop, t_s, result=result, who=who, reason=why)

    def download_confirmer(self, plan: Plan) -> Any:
        """The step's ``on_download`` callback: audits the plan's pending write with the
        tool's read-back (or the failure), at the process time it lands."""
        def confirm(read_back: Mapping[str, Any], error: str) -> None:
            self.confirm_download(plan.batch_id, read_back, error, float(self.clock()))
        return confirm

    def confirm_download(self, batch_id: str, read_back: Mapping[str, Any], error: str,
                         t_s: float) -> None:
        """Audit a pending write with the tool's confirmed result."""
        pend = self._unconfirmed.pop(batch_id, None)
        if pend is None:
            return
        prop, who, why = pend
        knobs = {k: read_back[k] for k in prop.after if k in read_back}
        if error:
            result = f"failed: {error}"
        elif any(not math.isclose(float(v), float(prop.after[k]), rel_tol=1e-6, abs_tol=1e-6)
                 for k, v in knobs.items()):
            result = f"failed: read back {knobs} instead of {dict(prop.after)}"
        else:
            result = "ok"
        self.sink.record(AuditRecord(
            kind="write", loop=self.path, batch_id=batch_id, before=prop.before,
            after=knobs or dict(prop.after), reason=f"{why}; confirmed by the tool's read-back"
            if result == "ok" else why, who=who, sim_time_s=t_s,
            proposal_id=prop.proposal_id, result=result))


    # -- during the step ---------------------------------------------------------------
    def supervisor(self, plan: Plan, context: Any, start_s: float) -> EndpointControl | None:
        """The in-batch endpoint control of a furnace charge (None: the step runs as
        planned: control off, ``control.midstep`` false, a sputter tool, or no hold knob)."""
        if (self.mode == "off" or not self.cfg.midstep
                or not isinstance(self.model, FurnaceModel)
                or "hold_time" not in self.controller.knobs):
            return None
        sup = EndpointControl(self, plan, context, start_s)
        self._endpoints[plan.batch_id] = sup
        while len(self._endpoints) > MAX_PENDING:
            self._endpoints.pop(next(iter(self._endpoints)))
        return sup

    def learn_monitor_gap(self, seen: Profile, monitor: Mapping[str, Any]) -> None:
        """Follow the usual over-temperature minus control thermocouple reading of this
        furnace (healthy holds only), so that a fault is a departure from it."""
        last = seen.time_s >= seen.time_s[-1] - 600.0
        gap = float(np.mean(np.asarray(monitor["overtemp_c"])[last]
                            - seen.temperature_c[last]))
        if math.isfinite(gap):
            self.monitor_gap_c = (gap if self._monitor_seen == 0
                                  else 0.9 * self.monitor_gap_c + 0.1 * gap)
            self._monitor_seen += 1

    # -- after the step ----------------------------------------------------------------
    def after_step(self, result: StepResult, context: Any) -> VmPrediction:
        """VM prediction of the finished batch; holds it for the lab when not reliable."""
        problems = self.vm.record_problems(result, context)
        sup = self._endpoints.pop(result.batch_id, None)
        if sup is not None and sup.faults:
            # A gross fault seen during the hold: the model of a healthy furnace does not
            # speak for this charge, and its lab result must not teach the model.
            problems = [*problems, *(f"gross fault: {f}" for f in sup.faults)]
        pred = self.vm.predict(result, context, problems=problems)
        self.predictions[result.batch_id] = pred
        # A batch that ran on simulated equipment of a live twin (its warm-up, a tool it only
        # models) is not the line: its lab result never calibrates the line's tool.
        unlearnt = (("ran on the twin's simulated equipment, not on the line",)
                    if self.learn_only_on_line and not result.on_line else ())
        self._pending[result.batch_id] = _Pending(result, context, pred,
                                                  tuple(problems) + unlearnt)
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
        basis, why = release_basis(pred, self.cfg.window_nm)
        if basis == "lab" and not pred.reliable:
            self.sink.record(AuditRecord(
                kind="hold", loop=self.path, batch_id=result.batch_id,
                before={"vm_mean_nm": pred.mean_nm, "reliability": pred.reliability},
                after={"disposition": "hold_for_lab"}, reason=why, who="controller",
                sim_time_s=result.end_s, result="held"))
        return pred

    # -- lab ---------------------------------------------------------------------------
    def on_lab(self, batch_id: str, measured_nm: float, t_s: float) -> list[Outcome]:
        """Learn from one lab result (any order); audit every outcome that changed."""
        pend = self._pending.get(batch_id)
        if pend is None:
            out = [Outcome(batch_id, "rejected",
                           "no prediction on record for this batch (unknown or too old)")]
        elif pend.problems:
            # An aborted step, a hole in the record or an input outside the model's range:
            # the batch is measured (never released on its prediction), but the tool's rate
            # factor is not learnt from a record the model cannot be trusted on (the
            # exclusion rule of run-to-run practice; it would pull every later batch).
            out = [Outcome(batch_id, "rejected",
                           "not learnt from: " + "; ".join(pend.problems))]
        else:
            pred = pend.prediction
            cal = self.calibration
            if isinstance(cal, FurnaceCalibration):
                before: dict[str, Any] = cal.describe()
                out = cal.observe(batch_id, pend.result.end_s, measured_nm, pred.params,
                                  pred.mean_nm, pred.jacobian or (math.nan,) * len(pred.params),
                                  t_s)
                after: dict[str, Any] = cal.describe()
            else:
                theta_obs, sens = (self.vm.theta_for(pend.result, pend.context, measured_nm,
                                                     pred)
                                   if math.isfinite(pred.mean_nm) else (math.nan, 0.0))
                obs = LabObservation(batch_id, pend.result.end_s, measured_nm, pred.mean_nm,
                                     pred.theta, sens, theta_obs, t_s)
                before = {"log_rate_factor": cal.state.level,
                          "drift_per_h": cal.state.drift_per_h}
                out = cal.add(obs)
                after = {"log_rate_factor": cal.state.level,
                         "drift_per_h": cal.state.drift_per_h}
            for o in out:
                if o.batch_id == batch_id and o.status == "suspect":
                    self.distrust = (f"lab {measured_nm:.3g} nm contradicted the prediction "
                                     f"{pred.mean_nm:.3g} nm of {batch_id}; no correction "
                                     "until the calibration has re-learnt")
                elif o.status in ("used", "reinstated"):
                    self.distrust = ""
                kind = "calibration" if o.status in ("used", "reinstated") else "outlier"
                self.sink.record(AuditRecord(
                    kind=kind, loop=self.path, batch_id=o.batch_id, before=before,
                    after={**after, "measured_nm": measured_nm} if o.batch_id == batch_id
                    else after, reason=o.reason, who="calibration", sim_time_s=t_s,
                    result=o.status))
            return out
        for o in out:
            self.sink.record(AuditRecord(kind="outlier", loop=self.path, batch_id=batch_id,
                                         after={"measured_nm": measured_nm}, reason=o.reason,
                                         who="calibration", sim_time_s=t_s, result=o.status))
        return out

    def _audit(self, kind: str, prop: Proposal, t_s: float, *, result: str, who: str,
               reason: str) -> None:
        self.sink.record(AuditRecord(
            kind=kind, loop=self.path, batch_id=prop.batch_id, before=prop.before,
            after=prop.after, reason=reason, who=who, sim_time_s=t_s,
            proposal_id=prop.proposal_id, result=result,
            predicted_nm={"before": prop.predicted_before_nm,
                          "after": prop.predicted_after_nm}))


def loop_mode(cfg: ControlConfig, path: str, kind: str) -> Mode:
    """The mode of one loop: by tool path, else by station kind, else the plant's mode.

    The kind key is the station name without its number (``oxidizer`` for
    ``line1.oxidizer2``) or the step kind (``oxidize``, ``sputter``).
    """
    station = path.rsplit(".", 1)[-1].rstrip("0123456789")
    for key in (path, path.split(".", 1)[-1], station, kind):
        if key in cfg.loop_modes:
            return cfg.loop_modes[key]
    return cfg.mode


def oxidation_context(ctx: Mapping[str, Any] | OxidationContext) -> OxidationContext:
    """A step context as :class:`OxidationContext` (pass-through when it already is one)."""
    return ctx if isinstance(ctx, OxidationContext) else OxidationContext.from_mapping(ctx)
