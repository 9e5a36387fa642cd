"""Retention: raw landing files, bronze and silver events older than the configured number of
days are deleted; the deleted rows leave the storage at the next vacuum (Delta's default
retention, so readers in flight are safe)."""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import functions as F

from jobs.activation.files import _fs
from jobs.lake import Lake
from jobs.report import JobReport

TARGETS = {"bronze.events": ("dt", "bronze_days"), "silver.events": ("event_date", "silver_days")}


def _cutoff(run_date: str, days: int) -> str:
    return (date.fromisoformat(run_date) - timedelta(days=days)).isoformat()


def expire_raw(lake: Lake, cutoff: str) -> int:
    """Deletes raw_root/<source>/dt=<date>/ folders older than ``cutoff``; -> folders deleted."""
    root = lake.settings.resolve(lake.settings.storage.raw_root).rstrip("/")
    fs, p = _fs(lake.spark, root)
    if not fs.exists(p):
        return 0
    n = 0
    for source in fs.listStatus(p):
        if not source.isDirectory():
            continue
        for day in fs.listStatus(source.getPath()):
            name = day.getPath().getName()
            if name.startswith("dt=") and name[3:] < cutoff:
                fs.delete(day.getPath(), True)
                n += 1
    return n


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
        report.dropped[f"raw day folders before {cutoff}"] = n
        rows.append((run_date, "raw", cutoff, n))
    if not rows:
        report.facts["retention"] = (
            "nothing configured (privacy.raw_days / bronze_days / silver_days)"
        )
        return
    lake.append(
        lake.spark.createDataFrame(
            rows, "run_date string, target string, cutoff string, deleted long"
        ),
        "privacy.retention",
    )
