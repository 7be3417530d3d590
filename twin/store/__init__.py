"""The run store: the only writer of result files (atomic Parquet, resolved config)."""

from twin.store.runfolder import atomic_write, read_run, write_run, write_table

__all__ = ["atomic_write", "read_run", "write_run", "write_table"]
