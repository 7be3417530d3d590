"""The batch record's schema: every column of ``batches.parquet``, defined once.

One row per unit of material (``heat``, ``lot``, ``charge``, ``roll`` on a powder line;
``run``, ``sheet`` on a thin-film line). Each column is a :class:`Column`: its name (the unit
is in the name: ``_nm``, ``_s``, ``_kg``, ``_c`` ...), its type (``float``, ``int``, ``bool``,
``str``), its unit (recorded explicitly too; ``""`` for dimensionless numbers and text), what
it means and which unit kinds carry it.

Who uses it:

* the plant model (:func:`twin.plant.run.collect`) conforms its batch table with
  :func:`conform`: columns in schema order, types coerced, and a column the schema does not
  know is an error naming it (a developer adding a column adds it here);
* the run-folder writer (:mod:`twin.store.runfolder`) writes ``batches.parquet`` with
  :func:`arrow_schema` (unit, description and kinds in each field's metadata);
* the live twin's journal (:mod:`twin.store.journal`) takes :func:`sqlite_columns` (or the
  ``CREATE TABLE`` of :func:`sqlite_ddl`) and :func:`from_records`;
* the release report (:mod:`twin.report.data`) reads the columns by these names and refuses a
  batch table without a :data:`REQUIRED` column.

Missing values: ``float`` columns hold NaN, ``int`` and ``bool`` columns are pandas' nullable
``Int64`` and ``boolean`` (``pd.NA``), ``str`` columns are pandas' ``str`` (NaN).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from twin.errors import TwinError

DType = Literal["float", "int", "bool", "str"]

#: Unit kinds, in the order material flows through a line (powder, then thin film).
UNIT_KINDS: tuple[str, ...] = ("heat", "lot", "charge", "roll", "run", "sheet")

_ALL = UNIT_KINDS
_H, _L, _C, _R, _RUN, _S = ("heat",), ("lot",), ("charge",), ("roll",), ("run",), ("sheet",)
_OX = ("charge", "run")  # the release units: the oxidation charge and the sputter run

#: pandas dtype of each column type.
PANDAS_DTYPES: dict[str, Any] = {"float": np.dtype("float64"), "int": pd.Int64Dtype(),
                                 "bool": pd.BooleanDtype(),
                                 "str": pd.StringDtype(na_value=np.nan)}
#: Parquet (Arrow) type of each column type.
ARROW_TYPES: dict[str, pa.DataType] = {"float": pa.float64(), "int": pa.int64(),
                                       "bool": pa.bool_(), "str": pa.string()}
#: SQLite column type (type affinity) of each column type; bool is stored as 0/1.
SQLITE_TYPES: dict[str, str] = {"float": "REAL", "int": "INTEGER", "bool": "INTEGER",
                                "str": "TEXT"}


class SchemaError(TwinError):
    """A batch table does not fit the schema; the message names the column."""


@dataclass(frozen=True)
class Column:
    """One column of the batch record.

    Attributes
    ----------
    name : str
        Column name (units in the name).
    dtype : {'float', 'int', 'bool', 'str'}
        Type.
    unit : str
        Physical unit (``"nm"``, ``"s"``, ``"kg"``, ``"°C"`` ...), ``""`` when dimensionless.
    kinds : tuple of str
        Unit kinds whose rows carry a value (the other rows hold a missing value).
    description : str
        What it is.
    required : bool
        Every batch table has the column (:func:`conform` adds it when no row has a value);
        the report refuses a batch table without it.
    truth : bool
        The simulator's hidden truth: never available on a real plant; the report never
        reads it.
    """

    name: str
    dtype: DType
    unit: str
    kinds: tuple[str, ...]
    description: str
    required: bool = False
    truth: bool = False

    @property
    def pandas_dtype(self) -> Any:
        """The pandas dtype of the column."""
        return PANDAS_DTYPES[self.dtype]

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow (Parquet) type of the column."""
        return ARROW_TYPES[self.dtype]

    @property
    def sqlite_type(self) -> str:
        """The SQLite type of the column."""
        return SQLITE_TYPES[self.dtype]

    def field(self) -> pa.Field:
        """The Arrow field, with ``unit``, ``description`` and ``kinds`` as field metadata."""
        return pa.field(self.name, self.arrow_type, nullable=True, metadata={
            "unit": self.unit, "description": self.description,
            "kinds": ",".join(self.kinds)})


def _c(name: str, dtype: DType, unit: str, kinds: tuple[str, ...], description: str,
       **kw: Any) -> Column:
    return Column(name, dtype, unit, kinds, description, **kw)


COLUMNS: tuple[Column, ...] = (
    # -- identity and flow (every unit) ------------------------------------------------------
    _c("unit_id", "str", "", _ALL, "unit ID (H000001, L000001, C000001, R000001, S..., ...)",
       required=True),
    _c("unit_kind", "str", "", _ALL, "heat, lot, charge, roll, run or sheet", required=True),
    _c("parent_ids", "str", "", _ALL,
       "IDs of the units it was made from, comma-separated ('' for a heat or run)",
       required=True),
    _c("alloy", "str", "", _ALL, "alloy label (or the film material of a thin-film line)",
       required=True),
    _c("mass_kg", "float", "kg", _ALL, "mass of the unit", required=True),
    _c("path", "str", "", _ALL, "equipment that made it (line1.oxidizer1)", required=True),
    _c("sputter_path", "str", "", ("run", "sheet"), "sputter tool of the run"),
    _c("melter_path", "str", "", ("heat", "lot"), "melter of the heat"),
    _c("recipe_id", "str", "", ("heat", "lot", "charge", "roll", "run"),
       "recipe of the step that made it"),
    _c("start_s", "float", "s", _ALL, "start of the step that made it (simulation time)",
       required=True),
    _c("start_iso", "str", "", _ALL, "start_s as ISO 8601 time (production start + start_s)"),
    _c("end_s", "float", "s", _ALL, "end of the step that made it (simulation time)",
       required=True),
    _c("end_iso", "str", "", _ALL, "end_s as ISO 8601 time"),
    _c("step_status", "str", "", _OX, "ok or aborted (a breakdown cut the step short)"),
    _c("step_energy_kwh", "float", "kWh", _ALL,
       "electrical energy of the production step that made this unit (melting for a heat, "
       "milling for a lot, the oxidation furnace for a charge, coating for a roll, sputtering "
       "for a run; a sheet's is its share of the run), computed by the twin's model from the "
       "step's actual record (twin.physics.energy)"),
    _c("sheets", "int", "", _RUN, "sheets coated in the run"),
    # -- melting (heat) ----------------------------------------------------------------------
    _c("melted_s", "float", "s", _H, "time the melt finished"),
    _c("melt_duration_s", "float", "s", _H, "melting time, all remelts"),
    _c("liquidus_c", "float", "°C", _H, "liquidus temperature of the alloy"),
    _c("pour_temperature_c", "float", "°C", _H, "pour temperature"),
    _c("melt_energy_kwh", "float", "kWh", _H, "energy to melt the heat"),
    _c("phases_mass_frac", "str", "", ("heat", "lot", "charge", "run"),
       "phase mass fractions, 'Si:0.5653;TiSi2:0.4347'"),
    _c("free_phase", "str", "", ("heat", "lot", "charge", "run"),
       "the free (active) phase: Si or Sn"),
    _c("free_phase_mass_frac", "float", "", _H, "mass fraction of the free phase"),
    _c("alloy_phase", "str", "", _H, "the intermetallic phase ('' for none)"),
    _c("released_s", "float", "s", _H, "time the heat's last lot left the melter"),
    # -- milling (lot) -----------------------------------------------------------------------
    _c("created_s", "float", "s", _L, "time the lot was cut from its heat"),
    _c("mill_path", "str", "", _L, "mill of the lot"),
    _c("milled_s", "float", "s", _L, "time the milling finished"),
    _c("feed_d50_um", "float", "µm", _L, "median particle size of the mill feed (recipe)"),
    _c("mill_power_kw", "float", "kW", _L, "mill power"),
    _c("mill_efficiency", "float", "", _L, "mill efficiency factor (1 new media; wears)"),
    _c("mill_specific_energy_kj_kg", "float", "kJ/kg", _L, "specific milling energy"),
    _c("d50_um", "float", "µm", ("lot", "charge"), "median particle size (measured)"),
    _c("psd_gsd", "float", "", ("lot", "charge"),
       "geometric standard deviation of the particle size distribution"),
    _c("ssa_m2_g", "float", "m²/g", ("lot", "charge"), "specific surface area (BET)"),
    _c("oxygen_wt_pct", "float", "%", _L, "oxygen content of the milled lot, wt %"),
    _c("model_d50_um", "float", "µm", _L, "the twin's milling model: median particle size"),
    _c("model_ssa_m2_g", "float", "m²/g", _L, "the twin's milling model: specific surface"),
    _c("amorphous_frac", "float", "", ("lot", "charge", "run"),
       "amorphous fraction of the active material (0..1)"),
    _c("media_pickup_wt_pct", "float", "%", _L,
       "milling-media pickup, wt % (Fe from steel, Zr from ZrO2 media)"),
    # -- charge make-up (charge) -------------------------------------------------------------
    _c("storage_h_mean", "float", "h", _C, "mean time its lots waited in storage"),
    _c("storage_rh_percent", "float", "%", _C, "relative humidity of the storage"),
    _c("native_oxide_nm", "float", "nm", _C, "native oxide grown in storage"),
    _c("milling_oxide_nm", "float", "nm", _C, "oxide from the milling oxygen pickup"),
    _c("initial_oxide_nm", "float", "nm", _C, "oxide before the oxidation step"),
    _c("n_parents", "int", "", _C, "units the charge was made from"),
    _c("mill_paths", "str", "", _C, "mills of its lots, comma-separated"),
    _c("feed_oxygen_wt_pct", "float", "%", _C, "mass-weighted oxygen of its lots, wt %"),
    _c("oxidizer_path", "str", "", ("charge", "roll"), "furnace that oxidised the charge"),
    _c("reworks", "int", "", _OX, "times the material was reworked before this pass"),
    # -- oxidation step (charge) -------------------------------------------------------------
    _c("sp_start_c", "float", "°C", _C, "setpoint sent: start temperature"),
    _c("sp_hold_c", "float", "°C", _C, "setpoint sent: hold temperature"),
    _c("sp_ramp_c_per_min", "float", "°C/min", _C, "setpoint sent: heating ramp"),
    _c("sp_hold_min", "float", "min", _C, "setpoint sent: hold time"),
    _c("sp_cool_c_per_min", "float", "°C/min", _C, "setpoint sent: cooling ramp"),
    _c("sp_po2_atm", "float", "atm", _C, "setpoint sent: O2 partial pressure"),
    _c("sp_ph2o_atm", "float", "atm", _C, "setpoint sent: H2O partial pressure"),
    _c("sp_gas_flow_slm", "float", "slm", _C, "setpoint sent: gas flow"),
    _c("actual_max_c", "float", "°C", _C, "peak indicated temperature"),
    _c("actual_hold_c_mean", "float", "°C", _C, "mean indicated temperature in the hold band"),
    _c("actual_hold_band_min", "float", "min", _C, "time within 5 °C below the hold setpoint"),
    _c("actual_po2_atm_mean", "float", "atm", _C, "mean O2 partial pressure"),
    _c("actual_ph2o_atm_mean", "float", "atm", _C, "mean H2O partial pressure"),
    # -- sputter step (run) ------------------------------------------------------------------
    _c("sp_power_w", "float", "W", _RUN, "setpoint sent: target power"),
    _c("sp_pressure_mtorr", "float", "mTorr", _RUN, "setpoint sent: chamber pressure"),
    _c("sp_ar_sccm", "float", "sccm", _RUN, "setpoint sent: Ar flow"),
    _c("sp_o2_sccm", "float", "sccm", _RUN, "setpoint sent: O2 flow (cap)"),
    _c("sp_substrate_temperature_c", "float", "°C", _RUN, "setpoint sent: substrate temperature"),
    _c("sp_deposit_min", "float", "min", _RUN, "setpoint sent: deposition time (film)"),
    _c("sp_oxidize_min", "float", "min", _RUN, "setpoint sent: reactive oxidation time (cap)"),
    _c("actual_power_w", "float", "W", _RUN, "read-back target power"),
    _c("actual_pressure_mtorr", "float", "mTorr", _RUN, "read-back chamber pressure"),
    _c("actual_ar_sccm", "float", "sccm", _RUN, "read-back Ar flow"),
    _c("actual_substrate_temperature_c", "float", "°C", _RUN, "read-back substrate temperature"),
    _c("actual_o2_sccm", "float", "sccm", _RUN, "read-back O2 flow"),
    _c("actual_deposit_min", "float", "min", _RUN, "deposition time run"),
    _c("actual_oxidize_min", "float", "min", _RUN, "oxidation time run"),
    _c("actual_duration_s", "float", "s", _OX, "duration of the step"),
    # -- prediction (the twin's) and hidden truth --------------------------------------------
    _c("pred_film_nm", "float", "nm", ("run", "sheet"), "predicted film thickness"),
    _c("pred_oxide_mean_nm", "float", "nm", ("charge", "roll", "run", "sheet"),
       "predicted (area-weighted) mean oxide thickness"),
    _c("pred_oxide_p5_nm", "float", "nm", ("charge", "roll"),
       "predicted 5th percentile of the oxide over the particles"),
    _c("pred_oxide_p50_nm", "float", "nm", _C, "predicted median oxide"),
    _c("pred_oxide_p95_nm", "float", "nm", ("charge", "roll"),
       "predicted 95th percentile of the oxide"),
    _c("pred_within_50pct_share", "float", "", ("charge", "roll"),
       "predicted share of the surface within ±50 % of the mean"),
    _c("pred_fully_oxidised_share", "float", "", _C,
       "predicted volume share of particles oxidised through"),
    _c("true_film_nm", "float", "nm", _RUN, "hidden truth: film thickness (simulator only)",
       truth=True),
    _c("true_oxide_mean_nm", "float", "nm", _OX, "hidden truth: mean oxide (simulator only)",
       truth=True),
    _c("pred_o_wt_pct", "float", "%", _C, "predicted O of the oxidised powder, wt %"),
    _c("pred_si_consumed_pct", "float", "%", _C,
       "predicted share of the alloy's Si (or Sn) turned into oxide"),
    _c("pred_composition_wt", "str", "", _C,
       "predicted mass fractions of the oxidised product, 'Si:0.69;Ti:0.19;O:0.12'"),
    _c("data_gap_count", "int", "", _C, "gaps in the process-value record (live equipment)"),
    _c("data_gap_s", "float", "s", _C, "total length of the gaps in the record"),
    _c("step_fault", "str", "", _C, "fault that ended the step ('' for none)"),
    # -- virtual metrology (twin.control.vm.VmPrediction.as_columns) -------------------------
    _c("vm_time_s", "float", "s", _OX, "time of the VM prediction"),
    _c("vm_mean_nm", "float", "nm", _OX, "VM: predicted mean oxide"),
    _c("vm_p5_nm", "float", "nm", _OX, "VM: 5th percentile"),
    _c("vm_p50_nm", "float", "nm", _OX, "VM: median"),
    _c("vm_p95_nm", "float", "nm", _OX, "VM: 95th percentile"),
    _c("vm_within_50pct_share", "float", "", _OX, "VM: share within ±50 % of the mean"),
    _c("vm_lower_nm", "float", "nm", _OX, "VM: prediction interval on the mean, low"),
    _c("vm_upper_nm", "float", "nm", _OX, "VM: prediction interval on the mean, high"),
    _c("vm_sigma_log", "float", "", _OX, "VM: standard deviation of log(mean)"),
    _c("vm_reliability", "float", "", _OX, "VM: reliability score (0..1)"),
    _c("vm_reliable", "bool", "", _OX, "VM: the prediction may release the batch alone"),
    _c("vm_reasons", "str", "", _OX, "VM: why it is not reliable ('; '-separated)"),
    _c("vm_theta", "float", "", _OX, "VM: log rate factor used"),
    _c("vm_sensitivity", "float", "", _OX, "VM: d log(mean) / d theta"),
    _c("vm_n_lab", "int", "", _OX, "VM: lab results the calibration had used"),
    _c("vm_model_version", "str", "", _OX, "VM: method, package version, thin-oxide model"),
    _c("vm_fully_oxidised_share", "float", "", _OX, "VM: share of particles oxidised through"),
    _c("vm_lab_lower_nm", "float", "nm", _OX, "VM: interval of what the lab will report, low"),
    _c("vm_lab_upper_nm", "float", "nm", _OX, "VM: interval of what the lab will report, high"),
    _c("vm_bed_offset_c", "float", "°C", _C, "VM: furnace model's bed temperature offset"),
    _c("vm_bed_lag_factor", "float", "", _C, "VM: furnace model's bed lag factor"),
    _c("vm_gas_utilisation_factor", "float", "", _C, "VM: furnace model's gas utilisation"),
    # -- run-to-run control ------------------------------------------------------------------
    _c("ctrl_mode", "str", "", _OX, "control mode (off, advisory, closed_loop)"),
    _c("ctrl_state", "str", "", _OX, "what became of the controller's proposal"),
    _c("ctrl_proposal_id", "str", "", _OX, "controller proposal ID ('' for none)"),
    _c("ctrl_predicted_before_nm", "float", "nm", _OX,
       "oxide the controller predicted before the step"),
    _c("ctrl_endpoint_actions", "int", "", _C, "in-batch endpoint checks/actions in the hold"),
    _c("vm_release_basis", "str", "", _OX, "what the VM says the release can rest on"),
    _c("vm_release_reason", "str", "", _OX, "why (text)"),
    # -- release evidence (twin.plant.release.Evidence.columns) ------------------------------
    _c("rel_pred_nm", "float", "nm", _OX, "release evidence: predicted mean oxide"),
    _c("rel_within_50pct_share", "float", "", _OX, "release evidence: uniformity share"),
    _c("rel_uniformity_source", "str", "", _OX, "release evidence: prediction, tool or none"),
    _c("rel_lower_nm", "float", "nm", _OX, "release evidence: interval on the mean, low"),
    _c("rel_upper_nm", "float", "nm", _OX, "release evidence: interval on the mean, high"),
    _c("rel_lab_lower_nm", "float", "nm", _OX, "release evidence: lab interval, low"),
    _c("rel_lab_upper_nm", "float", "nm", _OX, "release evidence: lab interval, high"),
    _c("rel_reliability", "float", "", _OX, "release evidence: VM reliability"),
    _c("rel_vm_reliable", "float", "", _OX,
       "release evidence: VM reliable 1/0 (NaN without a VM)"),
    _c("rel_aborted", "bool", "", _OX, "release evidence: the step was aborted"),
    _c("rel_sampled", "bool", "", _OX, "release evidence: picked for the lab by sampling"),
    _c("rel_can_rework", "bool", "", _OX, "release evidence: the route can rework it"),
    # -- quality: lab and disposition --------------------------------------------------------
    _c("sampled", "bool", "", _OX, "picked for the lab by the sampling plan"),
    _c("lab_requested", "bool", "", _OX, "sent to the lab (sampled or held for it)"),
    _c("predicted_decision", "str", "", _OX, "decision the prediction alone gave"),
    _c("disposition", "str", "", _ALL,
       "release, hold, rework, scrap; 'wip' in process; '' not yet decided", required=True),
    _c("disposition_reason", "str", "", _OX, "why (text)"),
    _c("disposition_rule", "str", "", ("charge", "run", "sheet"), "release rule that decided"),
    _c("vm_contradicted", "bool", "", _OX, "the lab contradicted the prediction"),
    _c("vm_lab_sigma", "float", "", _OX,
       "standardised residual of the lab against the prediction"),
    _c("lab_method", "str", "", _OX, "lab method"),
    _c("lab_o_wt_pct", "float", "%", _OX, "lab: oxygen, wt %"),
    _c("lab_bet_m2_g", "float", "m²/g", _OX, "lab: BET specific surface"),
    _c("lab_note", "str", "", _OX, "lab note"),
    _c("disposition_s", "float", "s", ("charge", "run", "sheet"), "time of the disposition"),
    _c("measured_oxide_nm", "float", "nm", ("charge", "roll", "run"),
       "lab-measured oxide (NaN when not measured)"),
    _c("in_wip", "bool", "", _ALL, "still material in process at the end of the run",
       required=True),
    # -- coating (roll) ----------------------------------------------------------------------
    _c("coated_s", "float", "s", _C, "time the charge was coated"),
    _c("coater_path", "str", "", _R, "coater of the roll"),
    _c("roll_index", "int", "", _R, "roll number within the charge (1-based)"),
    _c("rolls_in_charge", "int", "", _R, "rolls made from the charge"),
    _c("area_m2", "float", "m²", _R, "coated area"),
    _c("line_speed_m_min", "float", "m/min", _R, "coating line speed"),
    _c("dryer_limited", "bool", "", _R, "the dryer limited the line speed"),
    _c("coat_thickness_um", "float", "µm", _R, "dry coating thickness"),
    _c("porosity", "float", "", _R, "coating porosity (0..1)"),
    _c("loading_mg_cm2", "float", "mg/cm²", _R, "active-material loading"),
    _c("solids_kg", "float", "kg", _R, "slurry solids used"),
    _c("length_m", "float", "m", _R, "roll length"),
    # -- sheets (thin film) ------------------------------------------------------------------
    _c("sheet_index", "int", "", _S, "sheet number within the run (1-based)"),
    _c("area_cm2", "float", "cm²", _S, "sheet area"),
    # -- shipping and live runs --------------------------------------------------------------
    _c("origin_s", "float", "s", ("roll", "sheet"), "start of its first step (cycle time)"),
    _c("shipped_s", "float", "s", ("roll", "sheet"), "time it was shipped"),
    _c("live_equipment", "bool", "", _ALL,
       "made on live (PLC) equipment; anode-twin run only"),
)

#: Columns by name.
SCHEMA: Mapping[str, Column] = {c.name: c for c in COLUMNS}
#: Columns every batch table has (:func:`conform` adds them; the report requires them).
REQUIRED: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.required)
_ORDER = {c.name: i for i, c in enumerate(COLUMNS)}


def column(name: str) -> Column:
    """The column ``name``.

    Raises
    ------
    SchemaError
        The schema has no such column.
    """
    try:
        return SCHEMA[name]
    except KeyError:
        raise SchemaError(_unknown_message([name])) from None


def names() -> tuple[str, ...]:
    """Every column name, in schema order."""
    return tuple(c.name for c in COLUMNS)


def unknown_columns(columns: Iterable[Any]) -> list[str]:
    """Names in ``columns`` the schema does not know, in their order."""
    return [str(c) for c in columns if str(c) not in SCHEMA]


def missing_required(columns: Iterable[Any]) -> list[str]:
    """Required columns absent from ``columns``, in schema order."""
    have = {str(c) for c in columns}
    return [n for n in REQUIRED if n not in have]


def _unknown_message(unknown: Sequence[str]) -> str:
    cols = ", ".join(repr(u) for u in unknown)
    return (f"batch record column{'s' if len(unknown) > 1 else ''} {cols} not in the schema "
            "(add it to twin/store/schema.py: name, type, unit, kinds, description)")


def _coerce(s: pd.Series, col: Column) -> pd.Series:
    target = col.pandas_dtype
    if s.dtype == target:
        return s
    try:
        if col.dtype == "float":
            return pd.to_numeric(s, errors="raise").astype("float64")
        if col.dtype == "int":
            num = pd.to_numeric(s, errors="raise")
            return num.astype(target)
        if col.dtype == "bool":
            if s.dtype == object:
                s = s.map(lambda v: pd.NA if v is None or v is pd.NA
                          or (isinstance(v, float) and np.isnan(v)) else v)
            return s.astype(target)
        return s.astype(target)
    except (TypeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SchemaError(f"batch record column {col.name!r}: values do not fit its type "
                          f"{col.dtype} ({first})") from None


def conform(df: pd.DataFrame, *, complete: bool = False, unknown: Literal["error", "drop"]
            = "error") -> pd.DataFrame:
    """The batch table in schema form: columns in schema order, types coerced.

    Parameters
    ----------
    df : pandas.DataFrame
        A batch table (one row per unit).
    complete : bool
        Add every schema column the table lacks (all missing); by default only the
        :data:`REQUIRED` ones are added.
    unknown : {'error', 'drop'}
        What to do with a column the schema does not know: raise (the plant model: a developer
        adding a column adds it to the schema) or leave it out (a reader).

    Returns
    -------
    pandas.DataFrame
        A new frame with a fresh ``RangeIndex``; conforming it again changes nothing.

    Raises
    ------
    SchemaError
        A column is not in the schema (``unknown='error'``), or its values do not fit its type;
        the message names the column.
    """
    extra = unknown_columns(df.columns)
    if extra and unknown == "error":
        raise SchemaError(_unknown_message(extra))
    if df.columns.duplicated().any():
        dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise SchemaError(f"batch record column {dup[0]!r} appears more than once")
    present = {str(c) for c in df.columns}
    wanted = [c for c in COLUMNS if c.name in present or complete or c.required]
    n = len(df)
    data: dict[str, pd.Series] = {}
    for col in wanted:
        if col.name in present:
            s = df[col.name].reset_index(drop=True)
            data[col.name] = _coerce(s, col)
        else:
            data[col.name] = pd.Series(
                np.full(n, np.nan) if col.dtype == "float" else [None] * n,
                dtype=col.pandas_dtype if col.dtype != "str" else object
            ).astype(col.pandas_dtype)
    return pd.DataFrame(data, index=pd.RangeIndex(n))


def check(df: pd.DataFrame) -> None:
    """Raise :class:`SchemaError` unless ``df`` is in schema form (what :func:`conform` gives):
    only schema columns, in schema order, with the schema's types, the required ones present."""
    extra = unknown_columns(df.columns)
    if extra:
        raise SchemaError(_unknown_message(extra))
    missing = missing_required(df.columns)
    if missing:
        raise SchemaError(f"batch record has no {missing[0]!r} column (required)")
    cols = [str(c) for c in df.columns]
    if cols != sorted(cols, key=_ORDER.__getitem__):
        raise SchemaError("batch record columns are not in schema order")
    for name in cols:
        col = SCHEMA[name]
        if df[name].dtype != col.pandas_dtype:
            raise SchemaError(f"batch record column {name!r} is {df[name].dtype}, "
                              f"the schema says {col.dtype} ({col.pandas_dtype})")


def from_records(rows: Iterable[Mapping[str, Any]], *, complete: bool = False) -> pd.DataFrame:
    """A conformed batch table from row mappings (the journal's rows, a test's units)."""
    return conform(pd.DataFrame(list(rows)), complete=complete)


def arrow_schema(columns: Iterable[Any] | None = None) -> pa.Schema:
    """The Parquet schema of ``columns`` (default: every column), in schema order.

    Each field carries ``unit``, ``description`` and ``kinds`` in its metadata; the schema's
    own metadata says which schema it is (``anode_twin_schema: batches``).
    """
    if columns is None:
        cols = list(COLUMNS)
    else:
        wanted = [str(c) for c in columns]
        extra = unknown_columns(wanted)
        if extra:
            raise SchemaError(_unknown_message(extra))
        cols = [SCHEMA[n] for n in wanted]
    return pa.schema([c.field() for c in cols], metadata={"anode_twin_schema": "batches"})


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """The conformed batch table as an Arrow table with :func:`arrow_schema` (units in the
    field metadata; pandas metadata kept so the nullable types read back as they were)."""
    df = conform(df)
    table = pa.Table.from_pandas(df, preserve_index=False)
    fields = [SCHEMA[n].field() for n in table.column_names]
    target = pa.schema(fields, metadata={**(table.schema.metadata or {}),
                                         b"anode_twin_schema": b"batches"})
    return table.cast(target)


def sqlite_columns() -> list[tuple[str, str]]:
    """``(name, SQLite type)`` of every column in schema order: REAL, INTEGER, TEXT
    (``bool`` is INTEGER 0/1)."""
    return [(c.name, c.sqlite_type) for c in COLUMNS]


def sqlite_rows(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    """The rows of ``df`` conformed with every column (``complete``), as tuples of plain
    Python values for ``executemany`` in :func:`sqlite_columns` order: missing values as
    None, bool as 0/1, numpy scalars as int/float."""
    full = conform(df, complete=True)

    def plain(v: Any) -> Any:
        if v is None or v is pd.NA:
            return None
        if isinstance(v, (bool, np.bool_)):
            return int(v)
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and np.isnan(v):
            return None
        return v

    return [tuple(plain(v) for v in rec) for rec in full.itertuples(index=False, name=None)]


def sqlite_ddl(table: str = "batches", *, primary_key: str | None = "unit_id") -> str:
    """``CREATE TABLE IF NOT EXISTS`` of the batch record (every column, SQLite types)."""
    cols = [f"{name} {kind}" + (" PRIMARY KEY" if name == primary_key else "")
            for name, kind in sqlite_columns()]
    return f"CREATE TABLE IF NOT EXISTS {table}(" + ", ".join(cols) + ")"


def describe() -> pd.DataFrame:
    """The schema as a table: ``name, dtype, unit, kinds, required, truth, description``."""
    return pd.DataFrame([{"name": c.name, "dtype": c.dtype, "unit": c.unit,
                          "kinds": ",".join(c.kinds), "required": c.required,
                          "truth": c.truth, "description": c.description} for c in COLUMNS])
