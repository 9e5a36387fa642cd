"""The vacuum job: rows the retention job deleted and the versions a daily overwrite replaced
leave the storage once older than ``privacy.vacuum_hours``, and not before (Delta's default
week of time travel stays)."""

from __future__ import annotations

import glob
import os

from pyspark.sql import functions as F

from jobs.config import PrivacySettings
from jobs.lake import TABLES, Lake
from jobs.pipeline import run_job

RUN_DATE, CUTOFF = "2026-11-05", "2026-11-03"  # two days of silver kept
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]


def _lake(spark, settings, root, **privacy) -> Lake:
    storage = settings.storage.model_copy(update={"lake_root": str(root)})
    update = {"storage": storage, "privacy": PrivacySettings(**privacy)}
    return Lake(spark, settings.model_copy(update=update))


def _data_files(lake: Lake, table: str) -> dict[str, int]:
    """Every Parquet data file of the table on disk, referenced by the log or not -> bytes."""
    files = glob.glob(f"{lake.path(table)}/**/*.parquet", recursive=True)
    return {f: os.path.getsize(f) for f in files if "/_delta_log/" not in f}


def _days_on_disk(spark, lake: Lake, files) -> set[str]:
    """The event dates of the rows the files physically hold (the partition folder's date)."""
    read = spark.read.option("basePath", lake.path("silver.events")).parquet(*files)
    return {str(r["event_date"]) for r in read.select("event_date").collect()}


def _build(spark, lake: Lake) -> None:
    for day in DAYS:  # one append (one file) per day of events
        rows = [(f"{day}-{i}", day) for i in range(3)]
        events = spark.createDataFrame(rows, "event_id string, event_date string").select(
            "event_id", F.col("event_date").cast("date")
        )
        lake.append(events.coalesce(1), "silver.events")
    for run in range(3):  # three daily overwrites of a gold table
        people = spark.createDataFrame([(f"p{run}-{i}",) for i in range(4)], "person_id string")
        lake.overwrite(people.coalesce(1), "gold.profiles")


def test_vacuum_deletes_unread_files_past_the_configured_hours(spark, settings, tmp_path):
    week = _lake(spark, settings, tmp_path / "lake", silver_days=2)
    _build(spark, week)
    run_job(week, "retention", RUN_DATE)
    tables = [t for t in TABLES if week.exists(t)]  # with the runs' reports and retention's
    before = {t: _data_files(week, t) for t in tables}
    # the premise: the rows retention deleted are still on the storage
    assert _days_on_disk(spark, week, before["silver.events"]) == set(DAYS)

    kept = run_job(week, "vacuum", RUN_DATE)  # the default week: nothing is old enough
    assert kept.facts["files deleted"] == 0 and kept.facts["retention hours"] == 168
    assert all(before[t].items() <= _data_files(week, t).items() for t in tables)
    assert week.read_version("gold.profiles", 0).count() == 4  # time travel still works

    now = _lake(spark, settings, tmp_path / "lake", silver_days=2, vacuum_hours=0)
    before = {t: _data_files(now, t) for t in tables}  # with the first vacuum's run report
    versions = {t: now.version(t) for t in tables if t != "reports.runs"}
    report = run_job(now, "vacuum", RUN_DATE)
    # nothing committed: the jobs read a table's version as what changed in it
    assert {t: now.version(t) for t in versions} == versions

    after = {t: _data_files(now, t) for t in tables}
    assert _days_on_disk(spark, now, after["silver.events"]) == {d for d in DAYS if d >= CUTOFF}
    read = {f.removeprefix("file:") for f in now.read("gold.profiles").inputFiles()}
    assert set(after["gold.profiles"]) == read and len(read) == 1  # the current version only
    gone = {t: set(before[t]) - set(after[t]) for t in before}
    assert len(gone["silver.events"]) == 2 and len(gone["gold.profiles"]) == 2
    assert not gone["reports.runs"]  # a run's row is appended without an empty file beside it
    assert {k: v for k, v in report.facts.items() if k.endswith(": files deleted")} == {
        f"{t}: files deleted": len(f) for t, f in gone.items() if f
    }
    assert report.facts["files deleted"] == sum(len(f) for f in gone.values())
    assert report.facts["bytes deleted"] == sum(before[t][f] for t in before for f in gone[t])
    assert now.read("silver.events").count() == 3 * 3
    assert sorted(r["person_id"] for r in now.read("gold.profiles").collect()) == [
        f"p2-{i}" for i in range(4)
    ]
