"""Study storage: one small Parquet file per completed replication, plus the summary tables.

Layout under a study's output folder::

    replications/<scenario>-<run_key>/r00007.parquet   # one per replication, written as it ends
    replications.parquet, summary.parquet, differences.parquet, ...   # the analysis

``run_key`` hashes everything that determines a scenario's replications (resolved plant,
horizon, seed, bucket width, twin version), so a rerun of an interrupted study finds the
replications already done and never recomputes them, and a changed scenario never reuses
stale ones.

Writes are atomic: the table goes to a temporary file in the same folder, is flushed to disk
and renamed over the target, so a killed run never leaves a half-written file that reads as
complete (a leftover ``.tmp`` is ignored and overwritten).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from twin.store.runfolder import write_table


def write_parquet_atomic(df: pd.DataFrame, path: str | Path,
                         metadata: dict[str, str] | None = None) -> Path:
    """Write ``df`` to ``path`` atomically through the run store's writer; return the path.

    Parent folders are created; ``metadata`` goes into the Parquet schema metadata.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_table(p, df, metadata)
    return p


def read_parquet(path: str | Path) -> pd.DataFrame:
    """Read a Parquet table written by this module."""
    return pq.read_table(Path(path)).to_pandas()


class ReplicationStore:
    """Completed replications of a study, keyed by scenario, run key and replication.

    Parameters
    ----------
    root : str or Path
        The study's output folder.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, scenario: str, run_key: str, replication: int) -> Path:
        """File of one replication."""
        return (self.root / "replications" / f"{scenario}-{run_key}"
                / f"r{replication:05d}.parquet")

    def has(self, scenario: str, run_key: str, replication: int) -> bool:
        """True when that replication is stored complete."""
        return self.path(scenario, run_key, replication).is_file()

    def write(self, scenario: str, run_key: str, replication: int, seed: int,
              buckets: pd.DataFrame) -> Path:
        """Store one replication's bucket table atomically."""
        return write_parquet_atomic(
            buckets, self.path(scenario, run_key, replication),
            {"scenario": scenario, "run_key": run_key, "replication": str(replication),
             "seed": str(seed)})

    def read(self, scenario: str, run_key: str, replication: int) -> pd.DataFrame:
        """One stored replication's bucket table."""
        return read_parquet(self.path(scenario, run_key, replication))

    def read_columns(self, scenario: str, run_key: str, replication: int,
                     columns: list[str]) -> pd.DataFrame:
        """Some columns of one stored replication (cheaper than :meth:`read`)."""
        path = self.path(scenario, run_key, replication)
        return pq.read_table(path, columns=columns).to_pandas()

    def write_table(self, name: str, df: pd.DataFrame) -> Path:
        """Write an analysis table ``<root>/<name>.parquet`` atomically."""
        return write_parquet_atomic(df, self.root / f"{name}.parquet")
