"""Stable person ids across runs, and the lineage of merges and splits.

Rules: a cluster that persists keeps its id; on a merge the oldest id survives; on a split the
largest part keeps the id; new clusters get new ids. Everything is joins and window ranks over
(component, previous id) overlaps: no driver-side loop over clusters.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def new_person_id(component, run_date: str):
    """A fresh id: derived from the cluster's smallest identifier and the run that created it,
    so a rerun of the same run gives the same id and a retired id is never handed out again."""
    return F.concat(
        F.lit("p-"), F.substring(F.sha2(F.concat(component, F.lit("|" + run_date)), 256), 1, 20)
    )


def assign_ids(
    components: DataFrame, previous: DataFrame | None, run_date: str
) -> tuple[DataFrame, DataFrame]:
    """components(node, component) + previous(node, person_id, person_created)
    -> (node, component, person_id, person_created), lineage(old_person_id, new_person_id,
    reason, nodes)."""
    if previous is None:
        out = components.withColumn("person_id", new_person_id(F.col("component"), run_date))
        out = out.withColumn("person_created", F.lit(run_date))
        empty = components.sparkSession.createDataFrame(
            [], "old_person_id string, new_person_id string, reason string, nodes long"
        )
        return out, empty
    prev = previous.select(
        "node", F.col("person_id").alias("old_id"), F.col("person_created").alias("old_created")
    )
    overlap = (
        components.join(prev, "node")
        .groupBy("component", "old_id", "old_created")
        .agg(F.count("*").alias("nodes"))
    )
    # the heir of an old id: the component holding most of its identifiers (split rule)
    by_old = Window.partitionBy("old_id").orderBy(F.desc("nodes"), "component")
    overlap = overlap.withColumn("heir", F.row_number().over(by_old) == 1)
    # among the old ids a component is heir to, the oldest survives (merge rule)
    by_comp = Window.partitionBy("component").orderBy("old_created", "old_id")
    heirs = overlap.where("heir").withColumn("rank", F.row_number().over(by_comp))
    keep = heirs.where("rank = 1").select(
        "component", F.col("old_id").alias("person_id"), F.col("old_created").alias("created")
    )
    out = (
        components.join(keep, "component", "left")
        .withColumn(
            "person_id", F.coalesce("person_id", new_person_id(F.col("component"), run_date))
        )
        .withColumn("person_created", F.coalesce("created", F.lit(run_date)))
        .drop("created")
    )
    ids = out.select("component", F.col("person_id").alias("new_id")).distinct()
    moves = overlap.join(ids, "component").where(F.col("old_id") != F.col("new_id"))
    lineage = moves.select(
        F.col("old_id").alias("old_person_id"),
        F.col("new_id").alias("new_person_id"),
        F.when(F.col("heir"), F.lit("merge")).otherwise(F.lit("split")).alias("reason"),
        "nodes",
    )
    return out, lineage
