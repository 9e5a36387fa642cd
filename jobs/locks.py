"""One run of a job at a time: a lock row in the lake (``ops.locks``), taken with a Delta MERGE.

Two runs that try at once both MERGE an insert of the same key; Delta's optimistic concurrency
lets one commit and fails the other with a concurrent-append conflict, which is reported as
"already running". A lock whose owner process is gone (same host) or that is older than
``ops.lock_stale_minutes`` is taken over, so a killed run never blocks the next one for long.
"""

from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from pyspark.sql import functions as F

from jobs.lake import Lake

SCHEMA = "key string, run_date string, owner string, host string, pid long, acquired_at timestamp"


class LockedError(RuntimeError):
    """Another run of the same job holds the lock."""


def _owner_alive(host: str, pid: int) -> bool:
    if host != socket.gethostname():
        return True  # cannot tell from here: trust it until it is stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _table(lake: Lake):
    from delta.tables import DeltaTable

    if not lake.exists("ops.locks"):
        try:
            lake.spark.createDataFrame([], SCHEMA).write.format("delta").mode("append").save(
                lake.path("ops.locks")
            )
        except Exception:  # created by a concurrent run in the meantime
            if not lake.exists("ops.locks"):
                raise
    return DeltaTable.forPath(lake.spark, lake.path("ops.locks"))


def acquire(lake: Lake, key: str, run_date: str, owner: str) -> None:
    table = _table(lake)
    held = table.toDF().where(F.col("key") == key).collect()
    stale_after = timedelta(minutes=lake.settings.ops.lock_stale_minutes)
    now = datetime.now(UTC).replace(tzinfo=None)
    if held:
        h = held[0]
        dead = not _owner_alive(h["host"], h["pid"])
        if not dead and now - h["acquired_at"] < stale_after:
            raise LockedError(
                f"{key} is already running (for {h['run_date']}, pid {h['pid']} on {h['host']} "
                f"since {h['acquired_at']:%Y-%m-%d %H:%M:%S} UTC); refusing to run it twice. "
                f"If that run died, `dmp unlock {key}` or wait until the lock is stale "
                f"({lake.settings.ops.lock_stale_minutes} minutes)."
            )
        table.delete((F.col("key") == key) & (F.col("owner") == h["owner"]))
    me = lake.spark.createDataFrame(
        [(key, run_date, owner, socket.gethostname(), os.getpid(), now)], SCHEMA
    )
    try:
        (table.alias("t").merge(me.alias("s"), "t.key = s.key").whenNotMatchedInsertAll().execute())
    except Exception as exc:  # Delta's conflict detection: someone else committed first
        if "Concurrent" not in type(exc).__name__ + str(exc):
            raise
        raise LockedError(f"{key}: another run took the lock at the same moment") from exc
    mine = table.toDF().where((F.col("key") == key) & (F.col("owner") == owner)).count()
    if not mine:
        raise LockedError(f"{key}: another run took the lock at the same moment")


def release(lake: Lake, key: str, owner: str | None = None) -> int:
    """-> locks removed (``owner`` None: whoever holds it, for `dmp unlock`)."""
    if not lake.exists("ops.locks"):
        return 0
    table = _table(lake)
    cond = F.col("key") == key
    if owner is not None:
        cond = cond & (F.col("owner") == owner)
    table.delete(cond)
    return lake.deleted_rows("ops.locks")


@contextmanager
def job_lock(lake: Lake, key: str, run_date: str):
    owner = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
    acquire(lake, key, run_date, owner)
    try:
        yield
    finally:
        release(lake, key, owner)
