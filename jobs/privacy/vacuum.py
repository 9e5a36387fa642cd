"""Vacuum: the files no current table version reads leave the storage once they are older than
``privacy.vacuum_hours``. Without it a row the retention job deleted, and every gold table a
daily run overwrote, stays on the storage for good: Delta only unlinks files from the log.

Each vacuum is logged in the table's history (``VACUUM START`` / ``VACUUM END``), where the job
reads how many files and bytes went."""

from __future__ import annotations

from jobs.lake import TABLES, Lake, per_table
from jobs.report import JobReport
from jobs.session import session_conf

# Delta's own default retention: readers in flight and a week of time travel stay safe
DELTA_DEFAULT_HOURS = 168


def vacuum_conf(hours: float, logged: bool = False) -> dict[str, str]:
    """Session settings for a vacuum of ``hours``: Delta refuses less than its default unless
    its check is off, and VACUUM's listing and diff are a few small stages that adaptive
    execution only cuts into more jobs (25 against 7 per table)."""
    conf = {"spark.sql.adaptive.enabled": "false"}
    if logged:  # two commits more per table; Delta's own default otherwise
        conf["spark.databricks.delta.vacuum.logging.enabled"] = "true"
    if hours < DELTA_DEFAULT_HOURS:
        conf["spark.databricks.delta.retentionDurationCheck.enabled"] = "false"
    return conf


def may_hold_deletion_vectors(delta) -> bool:
    """Whether the table's protocol allows deletion vectors. Without the feature a delete
    rewrites the files it touches and no file can be masked, so there is nothing to purge
    (a REORG of such a table still plans and runs five Spark jobs to find that out)."""
    features = delta.detail().first().asDict().get("tableFeatures") or []
    return "deletionVectors" in features


def vacuumed(delta) -> tuple[int, int]:
    """(files, bytes) the table's latest vacuum deleted, from its history."""
    rows = delta.history(10).select("operation", "operationMetrics").collect()
    end = next(r for r in rows if r["operation"] == "VACUUM END")["operationMetrics"]
    start = next(r for r in rows if r["operation"] == "VACUUM START")["operationMetrics"]
    return int(end.get("numDeletedFiles", 0)), int(start.get("sizeOfDataToDelete", 0))


def run(lake: Lake, report: JobReport, run_date: str) -> None:
    from delta.tables import DeltaTable

    hours = float(lake.settings.privacy.vacuum_hours)
    tables = [t for t in TABLES if lake.exists(t)]

    def vacuum(table: str) -> tuple[int, int]:
        delta = DeltaTable.forPath(lake.spark, lake.path(table))
        delta.vacuum(hours)
        return vacuumed(delta)

    with (
        report.step(f"vacuum {len(tables)} tables"),
        session_conf(lake.spark, vacuum_conf(hours, logged=True)),
    ):
        results = dict(zip(tables, per_table(vacuum, tables), strict=True))
    for table, (files, _) in results.items():
        if files:
            report.dropped[f"{table} files"] = files
    report.facts["tables vacuumed"] = len(tables)
    report.facts["files deleted"] = sum(f for f, _ in results.values())
    report.facts["bytes deleted"] = sum(b for _, b in results.values())
    report.facts["retention hours"] = lake.settings.privacy.vacuum_hours
