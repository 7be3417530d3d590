"""Disposition of a finished batch: release on prediction, or hold for the lab.

Used by the stations that set the oxide (oxidation furnace, sputter tool). The batch's units
go into the station's output buffer (``blocked`` while it is full); held units keep their slot
until the lab result decides release, rework or scrap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import simpy

from twin.equipment.base import LabResult, LabSample, LabSource
from twin.plant.batches import Unit
from twin.plant.lab import Lab, decide
from twin.plant.station import Machine


def dispose(machine: Machine, lab: Lab, batch: Unit, units: list[Unit], *,
            predicted_nm: float, within_share: float,
            true_nm: float | LabSource | LabSample,
            aborted: bool,
            reworks: int, on_rework: Callable[[Unit], None] | None = None,
            on_measured: Callable[[float], None] | None = None
            ) -> Generator[simpy.Event, Any, None]:
    """Decide a batch's fate, put its units out, and send it to the lab when needed.

    Parameters
    ----------
    machine : Machine
        The station that made it (its output buffer receives the units).
    lab : Lab
    batch : Unit
        The batch the decision is about (a charge or a sputter run); its row gets the result.
    units : list of Unit
        What goes into the output buffer (the charge itself, or the run's sheets).
    predicted_nm, within_share : float
        The twin's predicted mean oxide and uniformity share.
    true_nm : float, LabSample or LabSource
        What the lab receives: a simulated batch's material (analysed by the lab), a
        modelled tool's own value, or, for live equipment, the handle that fetches the real
        lab's result.
    aborted : bool
        The step was aborted: the batch must be measured.
    reworks : int
        Reworks the batch has had.
    on_rework : callable, optional
        Sends a unit back for rework; ``None`` when the route cannot rework.
    on_measured : callable, optional
        Called with the lab result (the control loop's calibration learns from it).
    """
    ctx = machine.ctx
    rules = ctx.cfg.disposition
    window = ctx.cfg.control.window_nm
    sampled = lab.sampler.pick()
    pre, pre_reason = decide(predicted_nm, within_share, reworks, window_nm=window,
                             rules=rules, can_rework=on_rework is not None)
    measure = sampled or aborted or pre != "release" or not rules.release_on_prediction
    batch.row.update({"sampled": sampled, "lab_requested": measure,
                      "predicted_decision": pre})
    if not measure:
        _final(machine, batch, units, "release", f"prediction {pre_reason}", math.nan)
        for u in units:
            yield from machine.output(u)
        return
    batch.row.update({"disposition": "hold", "disposition_reason": "awaiting lab"})
    for u in units:
        yield from machine.output(u, hold=True)
    machine.event("hold", batch.id, "lab")

    def done(result: LabResult) -> None:
        measured = result.thickness_nm
        batch.row.update({"lab_method": result.method, "lab_o_wt_pct": result.o_wt_pct,
                          "lab_bet_m2_g": result.bet_m2_g, "lab_note": result.note})
        if on_measured is not None and math.isfinite(measured):
            on_measured(measured)
        decision, reason = decide(measured, within_share, reworks, window_nm=window,
                                  rules=rules, can_rework=on_rework is not None)
        _final(machine, batch, units, decision, f"lab {reason}", measured)
        assert machine.outbox is not None
        for u in units:
            if decision == "release":
                machine.outbox.release(u)
            else:
                machine.outbox.remove_held(u)
                if decision == "rework" and on_rework is not None:
                    on_rework(u)
                else:
                    ctx.ledger.scrap(u)

    lab.submit(batch.id, true_nm, done)


def _final(machine: Machine, batch: Unit, units: list[Unit], decision: str, reason: str,
           measured: float) -> None:
    now = machine.env.now
    batch.row.update({"disposition": decision, "disposition_reason": reason,
                      "disposition_s": now, "measured_oxide_nm": measured})
    for u in units:
        if u is not batch:
            u.row.update({"disposition": decision, "disposition_s": now})
    machine.event(f"disposition:{decision}", batch.id, reason)


def lab_learner(env: simpy.Environment, loop: Any,
                batch_id: str) -> Callable[[float], None] | None:
    """The callback that feeds a batch's lab result to its control loop (None: no loop)."""
    if loop is None:
        return None

    def learn(measured: float) -> None:
        loop.on_lab(batch_id, measured, float(env.now))

    return learn

