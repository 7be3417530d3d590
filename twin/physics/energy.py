"""Electrical energy of the production steps: melting, milling, oxidation, coating, sputtering.

One number per step, kWh drawn from the supply, computed from what the step actually did (the
time it ran, the furnace's temperature record, the solvent it dried, the target power read
back). The batch record keeps it as ``step_energy_kwh``; the release report and the batch
passport follow it through the genealogy (:mod:`twin.report.energy`).

Model summary
-------------
* **Melting** (induction furnace): the furnace runs at its supply power for the melting time
  the melting physics gives (:func:`twin.physics.melting.melt`: heat into the charge divided by
  the furnace efficiency, so the time at power already is electrical), once per remelt, plus
  the heat-up of a cold furnace at a share of its power (:func:`melting_kwh`).
* **Milling**: mill power × milling time (:func:`milling_kwh`). This is the same energy as the
  milling model's specific energy ``E = P·t/m`` (:func:`twin.physics.milling.
  specific_energy_kj_kg`) times the lot mass: one number per lot. The mill's power is the
  power it draws; media wear lowers it (a worn media charge is lighter, and a stirred mill's
  draw scales with its media load), as the plant model's wear factor does.
* **Oxidation furnace** (electric batch furnace, resistance heated): from the furnace's
  indicated temperature record ``T(t)``, thinned to samples at least ~``min_step_s`` apart::

      q_i = C·ΔT_i + (UA + ṅ·c_p,gas)·(T̄_i − T_amb)·Δt_i − R_i      (heat needed in interval i)
      C   = m_charge·c_p,charge + m_trays·c_p,trays + C_furnace
      E   = Σ max(q_i, 0) / η_heater

  ``C·ΔT`` is the sensible heat of the charge, its trays and the furnace's heated thermal mass
  (lining hot face, elements, muffle, tray rack); ``UA·(T − T_amb)`` the wall losses; ``ṅ·c_p``
  heats the process gas from ambient to the furnace temperature (it leaves hot); ``R_i`` the
  reaction heat of the oxide growing, spread evenly over the hold (the record within 5 K of
  its hold); ``η`` the heater efficiency. Heaters cannot cool: an interval whose heat need is
  negative (the cool-down, or a hold the reaction heat carries) draws nothing, so cooling
  costs nothing. A record sampled every second would count its noise as heating (a 0.5 K
  jitter over 1 s is a ±75 kW swing of ``C·ΔT`` that the clipping at zero only half cancels),
  hence the thinning: over 60 s a 1 K step moves ``C·ΔT`` by less than the interval's losses.
  A record on a coarser grid (the simulated furnace's 60 s, a PLC reporting on change) is used
  as it is, so the knots of a ramp-hold-cool profile are kept.
* **Slurry coating**: the dryer evaporates the wet film's solvent, ``m_solids·(1 − s)/s``
  (``s`` the slurry's solids mass fraction), at its latent heat at the dryer's wet-bulb
  temperature, divided by the dryer's thermal efficiency (the rest heats air that leaves);
  plus the coater's drives (unwind, coating head, slurry pump, rewind) for the coating time
  (:func:`slurry_coating_kwh`).
* **Sputtering**: target power × deposition time (film and reactive cap) divided by the
  power supply's efficiency, plus the tool's base load (pumps, chiller, controls) for the
  run's time under vacuum, pump-down to vent (:func:`sputtering_kwh`). The base load of a
  tool standing idle between runs is not any run's.

Sources and estimates
---------------------
Constants say where they come from; "estimate" marks a value without a public source, to be
replaced by a plant's own meter data (the plant file's energy keys). The furnace defaults
describe the shipped powder line's furnace: 58 kg of powder on 6 mm trays is ~10 m² of trays,
a fibre-lined chamber of ~0.7 m³ with ~5 m² of hot face (computed from the recipe's bed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from twin.errors import PhysicsError

Solvent = Literal["water", "nmp"]

#: Ambient (workshop) temperature, °C.
AMBIENT_C = 25.0
#: Standard molar volume at 0 °C and 1 atm, L/mol (the flow controllers' standard litre).
MOLAR_VOLUME_L_MOL = 22.414
#: Mean molar heat capacity of air between 25 and 825 °C, J/(mol·K): the NIST-JANAF enthalpy
#: increments H(1100 K) − H(298 K) of N2 (24.76 kJ/mol) and O2 (26.21 kJ/mol), 79:21, over
#: 802 K (computed). Humid process air (a few % H2O) is within 2 % of it.
AIR_CP_J_MOL_K = 31.3
#: Mean heat capacity of silicon between 25 and 825 °C, kJ/(kg·K): 0.71 at 25 °C to 0.94 at
#: 727 °C (NIST WebBook), mean ~0.85 (computed). The plant uses the alloy's own mean.
SI_CP_KJ_KG_K = 0.85
#: Mean heat capacity of heat-resistant austenitic steel trays (1.4841 / 310S) between 25 and
#: 825 °C, kJ/(kg·K): 0.50 at 20 °C rising to ~0.60 (steel makers' data sheets); estimate.
TRAY_CP_KJ_KG_K = 0.55
#: Tray mass per kg of powder on it: 1.5 mm steel sheet (11.9 kg/m²) under a 6 mm bed at
#: ~1 g/cm³ bulk density (6 kg/m²), ~2 kg of tray per kg of powder (computed; estimate).
TRAY_KG_PER_CHARGE_KG = 2.0
#: Heat lost through the furnace casing per kelvin above ambient, kW/K: ~5 m² of hot face
#: behind 250 mm of ceramic fibre at k ≈ 0.15 W/(m·K) (mean 400–500 °C, fibre makers' data
#: sheets) conducts 0.6 W/(m²·K) → 3 kW at 825 °C; ×1.6 for the door seal, feedthroughs,
#: gas ports and the rack's thermal bridges → 0.006 kW/K, 4.8 kW at 825 °C (estimate).
FURNACE_LOSS_KW_PER_K = 0.006
#: Heat capacity of the furnace parts that heat with the charge, kJ/K: hot half of ~160 kg of
#: fibre lining (1.05 kJ/(kg·K)) ≈ 85 kJ/K plus ~120 kg of elements, muffle and tray rack
#: (0.55 kJ/(kg·K)) ≈ 65 kJ/K → 150 kJ/K (estimate).
FURNACE_THERMAL_MASS_KJ_K = 150.0
#: Heater efficiency of a resistance furnace: the elements turn all their power into heat;
#: thyristor controllers, leads and (for low-voltage elements) transformers lose 2–5 %
#: (estimate).
HEATER_EFFICIENCY = 0.95
#: Temperature band below the hold in which the reaction heat is released, K (the batch
#: record's hold band).
HOLD_BAND_K = 5.0

#: Share of the melter's supply power drawn while a cold furnace heats up (lining and
#: crucible brought up at reduced power to spare the refractory; estimate).
MELTER_HEAT_UP_POWER_SHARE = 0.5

#: Latent heat of evaporation at the dryer's wet-bulb temperature (~50 °C), kJ/kg: water
#: 2382 kJ/kg at 50 °C (IAPWS-IF97 steam tables); NMP ~53 kJ/mol near room temperature
#: (NIST WebBook), M = 99.13 g/mol → 535 kJ/kg (estimate for the dryer's temperature).
LATENT_HEAT_KJ_KG: dict[str, float] = {"water": 2382.0, "nmp": 535.0}
#: Thermal efficiency of a convective electrode dryer (heat into evaporation / electrical
#: heat): hot-air dryers run at 20–60 % (Mujumdar, *Handbook of Industrial Drying*, 4th ed.,
#: 2014); 0.35 for a dryer without heat recovery (estimate).
DRYER_EFFICIENCY = 0.35
#: Drives of a pilot roll-to-roll coater, 0.6 m web (unwind, coating head, slurry pump,
#: rewind, web guiding), kW (estimate).
COATER_DRIVE_POWER_KW = 5.0

#: Efficiency of a switch-mode DC or pulsed-DC magnetron supply (mains to target), typically
#: 85–90 % (estimate).
SPUTTER_GENERATOR_EFFICIENCY = 0.85
#: Base load of a single-chamber sputter tool while a run is under vacuum: dry backing pump
#: 1–2 kW, turbomolecular pump 0.2–0.5 kW, process chiller ~1 kW, controls and gauges
#: 0.3 kW → 3 kW (estimate).
SPUTTER_BASE_LOAD_KW = 3.0

_KJ_PER_KWH = 3600.0


def _thinned(t: np.ndarray, step_s: float) -> np.ndarray:
    """Indices of the samples of ``t`` at least ``step_s`` after the previous one kept (the
    first and the last always kept)."""
    if t.size < 3 or float(np.min(np.diff(t))) >= step_s:
        return np.arange(t.size)
    keep = [0]
    last = float(t[0])
    for i in range(1, t.size - 1):
        if float(t[i]) - last >= step_s:
            keep.append(i)
            last = float(t[i])
    keep.append(t.size - 1)
    return np.asarray(keep)


def _finite(name: str, value: float, *, positive: bool = False) -> None:
    ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        raise PhysicsError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, "
                           f"got {value}")


def _fraction(name: str, value: float, *, zero: bool = False) -> None:
    low_ok = value >= 0.0 if zero else value > 0.0
    ok = math.isfinite(value) and low_ok and value <= 1.0
    if not ok:
        raise PhysicsError(f"{name} must be in {'[0' if zero else '(0'}, 1], got {value}")


# --------------------------------------------------------------------------- melting, milling


def melting_kwh(power_kw: float, melt_s: float, *, heat_up_s: float = 0.0,
                heat_up_power_share: float = MELTER_HEAT_UP_POWER_SHARE) -> float:
    """Electrical energy of one heat on an induction furnace, kWh.

    ``E = P·(t_melt + f·t_heat-up)/3600``: the furnace at its supply power for the time it
    melted (all remelts; the melting physics' time at power is the electrical energy over the
    power, :func:`twin.physics.melting.melt`), plus the heat-up of a cold furnace at a share
    ``f`` of its power.

    Parameters
    ----------
    power_kw : float
        Supply power, kW (>= 0).
    melt_s : float
        Time melting at power, s (>= 0).
    heat_up_s : float
        Heat-up of a cold furnace before the heat, s (0 when it was warm).
    heat_up_power_share : float
        Share of ``power_kw`` drawn during the heat-up, [0, 1] (default an estimate,
        :data:`MELTER_HEAT_UP_POWER_SHARE`).

    Returns
    -------
    float
        kWh.
    """
    _finite("power_kw", power_kw)
    _finite("melt_s", melt_s)
    _finite("heat_up_s", heat_up_s)
    _fraction("heat_up_power_share", heat_up_power_share, zero=True)
    return power_kw * (melt_s + heat_up_power_share * heat_up_s) / _KJ_PER_KWH


def milling_kwh(power_kw: float, duration_s: float) -> float:
    """Electrical energy of milling one lot, kWh: ``P·t/3600``.

    Equals the milling model's specific energy (kJ/kg, :func:`twin.physics.milling.
    specific_energy_kj_kg`) times the lot mass over 3600: one number per lot.

    Parameters
    ----------
    power_kw : float
        Power the mill draws, kW (>= 0; with media wear, the worn value).
    duration_s : float
        Time it milled, s (>= 0).
    """
    _finite("power_kw", power_kw)
    _finite("duration_s", duration_s)
    return power_kw * duration_s / _KJ_PER_KWH


# --------------------------------------------------------------------------- furnace


@dataclass(frozen=True)
class FurnaceEnergy:
    """Energy of one batch-furnace step, kWh.

    The heat terms are summed over the intervals in which the heaters were on (the heat need
    was positive), so ``heat_kwh = sensible_kwh + wall_loss_kwh + gas_kwh −
    reaction_credit_kwh`` exactly.

    Attributes
    ----------
    electrical_kwh : float
        Drawn from the supply: ``heat_kwh / heater_efficiency``.
    heat_kwh : float
        Heat the elements delivered.
    sensible_kwh : float
        Heat stored in the charge, its trays and the furnace's thermal mass.
    wall_loss_kwh : float
        Heat lost through the casing.
    gas_kwh : float
        Heat carried away by the process gas.
    reaction_credit_kwh : float
        Reaction heat that replaced heater power (at most the reaction heat given).
    heater_on_s : float
        Time the heaters were on, s.
    """

    electrical_kwh: float
    heat_kwh: float
    sensible_kwh: float
    wall_loss_kwh: float
    gas_kwh: float
    reaction_credit_kwh: float
    heater_on_s: float


def furnace_step_energy(time_s: ArrayLike, temperature_c: ArrayLike, *, charge_kg: float,
                        charge_cp_kj_kg_k: float = SI_CP_KJ_KG_K, tray_kg: float = 0.0,
                        tray_cp_kj_kg_k: float = TRAY_CP_KJ_KG_K,
                        thermal_mass_kj_k: float = FURNACE_THERMAL_MASS_KJ_K,
                        loss_kw_per_k: float = FURNACE_LOSS_KW_PER_K,
                        gas_flow_slm: float = 0.0, gas_cp_j_mol_k: float = AIR_CP_J_MOL_K,
                        ambient_c: float = AMBIENT_C,
                        heater_efficiency: float = HEATER_EFFICIENCY,
                        reaction_heat_kwh: float = 0.0, hold_c: float | None = None,
                        min_step_s: float = 60.0) -> FurnaceEnergy:
    """Electrical energy of an electric batch furnace step from its temperature record.

    See the module docstring for the formula. Samples closer than ``0.9·min_step_s`` to the
    last one kept are skipped (a fast-sampled, noisy record would otherwise count its noise
    as heating; the last sample is always kept); between samples the record is linear. Each
    interval's heat need is its sensible heat ``C·ΔT`` plus wall and gas losses at its mean
    temperature, less its share of the reaction heat; negative needs draw nothing.

    Parameters
    ----------
    time_s, temperature_c : array_like, shape (n,)
        The furnace's indicated temperature record: times (s, non-decreasing, n >= 2) and
        temperatures (°C), e.g. a :class:`twin.physics.oxidation_profile.Profile`'s arrays.
    charge_kg : float
        Powder mass, kg (>= 0).
    charge_cp_kj_kg_k : float
        Mean heat capacity of the powder, kJ/(kg·K) (default Si, :data:`SI_CP_KJ_KG_K`).
    tray_kg, tray_cp_kj_kg_k : float
        Mass of the trays (kg) and their heat capacity, kJ/(kg·K).
    thermal_mass_kj_k : float
        Heat capacity of the furnace parts that heat with the charge, kJ/K (estimate default,
        :data:`FURNACE_THERMAL_MASS_KJ_K`).
    loss_kw_per_k : float
        Wall loss coefficient UA, kW/K (estimate default, :data:`FURNACE_LOSS_KW_PER_K`).
    gas_flow_slm : float
        Process-gas flow, standard L/min at 0 °C and 1 atm (0: none).
    gas_cp_j_mol_k : float
        Mean molar heat capacity of the gas, J/(mol·K) (default air, :data:`AIR_CP_J_MOL_K`).
    ambient_c : float
        Ambient temperature, °C (the losses' reference).
    heater_efficiency : float
        Heat delivered / electrical energy, (0, 1].
    reaction_heat_kwh : float
        Heat the charge's reaction releases during the step, kWh (>= 0; 0 credits nothing).
        Spread evenly over the record's time at or above ``hold_c − 5 K``; none is credited
        when the record never gets there.
    hold_c : float, optional
        The hold temperature of the step, °C (default: the record's peak).
    min_step_s : float
        Shortest interval between the samples used, s (> 0; see above).

    Returns
    -------
    FurnaceEnergy
        ``electrical_kwh`` is the step's energy.

    Raises
    ------
    PhysicsError
        A malformed record or a parameter out of its range.
    """
    t = np.asarray(time_s, dtype=float)
    temp = np.asarray(temperature_c, dtype=float)
    if t.ndim != 1 or t.shape != temp.shape or t.size < 2:
        raise PhysicsError("furnace record: time_s and temperature_c must be 1-D arrays of "
                           "one length (at least 2 points)")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(temp))):
        raise PhysicsError("furnace record: a time or temperature is not finite")
    if np.any(np.diff(t) < 0):
        raise PhysicsError("furnace record: time_s must be non-decreasing")
    for name, value in (("charge_kg", charge_kg), ("charge_cp_kj_kg_k", charge_cp_kj_kg_k),
                        ("tray_kg", tray_kg), ("tray_cp_kj_kg_k", tray_cp_kj_kg_k),
                        ("thermal_mass_kj_k", thermal_mass_kj_k),
                        ("loss_kw_per_k", loss_kw_per_k), ("gas_flow_slm", gas_flow_slm),
                        ("gas_cp_j_mol_k", gas_cp_j_mol_k),
                        ("reaction_heat_kwh", reaction_heat_kwh)):
        _finite(name, value)
    _finite("min_step_s", min_step_s, positive=True)
    _fraction("heater_efficiency", heater_efficiency)
    if not math.isfinite(ambient_c):
        raise PhysicsError(f"ambient_c must be finite, got {ambient_c}")

    if float(t[-1] - t[0]) <= 0.0:
        return FurnaceEnergy(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    keep = _thinned(t, 0.9 * min_step_s)
    grid, tg = t[keep], temp[keep]
    dt = np.diff(grid)
    n = dt.size
    t_mid = 0.5 * (tg[1:] + tg[:-1])
    above = t_mid - ambient_c

    c_kj_k = charge_kg * charge_cp_kj_kg_k + tray_kg * tray_cp_kj_kg_k + thermal_mass_kj_k
    gas_kw_k = gas_flow_slm / MOLAR_VOLUME_L_MOL / 60.0 * gas_cp_j_mol_k / 1000.0
    sensible = c_kj_k * np.diff(tg)
    wall = loss_kw_per_k * above * dt
    gas = gas_kw_k * above * dt
    credit = np.zeros(n)
    if reaction_heat_kwh > 0.0:
        ref = float(np.max(tg)) if hold_c is None else float(hold_c)
        band = t_mid >= ref - HOLD_BAND_K
        band_s = float(dt[band].sum())
        if band_s > 0.0:
            credit[band] = reaction_heat_kwh * _KJ_PER_KWH * dt[band] / band_s
    need = sensible + wall + gas - credit
    on = need > 0.0
    heat = float(need[on].sum()) / _KJ_PER_KWH
    return FurnaceEnergy(
        electrical_kwh=heat / heater_efficiency, heat_kwh=heat,
        sensible_kwh=float(sensible[on].sum()) / _KJ_PER_KWH,
        wall_loss_kwh=float(wall[on].sum()) / _KJ_PER_KWH,
        gas_kwh=float(gas[on].sum()) / _KJ_PER_KWH,
        reaction_credit_kwh=float(credit[on].sum()) / _KJ_PER_KWH,
        heater_on_s=float(dt[on].sum()))


# --------------------------------------------------------------------------- electrodes


def solvent_kg(solids_kg: float, solids_fraction: float) -> float:
    """Solvent in a slurry that carries ``solids_kg`` of dry solids, kg: ``m·(1 − s)/s``."""
    _finite("solids_kg", solids_kg)
    if not (math.isfinite(solids_fraction) and 0.0 < solids_fraction < 1.0):
        raise PhysicsError(f"solids_fraction must be in (0, 1), got {solids_fraction}")
    return solids_kg * (1.0 - solids_fraction) / solids_fraction


def slurry_coating_kwh(solids_kg: float, solids_fraction: float, coat_s: float, *,
                       solvent: Solvent = "water", dryer_efficiency: float = DRYER_EFFICIENCY,
                       drive_power_kw: float = COATER_DRIVE_POWER_KW) -> float:
    """Electrical energy of coating and drying one roll of slurry electrode, kWh.

    ``E = m_solvent·h_fg/η_dryer/3600 + P_drive·t/3600`` with ``m_solvent = m_solids·(1 −
    s)/s``.

    Parameters
    ----------
    solids_kg : float
        Dry coating solids on the roll, kg (>= 0).
    solids_fraction : float
        Solids mass fraction of the slurry, (0, 1).
    coat_s : float
        Coating time, s (>= 0).
    solvent : {'water', 'nmp'}
        The slurry's solvent (latent heat :data:`LATENT_HEAT_KJ_KG`).
    dryer_efficiency : float
        Heat into evaporation / electrical energy of the dryer, (0, 1] (estimate default).
    drive_power_kw : float
        Power of the coater's drives and pumps while coating, kW (estimate default).
    """
    if solvent not in LATENT_HEAT_KJ_KG:
        raise PhysicsError(f"solvent must be one of {', '.join(LATENT_HEAT_KJ_KG)}, "
                           f"got {solvent!r}")
    _finite("coat_s", coat_s)
    _finite("drive_power_kw", drive_power_kw)
    _fraction("dryer_efficiency", dryer_efficiency)
    evaporate_kj = solvent_kg(solids_kg, solids_fraction) * LATENT_HEAT_KJ_KG[solvent]
    return (evaporate_kj / dryer_efficiency + drive_power_kw * coat_s) / _KJ_PER_KWH


def sputtering_kwh(target_power_w: float, deposition_s: float, run_s: float, *,
                   generator_efficiency: float = SPUTTER_GENERATOR_EFFICIENCY,
                   base_load_kw: float = SPUTTER_BASE_LOAD_KW) -> float:
    """Electrical energy of one sputter run, kWh.

    ``E = (P_target·t_deposition/η_generator + P_base·t_run)/3.6e6`` (W and s).

    Parameters
    ----------
    target_power_w : float
        Target power (read back), W (>= 0).
    deposition_s : float
        Time the target was powered (film and reactive cap), s (>= 0).
    run_s : float
        The run's time under vacuum, pump-down to vent, s (>= 0).
    generator_efficiency : float
        Target power / mains power of the supply, (0, 1] (estimate default).
    base_load_kw : float
        Pumps, chiller and controls, kW (estimate default).
    """
    _finite("target_power_w", target_power_w)
    _finite("deposition_s", deposition_s)
    _finite("run_s", run_s)
    _finite("base_load_kw", base_load_kw)
    _fraction("generator_efficiency", generator_efficiency)
    return (target_power_w / 1000.0 * deposition_s / generator_efficiency
            + base_load_kw * run_s) / _KJ_PER_KWH
