"""The run folder: atomic writes, reproducible Parquet, resolved configuration."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from twin.config import CONFIG_DIR, load_plant
from twin.errors import UsageError
from twin.hidden.run import simulate
from twin.store import atomic_write, read_run, write_run, write_table


def _write(tmp_path, name, cfg, seed, days=3.0):
    r = simulate(cfg, days, seed)
    return write_run(tmp_path / name, cfg=cfg, seed=seed, days=days,
                     tables={"batches": r.batches, "events": r.events, "states": r.states,
                             "shares": r.shares}, summary=r.summary)


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.parametrize("plant", ["powder_line.toml", "thin_film_line.toml"])
def test_same_seed_gives_byte_identical_files(tmp_path, plant):
    cfg = load_plant(CONFIG_DIR / plant)
    a = _digests(_write(tmp_path, "a", cfg, 42))
    b = _digests(_write(tmp_path, "b", cfg, 42))
    c = _digests(_write(tmp_path, "c", cfg, 43))
    assert a == b
    assert {"batches.parquet", "events.parquet", "states.parquet", "shares.parquet",
            "config.toml", "config.json", "run.json"} <= set(a)
    assert a["batches.parquet"] != c["batches.parquet"]


def test_run_folder_round_trips(tmp_path):
    cfg = load_plant(None, ["stations.mill.count=2"])
    folder = _write(tmp_path, "run", cfg, 7)
    assert load_plant(folder / "config.toml") == cfg
    assert json.loads((folder / "config.json").read_text())["stations"]["mill"]["count"] == 2
    data = read_run(folder)
    assert data["run"]["seed"] == 7 and data["run"]["days"] == 3.0
    assert data["run"]["rows"]["batches"] == len(data["batches"])
    b = data["batches"]
    assert {"unit_id", "parent_ids", "path", "start_s", "start_iso", "mass_kg",
            "pred_oxide_mean_nm", "disposition"} <= set(b.columns)
    assert b.start_iso.dropna().str.startswith("2025-01-").all()
    ev = data["events"]
    assert list(ev.columns[:3]) == ["time_s", "time_iso", "path"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "t.parquet"
    write_table(target, pd.DataFrame({"x_nm": [1.0, 2.0]}))
    before = target.read_bytes()

    def boom(fh):
        fh.write(b"PAR1 half a file")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]
    assert pd.read_parquet(target).x_nm.tolist() == [1.0, 2.0]


def test_an_incomplete_folder_is_not_read_as_a_run(tmp_path):
    folder = _write(tmp_path, "run", load_plant(), 1, days=1.0)
    (folder / "run.json").unlink()
    with pytest.raises(UsageError, match="not a complete run folder"):
        read_run(folder)


def test_out_must_be_a_directory(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    cfg = load_plant()
    with pytest.raises(UsageError, match="not a directory"):
        write_run(f, cfg=cfg, seed=1, days=1, tables={}, summary={})
