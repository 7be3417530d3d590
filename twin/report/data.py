"""Load a run folder for the release reports: the report's input contract.

A run folder of ``anode-twin simulate`` or ``anode-twin run`` holds (``*`` = required):

``batches.parquet`` *
    One row per unit of material (``heat``, ``lot``, ``charge``, ``roll``, ``run``, ``sheet``),
    the batch record of :mod:`twin.store.schema`: the report reads its columns by their schema
    names and nothing else (a column the schema does not know is left out; a column it lacks
    is read as missing). A table without a required column (:data:`~twin.store.schema.REQUIRED`:
    ``unit_id``, ``unit_kind``, ``parent_ids``, ...) is refused with a one-line error naming
    the file and the column. The report reads, among others:

    * identity and genealogy: ``unit_id``, ``unit_kind``, ``parent_ids``, ``path``,
      ``start_s``, ``end_s``, ``mass_kg``;
    * material: ``phases_mass_frac``, ``amorphous_frac``, ``d50_um``, ``ssa_m2_g`` (powder),
      ``pred_film_nm`` (thin film), the mill lots' ``media_pickup_wt_pct`` and
      ``oxygen_wt_pct`` (the composition is the configuration's alloy with that pickup);
    * recipe against actual: ``sp_<x>`` beside ``actual_<x>`` or ``actual_<x>_mean``
      (``actual_hold_band_min`` for ``hold_min``);
    * oxide: ``pred_oxide_mean_nm``, ``vm_lower_nm`` / ``vm_upper_nm`` (prediction interval),
      ``pred_oxide_p5_nm``, ``pred_oxide_p95_nm``, ``pred_within_50pct_share``,
      ``vm_reliability``, ``vm_model_version``, ``measured_oxide_nm`` (lab; NaN when not
      measured); the ``true_*`` columns are the simulator's hidden truth and are never read;
    * status: ``step_status``, ``step_fault``, ``data_gap_s``, ``live_equipment``,
      ``disposition``, ``disposition_rule``, ``disposition_reason``;
    * release evidence: the ``rel_*`` columns of :class:`twin.plant.release.Evidence` (what
      the plant decided on; the report takes the same decision from them with the run's
      plant file, :mod:`twin.report.rules`).
``run.json``
    Metadata: ``seed``, ``command`` (``simulate``/``run``), ``start_utc`` (wall time of t = 0).
resolved configuration
    ``config.json`` / ``config.toml`` (a :class:`PlantConfig`).
``events.parquet``, ``states.parquet``
    Historian tables (``time_s, path, event, batch_id, detail``; ``path, state, start_s,
    end_s, batch_id``).
``control_audit.jsonl``
    The controller's append-only audit trail (:mod:`twin.control.audit`).
``trajectories.parquet``
    Process-value trajectories, long (``batch_id, time_s, signal, value``) or wide
    (``batch_id, time_s, <signal>...``).

Optional tables that are absent load as ``None`` and are named in :attr:`RunData.missing`;
the rules decide whether their absence holds a batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from twin.config.load import read_toml
from twin.config.schema import PlantConfig
from twin.control.audit import AUDIT_FILE, read_audit, verify_audit
from twin.errors import ConfigError, TwinError, UsageError
from twin.store.schema import SchemaError, conform, missing_required

TRAJECTORY_FILES = ("trajectories.parquet",)
#: The resolved configuration the run store writes (twin.store.runfolder), JSON first.
CONFIG_FILES = ("config.json", "config.toml")
#: Unit kinds a release is made on: the oxidation charge (powder) or sputter run (thin film).
RELEASE_KINDS = ("charge", "run")


@dataclass(frozen=True)
class RunData:
    """A run folder, loaded and normalised (see the module docstring for the contract).

    Attributes
    ----------
    run_dir : Path
        The folder.
    units : pandas.DataFrame
        Every unit row in schema form (:func:`twin.store.schema.conform`, every schema
        column present).
    meta : dict
        ``run.json`` (empty when absent).
    config : PlantConfig or None
        Resolved configuration (None when absent or invalid; see ``problems``).
    events, states, trajectories, audit : pandas.DataFrame or None
        Optional tables (None when absent).
    audit_problems : tuple of str
        Integrity problems of the audit trail (partial lines, broken hash chain).
    missing : tuple of str
        Optional files not found.
    problems : tuple of str
        Files present but unreadable or invalid (each a one-line message).
    """

    run_dir: Path
    units: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    config: PlantConfig | None = None
    events: pd.DataFrame | None = None
    states: pd.DataFrame | None = None
    trajectories: pd.DataFrame | None = None
    audit: pd.DataFrame | None = None
    audit_problems: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    # -- release units -----------------------------------------------------------------------
    def release_ids(self) -> list[str]:
        """IDs of the finished release units (charges or sputter runs), in production order."""
        u = self._release_rows()
        if "end_s" in u:
            u = u[u["end_s"].notna()]
        order = [c for c in ("end_s", "start_s") if c in u]
        if order:
            u = u.sort_values(order, kind="stable", na_position="last")
        return [str(b) for b in u["unit_id"]]

    def in_process_ids(self) -> list[str]:
        """Release units still in process at the end of the run (no finished step)."""
        u = self._release_rows()
        return [str(b) for b in u[u["end_s"].isna()]["unit_id"]]

    def _release_rows(self) -> pd.DataFrame:
        u = self.units
        release = u["unit_kind"].isin(RELEASE_KINDS).fillna(False).astype(bool)
        if release.any():
            u = u[release]
        return u

    def unit(self, batch_id: str) -> dict[str, Any]:
        """The row of ``batch_id`` as a dict keyed by schema column (NaN/None for no data)."""
        rows = self.units[self.units["unit_id"] == batch_id]
        if rows.empty:
            raise UsageError(f"{self.run_dir}: unknown batch id {batch_id!r} "
                             f"({_known(self.release_ids())})")
        return _row(rows.iloc[0].to_dict())

    def material(self, batch_id: str) -> tuple[dict[str, Any], dict[str, str]]:
        """The unit row with material fields it lacks taken from its nearest ancestor.

        Returns the merged row and, per inherited field, the unit it came from (phases are
        recorded on the melt heat, particle size on the mill lot, ...).
        """
        row = self.unit(batch_id)
        origin: dict[str, str] = {}
        for anc in self.ancestors(batch_id):
            for key, value in anc.items():
                if _is_material_key(key) and _empty(row.get(key)) and not _empty(value):
                    row[key] = value
                    origin[key] = str(anc["unit_id"])
        return row, origin

    def ancestors(self, batch_id: str) -> list[dict[str, Any]]:
        """Parent units up to the melt heat, nearest first (breadth-first, no repeats)."""
        out: list[dict[str, Any]] = []
        seen = {batch_id}
        frontier = parents_of(self.unit(batch_id))
        while frontier:
            nxt: list[str] = []
            for pid in frontier:
                if pid in seen:
                    continue
                seen.add(pid)
                rows = self.units[self.units["unit_id"] == pid]
                row = (_row(rows.iloc[0].to_dict()) if not rows.empty
                       else {"unit_id": pid, "unit_kind": "", "_missing": True})
                out.append(row)
                nxt.extend(parents_of(row))
            frontier = nxt
        return out

    def children(self, batch_id: str) -> list[dict[str, Any]]:
        """Units made from ``batch_id`` (rolls of a charge, sheets of a run)."""
        mask = self.units["parent_ids"].map(lambda p: batch_id in _split_ids(p)).astype(bool)
        return [_row(r) for r in self.units[mask].to_dict(orient="records")]

    def batch_events(self, batch_id: str) -> pd.DataFrame | None:
        """Events of ``batch_id`` (None when the run has no events table)."""
        if self.events is None or "batch_id" not in self.events:
            return None
        return self.events[self.events["batch_id"] == batch_id]

    def batch_audit(self, batch_id: str) -> pd.DataFrame | None:
        """Audit records of ``batch_id`` (None when the run has no audit trail)."""
        if self.audit is None:
            return None
        return self.audit[self.audit["batch_id"] == batch_id]

    def batch_trajectory(self, batch_id: str) -> pd.DataFrame | None:
        """Long-form trajectory (``time_s, signal, value``) of ``batch_id``, or None."""
        if self.trajectories is None:
            return None
        t = self.trajectories[self.trajectories["batch_id"] == batch_id]
        return t if not t.empty else None

    def step_recipe(self, row: Mapping[str, Any]) -> dict[str, float]:
        """The configuration's recipe of the unit's step (oxidation or sputter), flat."""
        if self.config is None:
            return {}
        r = self.config.recipes
        step = r.sputter if row.get("unit_kind") == "run" else r.oxidation
        if step is None:
            return {}
        return {k: float(v) for k, v in step.model_dump().items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}

    def nominal_composition(self, batch_id: str) -> tuple[dict[str, float] | None, str]:
        """Charge composition from the configuration, with the mill lots' recorded pickup.

        Media pickup (``media_pickup_wt_pct``: Fe from steel, Zr from ZrO2 media) and oxygen
        (``oxygen_wt_pct``) are mass-weighted over the unit's mill lots and dilute the charge.
        """
        if self.config is None:
            return None, ""
        comp = dict(self.config.alloy.composition_wt)
        lots = [a for a in self.ancestors(batch_id) if a.get("unit_kind") == "lot"]
        mill = self.config.recipes.milling
        media = "Zr" if mill is not None and mill.media == "zro2" else "Fe"
        added: dict[str, float] = {}
        for key, element in (("media_pickup_wt_pct", media), ("oxygen_wt_pct", "O")):
            vals = [(v, as_float(u.get("mass_kg")) or 1.0) for u in lots
                    if (v := as_float(u.get(key))) is not None]
            if vals:
                added[element] = sum(v * m for v, m in vals) / sum(m for _, m in vals) / 100
        if not added:
            return comp, "nominal melt charge (configuration)"
        scale = 1.0 - sum(added.values())
        out = {e: f * scale for e, f in comp.items()}
        for e, f in added.items():
            out[e] = out.get(e, 0.0) + f
        return out, "nominal melt charge (configuration) with the mill lots' recorded pickup"

    @property
    def control_mode(self) -> str:
        """Controller mode from the configuration (``unknown`` without one)."""
        return self.config.control.mode if self.config is not None else "unknown"

    @property
    def form(self) -> str:
        """``powder`` or ``thin_film`` (from the configuration; ``unknown`` without one)."""
        if self.config is not None:
            return self.config.plant.form
        return "unknown"


def load_run(run_dir: str | Path) -> RunData:
    """Read and normalise a run folder.

    Parameters
    ----------
    run_dir : str or Path
        Output folder of ``simulate`` or ``run``.

    Returns
    -------
    RunData

    Raises
    ------
    UsageError
        The folder or its ``batches.parquet`` is missing or unreadable, or the batch table lacks
        a required column of the schema (the message names the file and the column).
    """
    d = Path(run_dir)
    if not d.is_dir():
        raise UsageError(f"{d}: no such run directory")
    batches = d / "batches.parquet"
    if not batches.is_file():
        raise UsageError(f"{batches}: no such file (not a run folder of simulate or run?)")
    units = normalise_units(_read_parquet(batches, required=True), batches)
    missing: list[str] = []
    problems: list[str] = []
    meta = _read_meta(d / "run.json", missing, problems)
    config = _read_config(d, meta, missing, problems)
    events = _optional_parquet(d / "events.parquet", missing, problems)
    states = _optional_parquet(d / "states.parquet", missing, problems)
    traj_path = next((d / n for n in TRAJECTORY_FILES if (d / n).is_file()), None)
    trajectories = None
    if traj_path is None:
        missing.append(TRAJECTORY_FILES[0])
    else:
        raw = _optional_parquet(traj_path, missing, problems)
        trajectories = normalise_trajectories(raw) if raw is not None else None
    audit, audit_problems = _read_audit(d, missing, problems)
    return RunData(run_dir=d, units=units, meta=meta, config=config, events=events,
                   states=states, trajectories=trajectories, audit=audit,
                   audit_problems=tuple(audit_problems), missing=tuple(missing),
                   problems=tuple(problems))


def normalise_units(df: pd.DataFrame, source: Path | str = "batches") -> pd.DataFrame:
    """The batch table in schema form for the report: every schema column present (missing
    values where the table has none), schema types, unknown columns left out.

    Raises
    ------
    UsageError
        The table lacks a required column, or a column's values do not fit its schema type
        (one line naming ``source`` and the column).
    """
    missing = missing_required(df.columns)
    if missing:
        raise UsageError(f"{source}: no {missing[0]!r} column (a required column of the batch "
                         "record, twin/store/schema.py)")
    try:
        units = conform(df, complete=True, unknown="drop")
    except SchemaError as exc:
        raise UsageError(f"{source}: {exc}") from None
    units["unit_kind"] = units["unit_kind"].str.lower()
    return units


def normalise_trajectories(df: pd.DataFrame) -> pd.DataFrame:
    """Long form ``batch_id, time_s, signal, value`` (from long or wide input)."""
    if not {"batch_id", "time_s"} <= set(df.columns):
        return pd.DataFrame(columns=["batch_id", "time_s", "signal", "value"])
    if {"signal", "value"} <= set(df.columns):
        long = df[["batch_id", "time_s", "signal", "value"]].copy()
    else:
        values = [c for c in df.columns if c not in ("batch_id", "time_s", "path")
                  and pd.api.types.is_numeric_dtype(df[c])]
        long = df.melt(id_vars=["batch_id", "time_s"], value_vars=values,
                       var_name="signal", value_name="value")
    long["batch_id"] = long["batch_id"].astype(str)
    long["signal"] = long["signal"].astype(str)
    return long.sort_values(["batch_id", "signal", "time_s"], kind="stable")


def phases_of(row: Mapping[str, Any]) -> dict[str, float] | None:
    """Phase fractions of a unit row (``phases_mass_frac``: ``'Si:0.7300;TiSi2:0.2700'``), or
    None."""
    packed = row.get("phases_mass_frac")
    if isinstance(packed, str) and ":" in packed:
        pairs = [p.split(":", 1) for p in packed.split(";") if ":" in p]
        if all(is_number(v) for _, v in pairs):
            return {k.strip(): float(v) for k, v in pairs}
    return None


ACTUAL_NAMES: dict[str, tuple[str, ...]] = {"hold_min": ("hold_band_min",)}
"""Extra names of the recorded actual of a setpoint (time spent in the hold band)."""


def recipe_vs_actual(row: Mapping[str, Any], recipe: Mapping[str, float] | None = None
                     ) -> list[tuple[str, float | None, float | None, float | None]]:
    """``(name, recipe, setpoint, actual)`` per process value of a unit row.

    Names come from the schema's ``sp_<x>`` and ``actual_<x>`` columns; the recipe is the
    ``recipe`` mapping (the configuration's recipe step); the actual is ``actual_<x>``, else
    ``actual_<x>_mean`` or a name of :data:`ACTUAL_NAMES`.
    """
    keys = [str(k) for k in row if not _empty(row.get(k))]
    names = {k[len("sp_"):] for k in keys if k.startswith("sp_")}
    names |= {k[len("actual_"):] for k in keys if k.startswith("actual_")
              and not k.endswith("_mean") and k[len("actual_"):] not in
              {a for alts in ACTUAL_NAMES.values() for a in alts}}
    out = []
    for n in sorted(names):
        if not any(is_number(row.get(f"{p}{n}")) for p in ("sp_", "actual_")):
            continue  # no recorded value
        rec = as_float(recipe.get(n)) if recipe is not None else None
        act = next((as_float(row.get(f"actual_{a}")) for a in
                    (n, f"{n}_mean", *ACTUAL_NAMES.get(n, ()))
                    if as_float(row.get(f"actual_{a}")) is not None), None)
        out.append((n, rec, as_float(row.get(f"sp_{n}")), act))
    return out


def parents_of(row: Mapping[str, Any]) -> list[str]:
    """Parent IDs of a unit row."""
    return _split_ids(row.get("parent_ids"))


def as_float(value: Any) -> float | None:
    """``float(value)`` for a finite real number, else None."""
    return float(value) if is_number(value) else None


def is_number(value: Any) -> bool:
    """True for a finite real number (not bool, not NaN)."""
    if isinstance(value, bool) or value is None:
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


#: Material columns a unit takes from its nearest ancestor when it has none itself (phases are
#: recorded on the melt heat, particle size on the mill lot, ...).
MATERIAL_KEYS = frozenset({"phases_mass_frac", "free_phase", "free_phase_mass_frac",
                           "alloy_phase", "amorphous_frac", "alloy", "d50_um", "psd_gsd",
                           "ssa_m2_g", "pred_o_wt_pct", "pred_si_consumed_pct",
                           "pred_composition_wt", "lab_o_wt_pct", "lab_method",
                           "feed_oxygen_wt_pct"})


def _is_material_key(key: str) -> bool:
    return key in MATERIAL_KEYS


def _row(record: Mapping[Any, Any]) -> dict[str, Any]:
    """A unit row as a dict: pandas' missing value of the nullable int/bool columns as None."""
    return {str(k): (None if v is pd.NA else v) for k, v in record.items()}


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()


def _split_ids(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [p for p in (s.strip() for s in value.replace(";", ",").split(",")) if p]
    try:
        return [str(v) for v in value]
    except TypeError:
        return [str(value)]


def _known(ids: list[str]) -> str:
    if not ids:
        return "the run has no release units"
    head = ", ".join(ids[:5])
    return f"the run has {len(ids)}: {head}{', ...' if len(ids) > 5 else ''}"


def _read_parquet(path: Path, *, required: bool) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        msg = f"{path}: not a readable Parquet file ({type(exc).__name__})"
        if required:
            raise UsageError(msg) from None
        raise TwinError(msg) from None


def _optional_parquet(path: Path, missing: list[str], problems: list[str]
                      ) -> pd.DataFrame | None:
    if not path.is_file():
        missing.append(path.name)
        return None
    try:
        return _read_parquet(path, required=False)
    except TwinError as exc:
        problems.append(str(exc))
        return None


def _read_meta(path: Path, missing: list[str], problems: list[str]) -> dict[str, Any]:
    if not path.is_file():
        missing.append(path.name)
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        problems.append(f"{path}: not valid JSON ({exc})")
        return {}
    return data if isinstance(data, dict) else {}


def _read_config(d: Path, meta: Mapping[str, Any], missing: list[str],
                 problems: list[str]) -> PlantConfig | None:
    candidates = [d / n for n in CONFIG_FILES if (d / n).is_file()]
    sources: list[tuple[str, Any]] = []
    if isinstance(meta.get("config"), dict):
        sources.append((f"{d / 'run.json'}: config", meta["config"]))
    for p in candidates:
        try:
            data = (json.loads(p.read_text(encoding="utf-8")) if p.suffix == ".json"
                    else read_toml(p))
        except (OSError, json.JSONDecodeError, ConfigError) as exc:
            problems.append(f"{p}: unreadable configuration ({exc})")
            continue
        sources.append((str(p), data))
    for name, data in sources:
        try:
            return PlantConfig.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(x) for x in first["loc"])
            problems.append(f"{name}: invalid configuration at {loc}: {first['msg']}")
    if not sources:
        missing.append("resolved configuration")
    return None


def _read_audit(d: Path, missing: list[str], problems: list[str]
                ) -> tuple[pd.DataFrame | None, list[str]]:
    path = d / AUDIT_FILE
    if not path.is_file():
        missing.append(AUDIT_FILE)
        return None, []
    try:
        entries = read_audit(path)
        integrity = verify_audit(path)
    except OSError as exc:
        problems.append(f"{path}: unreadable ({exc.strerror})")
        return None, []
    cols = ["seq", "time_utc", "sim_time_s", "kind", "loop", "batch_id", "proposal_id",
            "before", "after", "reason", "who", "result"]
    df = pd.DataFrame([{c: e.get(c) for c in cols} for e in entries], columns=cols)
    df["batch_id"] = df["batch_id"].fillna("").astype(str)
    return df, integrity
