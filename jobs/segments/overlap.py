"""Pairwise segment overlaps: exact where affordable, Theta sketches where not.

Exact is a self-join of the membership on person_id; its cost is the number of
(person, segment, segment) pairs, sum over people of k*(k-1)/2 for k segments each, which is
counted first. Above ``exact_max_pairs`` each segment is summarised by a Theta sketch (one
aggregation) and every pair's intersection is estimated from two sketches: a cross join of
one small row per segment, never of people.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

OVERLAP_SCHEMA = (
    "segment_a string, segment_b string, size_a long, size_b long, overlap long, "
    "jaccard double, method string"
)
SKETCH_LG_NOM_ENTRIES = 14  # 16k entries: about 1% relative error on large sets


def pair_count(members: DataFrame) -> int:
    """How many (person, segment a, segment b) rows an exact self-join would produce."""
    k = members.groupBy("person_id").agg(F.count("*").alias("k"))
    return int(k.agg(F.sum(F.col("k") * (F.col("k") - 1) / 2)).first()[0] or 0)


def exact_overlaps(members: DataFrame) -> DataFrame:
    a = members.select(F.col("segment").alias("segment_a"), "person_id")
    b = members.select(F.col("segment").alias("segment_b"), "person_id")
    return (
        a.join(b, "person_id")
        .where(F.col("segment_a") < F.col("segment_b"))
        .groupBy("segment_a", "segment_b")
        .agg(F.count("*").alias("overlap"))
    )


def sketch_overlaps(members: DataFrame) -> DataFrame:
    sk = members.groupBy("segment").agg(
        F.theta_sketch_agg("person_id", SKETCH_LG_NOM_ENTRIES).alias("sketch")
    )
    a = sk.select(F.col("segment").alias("segment_a"), F.col("sketch").alias("sa"))
    b = sk.select(F.col("segment").alias("segment_b"), F.col("sketch").alias("sb"))
    est = F.theta_sketch_estimate(F.theta_intersection("sa", "sb"))
    return (
        a.crossJoin(b)
        .where(F.col("segment_a") < F.col("segment_b"))
        .select("segment_a", "segment_b", F.round(est).cast("long").alias("overlap"))
    )


def overlaps(members: DataFrame, exact_max_pairs: int) -> tuple[DataFrame, str]:
    """members (segment, person_id) -> one row per segment pair (a < b), every pair present
    even when the overlap is 0, and the method used ("exact" or "theta sketch")."""
    members = members.select("segment", "person_id").distinct()
    exact = pair_count(members) <= exact_max_pairs
    method = "exact" if exact else "theta sketch"
    inter = exact_overlaps(members) if exact else sketch_overlaps(members)
    sizes = members.groupBy("segment").agg(F.count("*").alias("n"))
    sa = sizes.select(F.col("segment").alias("segment_a"), F.col("n").alias("size_a"))
    sb = sizes.select(F.col("segment").alias("segment_b"), F.col("n").alias("size_b"))
    overlap = F.least(F.coalesce("overlap", F.lit(0)), "size_a", "size_b")
    out = (
        sa.crossJoin(sb)
        .where(F.col("segment_a") < F.col("segment_b"))
        .join(inter, ["segment_a", "segment_b"], "left")
        .select("segment_a", "segment_b", "size_a", "size_b", overlap.alias("overlap"))
        .withColumn(
            "jaccard",
            F.col("overlap") / (F.col("size_a") + F.col("size_b") - F.col("overlap")),
        )
        .withColumn("method", F.lit(method))
    )
    return out, method
