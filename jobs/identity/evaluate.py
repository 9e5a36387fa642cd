"""Pairwise precision / recall / F1 of a person map against ground truth (generated data).

Over every pair of identifiers known to both: a pair is predicted together when both map to
one person_id, truly together when both belong to one true person. Counted with group-bys
(sums of n*(n-1)/2 per cluster), never by listing pairs."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.cache import cached


def truth_nodes(truth: DataFrame) -> DataFrame:
    """truth(person_key, id_type, value) -> (node, person_key), hashing emails and phones the
    way the lake does."""
    value = F.when(F.col("id_type").isin("email", "phone"), F.sha2("value", 256)).otherwise(
        F.col("value")
    )
    return truth.select(F.concat("id_type", F.lit(":"), value).alias("node"), "person_key")


def _pairs(df: DataFrame, *keys: str):
    n = df.groupBy(*keys).count()
    return n.agg(F.coalesce(F.sum(F.col("count") * (F.col("count") - 1) / 2), F.lit(0.0))).first()[
        0
    ]


def pairwise_scores(person_map: DataFrame, truth: DataFrame) -> dict[str, float]:
    with cached() as keep:
        both = keep(person_map.select("node", "person_id").join(truth_nodes(truth), "node"))
        tp = _pairs(both, "person_id", "person_key")
        predicted = _pairs(both, "person_id")
        actual = _pairs(both, "person_key")
        identifiers = both.count()
    precision = tp / predicted if predicted else 1.0
    recall = tp / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "identifiers": float(identifiers)}
