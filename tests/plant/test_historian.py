"""The historian's tables: ISO timestamps and state intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.plant.historian import Historian

START = pd.Timestamp("2025-01-06T00:00:00")


@settings(max_examples=100, deadline=None)
@given(times=st.lists(st.floats(0.0, 3.2e7, allow_nan=False), min_size=1, max_size=40))
def test_iso_timestamps_are_pandas_strftime(times: list[float]) -> None:
    """numpy formats exactly what Series.dt.strftime gave (nanoseconds rounded alike),
    including times a hair below a whole second."""
    times += [3599.9999999999995, 86399.9999999, 0.0, 1e-10]
    h = Historian(START)
    got = h._iso(pd.Series(times, dtype=float))
    ref = (START + pd.to_timedelta(pd.Series(times, dtype=float), unit="s")
           ).dt.strftime("%Y-%m-%dT%H:%M:%S")
    assert got.tolist() == ref.tolist()
    assert got.dtype == ref.dtype


def test_states_and_events_frames_carry_iso_times() -> None:
    h = Historian(START)
    h.register("line1.mill1", "starved", 0.0)
    h.set_state("line1.mill1", "working", 3600.5, "L1")
    h.close(7200.0)
    states, events = h.states_frame(), h.events_frame()
    assert states.start_iso.tolist() == ["2025-01-06T00:00:00", "2025-01-06T01:00:00"]
    assert np.allclose(states.duration_s, [3600.5, 3599.5])
    assert events.time_iso.tolist() == ["2025-01-06T01:00:00"]
    assert events.event.tolist() == ["state:working"]
