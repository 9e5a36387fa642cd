"""``identity.person_map_history``: every run's person map, kept as a change log.

A full rebuild writes its whole map (``change = 'full'``, a snapshot). An incremental run
writes only the rows of its recomputed region that differ from the previous map
(``'changed'``), and a tombstone (``'removed'``) for an identifier that left the map. The map as
of any run is the latest row per identifier since the last snapshot, tombstones dropped. So a
day costs storage in proportion to what it changed, not to the size of the map, and a rerun of
a day still starts from exactly the map the run before it left. Partitions written before the
change log existed have no ``change`` column (null) and read as snapshots.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.identity.resolve import PERSON_MAP_COLUMNS

FULL, CHANGED, REMOVED = "full", "changed", "removed"


def snapshot(person_map: DataFrame) -> DataFrame:
    """A full rebuild's rows: the whole map."""
    return person_map.select(*PERSON_MAP_COLUMNS, F.lit(FULL).alias("change"))


def changes(new: DataFrame, previous: DataFrame, scope: DataFrame) -> DataFrame:
    """The rows of ``new`` that are new or differ from ``previous`` in any column, and a
    tombstone for each identifier of ``previous`` missing from ``new``; only identifiers in
    ``scope`` (node) are compared, since nothing outside an incremental region changes."""
    n = new.join(scope, "node", "left_semi").select(*PERSON_MAP_COLUMNS)
    p = previous.join(scope, "node", "left_semi").select(*PERSON_MAP_COLUMNS)
    changed = n.subtract(p).withColumn("change", F.lit(CHANGED))  # null-safe, whole rows
    gone = p.join(n.select("node"), "node", "left_anti").withColumn("change", F.lit(REMOVED))
    return changed.unionByName(gone)


def map_before(history: DataFrame, run_date: str) -> DataFrame | None:
    """The person map left by the latest run before ``run_date`` (None before the first run):
    per identifier, its latest row since the last snapshot, unless that row is a tombstone."""
    if "change" not in history.columns:
        history = history.withColumn("change", F.lit(None).cast("string"))
    earlier = history.where(F.col("run_date") < run_date)
    is_snapshot = F.col("change").isNull() | (F.col("change") == FULL)
    since = earlier.where(is_snapshot).agg(F.max("run_date")).first()[0]
    if since is None:
        return None
    rows = earlier.where(F.col("run_date") >= since)
    latest = rows.groupBy("node").agg(
        F.max_by(F.struct(*PERSON_MAP_COLUMNS, "change"), "run_date").alias("r")
    )
    return (
        latest.select("r.*")
        .where(F.coalesce(F.col("change"), F.lit(FULL)) != REMOVED)
        .select(*PERSON_MAP_COLUMNS)
    )
