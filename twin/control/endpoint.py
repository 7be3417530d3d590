"""In-batch endpoint control: re-predict a furnace charge during its hold and trim the hold.

A furnace step cannot change its temperature or gas once it runs (the PLC locks them), but a
furnace controller lets its supervisor change the remaining hold or end the step. At each
checkpoint of the hold (``control.endpoint_checks``, shares of the planned hold) the equipment
shows :class:`EndpointControl` the indicated record so far and its independent instruments;
the twin predicts the final mean oxide from that record plus the rest of the plan (the
latest gas readings held, as persistence forecasts do) and, outside the deadband around the
aim, solves for the hold that puts the charge on aim inside the furnace's hold limits.

Gross faults, which no model of a healthy furnace predicts, are read from the instruments
first (:func:`gross_faults`): a control thermocouple that disagrees with the
over-temperature thermocouple by more than ``control.fault_monitor_c`` (a failing
thermocouple: the charge runs hotter than it reads), an exhaust O2 analyser off the set O2
by more than ``control.fault_gas_rel`` (the wrong gas), a dew point off the set water by as
much (a stuck humidifier). The prediction is then made on what the instruments say; when a
trim still lands the charge in the internal band, the hold is trimmed and the batch held for
the lab; when none does, the hold is ended at once and the step reported aborted with the
fault (the batch is held for the lab, its result never calibrates the model).

Every action goes to the audit trail only with the result the equipment confirmed (the hold
it reads back), never the one intended.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.control.audit import AuditRecord
from twin.control.r2r import RESOLUTION, _safe_log, invert_1d, quantise
from twin.equipment.base import EndpointAction
from twin.physics.oxidation_profile import Profile

if TYPE_CHECKING:
    from twin.control.loop import ControlLoop, Plan

#: How much of the record a fault must show, s (a single noisy knot is not a fault).
FAULT_WINDOW_S = 600.0


def ramp_s(sp: Mapping[str, float]) -> float:
    """Seconds from the start of a furnace step to the start of its hold."""
    return abs(sp["hold_c"] - sp["start_c"]) / sp["ramp_c_per_min"] * 60.0


def hold_start_s(sp: Mapping[str, float]) -> float:
    """When the hold starts, s from the start of the step: ``sp["hold_start_s"]`` when the
    equipment knows it (a PLC reports when it entered Holding, or projects it while loading
    or heating: :func:`projected_hold_start_s`), else the planned ramp end (a furnace that runs
    its setpoint profile on a fixed schedule)."""
    known = sp.get("hold_start_s")
    if known is not None and math.isfinite(float(known)):
        return float(known)
    return ramp_s(sp)


def projected_hold_start_s(step: str, t_now_s: float, temperature_now_c: float,
                           entered_s: Mapping[str, float], sp: Mapping[str, float], *,
                           load_s: float) -> float | None:
    """When a PLC's hold starts (or started), s from the start of its step.

    A furnace PLC's step begins with loading (``load_s``), then heats, and starts its hold
    (soak) timer only once it reads the hold temperature; so the hold starts when the PLC
    entered ``Holding`` (``entered_s``: step name -> when it was entered, s from the step's
    start), or, still loading or heating, after the rest of the loading and of the ramp at its
    planned rate. None after the hold (cooling, done): the hold's start is then in
    ``entered_s`` or unknown.

    Why: timed from the plan alone, the hold ended too early in the twin's prediction
    (on the emulated PLC 15 min of loading and a lagging ramp read a charge 30-60 % thin
    while it heated).
    """
    if "Holding" in entered_s:
        return float(entered_s["Holding"])
    rate = sp["ramp_c_per_min"] / 60.0
    if step == "Loading":
        left = max(0.0, load_s - (t_now_s - entered_s.get("Loading", 0.0)))
        return t_now_s + left + abs(sp["hold_c"] - sp["start_c"]) / rate
    if step == "Heating":
        return t_now_s + abs(sp["hold_c"] - temperature_now_c) / rate
    return None


def rest_of_step(seen: Profile, sp: Mapping[str, float], hold_min: float, *,
                 hold_offset_c: float = 0.0) -> Profile:
    """The record so far, then the planned rest of the step at the latest gas readings.

    Parameters
    ----------
    seen : Profile
        Record from the start of the step (time 0) up to now.
    sp : Mapping[str, float]
        The step's setpoints.
    hold_min : float
        Total hold time of the plan to complete, min.
    hold_offset_c : float
        How far the charge runs above its indicated hold temperature for the rest of the
        step (a failed thermocouple's error), °C.
    """
    start = hold_start_s(sp)
    t_now = float(seen.time_s[-1])
    cool_s = abs(sp["hold_c"] - sp["start_c"]) / sp["cool_c_per_min"] * 60.0
    t_hold_end = max(start + hold_min * 60.0, t_now)
    t_hold_start = min(max(start, t_now), t_hold_end)  # still ramping: finish the ramp
    rest_t = [t_hold_start, t_hold_end, t_hold_end + cool_s]
    hold = sp["hold_c"] + hold_offset_c
    keep = np.asarray(rest_t) > t_now + 1e-9
    times = np.concatenate([seen.time_s, np.asarray(rest_t)[keep]])
    temps = np.concatenate([seen.temperature_c,
                            np.asarray([hold, hold, sp["start_c"]])[keep]])
    n = int(keep.sum())
    po2 = np.concatenate([seen.po2_atm, [seen.po2_atm[-1]] * n])
    ph2o = np.concatenate([seen.ph2o_atm, [seen.ph2o_atm[-1]] * n])
    if seen.time_s[0] == 0.0 and times.size >= 2 and np.isfinite(temps).all():
        # A validated record (a Profile) followed by setpoints: what the checks test holds
        # (called twice per charge and per candidate hold: the checks would dominate).
        return Profile.trusted(times, temps.astype(float), po2.astype(float),
                               ph2o.astype(float))
    return Profile(times, temps, po2, ph2o)


def gross_faults(seen: Profile, sp: Mapping[str, float], monitor: Mapping[str, Any] | None,
                 *, monitor_c: float, gas_rel: float,
                 monitor_gap_c: float = 0.0) -> dict[str, tuple[str, float]]:
    """Gross faults the record shows over its last :data:`FAULT_WINDOW_S` seconds.

    Returns ``{kind: (text, size)}`` with kinds ``thermocouple`` (size: how much hotter the
    charge runs than it reads, °C), ``gas`` (the O2 share the analyser reads, atm) and
    ``water`` (the water the dew point reads, atm). ``monitor_gap_c`` is the usual
    over-temperature minus control reading of a healthy furnace.
    """
    t = seen.time_s
    last = t >= t[-1] - FAULT_WINDOW_S
    out: dict[str, tuple[str, float]] = {}
    mon = monitor or {}
    if "overtemp_c" in mon:
        gap = float(np.mean(np.asarray(mon["overtemp_c"])[last] - seen.temperature_c[last]))
        if abs(gap - monitor_gap_c) > monitor_c:
            out["thermocouple"] = (
                f"control thermocouple reads {gap - monitor_gap_c:+.0f} °C off the "
                f"over-temperature thermocouple (limit ±{monitor_c:g} °C): thermocouple "
                "failure", gap - monitor_gap_c)
    set_o2 = float(sp.get("po2_atm", 0.0))
    if "o2_analyser_atm" in mon and set_o2 > 0:
        o2 = float(np.mean(np.asarray(mon["o2_analyser_atm"])[last]))
        if abs(o2 / set_o2 - 1.0) > gas_rel:
            out["gas"] = (f"exhaust O2 analyser reads {o2:.3g} atm against {set_o2:.3g} atm "
                          "set: wrong gas", o2)
    set_h2o = float(sp.get("ph2o_atm", 0.0))
    if set_h2o > 0:
        h2o = float(np.mean(seen.ph2o_atm[last]))
        if abs(h2o / set_h2o - 1.0) > gas_rel:
            out["water"] = (f"dew point reads {h2o:.3g} atm water against {set_h2o:.3g} atm "
                            "set: humidifier fault", h2o)
    return out


class EndpointControl:
    """The in-batch endpoint control of one charge (a :class:`StepSupervisor`).

    Parameters
    ----------
    loop : ControlLoop
        The furnace's control loop (model, calibration, configuration, audit trail).
    plan : Plan
        The charge's plan (its setpoints are the ones the step runs).
    context : OxidationContext
        The charge.
    start_s : float
        Process time at the start of the step, s.
    """

    def __init__(self, loop: ControlLoop, plan: Plan, context: Any, start_s: float) -> None:
        self.loop = loop
        self.plan = plan
        self.context = context
        self.start_s = float(start_s)
        self.faults: list[str] = []
        self._pending: dict[int, tuple[float, str]] = {}

    def checkpoints_s(self, setpoints: Mapping[str, float]) -> tuple[float, ...]:
        """Shares ``control.endpoint_checks`` of the planned hold, s from the step's start."""
        r = ramp_s(setpoints)
        return tuple(r + f * setpoints["hold_min"] * 60.0
                     for f in sorted(self.loop.cfg.endpoint_checks))

    def check(self, seen: Profile, elapsed_s: float, setpoints: Mapping[str, float],
              monitor: Mapping[str, Any] | None = None) -> EndpointAction | None:
        """The hold to finish on, or None to run on as planned (see the module notes)."""
        loop, cfg = self.loop, self.loop.cfg
        sp = dict(setpoints)
        t_s = self.start_s + elapsed_s
        faults = gross_faults(seen, sp, monitor, monitor_c=cfg.fault_monitor_c,
                              gas_rel=cfg.fault_gas_rel, monitor_gap_c=loop.monitor_gap_c)
        if not faults and monitor and "overtemp_c" in monitor:
            loop.learn_monitor_gap(seen, monitor)
        if not faults and self._on_plan(seen, sp, t_s):
            return None
        record, hot_c = seen, 0.0
        if "thermocouple" in faults and monitor is not None:
            # Predict on the thermocouple that still works (less its usual gap).
            hot_c = faults["thermocouple"][1]
            record = Profile(seen.time_s, np.asarray(monitor["overtemp_c"], dtype=float)
                             - loop.monitor_gap_c, seen.po2_atm, seen.ph2o_atm)
        if "gas" in faults and monitor is not None:
            record = Profile(record.time_s, record.temperature_c,
                             np.asarray(monitor["o2_analyser_atm"], dtype=float),
                             record.ph2o_atm)
        held_min = max(0.0, elapsed_s - hold_start_s(sp)) / 60.0
        # The whole hold range of the furnace (not the run-to-run move limit: a charge that
        # is going wrong now is rescued now or not at all).
        lo, hi = loop.model.knob_limits("hold_time", self.context)
        lo, hi = max(lo, held_min), max(hi, held_min)
        theta = loop.calibration.theta_at(t_s)
        flow = sp.get("gas_flow_slm")

        def log_pred(holds: np.ndarray) -> np.ndarray:
            profs = [rest_of_step(record, sp, float(h), hold_offset_c=hot_c) for h in holds]
            return _safe_log(loop.model.predict_profiles(  # type: ignore[union-attr]
                profs, self.context, theta, flow_slm=flow)["mean_nm"])

        now = float(np.exp(log_pred(np.array([sp["hold_min"]]))[0]))
        if not faults and (not math.isfinite(now) or loop.controller.within_deadband(now)
                           or loop.distrust):
            return None  # on aim, or the model awaits re-learning after a contradiction
        hold, pred, reached = invert_1d(log_pred, (lo, hi), math.log(cfg.aim_nm),
                                        start=min(max(sp["hold_min"], lo), hi),
                                        tol_x=0.25 * RESOLUTION["hold_min"])
        hold = quantise(hold, RESOLUTION["hold_min"], (lo, hi))
        band_lo, band_hi = cfg.band
        if faults:
            text = "; ".join(v[0] for v in faults.values())
            self.faults.append(text)
            if band_lo <= pred <= band_hi and math.isfinite(pred):
                reason = (f"gross fault during the hold ({text}); predicted on the "
                          f"instruments {now:.3g} nm, hold {sp['hold_min']:.0f} -> {hold:.0f} "
                          f"min gives {pred:.3g} nm inside the band; batch held for the lab")
                return self._act(EndpointAction(hold, reason), sp, now, pred, reached, t_s)
            reason = (f"gross fault during the hold ({text}); no hold inside "
                      f"{lo:.0f}-{hi:.0f} min puts the charge in the band {band_lo:g}-"
                      f"{band_hi:g} nm (best {pred:.3g} nm): hold ended, batch held for the "
                      "lab")
            return self._act(EndpointAction(held_min, reason, fault=text), sp, now, pred,
                             False, t_s)
        if math.isclose(hold, sp["hold_min"], abs_tol=1e-6):
            return None
        reason = (f"during the hold: record so far predicts {now:.3g} nm vs aim "
                  f"{cfg.aim_nm:g} nm; hold {sp['hold_min']:.0f} -> {hold:.0f} min gives "
                  f"{pred:.3g} nm" + ("" if reached else " (hold time saturated)"))
        return self._act(EndpointAction(hold, reason), sp, now, pred, reached, t_s)

    def _on_plan(self, seen: Profile, sp: Mapping[str, float], t_s: float) -> bool:
        """Whether the record so far leaves the charge well inside the deadband, to first
        order, so that the full prediction can be skipped.

        The plan's expected thickness (after its correction) moved by the record's deviations
        from the plan: the hold temperature's mean offset over the share of the hold done, the
        dew point's water for the rest (it persists), through the model's sensitivities at
        the recipe. Only while the calibration is the one the plan was made with; a margin of
        half the deadband covers the first-order error.
        """
        loop, plan = self.loop, self.plan
        before = plan.extra.get("theta")
        now = tuple(np.atleast_1d(np.asarray(loop.calibration.theta_at(t_s),
                                             dtype=float)).tolist())
        if before is None or len(before) != len(now) or any(
                abs(a - b) > 1e-12 for a, b in zip(before, now, strict=True)):
            return False  # a lab result moved the calibration since the plan: predict fully
        expected = (plan.proposal.predicted_after_nm
                    if plan.proposal is not None and plan.state in ("written", "accepted")
                    else plan.predicted_nm)
        if not (math.isfinite(expected) and expected > 0):
            return False
        r_s = ramp_s(sp)
        held = seen.time_s >= r_s
        if not held.any() or sp["hold_min"] <= 0:
            return False
        s_temp, s_water = self._sensitivities(sp, before)
        share = min(1.0, (float(seen.time_s[-1]) - r_s) / (60.0 * sp["hold_min"]))
        shift = s_temp * float(np.mean(seen.temperature_c[held]) - sp["hold_c"]) * share
        set_w = float(sp.get("ph2o_atm", 0.0))
        if set_w > 0:
            read_w = float(np.mean(seen.ph2o_atm[held]))
            if read_w <= 0:
                return False
            shift += s_water * math.log(read_w / set_w)
        return abs(math.log(expected / loop.cfg.aim_nm) + shift) < 0.5 * loop.cfg.deadband_rel

    def _sensitivities(self, sp: Mapping[str, float], theta: Any) -> tuple[float, float]:
        loop = self.loop
        key = (round(float(sp["hold_c"]), 1), round(float(sp.get("ph2o_atm", 0.0)), 5))
        got = loop.endpoint_sens.get(key)
        if got is None:
            w = float(sp.get("ph2o_atm", 0.0))
            cands = [dict(sp), {**sp, "hold_c": sp["hold_c"] + 5.0}]
            if w > 0:
                cands.append({**sp, "ph2o_atm": 1.2 * w})
            y = np.log(np.maximum(loop.model.predict_setpoints(cands, self.context,
                                                               theta), 1e-12))
            got = (float(y[1] - y[0]) / 5.0,
                   float(y[2] - y[0]) / math.log(1.2) if w > 0 else 0.0)
            loop.endpoint_sens[key] = got
        return got

    def _act(self, action: EndpointAction, sp: Mapping[str, float], now: float, pred: float,
             reached: bool, t_s: float) -> EndpointAction | None:
        loop = self.loop
        n = int(self.plan.extra.get("endpoint_checks", 0)) + 1
        self.plan.extra["endpoint_checks"] = n
        pid = f"{loop.path}/{self.plan.batch_id}/hold{n}"
        self._pending[id(action)] = (float(sp["hold_min"]), pid)
        before = {"hold_min": float(sp["hold_min"]), "predicted_nm": now}
        after = {"hold_min": action.hold_min, "predicted_nm": pred}
        if loop.mode != "closed_loop":
            # In advisory mode an operator decides; a hold cannot wait for a decision through
            # the twin, so this is advice (result ``advice``, never ``open``): nothing the
            # twin would act on is offered for acceptance; the operator trims the hold on
            # the furnace's own HMI if they agree.
            loop.sink.record(AuditRecord(
                kind="proposal", loop=loop.path, batch_id=self.plan.batch_id, before=before,
                after=after, reason=action.reason, who="controller", sim_time_s=t_s,
                proposal_id=pid, result="advice",
                predicted_nm={"before": now, "after": pred}))
            return None
        return action

    def applied(self, action: EndpointAction, confirmed_hold_min: float | None, t_s: float,
                error: str = "") -> None:
        """Audit the equipment's confirmed hold (or the failure) and follow it in the plan."""
        loop = self.loop
        was, pid = self._pending.pop(id(action), (self.plan.setpoints.get("hold_min",
                                                                          math.nan), ""))
        if confirmed_hold_min is None:
            result = f"failed: {error or 'no read-back'}"
        else:
            result = "ok"  # ``after`` holds the hold the tool read back
            self.plan.setpoints = {**self.plan.setpoints, "hold_min": confirmed_hold_min}
            self.plan.extra["hold_changed"] = True
        loop.sink.record(AuditRecord(
            kind="abort" if action.fault else "write", loop=loop.path,
            batch_id=self.plan.batch_id, before={"hold_min": was},
            after={"hold_min": confirmed_hold_min if confirmed_hold_min is not None
                   else action.hold_min}, reason=action.reason, who="controller",
            sim_time_s=t_s, proposal_id=pid, result=result))

