"""The twin's predictions do not depend on the truth it runs against, only on what it sees.

Two truth files that differ only in what no sensor shows (the thermocouple's offset, the rate
of the tube, the O2 controller's bias, the bed spread) give the same process values, so with
learning switched off the twin's predictions must be identical, charge for charge, while the
true oxide differs. A shared cache, or any path from the truth into the model, breaks this.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from twin.config import load_plant
from twin.hidden.config import load_truth
from twin.hidden.world import HiddenPlant
from twin.plant.plant import Plant
from twin.plant.run import collect, trajectories_frame

DAYS = 6.0


def _run(truth_ref: str | Path, seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    cfg = load_plant()
    hidden = HiddenPlant.load(truth_ref, cfg, seed)
    # learn_only_on_line: no lab result of simulated equipment teaches the calibration, so
    # the twin's predictions depend on the process values and measured inputs alone.
    plant = Plant(cfg, seed, DAYS * 86400.0, tools=hidden, learn_only_on_line=True)
    plant.run(DAYS * 86400.0)
    res = collect(plant, DAYS * 86400.0, seed)
    charges = res.batches[res.batches["unit_kind"] == "charge"].set_index("unit_id")
    return charges, trajectories_frame(plant)


def test_predictions_identical_under_two_truths_while_the_truth_differs(tmp_path: Path) -> None:
    other = tmp_path / "hotter_tube.toml"
    base = load_truth("nominal")
    f = base.furnace
    # Everything a sensor would show stays as in the nominal truth (the thermocouple noise,
    # the humidifier and the dew-point sensor); what none shows changes.
    other.write_text(
        '[truth]\nname = "hotter_tube"\n'
        "[furnace]\nthermocouple_offset_c = -6.0\nzone_offsets_c = [6.0, 0.0, -8.0]\n"
        f"o2_flow_bias_rel = -0.3\nrate_factor = 1.4\ntube_ageing_per_day = 0.01\n"
        f"temperature_noise_c = {f.temperature_noise_c}\n"
        f"humidifier_wander_rel = {f.humidifier_wander_rel}\n"
        f"humidifier_wander_h = {f.humidifier_wander_h}\n"
        f"dew_point_bias_c = {f.dew_point_bias_c}\n"
        '[kinetics]\npreset = "spread_end"\n[bed]\ntray_depth_mm = 9.0\n'
        f"[sensors]\nstorage_rh_bias_percent = {base.sensors.storage_rh_bias_percent}\n"
        f"laser_d50_bias_rel = {base.sensors.laser_d50_bias_rel}\n"
        f"[material]\nssa_roughness = {base.material.ssa_roughness}\n")
    a, traj_a = _run("nominal")
    b, traj_b = _run(other)
    common = a.index.intersection(b.index)
    assert len(common) >= 15
    pd.testing.assert_frame_equal(traj_a, traj_b)  # the PVs do not show the difference
    for col in ("pred_oxide_mean_nm", "pred_oxide_p5_nm", "pred_oxide_p95_nm",
                "vm_lower_nm", "vm_upper_nm", "ctrl_predicted_before_nm"):
        np.testing.assert_array_equal(a.loc[common, col].to_numpy(),
                                      b.loc[common, col].to_numpy(), err_msg=col)
    true_a = a.loc[common, "true_oxide_mean_nm"].to_numpy()
    true_b = b.loc[common, "true_oxide_mean_nm"].to_numpy()
    done = np.isfinite(true_a) & np.isfinite(true_b)  # the charge in the furnace at the end
    assert done.sum() >= 15
    assert np.all(np.abs(np.log(true_b[done] / true_a[done])) > 0.05)  # the truth differs


def test_truth_streams_do_not_move_the_twins_streams() -> None:
    a, _ = _run("nominal", seed=9)
    b, _ = _run("aged_furnace", seed=9)
    # Sampling and sizes come from the twin's own streams: the same whatever the truth.
    common = a.index.intersection(b.index)
    np.testing.assert_array_equal(a.loc[common, "d50_um"], b.loc[common, "d50_um"])
