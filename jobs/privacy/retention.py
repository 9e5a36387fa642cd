"""Retention: raw landing files, bronze and silver events older than the configured number of
days are deleted; the deleted rows leave the storage with the vacuum job's next run past
``privacy.vacuum_hours`` (jobs/privacy/vacuum.py)."""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import functions as F

from jobs.ingest.sources import LAYOUTS, arrival_day, sources
from jobs.lake import Lake
from jobs.report import JobReport
from jobs.storage import hadoop_fs

TARGETS = {"bronze.events": ("dt", "bronze_days"), "silver.events": ("event_date", "silver_days")}


def _cutoff(run_date: str, days: int) -> str:
    return (date.fromisoformat(run_date) - timedelta(days=days)).isoformat()


def _delete_older(lake: Lake, glob: str, arrival, cutoff: str) -> int:
    """Deletes the files of ``glob`` whose arrival day is before ``cutoff``, then the folders
    that left empty; -> files deleted."""
    fs, pattern = hadoop_fs(lake.spark, glob)
    found = fs.globStatus(pattern) or []
    n = 0
    parents = set()
    for status in found:
        day = arrival_day(str(status.getPath().toString()), arrival)
        if status.isFile() and day is not None and day < cutoff:
            fs.delete(status.getPath(), False)
            parents.add(status.getPath().getParent())
            n += 1
    for folder in parents:
        if fs.exists(folder) and len(fs.listStatus(folder)) == 0:
            fs.delete(folder, False)
    return n


def expire_raw(lake: Lake, cutoff: str) -> int:
    """Deletes the landing files of every source (and the customer files) that arrived before
    ``cutoff``, as each source's layout dates them; -> files deleted."""
    raw = lake.settings.resolve(lake.settings.storage.raw_root).rstrip("/")
    n = 0
    for source in sources(lake.settings):
        n += _delete_older(lake, source.glob, source.arrival, cutoff)
    return n + _delete_older(lake, f"{raw}/crm/dt=*/*", LAYOUTS["native"][1], cutoff)


def run(lake: Lake, report: JobReport, run_date: str) -> None:
    from delta.tables import DeltaTable

    s = lake.settings.privacy
    rows = []
    for table, (column, key) in TARGETS.items():
        days = getattr(s, key)
        if days is None or not lake.exists(table):
            continue
        cutoff = _cutoff(run_date, days)
        DeltaTable.forPath(lake.spark, lake.path(table)).delete(F.col(column) < F.lit(cutoff))
        n = lake.deleted_rows(table)
        report.dropped[f"{table} before {cutoff}"] = n
        rows.append((run_date, table, cutoff, n))
    if s.raw_days is not None:
        cutoff = _cutoff(run_date, s.raw_days)
        n = expire_raw(lake, cutoff)
        report.dropped[f"raw files before {cutoff}"] = n
        rows.append((run_date, "raw", cutoff, n))
    if not rows:
        report.facts["retention"] = (
            "nothing configured (privacy.raw_days / bronze_days / silver_days)"
        )
        return
    lake.append(
        lake.spark.createDataFrame(
            rows, "run_date string, target string, cutoff string, deleted long"
        ).coalesce(1),  # no empty file beside it (jobs/pipeline.py: record_run)
        "privacy.retention",
    )
