"""Disposition of a finished batch: release on prediction, or hold for the lab.

Used by the stations that set the oxide (oxidation furnace, sputter tool). The decision itself
is :mod:`twin.plant.release`'s, with the rules of the plant file, so the plant model, the live
twin and the release report decide alike. The batch's units go into the station's output
buffer (``blocked`` while it is full); held units keep their slot until the lab result
decides release, rework, scrap or a hold for a retest. A batch held for a retest (the lab
contradicted its prediction, or returned no thickness) leaves the buffer into the lab's
held inventory (:attr:`Lab.held`): its units stay material in process (the ledger's WIP),
with final disposition ``hold`` and the reason in the batch record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import Any

import simpy

from twin.equipment.base import LabResult, LabSample, LabSource
from twin.plant import release
from twin.plant.batches import Unit
from twin.plant.lab import Lab
from twin.plant.release import Evidence, ReleaseRules, Verdict
from twin.plant.station import Machine


def dispose(machine: Machine, lab: Lab, batch: Unit, units: list[Unit], *,
            evidence: Evidence,
            true_nm: float | LabSource | LabSample,
            on_rework: Callable[[Unit], None] | None = None,
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
    evidence : Evidence
        The prediction (mean, uniformity, VM interval and reliability), whether the step was
        aborted, the reworks and whether the route can rework (:class:`Evidence`); the lab's
        sampling pick is added here.
    true_nm : float, LabSample or LabSource
        What the lab receives: a simulated batch's material (analysed by the lab), a
        modelled tool's own value, or, for live equipment, the handle that fetches the real
        lab's result.
    on_rework : callable, optional
        Sends a unit back for rework; ``None`` when the route cannot rework.
    on_measured : callable, optional
        Called with the lab result (the control loop's calibration learns from it).
    """
    ctx = machine.ctx
    rules = ReleaseRules.from_config(ctx.cfg)
    sampled = lab.sampler.pick()
    ev = replace(evidence, sampled=sampled, can_rework=evidence.can_rework
                 and on_rework is not None)
    pre = release.judge(ev.predicted_nm, ev, rules, what="prediction")[0]
    first = release.on_prediction(ev, rules)
    batch.row.update(ev.columns())
    batch.row.update({"sampled": sampled, "lab_requested": first.decision != "release",
                      "predicted_decision": pre})
    if first.decision == "release":
        _final(machine, batch, units, first, math.nan)
        for u in units:
            yield from machine.output(u)
        return
    batch.row.update(first.columns())
    for u in units:
        yield from machine.output(u, hold=True)
    machine.event("hold", batch.id, "lab")

    def done(result: LabResult) -> None:
        measured = result.thickness_nm
        batch.row.update({"lab_method": result.method, "lab_o_wt_pct": result.o_wt_pct,
                          "lab_bet_m2_g": result.bet_m2_g, "lab_note": result.note})
        if on_measured is not None and math.isfinite(measured):
            on_measured(measured)
        verdict = release.on_lab(ev, measured, rules)
        _final(machine, batch, units, verdict, measured)
        assert machine.outbox is not None
        for u in units:
            if verdict.decision == "release":
                machine.outbox.release(u)
                continue
            machine.outbox.remove_held(u)
            if verdict.decision == "rework" and on_rework is not None:
                on_rework(u)
            elif verdict.decision == "scrap":
                ctx.ledger.scrap(u)
            else:
                # Held for a retest / QA review: out of the buffer, into the lab's held
                # inventory; still material in process (never lost, never scrapped).
                lab.hold(u, verdict.reason)

    lab.submit(batch.id, true_nm, done)


def _final(machine: Machine, batch: Unit, units: list[Unit], verdict: Verdict,
           measured: float) -> None:
    now = machine.env.now
    batch.row.update(verdict.columns())
    batch.row.update({"disposition_s": now, "measured_oxide_nm": measured})
    for u in units:
        if u is not batch:
            u.row.update({"disposition": verdict.decision, "disposition_s": now,
                          "disposition_rule": verdict.rule})
    machine.event(f"disposition:{verdict.decision}", batch.id, verdict.reason)


def lab_learner(env: simpy.Environment, loop: Any,
                batch_id: str) -> Callable[[float], None] | None:
    """The callback that feeds a batch's lab result to its control loop (None: no loop)."""
    if loop is None:
        return None

    def learn(measured: float) -> None:
        loop.on_lab(batch_id, measured, float(env.now))

    return learn

