"""Cradle-to-gate energy of a batch: its step's energy and its upstream steps', by mass.

The batch record gives every unit the electrical energy of the step that made it
(``step_energy_kwh``, :mod:`twin.physics.energy`) and the units it was made from
(``parent_ids``). :func:`cradle_to_gate_energy` follows the genealogy up from a batch and
allocates each ancestor's step energy to it by mass: the release report shows the result on
each batch page, and the batch passport multiplies it by an emission factor.

Allocation
----------
A unit made from parents takes from each of them the share ``m_unit / Σ m_parents`` of its
mass (the batch record does not say how much came from which parent, so the parents are
taken in proportion to their masses). The plant's genealogy makes this exact:

* a lot is cut from one heat: share ``m_lot / m_heat`` (1/3 for a heat of three lots);
* a charge is made of whole lots: share 1 of each lot (its mass is their sum);
* a reworked charge is its previous pass again: share 1;
* a roll is coated from one charge: share ``m_roll / m_charge``;
* a sheet is cut from one sputter run: share ``m_sheet / m_run``.

An ancestor reached along several paths (two lots of one heat in one charge) gets the sum of
the paths' products of shares. Over all the children of a parent, the shares add up to at
most 1 (exactly 1 once it is used up), so no step's energy is counted twice across the
batches made from it.

The module needs only pandas and :mod:`twin.errors` (no asyncua, no plant model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from twin.errors import UsageError

#: The production step that makes each unit kind (``step`` of an entry).
STEP_OF_KIND: Mapping[str, str] = {"heat": "melting", "lot": "milling", "charge": "oxidation",
                                   "roll": "coating", "run": "sputtering"}
#: Unit kinds whose ``step_energy_kwh`` is a share of their parent's step (a sheet's is its
#: share of the sputter run): they contribute through the parent, not on their own.
SHARE_KINDS: frozenset[str] = frozenset({"sheet"})
#: Deepest genealogy followed (a heat → lots → charge → reworks → rolls chain is ~5 deep).
MAX_DEPTH = 64


def cradle_to_gate_energy(units: pd.DataFrame, batch_id: str) -> list[dict[str, Any]]:
    """Electrical energy of every production step that went into ``batch_id``, by mass.

    Parameters
    ----------
    units : pandas.DataFrame
        The batch record (``batches.parquet`` or the live journal's rows, one row per unit),
        with at least ``unit_id``, ``unit_kind``, ``parent_ids``, ``mass_kg``, ``path`` and
        ``step_energy_kwh`` (an absent ``step_energy_kwh`` column reads as no energy).
    batch_id : str
        The unit to account for (any kind: a charge, a roll, a sputter run, a sheet ...).

    Returns
    -------
    list of dict
        One entry per contributing step, the batch's own step first, then its ancestors
        nearest first (each unit once). Keys:

        ``step`` : str
            ``melting``, ``milling``, ``oxidation``, ``coating`` or ``sputtering`` (the step
            of the unit's kind, :data:`STEP_OF_KIND`); ``unknown`` for a parent the record
            does not hold.
        ``unit_id`` : str
            The unit whose step it was (the batch itself, a lot, a heat, a sheet's run ...).
        ``path`` : str
            The equipment that ran the step (``line1.mill2``; ``''`` when unknown).
        ``energy_kwh`` : float
            That step's ``step_energy_kwh`` allocated to this batch: ``step_energy_kwh ×
            share``. NaN when the step has no energy in the record (a live step without a
            usable record, a missing parent): a caller must not read NaN as zero.
        ``share`` : float
            Mass share of that unit that went into this batch (1 for the batch's own step;
            the product of the shares along the genealogy, summed over paths; NaN when a
            mass is missing).
        ``source`` : str
            ``model``: the twin's model of the step (:mod:`twin.physics.energy`), from the
            batch record; ``missing``: the record has no row for this parent.

        A sheet has no entry of its own: its ``step_energy_kwh`` is its share of the run,
        which is the ``sputtering`` entry of the run. A unit whose own step has not run yet
        (a lot still waiting for its mill: no energy and no ``end_s``) has no own entry
        either; its upstream steps are listed. The cradle-to-gate total is the sum of
        ``energy_kwh``; per kg, that over the batch's ``mass_kg``.

    Raises
    ------
    twin.errors.UsageError
        ``batch_id`` is not in the record, or the record lacks ``unit_id``.

    Examples
    --------
    A charge of two 29 kg lots cut from one 87 kg heat: its oxidation, each lot's milling
    (share 1) and the heat's melting with share 2 × 29/87 = 2/3.
    """
    if "unit_id" not in units.columns:
        raise UsageError("batch record has no 'unit_id' column")
    rows = _rows(units)
    if batch_id not in rows:
        raise UsageError(f"no batch {batch_id!r} in the batch record")
    shares: dict[str, float] = {}
    _walk(rows, batch_id, 1.0, 0, shares)
    out: list[dict[str, Any]] = []
    order = _nearest_first(rows, batch_id)
    for uid in order:
        row = rows.get(uid)
        share = shares[uid]
        if row is None:
            out.append({"step": "unknown", "unit_id": uid, "path": "", "energy_kwh": math.nan,
                        "share": share, "source": "missing"})
            continue
        kind = _text(row.get("unit_kind")).lower()
        if kind in SHARE_KINDS:
            continue
        energy = _number(row.get("step_energy_kwh"))
        if math.isnan(energy) and math.isnan(_number(row.get("end_s"))):
            continue  # its own step has not run yet
        out.append({"step": STEP_OF_KIND.get(kind, "unknown"), "unit_id": uid,
                    "path": _text(row.get("path")), "energy_kwh": energy * share,
                    "share": share, "source": "model"})
    return out


def total_kwh(entries: list[dict[str, Any]]) -> float:
    """Sum of the entries' ``energy_kwh`` (NaN if any is NaN: a gap is not zero)."""
    return math.fsum(float(e["energy_kwh"]) for e in entries)


def _walk(rows: Mapping[str, Mapping[str, Any]], uid: str, share: float, depth: int,
          shares: dict[str, float]) -> None:
    """Add ``share`` to ``uid`` and, pro rata, to its ancestors (every path)."""
    if depth > MAX_DEPTH:
        raise UsageError(f"batch record: the genealogy of {uid!r} is deeper than {MAX_DEPTH} "
                         "(a cycle in parent_ids?)")
    shares[uid] = shares.get(uid, 0.0) + share
    row = rows.get(uid)
    if row is None:
        return
    parents = _parents(row.get("parent_ids"))
    if not parents:
        return
    masses = [_number(rows[p].get("mass_kg")) if p in rows else math.nan for p in parents]
    total = math.fsum(masses)
    mass = _number(row.get("mass_kg"))
    each = mass / total if total > 0 else math.nan  # NaN propagates: no mass, no share
    for pid in parents:
        _walk(rows, pid, share * each, depth + 1, shares)


def _nearest_first(rows: Mapping[str, Mapping[str, Any]], uid: str) -> list[str]:
    """``uid`` and its ancestors, breadth first (each once)."""
    order, frontier = [uid], [uid]
    seen = {uid}
    while frontier:
        nxt = []
        for u in frontier:
            row = rows.get(u)
            for pid in _parents(row.get("parent_ids")) if row is not None else []:
                if pid not in seen:
                    seen.add(pid)
                    order.append(pid)
                    nxt.append(pid)
        frontier = nxt
    return order


def _rows(units: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The record's rows by unit ID (the first row of a repeated ID)."""
    out: dict[str, dict[str, Any]] = {}
    for rec in units.to_dict(orient="records"):
        uid = _text(rec.get("unit_id"))
        if uid and uid not in out:
            out[uid] = {str(k): v for k, v in rec.items()}
    return out


def _parents(value: Any) -> list[str]:
    text = _text(value)
    seen: list[str] = []
    for p in (s.strip() for s in text.split(",")):
        if p and p not in seen:
            seen.append(p)
    return seen


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _number(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v
