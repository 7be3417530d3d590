"""What the web view shows, built from plain records: one set of functions for a live twin and
for a finished run (``anode-twin serve``), so both show the same numbers the same way.

Every function takes what the run's system of record holds (batch rows of the one batch
schema, audit records, alarm rows, station states) and returns JSON-ready dicts. Nothing here
reads files or the running model; :mod:`connectors.web.sources` gathers the inputs.

The hidden plant rule holds here too: the ``true_*`` columns of a batch row (the simulated
truth of a ``simulate`` run) are never shown; a plant sees only predictions and lab values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from twin.report.data import as_float

#: Most batch rows, audit records and cleared alarms a view carries (older ones are in the
#: run folder and the release report; a page open for hours keeps a bounded table).
MAX_ROWS = 200

#: Most points of one trend series sent to a page (a longer record is thinned evenly).
MAX_TREND_POINTS = 1500

#: Release units (the rows with a thickness prediction): oxidation charge, sputter run.
RELEASE_KINDS = ("charge", "run")

#: Station order of a line's mimic (material flow), by station kind.
FLOW = ("melter", "mill", "oxidizer", "coater", "sputter", "lab")


def num(value: Any) -> float | None:
    """A finite float, else None (JSON has no NaN): the release report's reading of a record
    value (:func:`twin.report.data.as_float`)."""
    return as_float(value)


def jsonable(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) as None, ready for strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return jsonable(value.item())
    return value


def text(value: Any) -> str:
    """A string for display ('' for None and NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def station_kind(path: str) -> str:
    """``oxidizer`` for ``line1.oxidizer2``."""
    return path.rsplit(".", 1)[-1].rstrip("0123456789")


def flow_order(path: str) -> tuple[int, str]:
    """Sort key of a station in the line's material flow."""
    kind = station_kind(path)
    return (FLOW.index(kind) if kind in FLOW else len(FLOW), path)


# -- batches ---------------------------------------------------------------------------------
def batch_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """One release unit as the Batches page shows it."""
    lab = num(row.get("measured_oxide_nm"))
    lo, hi = num(row.get("vm_lab_lower_nm")), num(row.get("vm_lab_upper_nm"))
    return {
        "unit_id": text(row.get("unit_id")),
        "kind": text(row.get("unit_kind")),
        "path": text(row.get("path")),
        "alloy": text(row.get("alloy")),
        "start_s": num(row.get("start_s")),
        "end_s": num(row.get("end_s")),
        "pred_nm": num(row.get("pred_oxide_mean_nm")),
        "lower_nm": num(row.get("vm_lower_nm")),
        "upper_nm": num(row.get("vm_upper_nm")),
        "lab_lower_nm": lo,
        "lab_upper_nm": hi,
        "reliability": num(row.get("vm_reliability")),
        "reliable": row.get("vm_reliable") is True or row.get("vm_reliable") == 1,
        "lab_nm": lab,
        "lab_inside": (lo <= lab <= hi) if None not in (lab, lo, hi) else None,  # type: ignore[operator]
        "decision": text(row.get("disposition")) or "pending",
        "rule": text(row.get("disposition_rule")),
        "reason": text(row.get("disposition_reason")),
        "ctrl_mode": text(row.get("ctrl_mode")),
        "ctrl_state": text(row.get("ctrl_state")),
        "step_status": text(row.get("step_status")),
        "live": row.get("live_equipment") is True or row.get("live_equipment") == 1,
    }


def batch_key(view: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes a batch row worth pushing again."""
    return (view["pred_nm"], view["lower_nm"], view["upper_nm"], view["lab_nm"],
            view["decision"], view["rule"], view["ctrl_state"])


def release_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The batch views of the release units with a prediction, oldest first, the last
    :data:`MAX_ROWS`."""
    out = [batch_view(r) for r in rows
           if r.get("unit_kind") in RELEASE_KINDS and num(r.get("pred_oxide_mean_nm"))
           is not None]
    return out[-MAX_ROWS:]


# -- control ---------------------------------------------------------------------------------
def audit_view(rec: Mapping[str, Any], seq: int) -> dict[str, Any]:
    """One audit record (as :class:`~twin.control.audit.AuditRecord` fields) for a page."""
    return {"seq": seq, "kind": text(rec.get("kind")), "loop": text(rec.get("loop")),
            "batch_id": text(rec.get("batch_id")), "proposal_id": text(rec.get("proposal_id")),
            "before": _plain(rec.get("before") or {}), "after": _plain(rec.get("after") or {}),
            "predicted_nm": _plain(rec.get("predicted_nm") or {}),
            "reason": text(rec.get("reason")), "who": text(rec.get("who")),
            "sim_time_s": num(rec.get("sim_time_s")), "result": text(rec.get("result"))}


def open_proposals(audit: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Proposals open for a decision (no decision, write or expiry has closed them), oldest
    first; in-step advice is not among them (:func:`advice`)."""
    closed = {r["proposal_id"] for r in audit
              if r["kind"] in ("decision", "write", "expire") and r["proposal_id"]}
    return [r for r in audit if r["kind"] == "proposal" and r["result"] == "open"
            and r["proposal_id"] not in closed]


def advice(audit: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """In-step advice of advisory endpoint control (not for decision), newest last."""
    return [r for r in audit if r["kind"] == "proposal" and r["result"] == "advice"]


def _plain(d: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, bool | str) or v is None:
            out[str(k)] = v
        elif isinstance(v, int | float):
            out[str(k)] = num(v)
        else:
            out[str(k)] = text(v)
    return out


# -- alarms ----------------------------------------------------------------------------------
def alarm_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """One alarm row of the journal: its state is one of active-unacknowledged,
    active-acknowledged, cleared-unacknowledged, cleared (and acknowledged)."""
    active = row.get("cleared_at") is None or num(row.get("cleared_at")) is None
    acked = bool(text(row.get("acknowledged_by")))
    state = ("active" if active else "cleared") + ("" if acked else "-unacked")
    message = text(row.get("message")) if active else (text(row.get("clear_message"))
                                                        or text(row.get("message")))
    return {"alarm_id": int(row["alarm_id"]), "station": text(row.get("station")),
            "source": text(row.get("source")), "kind": text(row.get("kind")),
            "message": message, "severity": int(num(row.get("severity")) or 0),
            "raised_at": num(row.get("raised_at")), "cleared_at": num(row.get("cleared_at")),
            "sim_time_s": num(row.get("sim_time_s")),
            "acknowledged_by": text(row.get("acknowledged_by")),
            "acknowledged_at": num(row.get("acknowledged_at")), "active": active,
            "acked": acked, "state": state}


def alarm_list(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every active or unacknowledged alarm, plus the newest :data:`MAX_ROWS` closed ones."""
    views = [alarm_view(r) for r in rows]
    open_ = [a for a in views if a["active"] or not a["acked"]]
    closed = [a for a in views if not (a["active"] or not a["acked"])]
    return sorted(open_ + closed[-MAX_ROWS:], key=lambda a: a["alarm_id"])


# -- calibration -----------------------------------------------------------------------------
def calibration_view(batches: Sequence[Mapping[str, Any]],
                     audit: Sequence[Mapping[str, Any]], level: float) -> dict[str, Any]:
    """VM against lab over time, the learnt parameters, and the interval coverage so far.

    Coverage counts a lab result inside the prediction's lab interval (the VM interval
    widened by the lab's own repeatability: what the lab is predicted to read), against the
    nominal ``level`` of the interval.
    """
    # A live twin's warm-up batches ran on its own model of the tool: only the batches made
    # on the line tell how well it predicts the plant.
    if any(b["live"] for b in batches):
        batches = [b for b in batches if b["live"]]
    points = [{"unit_id": b["unit_id"], "path": b["path"], "t_s": b["end_s"],
               "pred_nm": b["pred_nm"], "lower_nm": b["lab_lower_nm"],
               "upper_nm": b["lab_upper_nm"], "lab_nm": b["lab_nm"],
               "inside": b["lab_inside"], "reliable": b["reliable"]}
              for b in batches if b["lab_nm"] is not None]
    judged = [p for p in points if p["inside"] is not None]
    inside = sum(1 for p in judged if p["inside"])
    n = len(judged)
    params: dict[str, list[dict[str, Any]]] = {}
    for r in audit:
        if r["kind"] == "calibration":
            values = {k: v for k, v in r["after"].items()
                      if k != "measured_nm" and isinstance(v, int | float)}
            params.setdefault(r["loop"], []).append({"t_s": r["sim_time_s"],
                                                     "batch_id": r["batch_id"], **values})
    return {"points": points, "level": level,
            "coverage": {"n": n, "inside": inside, "share": inside / n if n else None,
                         "interval": _wilson(inside, n)},
            "parameters": {k: v[-MAX_ROWS:] for k, v in params.items()},
            "latest": {k: v[-1] for k, v in params.items()}}


def _wilson(k: int, n: int, z: float = 1.96) -> list[float] | None:
    """95 % Wilson score interval of a share k/n (None without data)."""
    if n == 0:
        return None
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return [max(0.0, mid - half), min(1.0, mid + half)]


# -- trends ----------------------------------------------------------------------------------
def thin(t: Sequence[float], *series: Sequence[float],
         most: int = MAX_TREND_POINTS) -> list[list[float | None]]:
    """``[t, *series]`` as JSON lists, evenly thinned to at most ``most`` points (the last
    point always kept)."""
    n = len(t)
    idx = list(range(n)) if n <= most else sorted(
        {round(i * (n - 1) / (most - 1)) for i in range(most)})
    return [[num(t[i]) for i in idx], *[[num(s[i]) for i in idx] for s in series]]
