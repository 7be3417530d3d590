"""The historian: station states, timestamped events and batch records, as flat columns.

Bookkeeping is O(1) per event: a state change appends to a few lists and adds the elapsed
time to a per-(station, state) total. Tables are built once, at the end of a run, as
DataFrames (only :mod:`twin.store` writes them to disk).

Station states
--------------
``working``  processing a batch;
``setup``    heat-up, cool-down, changeover, load/unload, pump-down and vent;
``blocked``  done, but the output buffer is full;
``starved``  waiting for input material;
``idle``     waiting for operators (off shift or all busy);
``down``     breakdown repair or planned maintenance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

STATES: tuple[str, ...] = ("working", "setup", "blocked", "starved", "idle", "down")
#: Event name of entering each state (built once, not per change).
_STATE_EVENT: dict[str, str] = {s: f"state:{s}" for s in STATES}


class Historian:
    """Records state intervals, events and batch rows of one run.

    Parameters
    ----------
    start : pandas.Timestamp
        Wall-clock time that simulation time 0 stands for (from the configuration, never the
        real clock, so outputs are reproducible).
    """

    def __init__(self, start: pd.Timestamp) -> None:
        self.start = start
        # Per station: [state, since_s, batch_id, totals or None] (mutable: updated in place).
        self._state: dict[str, list[Any]] = {}
        self.totals: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(STATES, 0.0))
        # Interval columns (closed intervals only).
        self._iv_path: list[str] = []
        self._iv_state: list[str] = []
        self._iv_start: list[float] = []
        self._iv_end: list[float] = []
        self._iv_batch: list[str] = []
        # Event columns.
        self._ev_time: list[float] = []
        self._ev_path: list[str] = []
        self._ev_event: list[str] = []
        self._ev_batch: list[str] = []
        self._ev_detail: list[str] = []
        self.batches: list[dict[str, Any]] = []
        self.last_time_s = 0.0

    # -- recording ---------------------------------------------------------------------------
    def register(self, path: str, state: str, t_s: float) -> None:
        """Start tracking station ``path`` in ``state`` at ``t_s``."""
        self._state[path] = [state, t_s, "", None]

    def set_state(self, path: str, state: str, t_s: float, batch_id: str = "") -> None:
        """Station ``path`` enters ``state`` at ``t_s`` (a no-op if already in it)."""
        cur = self._state[path]
        old = cur[0]
        if old == state and cur[2] == batch_id:
            return
        since = cur[1]
        if t_s != since:
            if t_s < since:
                raise RuntimeError(f"{path}: time went backwards ({t_s} < {since})")
            self._close(cur, path, t_s)
        cur[0] = state
        cur[1] = t_s
        cur[2] = batch_id
        if old != state:
            self.event(t_s, path, _STATE_EVENT.get(state) or f"state:{state}", batch_id)

    def _close(self, cur: list[Any], path: str, t_s: float) -> None:
        # Close the open interval of ``cur`` at ``t_s`` (> its start).
        tot = cur[3]
        if tot is None:
            # Created on first use, so the shares table keeps its row order.
            tot = cur[3] = self.totals[path]
        old, since = cur[0], cur[1]
        tot[old] += t_s - since
        self._iv_path.append(path)
        self._iv_state.append(old)
        self._iv_start.append(since)
        self._iv_end.append(t_s)
        self._iv_batch.append(cur[2])

    def event(self, t_s: float, path: str, event: str, batch_id: str = "",
              detail: str = "") -> None:
        """Append one timestamped event."""
        if t_s < self.last_time_s:
            raise RuntimeError(f"{path}: event at {t_s} s after one at {self.last_time_s} s")
        self.last_time_s = t_s
        self._ev_time.append(t_s)
        self._ev_path.append(path)
        self._ev_event.append(event)
        self._ev_batch.append(batch_id)
        self._ev_detail.append(detail)

    def batch(self, row: Mapping[str, Any]) -> None:
        """Append one batch record (a flat mapping with units in the keys)."""
        self.batches.append(dict(row))

    def close(self, t_s: float) -> None:
        """Close every open state interval at the horizon ``t_s``."""
        for path, cur in self._state.items():
            if t_s > cur[1]:
                self._close(cur, path, t_s)
            cur[1] = t_s

    # -- the live journal (twin.store.journal): what was recorded since, and back ----------
    def intervals_since(self, n: int) -> list[tuple[str, str, float, float, str]]:
        """Closed state intervals from the ``n``-th on (path, state, start_s, end_s,
        batch_id), in the order they closed."""
        return list(zip(self._iv_path[n:], self._iv_state[n:], self._iv_start[n:],
                        self._iv_end[n:], self._iv_batch[n:], strict=True))

    def events_since(self, n: int) -> list[tuple[float, str, str, str, str]]:
        """Events from the ``n``-th on (time_s, path, event, batch_id, detail)."""
        return list(zip(self._ev_time[n:], self._ev_path[n:], self._ev_event[n:],
                        self._ev_batch[n:], self._ev_detail[n:], strict=True))

    def open_states(self) -> list[tuple[str, str, float, str]]:
        """Each station's current state: (path, state, since_s, batch_id), registration order."""
        return [(path, cur[0], float(cur[1]), cur[2]) for path, cur in self._state.items()]

    def restore(self, intervals: Iterable[tuple[str, str, float, float, str]],
                events: Iterable[tuple[float, str, str, str, str]],
                open_states: Iterable[tuple[str, str, float, str]]) -> float:
        """Fill an empty historian with what another recorded (a journal of it); the totals
        come out as that run's (intervals closed in their order). Returns the last time it
        knew, s."""
        last = 0.0
        for path, state, start, end, batch in intervals:
            cur = self._state.setdefault(path, [state, start, batch, None])
            cur[0], cur[1], cur[2] = state, start, batch
            self._close(cur, path, end)
            cur[1] = end
        for t, path, event, batch, detail in events:
            self.event(t, path, event, batch, detail)
            last = t
        for path, state, since, batch in open_states:
            cur = self._state.setdefault(path, [state, since, batch, None])
            cur[0], cur[1], cur[2] = state, since, batch
            last = max(last, since)
        return last

    # -- tables ------------------------------------------------------------------------------
    def _iso(self, t_s: Iterable[float]) -> pd.Series:
        # ISO seconds of start + t: nanoseconds rounded as pandas' to_timedelta rounds them,
        # formatted by numpy (the same strings as Series.dt.strftime, several times faster).
        ns = np.round(np.asarray(list(t_s) if not isinstance(t_s, (np.ndarray, pd.Series))
                                 else t_s, dtype=float) * 1e9).astype("int64")
        start = np.datetime64(self.start.value, "ns")  # pandas Timestamp.value: ns since epoch
        stamps = start + ns.astype("timedelta64[ns]")
        return pd.Series(np.datetime_as_string(stamps, unit="s"), dtype=str)

    def states_frame(self) -> pd.DataFrame:
        """State intervals: path, state, start/end/duration (s), ISO start, batch_id."""
        df = pd.DataFrame({
            "path": pd.Series(self._iv_path, dtype=str),
            "state": pd.Series(self._iv_state, dtype=str),
            "start_s": pd.Series(self._iv_start, dtype=float),
            "end_s": pd.Series(self._iv_end, dtype=float),
            "batch_id": pd.Series(self._iv_batch, dtype=str),
        })
        df = df.sort_values(["start_s", "path"], kind="stable").reset_index(drop=True)
        df.insert(4, "duration_s", df["end_s"] - df["start_s"])
        df.insert(3, "start_iso", self._iso(df["start_s"]))
        return df

    def events_frame(self) -> pd.DataFrame:
        """Events in time order: time (s and ISO), path, event, batch_id, detail."""
        df = pd.DataFrame({
            "time_s": pd.Series(self._ev_time, dtype=float),
            "path": pd.Series(self._ev_path, dtype=str),
            "event": pd.Series(self._ev_event, dtype=str),
            "batch_id": pd.Series(self._ev_batch, dtype=str),
            "detail": pd.Series(self._ev_detail, dtype=str),
        })
        df.insert(1, "time_iso", self._iso(df["time_s"]))
        return df

    def batches_frame(self) -> pd.DataFrame:
        """One row per unit (heat, lot, charge, roll, run, sheet), in creation order."""
        df = pd.DataFrame(self.batches)
        if df.empty:
            return df
        for col in ("start_s", "end_s"):
            if col in df:
                at = int(list(df.columns).index(col)) + 1
                iso = self._iso(df[col].fillna(0.0)).where(df[col].notna().to_numpy(), None)
                df.insert(at, col.replace("_s", "_iso"), iso)
        return df

    def share_frame(self, horizon_s: float) -> pd.DataFrame:
        """Per station: seconds and share of the horizon in each state, and utilisation."""
        rows = []
        for path, tot in self.totals.items():
            row: dict[str, Any] = {"path": path}
            for s in STATES:
                row[f"{s}_s"] = tot[s]
            for s in STATES:
                row[f"{s}_share"] = tot[s] / horizon_s if horizon_s > 0 else 0.0
            row["utilisation"] = row["working_share"]
            rows.append(row)
        return pd.DataFrame(rows)
