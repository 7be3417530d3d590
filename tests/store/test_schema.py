"""The batch record schema: the plant writes it, the store keeps it, the report reads it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.cli import main
from twin.config import CONFIG_DIR, load_plant
from twin.control.vm import _COLUMN_FIELDS
from twin.hidden.run import simulate
from twin.plant.release import Evidence, Verdict
from twin.plant.run import batches_table
from twin.report import load_run
from twin.store import schema
from twin.store.runfolder import write_batches, write_run
from twin.store.schema import COLUMNS, REQUIRED, SCHEMA, SchemaError, check, conform

PLANTS = ("powder_line.toml", "thin_film_line.toml")


@pytest.fixture(scope="module", params=PLANTS)
def result(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    cfg = load_plant(CONFIG_DIR / request.param)
    return cfg, simulate(cfg, 4.0, 11)


@pytest.fixture(scope="module")
def run_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for plant in PLANTS:
        cfg = load_plant(CONFIG_DIR / plant)
        r = simulate(cfg, 4.0, 11)
        out[plant] = write_run(tmp_path_factory.mktemp("run") / "r", cfg=cfg, seed=11,
                               days=4.0, tables={"batches": r.batches, "events": r.events,
                                                 "states": r.states, "shares": r.shares},
                               summary=r.summary)
    return out


# -- the plant writes the schema --------------------------------------------------------------

def test_every_simulated_column_is_in_the_schema_with_its_type(result) -> None:  # type: ignore[no-untyped-def]
    _, r = result
    b = r.batches
    assert len(b) > 0
    assert schema.unknown_columns(b.columns) == []
    for name in b.columns:
        assert b[name].dtype == SCHEMA[name].pandas_dtype, name
    check(b)  # schema order, schema types, required columns present


def test_values_only_on_the_kinds_the_schema_names(result) -> None:  # type: ignore[no-untyped-def]
    _, r = result
    b = r.batches
    for name in b.columns:
        kinds = set(b.loc[b[name].notna(), "unit_kind"])
        assert kinds <= set(SCHEMA[name].kinds), (name, kinds - set(SCHEMA[name].kinds))


def test_producers_of_columns_are_covered() -> None:
    # The VM's, the release evidence's and the verdict's columns (written by other modules).
    names = {f"vm_{k}" for k in _COLUMN_FIELDS} | {"vm_reasons", "vm_bed_offset_c",
                                                   "vm_bed_lag_factor",
                                                   "vm_gas_utilisation_factor"}
    names |= set(Evidence.of(8.0, 0.9).columns())
    names |= set(Verdict("release", "ok", "ALL-PASS").columns())
    assert sorted(n for n in names if n not in SCHEMA) == []


def test_an_unknown_column_of_the_model_is_an_error_naming_it(result) -> None:  # type: ignore[no-untyped-def]
    _, r = result
    rows = r.batches.head(3).to_dict("records")
    rows[1]["oxide_thickness_guess_nm"] = 3.0

    class Historian:  # what batches_table needs of the plant's historian
        batches: list[dict[str, object]] = []

        def batches_frame(self) -> pd.DataFrame:
            return pd.DataFrame(self.batches)

    with pytest.raises(SchemaError, match="'oxide_thickness_guess_nm' not in the schema"):
        batches_table(Historian(), rows)


def test_values_that_do_not_fit_the_type_name_the_column() -> None:
    df = pd.DataFrame({"unit_id": ["C1"], "mass_kg": ["heavy"]})
    with pytest.raises(SchemaError, match="'mass_kg'"):
        conform(df)


def test_units_are_in_the_names() -> None:
    suffix_unit = [("_c_per_min", "°C/min"), ("_kj_kg", "kJ/kg"), ("_mg_cm2", "mg/cm²"),
                   ("_m2_g", "m²/g"), ("_m_min", "m/min"), ("_mtorr", "mTorr"),
                   ("_sccm", "sccm"), ("_slm", "slm"), ("_kwh", "kWh"), ("_kw", "kW"),
                   ("_pct", "%"), ("_percent", "%"), ("_atm", "atm"), ("_cm2", "cm²"),
                   ("_m2", "m²"), ("_um", "µm"), ("_nm", "nm"), ("_kg", "kg"), ("_min", "min"),
                   ("_h", "h"), ("_w", "W"), ("_c", "°C"), ("_s", "s"), ("_m", "m")]
    for col in COLUMNS:
        if col.dtype != "float" or col.name.endswith("_share"):
            assert col.unit in ("", "s") or col.dtype == "float", col.name
            continue
        base = col.name[:-len("_mean")] if col.name.endswith("_mean") else col.name
        unit = next((u for s, u in suffix_unit if base.endswith(s)), "")
        assert col.unit == unit, (col.name, col.unit, unit)
    assert {c.dtype for c in COLUMNS} == {"float", "int", "bool", "str"}
    assert all(set(c.kinds) <= set(schema.UNIT_KINDS) and c.kinds for c in COLUMNS)
    assert all(c.description for c in COLUMNS)


# -- the store keeps it ------------------------------------------------------------------------

def test_batches_parquet_has_the_schema_and_units(run_folders: dict[str, Path]) -> None:
    for folder in run_folders.values():
        path = folder / "batches.parquet"
        back = pd.read_parquet(path)
        check(back)
        pschema = pq.read_schema(path)
        f = pschema.field("pred_oxide_mean_nm")
        assert f.metadata[b"unit"] == b"nm" and f.metadata[b"description"]
        assert pschema.field("unit_id").metadata[b"kinds"] == ",".join(
            schema.UNIT_KINDS).encode()
        assert pschema.metadata[b"anode_twin_schema"] == b"batches"


def test_store_conforms_rows_added_after_the_model(tmp_path: Path, result) -> None:  # type: ignore[no-untyped-def]
    # A live run appends rows (object columns, missing values) after the model's table.
    _, r = result
    extra = pd.DataFrame({"unit_id": ["C999999"], "unit_kind": ["charge"], "in_wip": [True],
                          "disposition": ["wip"]})
    b = pd.concat([r.batches, extra], ignore_index=True)
    b["live_equipment"] = False
    write_batches(tmp_path / "b.parquet", b)
    back = pd.read_parquet(tmp_path / "b.parquet")
    check(back)
    assert back["unit_id"].iloc[-1] == "C999999" and bool(back["in_wip"].iloc[-1])


def test_sqlite_columns_make_a_table_the_rows_fit(result) -> None:  # type: ignore[no-untyped-def]
    _, r = result
    cols = schema.sqlite_columns()
    assert [n for n, _ in cols] == list(schema.names())
    assert {t for _, t in cols} <= {"REAL", "INTEGER", "TEXT"}
    db = sqlite3.connect(":memory:")
    db.execute(schema.sqlite_ddl("units"))
    full = conform(r.batches, complete=True)
    rows = schema.sqlite_rows(r.batches)
    assert all(v is None or type(v) in (int, float, str) for row in rows for v in row)
    db.executemany(f"INSERT INTO units VALUES ({', '.join('?' * len(cols))})", rows)
    back = pd.read_sql_query("SELECT * FROM units", db)
    again = schema.from_records(back.to_dict("records"))
    assert list(again["unit_id"]) == list(full["unit_id"])
    pd.testing.assert_series_equal(again["mass_kg"], full["mass_kg"])


# -- the report reads it -------------------------------------------------------------------------

def test_report_reads_a_simulated_run_folder(run_folders: dict[str, Path]) -> None:
    for folder in run_folders.values():
        run = load_run(folder)
        assert list(run.units.columns) == list(schema.names())  # every schema column
        assert run.release_ids()
        row = run.unit(run.release_ids()[0])
        assert row["unit_kind"] in ("charge", "run") and "pred_oxide_mean_nm" in row


@pytest.mark.parametrize("drop", ["unit_kind", "parent_ids"])
def test_missing_required_column_is_a_one_line_error(
        tmp_path: Path, run_folders: dict[str, Path], drop: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    src = run_folders[PLANTS[0]]
    folder = tmp_path / "r"
    folder.mkdir()
    for p in src.iterdir():
        if p.is_file():
            (folder / p.name).write_bytes(p.read_bytes())
    b = pd.read_parquet(folder / "batches.parquet").drop(columns=[drop])
    b.to_parquet(folder / "batches.parquet", index=False)
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{folder / 'batches.parquet'}: no {drop!r} column" in err


def test_required_columns() -> None:
    assert REQUIRED[:3] == ("unit_id", "unit_kind", "parent_ids")
    assert schema.missing_required(["unit_id"]) == [n for n in REQUIRED if n != "unit_id"]
    assert list(conform(pd.DataFrame({"unit_id": []})).columns) == list(REQUIRED)


# -- invariant: conform is idempotent ------------------------------------------------------------

_VALUES = {
    "float": st.one_of(st.none(), st.just(float("nan")),
                       st.floats(allow_nan=False, allow_infinity=False, width=64)),
    "int": st.one_of(st.none(), st.integers(-(2**40), 2**40)),
    "bool": st.one_of(st.none(), st.booleans()),
    "str": st.one_of(st.none(), st.text(max_size=8)),
}


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    cols = draw(st.lists(st.sampled_from(COLUMNS), unique_by=lambda c: c.name, max_size=12))
    n = draw(st.integers(0, 5))
    return pd.DataFrame({c.name: pd.Series([draw(_VALUES[c.dtype]) for _ in range(n)],
                                           dtype=object) for c in cols})


@settings(max_examples=60, deadline=None)
@given(df=frames(), complete=st.booleans())
def test_conform_is_idempotent(df: pd.DataFrame, complete: bool) -> None:
    once = conform(df, complete=complete)
    check(once)
    twice = conform(once, complete=complete)
    pd.testing.assert_frame_equal(once, twice)
    assert set(REQUIRED) <= set(once.columns) and len(once) == len(df)
