"""One run of a job at a time: a second run refuses with a clear message, a lock left by a
dead run is taken over, two runs racing for the lock never both get it, and a run that saw an
older state of the lock cannot win with it; on a local lake and on an S3 lake (MinIO)."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest

from jobs import locks
from jobs.lake import Lake
from jobs.locks import LockedError, acquire, holder, release
from jobs.pipeline import run_job


@pytest.fixture()
def lake(spark, settings):
    lake = Lake(spark, settings)
    yield lake
    release(lake, "retention")


def test_a_second_run_refuses_while_the_first_holds_the_lock(lake):
    acquire(lake, "retention", "2026-11-01", "first-run")
    assert holder(lake, "retention")["owner"] == "first-run"
    with pytest.raises(LockedError, match="retention is already running .*refusing"):
        run_job(lake, "retention", "2026-11-01")
    release(lake, "retention", "someone-else")  # not theirs to release
    assert holder(lake, "retention")["owner"] == "first-run"
    release(lake, "retention", "first-run")
    report = run_job(lake, "retention", "2026-11-01")  # free again
    assert "nothing configured" in report.facts["retention"]
    assert holder(lake, "retention") is None  # released after the run


def _dead_owner_lock(lake, monkeypatch):
    gone = subprocess.Popen(["true"])
    gone.wait()
    with monkeypatch.context() as m:
        m.setattr(os, "getpid", lambda: gone.pid)
        acquire(lake, "retention", "2026-11-01", "dead-run")
    assert holder(lake, "retention")["pid"] == gone.pid


def test_a_lock_left_by_a_dead_process_is_taken_over(lake, monkeypatch):
    _dead_owner_lock(lake, monkeypatch)
    run_job(lake, "retention", "2026-11-01")
    assert holder(lake, "retention") is None
    assert release(lake, "retention") == 0  # `dmp unlock` on a free lock


def _race(lake, tag: str) -> dict[str, str]:
    results: dict[str, str] = {}
    start = threading.Barrier(2)

    def contender(name):
        start.wait()
        try:
            acquire(lake, "retention", "2026-11-01", name)
            results[name] = "won"
        except LockedError:
            results[name] = "refused"

    threads = [threading.Thread(target=contender, args=(f"{tag}-{i}",)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == ["refused", "won"], results
    assert holder(lake, "retention")["owner"] == next(k for k, v in results.items() if v == "won")
    return results


def test_two_runs_racing_for_the_lock_never_both_win(lake, monkeypatch):
    # rounds 0-1: a free lock; round 2: both find the same dead owner's lock and take it over
    for round_ in range(3):
        if round_ == 2:
            _dead_owner_lock(lake, monkeypatch)
        _race(lake, f"r{round_}")
        assert release(lake, "retention") == 1


def test_a_run_that_saw_an_older_state_cannot_win(lake, monkeypatch):
    _dead_owner_lock(lake, monkeypatch)
    seen = locks._state(locks._folder(lake, "retention"))  # a slow run reads: dead owner
    acquire(lake, "retention", "2026-11-01", "fast")  # a fast run takes it over ...
    release(lake, "retention", "fast")  # ... and finishes
    acquire(lake, "retention", "2026-11-01", "next")  # the next run holds it
    monkeypatch.setattr(locks, "_state", lambda folder: seen)
    with pytest.raises(LockedError, match="at the same moment"):
        acquire(lake, "retention", "2026-11-01", "slow")  # acts on what it read
    monkeypatch.undo()
    assert holder(lake, "retention")["owner"] == "next"


def test_the_lock_on_an_s3_lake(spark, settings, s3, monkeypatch):
    if "dmp-locks" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="dmp-locks")
    storage = settings.storage.model_copy(update={"lake_root": "s3a://dmp-locks/lake"})
    lake = Lake(spark, settings.model_copy(update={"storage": storage}))
    assert isinstance(locks._folder(lake, "retention"), locks._HadoopFolder)
    try:
        acquire(lake, "retention", "2026-11-01", "first-run")
        with pytest.raises(LockedError, match="already running"):
            acquire(lake, "retention", "2026-11-01", "second-run")
        release(lake, "retention", "first-run")
        _race(lake, "s3")
        assert release(lake, "retention") == 1
        _dead_owner_lock(lake, monkeypatch)
        acquire(lake, "retention", "2026-11-01", "taker")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="dmp-locks")["Contents"]]
        assert len([k for k in keys if k.endswith(".lock")]) == 1  # older generations gone
    finally:
        release(lake, "retention")
