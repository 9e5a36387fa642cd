"""Membership history: who entered and who left each segment since its previous run."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def changes(current: DataFrame, previous: DataFrame | None, run_date: str) -> DataFrame:
    """(segment, person_id) now vs before -> (run_date, segment, person_id, change)."""
    cur = current.select("segment", "person_id")
    if previous is None:
        out = cur.withColumn("change", F.lit("entered"))
    else:
        prev = previous.select("segment", "person_id")
        out = (
            cur.join(prev, ["segment", "person_id"], "left_anti")
            .withColumn("change", F.lit("entered"))
            .unionByName(
                prev.join(cur, ["segment", "person_id"], "left_anti").withColumn(
                    "change", F.lit("exited")
                )
            )
        )
    return out.withColumn("run_date", F.lit(run_date))
