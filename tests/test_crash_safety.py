"""Crash safety: a job SIGKILLed at a random moment, then rerun, leaves the lake and the
audience folders identical (contents, row for row) to an uninterrupted run. `dmp-dev crash-test`
runs more trials on more jobs; the suite runs one on ingest, the job with the most state
(streaming checkpoints, Delta transactions, MERGE). Audience publishing has its own failure
tests in test_activation_publish.py."""

from __future__ import annotations

from datetime import date

import pytest

from dev.crash import crash_trials
from jobs.generate import generate

pytestmark = pytest.mark.slow  # the fast tier (make test-fast) leaves it out


def test_killed_jobs_rerun_to_the_same_lake_and_audiences(spark, settings, tmp_path):
    generate(str(tmp_path / "base"), 150, 3, 5, date(2026, 11, 1), progress=lambda m: 0)
    small = settings.model_copy(update={"lookalikes": []})  # too few people to seed a model
    results = crash_trials(spark, small, tmp_path, "2026-11-03", ["ingest"], 1, seed=3)
    assert [r["job"] for r in results] == ["ingest"]
    assert all(r["identical"] for r in results), results
    assert all(r["killed"] for r in results)  # the run really died mid-way
