"""The tools' process logic without a server: steps, locks, truth hiding, lab, interlocks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.emulators.points import (
    CELSIUS,
    SCCM,
    dew_point_to_ph2o_atm,
    ph2o_atm_to_dew_point,
)
from connectors.emulators.runner import make_tool
from twin.config import CONFIG_DIR, load_plant

FAST = ["stations.oxidizer.load_unload_h=0.05", "recipes.oxidation.hold_c=400.0",
        "recipes.oxidation.ramp_c_per_min=20.0", "recipes.oxidation.hold_min=5.0",
        "recipes.oxidation.cool_c_per_min=20.0"]


def furnace(seed: int = 1, extra: list[str] | None = None):  # type: ignore[no-untyped-def]
    return make_tool("furnace", load_plant(None, FAST + (extra or [])), seed)


def sputter(seed: int = 1):  # type: ignore[no-untyped-def]
    plant = load_plant(CONFIG_DIR / "thin_film_line.toml",
                       ["recipes.sputter.film_nm=20.0", "stations.sputter.pump_down_min=2.0"])
    return make_tool("sputter", plant, seed)


def run_batch(tool, batch_id: str, max_s: float = 10 * 3600) -> list[str]:  # type: ignore[no-untyped-def]
    assert tool.write_batch_field("BatchId", batch_id) == "Good"
    assert tool.command("Start")[0] == "Good"
    steps = [tool.step]
    t_end = tool.t_s + max_s
    while tool.batch_active and tool.t_s < t_end:
        tool.advance(30.0)
        if tool.step != steps[-1]:
            steps.append(tool.step)
    return steps


def test_unit_ids_follow_unece_packing() -> None:
    assert CELSIUS.unit_id == 4408652  # "CEL", the value OPC 10000-8 quotes
    assert SCCM.unit_id == -1  # no UNECE code: says so instead of guessing


@given(st.floats(min_value=-50.0, max_value=55.0))
def test_dew_point_round_trip(dew_c: float) -> None:
    assert ph2o_atm_to_dew_point(dew_point_to_ph2o_atm(dew_c)) == pytest.approx(dew_c, abs=1e-6)


def test_furnace_batch_walks_every_step_and_hides_the_truth() -> None:
    tool = furnace()
    assert run_batch(tool, "B1") == ["Loading", "Heating", "Holding", "Cooling", "Complete"]
    t = tool.t_s
    offsets = [tool.truth.offset_c(t, i) for i in range(len(tool.zones))]
    assert all(o != 0 for o in offsets) and len(set(offsets)) > 1  # zone to zone, hidden
    for z, offset in zip(tool.zones, offsets, strict=True):
        # Each zone's wall runs at its hidden offset; the PV is the indicated value.
        assert z.true_c == pytest.approx(z.indicated_c + offset, abs=1e-6)
    true_nm = tool.true_oxide_nm["B1"]
    assert 0.5 < true_nm < 100
    assert true_nm not in tool.pv.values()


def test_same_seed_same_truth_other_seed_differs() -> None:
    a, b, c = furnace(3), furnace(3), furnace(4)
    for tool in (a, b, c):
        run_batch(tool, "B1")
    assert a.true_oxide_nm["B1"] == b.true_oxide_nm["B1"]
    assert a.true_oxide_nm["B1"] != c.true_oxide_nm["B1"]


def test_setpoints_checked_and_locked_during_a_batch() -> None:
    tool = furnace()
    assert tool.write_setpoint("zone1_c", 450.0) == "Good"
    assert tool.write_setpoint("zone1_c", 5000.0) == "BadOutOfRange"
    assert tool.write_setpoint("zone1_c", math.nan) == "BadOutOfRange"
    assert tool.write_setpoint("zone1_c", 450) == "BadTypeMismatch"
    assert tool.write_setpoint("ramp_c_per_min", 25.0) == "BadOutOfRange"  # ramp limit 20
    assert tool.write_setpoint("o2_flow_slm", 1.0) == "BadNotWritable"  # a reading only
    tool.write_batch_field("BatchId", "B1")
    tool.command("Start")
    assert tool.write_setpoint("zone1_c", 460.0) == "BadNotWritable"
    assert tool.write_batch_field("BatchId", "B2") == "BadNotWritable"
    assert tool.setpoints["zone1_c"] == 450.0


def test_command_statuses_follow_the_state_machine() -> None:
    tool = furnace()
    assert tool.command("Start")[0] == "BadInvalidArgument"  # no BatchId yet
    assert tool.command("Hold")[0] == "BadInvalidState"
    tool.write_batch_field("BatchId", "B1")
    assert tool.command("Start")[0] == "Good"
    assert tool.command("Start")[0] == "BadInvalidState"
    tool.advance(600.0)
    assert tool.command("Hold") == ("Good", f"held in {tool.held_from}")
    held_t = [z.indicated_c for z in tool.zones]
    tool.advance(600.0)  # held: no step change, temperature kept where it was
    assert tool.step == "Held"
    assert np.allclose([z.indicated_c for z in tool.zones], held_t, atol=5.0)
    assert tool.command("Resume")[0] == "Good"
    assert tool.command("Abort")[0] == "Good"
    assert tool.step == "Aborted" and "B1" in tool.true_oxide_nm
    assert tool.command("Start")[0] == "BadInvalidArgument"  # B1 already ran


def test_heater_runaway_alarms_then_trips_and_reset_needs_the_cause_gone() -> None:
    tool = furnace()
    tool.write_batch_field("BatchId", "B1")
    tool.command("Start")
    tool.advance(1200.0)
    tool.inject_fault("HeaterRunaway")
    kinds = []
    for _ in range(2000):
        changes, _ = tool.advance(5.0)  # one sub-step: stop right at the trip
        kinds += [c.kind for c in changes if c.active]
        if tool.trip_reason:
            break
    assert kinds[:2] == ["OverTemperature", "InterlockTrip"]
    assert tool.step == "Aborted" and tool.machine_state == "OutOfService"
    assert tool.command("Start")[0] == "BadInvalidState"
    assert tool.command("Reset")[0] == "BadInvalidState"  # still far too hot
    tool.clear_faults()
    tool.advance(3 * 3600.0)
    assert tool.command("Reset")[0] == "Good"
    assert tool.machine_state == "NotExecuting"


def test_heartbeat_loss_falls_back_to_the_local_recipe() -> None:
    tool = furnace()
    local = tool.setpoints["zone1_c"]
    tool.write_setpoint("zone1_c", local + 50.0)
    tool.set_heartbeat_lost(True)
    changes, _ = tool.advance(1.0)
    assert tool.control_mode == "Local" and tool.setpoints["zone1_c"] == local
    assert [c.kind for c in changes if c.active] == ["HeartbeatLost"]
    tool.set_heartbeat_lost(False)
    changes, _ = tool.advance(1.0)
    assert tool.control_mode == "Remote"
    assert [(c.kind, c.active) for c in changes] == [("HeartbeatLost", False)]


def test_lab_result_only_after_the_delay_with_noise() -> None:
    results = []
    for seed in (1, 2):
        tool = furnace(seed=5, extra=[])
        tool.lab_rng = np.random.default_rng(seed)
        run_batch(tool, "B1")
        assert tool.request_measurement("nope")[0] == "BadNotFound"
        status, ready_in = tool.request_measurement("B1")
        assert status == "Good" and ready_in == pytest.approx(tool.lab_delay_s)
        assert tool.measurement("B1")[0] == "BadWaitingForInitialData"
        tool.advance(ready_in + 1.0)
        status, result = tool.measurement("B1")
        assert status == "Good" and result is not None
        assert result.thickness_nm == pytest.approx(tool.true_oxide_nm["B1"], rel=0.3)
        results.append(result.thickness_nm)
    assert results[0] != results[1]  # same truth, different lab noise


def test_sputter_runs_its_steps_and_the_monitor_never_shows_the_cap() -> None:
    tool = sputter()
    steps = run_batch(tool, "S1")
    assert steps == ["PumpDown", "Deposit", "Oxidize", "Vent", "Complete"]
    cap = tool.true_oxide_nm["S1"]
    assert 1.0 < cap < 20.0
    # The monitor reads the film (with its tooling error), frozen during the O2 bleed.
    assert tool.pv["qcm_nm"] == pytest.approx(tool.state.film_nm, rel=0.2, abs=1.0)
    assert tool.pv["pressure_mtorr"] > 100_000  # vented


def test_sputter_start_refuses_a_recipe_outside_the_reactive_window() -> None:
    tool = sputter()
    assert tool.write_setpoint("o2_sccm", 15.0) == "Good"  # within the MFC's limits ...
    tool.write_batch_field("BatchId", "S1")
    status, message = tool.command("Start")  # ... but O2/Ar = 0.6 poisons the target
    assert status == "BadOutOfRange" and "O2/Ar" in message
