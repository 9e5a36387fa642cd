"""Frames cached for one block of a job and freed when the block ends, also when it fails.

    with cached() as keep:
        files = keep(check_files(batch))
        ledger = keep(rows_of(files), StorageLevel.MEMORY_AND_DISK)
        ...

A job that fails half way leaves nothing pinned in executor memory for the next job of a
long-lived session (a notebook, the test suite, a driver that runs several jobs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pyspark import StorageLevel
from pyspark.sql import DataFrame

Keep = Callable[..., DataFrame]


@contextmanager
def cached() -> Iterator[Keep]:
    held: list[DataFrame] = []

    def keep(df: DataFrame, level: StorageLevel | None = None) -> DataFrame:
        df = df.cache() if level is None else df.persist(level)
        held.append(df)
        return df

    try:
        yield keep
    finally:
        for df in reversed(held):
            df.unpersist()
