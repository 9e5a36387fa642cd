"""Vacuum: the files no current table version reads leave the storage once they are older than
``privacy.vacuum_hours``. Without it a row the retention job deleted, and every gold table a
daily run overwrote, stays on the storage for good: Delta only unlinks files from the log.

A vacuum commits nothing (Delta's vacuum logging is off): the jobs read a table's version and
latest commit as what changed, and a daily vacuum would move both. What it deleted is measured
on the storage instead, before and after."""

from __future__ import annotations

from jobs.lake import TABLES, Lake, per_table
from jobs.report import JobReport
from jobs.session import session_conf
from jobs.storage import hadoop_fs

# Delta's own default retention: readers in flight and a week of time travel stay safe
DELTA_DEFAULT_HOURS = 168


def vacuum_conf(hours: float) -> dict[str, str]:
    """Session settings for a vacuum of ``hours``: Delta refuses less than its default unless
    its check is off; VACUUM's listing and diff are a few small stages that adaptive execution
    only cuts into more jobs (25 against 7 per table); and no VACUUM START / END commits."""
    conf = {
        "spark.sql.adaptive.enabled": "false",
        "spark.databricks.delta.vacuum.logging.enabled": "false",
    }
    if hours < DELTA_DEFAULT_HOURS:
        conf["spark.databricks.delta.retentionDurationCheck.enabled"] = "false"
    return conf


def may_hold_deletion_vectors(delta) -> bool:
    """Whether the table's protocol allows deletion vectors. Without the feature a delete
    rewrites the files it touches and no file can be masked, so there is nothing to purge
    (a REORG of such a table still plans and runs five Spark jobs to find that out)."""
    features = delta.detail().first().asDict().get("tableFeatures") or []
    return "deletionVectors" in features


def data_files(lake: Lake, table: str) -> tuple[int, int]:
    """(files, bytes) under the table's folder, its Delta log left out."""
    fs, path = hadoop_fs(lake.spark, lake.path(table))
    everything = fs.getContentSummary(path)
    log = fs.getContentSummary(path.suffix("/_delta_log"))
    return (
        everything.getFileCount() - log.getFileCount(),
        everything.getLength() - log.getLength(),
    )


def run(lake: Lake, report: JobReport, run_date: str) -> None:
    from delta.tables import DeltaTable

    hours = float(lake.settings.privacy.vacuum_hours)
    tables = [t for t in TABLES if lake.exists(t)]

    def vacuum(table: str) -> tuple[int, int]:
        files, size = data_files(lake, table)
        DeltaTable.forPath(lake.spark, lake.path(table)).vacuum(hours)
        files_after, size_after = data_files(lake, table)
        return files - files_after, size - size_after

    with report.step(f"vacuum {len(tables)} tables"), session_conf(lake.spark, vacuum_conf(hours)):
        freed = dict(zip(tables, per_table(vacuum, tables), strict=True))
    # measured on the storage: a job writing a table meanwhile counts against its figure
    for table, (files, _) in freed.items():
        if files:
            report.facts[f"{table}: files deleted"] = files
    report.facts["tables vacuumed"] = len(tables)
    report.facts["files deleted"] = sum(f for f, _ in freed.values())
    report.facts["bytes deleted"] = sum(b for _, b in freed.values())
    report.facts["retention hours"] = lake.settings.privacy.vacuum_hours
