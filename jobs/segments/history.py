"""Membership history as a slowly changing dimension: (segment, person, entered, exited).

One row per stretch of membership. A run for date D rewrites only the rows it may change: the
open ones and any written or closed at D or later (so a rerun of D replaces exactly its own
work), in one Delta commit. Identity merges and splits between two runs move memberships to the
surviving ids before anyone is counted as entered or exited:

- merge (A retired into B): A's row closes with ``exit_reason = 'merged'``; if B had no open
  row it gets one that keeps A's ``entered`` date.
- split (C carved out of A): C inherits A's ``entered`` date if C is still a member.

``opened_on`` is the run that wrote a row (it differs from ``entered`` when a membership moved
to a new id), which is what lets a rerun undo exactly that run.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

HISTORY_SCHEMA = (
    "segment string, person_id string, entered string, exited string, exit_reason string, "
    "opened_on string"
)
HISTORY_COLUMNS = ["segment", "person_id", "entered", "exited", "exit_reason", "opened_on"]


def rewritten_rows(segments: list[str], run_date: str) -> str:
    """The history rows a run of ``run_date`` owns and rewrites, as a Delta predicate (segment
    names are validated identifiers; the date is a validated ISO date)."""
    names = ", ".join(f"'{s}'" for s in segments)
    d = f"'{run_date}'"
    return f"segment IN ({names}) AND (exited IS NULL OR exited >= {d} OR opened_on >= {d})"


def open_before(history: DataFrame, segments: list[str], run_date: str) -> DataFrame:
    """Open rows as they stood before ``run_date`` ran: rows it wrote are dropped, rows it
    closed are open again."""
    return (
        history.where(F.expr(rewritten_rows(segments, run_date)))
        .where(F.col("opened_on") < run_date)
        .withColumn("exited", F.lit(None).cast("string"))
        .withColumn("exit_reason", F.lit(None).cast("string"))
    )


def follow_lineage(carried: DataFrame, lineage: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Move (segment, person_id, entered, own) rows along one identity run's lineage
    (old_person_id, new_person_id, reason). -> (carried rows, own rows whose id was retired)."""
    moves = lineage.select(
        F.col("old_person_id").alias("person_id"), F.col("new_person_id").alias("to"), "reason"
    )
    retired_ids = moves.where(F.col("reason") == "merge").select("person_id").distinct()
    moved = carried.join(moves, "person_id").select(
        "segment", F.col("to").alias("person_id"), "entered", F.lit(False).alias("own")
    )
    kept = carried.join(retired_ids, "person_id", "left_anti")
    retired = carried.join(retired_ids, "person_id").where("own")
    return kept.unionByName(moved), retired


def update(
    history: DataFrame | None,
    members: DataFrame,
    lineage_steps: list[DataFrame],
    segments: list[str],
    run_date: str,
) -> tuple[DataFrame, DataFrame]:
    """-> (history rows to write over ``rewritten_rows``, changes (segment, person_id, change)).

    ``members`` holds the run's (segment, person_id); ``lineage_steps`` the identity lineage of
    every identity run since the previous segment run, oldest first."""
    spark = members.sparkSession
    d = F.lit(run_date)
    if history is None:
        open_rows = spark.createDataFrame([], HISTORY_SCHEMA)
    else:
        open_rows = open_before(history, segments, run_date)
    carried = open_rows.select("segment", "person_id", "entered", F.lit(True).alias("own"))
    retired = carried.limit(0)
    for step in lineage_steps:
        carried, gone = follow_lineage(carried, step)
        retired = retired.unionByName(gone)
    # one row per (segment, person): the id's own row if it has one, else the earliest moved in
    carried = carried.groupBy("segment", "person_id").agg(
        F.max("own").alias("own"),
        F.coalesce(F.min(F.when(F.col("own"), F.col("entered"))), F.min("entered")).alias(
            "entered"
        ),
    )
    own = open_rows.select("segment", "person_id", "opened_on")
    cur = members.select("segment", "person_id").distinct().withColumn("member", F.lit(True))
    both = carried.join(cur, ["segment", "person_id"], "full_outer").join(
        own, ["segment", "person_id"], "left"
    )
    is_member = F.coalesce(F.col("member"), F.lit(False))
    was_member = F.col("entered").isNotNull()
    rows = both.select(
        "segment",
        "person_id",
        F.coalesce(F.col("entered"), d).alias("entered"),
        F.when(~is_member, d).alias("exited"),
        F.when(~is_member, F.lit("left")).alias("exit_reason"),
        F.when(F.coalesce(F.col("own"), F.lit(False)), F.col("opened_on"))
        .otherwise(d)
        .alias("opened_on"),
        F.when(~was_member, F.lit("entered")).when(~is_member, F.lit("exited")).alias("change"),
    )
    closed_by_merge = retired.join(own, ["segment", "person_id"]).select(
        "segment",
        "person_id",
        "entered",
        d.alias("exited"),
        F.lit("merged").alias("exit_reason"),
        "opened_on",
        F.lit("moved").alias("change"),
    )
    out = rows.unionByName(closed_by_merge)
    changes = out.where(F.col("change").isNotNull()).select("segment", "person_id", "change")
    return out.select(*HISTORY_COLUMNS), changes
