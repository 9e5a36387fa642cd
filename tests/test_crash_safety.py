"""Crash safety: a job SIGKILLed at a random moment, then rerun, leaves the lake and the
audience folders identical (contents, row for row) to an uninterrupted run. `dmp crash-test`
runs more trials per job; the suite runs one per stateful job."""

from __future__ import annotations

from datetime import date

from jobs.crash import crash_trials
from jobs.generate import generate


def test_killed_jobs_rerun_to_the_same_lake_and_audiences(spark, settings, tmp_path):
    generate(str(tmp_path / "base"), 150, 3, 5, date(2026, 11, 1), progress=lambda m: 0)
    small = settings.model_copy(update={"lookalikes": []})  # too few people to seed a model
    results = crash_trials(spark, small, tmp_path, "2026-11-03", ["ingest", "export"], 1, seed=3)
    assert [r["job"] for r in results] == ["ingest", "export"]
    assert all(r["identical"] for r in results), results
    assert any(r["killed"] for r in results)  # at least one run really died mid-way
