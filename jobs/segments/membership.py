"""Writing a run's segment members: the membership table, the history of every stretch of
membership (moved along identity merges and splits), sizes and changes, and the overlaps.
Written by the segments job and, for its reach segments, by the lookalike job."""

from __future__ import annotations

from pyspark import StorageLevel
from pyspark.sql import functions as F

from jobs.cache import cached
from jobs.lake import Lake
from jobs.segments import history
from jobs.segments.overlap import overlaps


def previous_run(lake: Lake, run_date: str, segments: list[str]) -> str | None:
    """The latest membership run of these segments before ``run_date``."""
    if not lake.exists("gold.segment_membership"):
        return None
    m = lake.read("gold.segment_membership")
    cond = (F.col("run_date") < run_date) & F.col("segment").isin(segments)
    last = m.where(cond).agg(F.max("run_date")).first()[0]
    return None if last is None else str(last)


def lineage_steps(lake: Lake, after: str | None, run_date: str) -> list:
    """Identity lineage of each identity run in (after, run_date], oldest first."""
    if after is None or not lake.exists("identity.lineage"):
        return []
    lin = lake.read("identity.lineage").where(
        (F.col("run_date") > after) & (F.col("run_date") <= run_date)
    )
    dates = sorted(str(r[0]) for r in lin.select("run_date").distinct().collect())
    return [lin.where(F.col("run_date") == d) for d in dates]


def write_membership(lake: Lake, members, run_date: str, segments: list[str]) -> dict[str, dict]:
    """Replace this run's membership of the given segments, move its history on (entries,
    exits, memberships moved by identity merges and splits) and record the run's statistics.
    -> {segment: {size, previous_size, entered, exited, moved}}."""
    with cached() as keep:
        members = (
            members.select("segment", "person_id")
            .distinct()
            .withColumn("run_date", F.lit(run_date))
        )
        members = keep(members, StorageLevel.MEMORY_AND_DISK)
        prev = previous_run(lake, run_date, segments)
        old = lake.read("gold.segment_history") if lake.exists("gold.segment_history") else None
        rows, changes = history.update(
            old, members, lineage_steps(lake, prev, run_date), segments, run_date
        )
        # computed from the history as it was: pinned (and counted) before it is rewritten
        changes = keep(changes, StorageLevel.MEMORY_AND_DISK)
        stats = {
            s: {"size": 0, "previous_size": None, "entered": 0, "exited": 0, "moved": 0}
            for s in segments
        }
        for r in changes.groupBy("segment", "change").agg(F.count("*").alias("n")).collect():
            stats[r["segment"]][r["change"]] = r["n"]
        for r in members.groupBy("segment").agg(F.count("*").alias("n")).collect():
            stats[r["segment"]]["size"] = r["n"]
        if prev is not None:
            for s in stats.values():
                s["previous_size"] = 0
            before = lake.read("gold.segment_membership").where(
                (F.col("run_date") == prev) & F.col("segment").isin(segments)
            )
            for r in before.groupBy("segment").agg(F.count("*").alias("n")).collect():
                stats[r["segment"]]["previous_size"] = r["n"]
        lake.replace_keys(members, "gold.segment_membership", run_date, "segment", segments)
        lake.replace_where(rows, "gold.segment_history", history.rewritten_rows(segments, run_date))
        lake.replace_keys(
            changes.withColumn("run_date", F.lit(run_date)),
            "gold.segment_changes",
            run_date,
            "segment",
            segments,
        )
        stats_df = lake.spark.createDataFrame(
            [
                (
                    run_date,
                    name,
                    s["size"],
                    s["previous_size"],
                    s["entered"],
                    s["exited"],
                    s["moved"],
                )
                for name, s in stats.items()
            ],
            "run_date string, segment string, size long, previous_size long, entered long, "
            "exited long, moved long",
        )
        lake.replace_keys(stats_df, "gold.segment_stats", run_date, "segment", segments)
    return stats


def write_overlaps(lake: Lake, run_date: str) -> str:
    """Pairwise overlaps of every segment of the run date; -> the method used."""
    members = lake.read("gold.segment_membership").where(F.col("run_date") == run_date)
    out, method = overlaps(members, lake.settings.segment_overlap_exact_max_pairs)
    lake.replace_partition(
        out.withColumn("run_date", F.lit(run_date)), "gold.segment_overlap", "run_date", run_date
    )
    return method
