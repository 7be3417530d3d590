"""The tag map of the emulated PLCs: what a site file would say for them.

``anode-twin run`` starts emulated PLCs on free loopback ports and connects the twin to them
through exactly the same gateway and tag-map code as a real site; this module writes that
tag map (the ``[endpoints]`` and ``[tags]`` tables) for a station and its emulated tool, so the
default run and ``plant_config/site_example.toml`` describe the same address space.
"""

from __future__ import annotations

from typing import Any

from twin.config.schema import FurnaceLimits, SputterLimits

#: Namespace index of the emulators' namespace (the first one registered after the standard).
NS = 2


def _value(node: str, vtype: str, units: str = "", limits: tuple[float, float] | None = None,
           access: str = "read", sampling_ms: float = 100.0) -> dict[str, Any]:
    tag: dict[str, Any] = {"node": node, "type": vtype, "units": units, "access": access,
                           "sampling_ms": sampling_ms}
    if limits is not None:
        tag["limits"] = [float(limits[0]), float(limits[1])]
    return tag


def _method(node: str) -> dict[str, Any]:
    return {"node": node, "type": "Method"}


def _common(tool: str) -> dict[str, dict[str, Any]]:
    """Batch control, state, methods and metrology: the same on both tools."""
    n = f"ns={NS};s={tool}"
    out = {
        "batch_id": _value(f"{n}.BatchControl.BatchId", "String", access="readwrite",
                           sampling_ms=1000),
        "recipe_id": _value(f"{n}.BatchControl.RecipeId", "String", access="readwrite",
                            sampling_ms=1000),
        "step": _value(f"{n}.StepState.CurrentState", "LocalizedText", sampling_ms=100),
        "machine_state": _value(f"{n}.MachineryItemState.CurrentState", "LocalizedText",
                                sampling_ms=1000),
        "interlock_alarm": _value(f"{n}.Alarms.InterlockTrip", "Boolean"),
    }
    for method in ("Start", "Hold", "Resume", "Abort"):
        out[method.lower()] = _method(f"{n}.BatchControl.{method}")
    out["request_measurement"] = _method(f"{n}.Metrology.RequestMeasurement")
    out["get_measurement"] = _method(f"{n}.Metrology.GetMeasurement")
    return out


def furnace_tags(tool: str, limits: FurnaceLimits, zones: int,
                 capacity_kg: float) -> dict[str, dict[str, Any]]:
    """Signals of an emulated oxidation furnace, by local signal name (no station prefix)."""
    n = f"ns={NS};s={tool}"
    tags = _common(tool)
    for i in range(1, zones + 1):
        tags[f"zone{i}_temperature_sp"] = _value(f"{n}.Temperature.Zone{i}.SP", "Double", "°C",
                                                 limits.temperature_c, "readwrite", 1000)
        tags[f"zone{i}_temperature_pv"] = _value(f"{n}.Temperature.Zone{i}.PV", "Double", "°C")
    tags.update({
        "ramp_rate_sp": _value(f"{n}.RampRate.SP", "Double", "°C/min", limits.ramp_c_per_min,
                               "readwrite", 1000),
        "cool_rate_sp": _value(f"{n}.CoolRate.SP", "Double", "°C/min", limits.ramp_c_per_min,
                               "readwrite", 1000),
        "hold_time_sp": _value(f"{n}.HoldTime.SP", "Double", "min", limits.hold_min,
                               "readwrite", 1000),
        "hold_time_pv": _value(f"{n}.HoldTime.PV", "Double", "min"),
        "po2_sp": _value(f"{n}.Oxygen.PartialPressure.SP", "Double", "atm", limits.po2_atm,
                         "readwrite", 1000),
        "po2_pv": _value(f"{n}.Oxygen.PartialPressure.PV", "Double", "atm"),
        "gas_flow_sp": _value(f"{n}.ProcessGas.Flow.SP", "Double", "slm", limits.gas_flow_slm,
                              "readwrite", 1000),
        "gas_flow_pv": _value(f"{n}.ProcessGas.Flow.PV", "Double", "slm"),
        "dew_point_sp": _value(f"{n}.Water.DewPoint.SP", "Double", "°C", access="readwrite",
                               sampling_ms=1000),
        "dew_point_pv": _value(f"{n}.Water.DewPoint.PV", "Double", "°C"),
        "charge_mass_sp": _value(f"{n}.BatchControl.ChargeMass", "Double", "kg",
                                 (0.0, capacity_kg), "readwrite", 1000),
        "charge_d50_sp": _value(f"{n}.BatchControl.ChargeD50", "Double", "µm", (0.01, 1000.0),
                                "readwrite", 1000),
        "over_temperature_alarm": _value(f"{n}.Alarms.OverTemperature", "Boolean"),
        # In-batch endpoint control: the hold of the running step (read back on hold_time_sp)
        # and the two instruments independent of the control loop.
        "adjust_hold": _method(f"{n}.BatchControl.AdjustHold"),
        "overtemp_pv": _value(f"{n}.Temperature.OverTemp.PV", "Double", "°C"),
        "o2_analyser_pv": _value(f"{n}.Oxygen.Analyser.PV", "Double", "atm"),
    })
    return tags


def sputter_tags(tool: str, limits: SputterLimits) -> dict[str, dict[str, Any]]:
    """Signals of an emulated sputter tool, by local signal name (no station prefix)."""
    n = f"ns={NS};s={tool}"
    tags = _common(tool)
    pairs = {"power": ("TargetPower", "W", limits.power_w),
             "pressure": ("ChamberPressure", "mTorr", limits.pressure_mtorr),
             "ar_flow": ("ArgonFlow", "sccm", limits.ar_sccm),
             "o2_flow": ("OxygenFlow", "sccm", limits.o2_sccm),
             "substrate_temperature": ("SubstrateTemperature", "°C",
                                       limits.substrate_temperature_c),
             "deposition_time": ("DepositionTime", "min", limits.deposit_min),
             "oxidation_time": ("OxidationTime", "min", limits.deposit_min)}
    for name, (browse, units, lim) in pairs.items():
        tags[f"{name}_sp"] = _value(f"{n}.{browse}.SP", "Double", units, lim, "readwrite", 1000)
        tags[f"{name}_pv"] = _value(f"{n}.{browse}.PV", "Double", units)
    tags["film_thickness_pv"] = _value(f"{n}.ThicknessMonitor.PV", "Double", "nm")
    return tags


def endpoint(url: str, tool: str, *, heartbeat_period_s: float = 1.0) -> dict[str, Any]:
    """A plain loopback endpoint for an emulated tool (with its heartbeat)."""
    return {"url": url, "timeout_s": 4.0, "connect_timeout_s": 10.0, "watchdog_s": 1.0,
            "reconnect_min_s": 0.2, "reconnect_max_s": 2.0,
            "heartbeat": {"node": f"ns={NS};s={tool}.BatchControl.Heartbeat", "type": "UInt32",
                          "period_s": heartbeat_period_s}}


def station_tags(station_path: str, tool_endpoint: str,
                 local: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Prefix local signal names with the station path and bind them to the endpoint."""
    return {f"{station_path}.{name}": {**tag, "endpoint": tool_endpoint}
            for name, tag in local.items()}
