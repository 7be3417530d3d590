"""The live table ``anode-twin run`` prints: one line per thing that happened.

Append-only lines (not a redrawn screen) so that the table reads the same in a terminal, in a
log file and in CI: time, batch, station, state, predicted thickness with its interval,
controller action, lab result.
"""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

HEADER = (f"{'sim time':>9}  {'batch':<9} {'station':<17} {'state':<18} "
          f"{'predicted nm [interval]':<24} {'action':<10} {'lab nm':>7}")


class LiveTable:
    """Prints rows to ``out`` (stdout by default); ``quiet`` prints nothing."""

    def __init__(self, *, quiet: bool = False, out: TextIO | None = None) -> None:
        self.quiet = quiet
        self.out = out or sys.stdout
        self.rows = 0

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.out, flush=True)

    def header(self, plant: str, live_from_s: float, opts: Any) -> None:
        self._print(f"live twin of {plant}: model joined the line at {_hms(live_from_s)}, "
                    f"running {opts.hours:g} h at {opts.time_factor:g}x wall time")
        self._print("  (a station marked * is simulated; the others run on their PLC)")
        self._print(HEADER)

    def note(self, text: str) -> None:
        self._print(f"  -- {text}")

    def row(self, t_s: float, batch: str, station: str, state: str, *,
            pred: tuple[float, float, float] | None = None, action: str = "",
            lab_nm: float = math.nan, note: str = "", live: bool = True) -> None:
        """One line; ``pred`` is (mean, low, high) nm."""
        self.rows += 1
        p = ""
        if pred is not None and math.isfinite(pred[0]):
            lo, hi = pred[1], pred[2]
            p = (f"{pred[0]:6.2f} [{lo:5.2f}-{hi:5.2f}]" if math.isfinite(lo) and math.isfinite(hi)
                 else f"{pred[0]:6.2f}")
        lab = f"{lab_nm:7.2f}" if isinstance(lab_nm, float) and math.isfinite(lab_nm) else ""
        where = station if live else f"{station}*"
        line = (f"{_hms(t_s):>9}  {batch:<9} {where:<17} {state:<18} {p:<24} "
                f"{action:<10} {lab:>7}")
        self._print(line + (f"  {note}" if note else ""))

    def alarm(self, t_s: float, station: str, kind: str, *, active: bool, severity: int,
              message: str, alarm_id: int | None = None) -> None:
        """One line for a PLC alarm that became active or cleared."""
        ref = f"#{alarm_id} " if alarm_id is not None else ""
        self.row(t_s, "", station, "Alarm" if active else "Alarm cleared",
                 note=f"{ref}{kind} (severity {severity}): {message}")


def _hms(t_s: float) -> str:
    h, rem = divmod(int(t_s), 3600)
    return f"{h:d}:{rem // 60:02d}:{rem % 60:02d}"
