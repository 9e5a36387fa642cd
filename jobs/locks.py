"""One run of a job at a time: a lock row in the lake (``ops.locks``), taken with one Delta MERGE.

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


def _merge(table, me, stale_owner: str | None) -> bool:
    """One MERGE that inserts the lock row if the key is free, or (``stale_owner``) replaces
    that owner's row; -> whether it did (its metrics say: 0 rows when someone else holds it)."""
    merge = table.alias("t").merge(me.alias("s"), "t.key = s.key").whenNotMatchedInsertAll()
    if stale_owner is not None:
        merge = merge.whenMatchedUpdateAll(condition=F.col("t.owner") == F.lit(stale_owner))
    try:
        return bool(merge.execute().first()["num_affected_rows"])
    except Exception as exc:  # Delta's conflict detection: someone else committed first
        if "Concurrent" not in type(exc).__name__ + str(exc):
            raise
        return False


def acquire(lake: Lake, key: str, run_date: str, owner: str) -> None:
    """Takes the lock in one MERGE when it is free (the usual case: no read before it); only
    when a row is there is it read, and taken over if its owner is dead or stale."""
    table = _table(lake)
    now = datetime.now(UTC).replace(tzinfo=None)
    me = lake.spark.createDataFrame(
        [(key, run_date, owner, socket.gethostname(), os.getpid(), now)], SCHEMA
    )
    if _merge(table, me, None):
        return
    held = table.toDF().where(F.col("key") == key).collect()
    if held:
        h = held[0]
        stale_after = timedelta(minutes=lake.settings.ops.lock_stale_minutes)
        if _owner_alive(h["host"], h["pid"]) and now - h["acquired_at"] < stale_after:
            raise LockedError(
                f"{key} is already running (for {h['run_date']}, pid {h['pid']} on {h['host']} "
                f"since {h['acquired_at']:%Y-%m-%d %H:%M:%S} UTC); refusing to run it twice. "
                f"If that run died, `dmp unlock {key}` or wait until the lock is stale "
                f"({lake.settings.ops.lock_stale_minutes} minutes)."
            )
    # a dead or stale owner's row is replaced only if it is still that owner's; a row released
    # in the meantime leaves the key free for the same MERGE's insert
    if not _merge(table, me, held[0]["owner"] if held else None):
        raise LockedError(f"{key}: another run took the lock at the same moment")


def release(lake: Lake, key: str, owner: str | None = None) -> int | None:
    """Drop the lock; ``owner`` None drops whoever holds it and says how many rows went (for
    `dmp unlock`). A run releasing its own lock skips that count: one history read less."""
    if not lake.exists("ops.locks"):
        return 0
    cond = F.col("key") == key
    if owner is not None:
        cond = cond & (F.col("owner") == owner)
    _table(lake).delete(cond)
    return lake.deleted_rows("ops.locks") if owner is None else None


@contextmanager
def job_lock(lake: Lake, key: str, run_date: str):
    owner = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
    acquire(lake, key, run_date, owner)
    try:
        yield
    finally:
        release(lake, key, owner)
