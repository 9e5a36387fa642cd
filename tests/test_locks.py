"""One run of a job at a time: a second run refuses with a clear message, a lock left by a
dead run is taken over, and two runs racing for the lock never both get it."""

from __future__ import annotations

import socket
import subprocess
import threading

import pytest

from jobs.lake import Lake
from jobs.locks import LockedError, acquire, release
from jobs.pipeline import run_job


@pytest.fixture()
def lake(spark, settings):
    lake = Lake(spark, settings)
    yield lake
    release(lake, "retention")


def test_a_second_run_refuses_while_the_first_holds_the_lock(lake):
    acquire(lake, "retention", "2026-11-01", "first-run")
    with pytest.raises(LockedError, match="retention is already running .*refusing"):
        run_job(lake, "retention", "2026-11-01")
    release(lake, "retention", "first-run")
    report = run_job(lake, "retention", "2026-11-01")  # free again
    assert "nothing configured" in report.facts["retention"]
    assert lake.read("ops.locks").count() == 0  # released after the run


def _dead_owner_lock(lake):
    gone = subprocess.Popen(["true"])
    gone.wait()
    me = lake.spark.createDataFrame(
        [("retention", "2026-11-01", "dead-run", socket.gethostname(), gone.pid)],
        "key string, run_date string, owner string, host string, pid long",
    ).selectExpr("*", "current_timestamp() AS acquired_at")
    me.write.format("delta").mode("append").save(lake.path("ops.locks"))


def test_a_lock_left_by_a_dead_process_is_taken_over(lake):
    _dead_owner_lock(lake)
    run_job(lake, "retention", "2026-11-01")
    assert lake.read("ops.locks").count() == 0


def test_two_runs_racing_for_the_lock_never_both_win(lake):
    # rounds 0-1: a free lock; round 2: both find the same dead owner's lock and take it over
    for round_ in range(3):
        if round_ == 2:
            _dead_owner_lock(lake)
        results: dict[str, str] = {}
        start = threading.Barrier(2)

        def contender(name, start=start, results=results):
            start.wait()
            try:
                acquire(lake, "retention", "2026-11-01", name)
                results[name] = "won"
            except LockedError:
                results[name] = "refused"

        threads = [threading.Thread(target=contender, args=(f"r{round_}-{i}",)) for i in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results.values()) == ["refused", "won"], results
        holders = lake.read("ops.locks").collect()
        assert [h["owner"] for h in holders] == [k for k, v in results.items() if v == "won"]
        release(lake, "retention")
