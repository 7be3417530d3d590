"""The VM's interval on the lab value covers at the level the plant file configures, on the
plant model against the hidden plant (not a looser number)."""

from __future__ import annotations

import math

import pytest

from twin.config import load_plant
from twin.hidden.run import simulate


@pytest.mark.parametrize("level", [0.90, 0.80])
def test_the_lab_value_interval_covers_the_configured_level(level: float) -> None:
    hits = n = 0
    for seed in (21, 22):
        cfg = load_plant(None, [f"control.interval_level={level}"])
        b = simulate(cfg, 60, seed, count_events=False).batches
        c = b[(b.unit_kind == "charge") & b.measured_oxide_nm.notna()
              & (b.vm_n_lab >= 10)]
        inside = (c.measured_oxide_nm >= c.vm_lab_lower_nm) & (c.measured_oxide_nm
                                                              <= c.vm_lab_upper_nm)
        hits += int(inside.sum())
        n += len(c)
    assert n >= 150
    # 2.6 binomial standard deviations (a 1 % two-sided test): 0.90 +- 0.05 for n = 200.
    tol = 2.6 * math.sqrt(level * (1 - level) / n)
    print(f"level {level}: {hits}/{n} = {hits / n:.3f} covered (tolerance {tol:.3f})")
    assert abs(hits / n - level) <= tol, (hits / n, n, tol)
