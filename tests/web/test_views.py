"""The view functions shared by the live and finished-run web views."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from connectors.web import views


def _alarm(aid: int, *, cleared: bool, acked: bool) -> dict[str, object]:
    return {"alarm_id": aid, "station": "line1.oxidizer1", "source": "furnace1",
            "kind": "OverTemperature", "message": "hot", "clear_message": "ok",
            "severity": 700, "raised_at": 1.0, "cleared_at": 2.0 if cleared else None,
            "acknowledged_by": "alice" if acked else None,
            "acknowledged_at": 3.0 if acked else None, "sim_time_s": 5.0}


def test_alarm_states_are_four_and_distinct() -> None:
    got = {(c, a): views.alarm_view(_alarm(1, cleared=c, acked=a))["state"]
           for c in (False, True) for a in (False, True)}
    assert got == {(False, False): "active-unacked", (False, True): "active",
                   (True, False): "cleared-unacked", (True, True): "cleared"}
    assert views.alarm_view(_alarm(1, cleared=True, acked=True))["message"] == "ok"


def test_alarm_list_keeps_every_open_alarm_and_bounds_the_closed() -> None:
    rows = [_alarm(i, cleared=True, acked=True) for i in range(1, 500)]
    rows += [_alarm(500, cleared=False, acked=False), _alarm(501, cleared=True, acked=False)]
    out = views.alarm_list(rows)
    ids = [a["alarm_id"] for a in out]
    assert 500 in ids and 501 in ids
    assert len(out) == views.MAX_ROWS + 2
    assert ids == sorted(ids) and ids[0] == 499 - views.MAX_ROWS + 1


def test_open_proposals_are_those_not_decided_written_or_expired() -> None:
    def rec(kind: str, pid: str, result: str = "open") -> dict[str, object]:
        return views.audit_view({"kind": kind, "loop": "l", "proposal_id": pid,
                                 "result": result}, 0)

    audit = [rec("proposal", "a"), rec("proposal", "b"), rec("proposal", "c"),
             rec("proposal", "d"), rec("decision", "a"), rec("expire", "b"), rec("write", "c"),
             rec("proposal", "e/hold1", "advice")]
    assert [p["proposal_id"] for p in views.open_proposals(audit)] == ["d"]
    # In-step advice is shown, never offered for a decision.
    assert [p["proposal_id"] for p in views.advice(audit)] == ["e/hold1"]


def _batch(i: int, lab: float | None, lo: float, hi: float, live: bool) -> dict[str, object]:
    return views.batch_view({"unit_id": f"C{i}", "unit_kind": "charge", "end_s": float(i),
                             "pred_oxide_mean_nm": 10.0, "measured_oxide_nm": lab,
                             "vm_lab_lower_nm": lo, "vm_lab_upper_nm": hi,
                             "live_equipment": live})


def test_coverage_counts_lab_inside_the_lab_interval_on_line_batches_only() -> None:
    batches = [_batch(1, 9.0, 8.0, 12.0, True), _batch(2, 13.0, 8.0, 12.0, True),
               _batch(3, 10.0, 8.0, 12.0, True), _batch(4, 50.0, 8.0, 12.0, False),
               _batch(5, None, 8.0, 12.0, True)]
    audit = [views.audit_view({"kind": "calibration", "loop": "line1.oxidizer1",
                               "batch_id": "C1", "sim_time_s": 1.0,
                               "after": {"log_rate_factor": 0.1, "drift_per_h": 0.0,
                                         "measured_nm": 9.0}}, 0)]
    cal = views.calibration_view(batches, audit, 0.9)
    # The warm-up batch (simulated equipment) is left out; C5 has no lab result.
    assert cal["coverage"]["n"] == 3 and cal["coverage"]["inside"] == 2
    lo, hi = cal["coverage"]["interval"]
    assert lo < 2 / 3 < hi
    assert cal["latest"]["line1.oxidizer1"]["log_rate_factor"] == 0.1
    assert "measured_nm" not in cal["latest"]["line1.oxidizer1"]


def test_true_values_never_reach_a_page() -> None:
    view = views.batch_view({"unit_id": "C1", "unit_kind": "charge",
                             "pred_oxide_mean_nm": 9.0, "true_oxide_mean_nm": 11.0})
    assert not any("true" in k for k in view)
    assert 11.0 not in view.values()


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=5000),
       st.integers(min_value=2, max_value=2000))
def test_thin_is_bounded_keeps_ends_and_order(values: list[float], most: int) -> None:
    t = list(range(len(values)))
    tt, vv = views.thin(t, values, most=most)
    assert len(tt) == len(vv) <= most
    assert tt[0] == 0 and tt[-1] == len(values) - 1
    assert tt == sorted(tt)
    json.dumps(vv, allow_nan=False)  # NaN and inf are None: strict JSON


def test_jsonable_removes_every_non_finite_number() -> None:
    import numpy as np

    data = {"a": [math.nan, 1.0, {"b": math.inf}], "c": np.float64("nan"), "d": np.int64(3)}
    assert views.jsonable(data) == {"a": [None, 1.0, {"b": None}], "c": None, "d": 3}
