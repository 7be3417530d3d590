"""The run folder: resolved configuration, seed and Parquet tables, written atomically.

Layout::

    RUN/
      run.json          seed, days, versions, row counts, summary (no wall-clock time)
      config.toml       the resolved plant configuration (every default filled in)
      config.json       the same, as JSON
      batches.parquet   one row per unit (heat, lot, charge, roll / run, sheet)
      events.parquet    timestamped events
      states.parquet    state intervals per station
      shares.parquet    per station: time and share in each state

Every file is written to a temporary file in the same directory, flushed and fsync'ed, then
renamed over the target with :func:`os.replace` (atomic on POSIX and Windows), and the
directory is fsync'ed. A killed run leaves either the old file, the new file, or a stray
``.tmp`` file that no reader opens, never a half-written file under the real name.
``run.json`` is written last: a folder without it is an incomplete run.

The tables hold no wall-clock timestamps and the Parquet writer is configured without
statistics that depend on time, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from twin import __version__
from twin.config.schema import PlantConfig
from twin.errors import UsageError
from twin.store.schema import to_arrow

TABLES = ("batches", "events", "states", "shares")
RUN_FILE = "run.json"
FORMAT_VERSION = 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` atomically: temp file in the same directory, fsync, rename, fsync dir."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes 0600; results are for the team (quality, engineers) to read.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_table(path: Path, df: pd.DataFrame,
                metadata: Mapping[str, str] | None = None) -> None:
    """Write one DataFrame as Parquet, atomically and reproducibly.

    ``metadata`` (key-value text) is stored in the Parquet schema metadata.
    """
    table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        meta = dict(table.schema.metadata or {})
        meta.update({k.encode(): v.encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(meta)
    # pandas metadata carries nothing time-dependent; keep it so types round-trip.

    def write(fh: IO[bytes]) -> None:
        pq.write_table(table, fh, compression="zstd", write_statistics=True)

    atomic_write(path, write)


def write_batches(path: Path, df: pd.DataFrame) -> None:
    """Write the batch record as Parquet with the schema's types and field metadata.

    The table is conformed to :mod:`twin.store.schema` first (schema order and types: rows a
    live run adds are coerced too); each field carries its unit, description and unit kinds.

    Raises
    ------
    twin.store.schema.SchemaError
        A column is not in the schema or its values do not fit its type.
    """
    table = to_arrow(df)

    def write(fh: IO[bytes]) -> None:
        pq.write_table(table, fh, compression="zstd", write_statistics=True)

    atomic_write(path, write)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically (UTF-8)."""
    data = text.encode("utf-8")

    def write(fh: IO[bytes]) -> None:
        fh.write(data)

    atomic_write(path, write)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def to_toml(data: Mapping[str, Any]) -> str:
    """A small TOML writer for the resolved configuration (tables, arrays, scalars)."""
    lines: list[str] = []
    _toml_table(lines, [], data)
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _toml_table(lines: list[str], path: list[str], data: Mapping[str, Any]) -> None:
    # Mappings become [tables] (valid for any key set); None (TOML has no null) is left out,
    # which re-reads as the schema's default None.
    scalars = {k: v for k, v in data.items() if v is not None and not isinstance(v, Mapping)}
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    if path:
        lines.append("")
        lines.append("[" + ".".join(_key(p) for p in path) + "]")
    for k, v in scalars.items():
        lines.append(f"{_key(k)} = {_toml_value(v)}")
    for k, v in tables.items():
        _toml_table(lines, [*path, k], v)


def write_run(out: str | Path, *, cfg: PlantConfig, seed: int, days: float,
              tables: Mapping[str, pd.DataFrame], summary: Mapping[str, Any],
              physics: str = "fast", command: str = "simulate",
              extra: Mapping[str, Any] | None = None) -> Path:
    """Write a complete run folder; return its path.

    ``command`` (``simulate`` or ``run``) and ``extra`` (e.g. the live run's endpoints and
    gaps) go into ``run.json``, which is written last: its presence marks the folder complete.

    Raises
    ------
    UsageError
        When ``out`` exists and is not a directory, or cannot be created.
    """
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{folder}: exists and is not a directory") from None
    except OSError as exc:
        raise UsageError(f"{folder}: cannot create run folder: {exc.strerror}") from None
    # An earlier run.json would mark a half-rewritten folder as complete: remove it first.
    (folder / RUN_FILE).unlink(missing_ok=True)
    data = cfg.model_dump(mode="json")
    write_text(folder / "config.json", json.dumps(data, indent=2, sort_keys=False) + "\n")
    write_text(folder / "config.toml", "# Resolved plant configuration of this run.\n"
               + to_toml(data))
    for name, df in tables.items():
        if name == "batches":
            write_batches(folder / f"{name}.parquet", df)
        else:
            write_table(folder / f"{name}.parquet", df)
    meta = {
        "format_version": FORMAT_VERSION, "twin_version": __version__, "seed": seed,
        "command": command, "days": days, "physics": physics, "plant": cfg.plant.name,
        "start_iso": cfg.production.start_iso,
        "rows": {name: len(df) for name, df in tables.items()},
        "summary": _clean(summary),
        **_clean(dict(extra or {})),
    }
    write_text(folder / RUN_FILE, json.dumps(meta, indent=2, default=_json_default) + "\n")
    return folder


def read_run(folder: str | Path) -> dict[str, Any]:
    """Read a complete run folder: ``{'run': meta, 'batches': df, ...}``.

    Raises
    ------
    UsageError
        When the folder has no ``run.json`` (missing or incomplete run).
    """
    folder = Path(folder)
    meta_path = folder / RUN_FILE
    if not meta_path.is_file():
        raise UsageError(f"{folder}: not a complete run folder (no {RUN_FILE})")
    out: dict[str, Any] = {"run": json.loads(meta_path.read_text(encoding="utf-8"))}
    for name in TABLES:
        p = folder / f"{name}.parquet"
        if p.is_file():
            out[name] = pd.read_parquet(p)
    return out
