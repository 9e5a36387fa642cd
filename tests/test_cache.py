"""jobs.cache.cached frees what a block kept: on the way out, and when the block raises."""

import pytest
from pyspark import StorageLevel

from jobs.cache import cached


def _cached_ids(spark) -> set[int]:
    return {int(k) for k in spark.sparkContext._jsc.getPersistentRDDs().keys()}


def test_kept_frames_are_cached_inside_and_freed_after(spark):
    with cached() as keep:
        a = keep(spark.range(100))
        b = keep(spark.range(50), StorageLevel.MEMORY_AND_DISK)
        assert a.count() == 100 and b.count() == 50
        assert a.is_cached and b.is_cached
        assert b.storageLevel == StorageLevel.MEMORY_AND_DISK
    assert not a.is_cached and not b.is_cached
    assert a.storageLevel == StorageLevel(False, False, False, False, 1)


def test_a_failing_block_frees_what_it_kept(spark):
    before = _cached_ids(spark)
    frame = None
    with pytest.raises(RuntimeError, match="the job failed"), cached() as keep:
        frame = keep(spark.range(10))
        assert frame.count() == 10
        assert _cached_ids(spark) - before  # materialised in the executors
        raise RuntimeError("the job failed")
    assert frame is not None and not frame.is_cached
    assert _cached_ids(spark) == before  # nothing left pinned for the next job
