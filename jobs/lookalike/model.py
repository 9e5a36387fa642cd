"""Positive-unlabelled lookalike model in Spark ML: features, fit, score, reach, evaluation.

Seeds are positives, a sample of everyone else is "unlabelled"; a logistic regression on
scaled profile features learns what sets seeds apart. Scoring is a distributed transform;
reach levels are score thresholds from approximate quantiles (no global sort, no all-pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

COUNT_FEATURES = [
    "events",
    "sessions",
    "product_views",
    "email_engagements",
    "devices",
    "cookies",
]


class SeedTooSmallError(ValueError):
    """The seed segment is below the configured minimum size."""


def top_categories(profiles: DataFrame, limit: int = 50) -> list[str]:
    """The categories people browse most (a short list of names, not data, comes back)."""
    rows = (
        profiles.select(F.explode(F.map_keys("category_views")).alias("category"))
        .groupBy("category")
        .count()
        .orderBy(F.desc("count"), "category")
        .limit(limit)
        .collect()
    )
    return sorted(r["category"] for r in rows)


def features(profiles: DataFrame, categories: list[str] | None = None) -> DataFrame:
    """Profile -> numeric feature columns: category affinity shares, log counts, channel mix,
    recency. Purchases, carts and revenue are left out on purpose: seeds are usually defined by
    them, and a model that sees them only learns the seed rule back (label leakage)."""
    cats = categories or top_categories(profiles)
    c = F.col
    total_aff = F.aggregate(F.map_values("category_views"), F.lit(0.0), lambda a, x: a + x)
    cols = [
        F.coalesce(c("category_views")[k] / F.greatest(total_aff, F.lit(1e-9)), F.lit(0.0)).alias(
            f"aff_{k}"
        )
        for k in cats
    ]
    cols += [
        F.log1p(F.coalesce(c(k), F.lit(0)).cast("double")).alias(f"log_{k}") for k in COUNT_FEATURES
    ]
    total = F.greatest(c("events"), F.lit(1))
    cols += [(c(f"{s}_events") / total).alias(f"share_{s}") for s in ("web", "app", "email")]
    cols += [F.coalesce(c("recency_days"), F.lit(365)).cast("double").alias("recency")]
    return profiles.select("person_id", "ad_consent", *cols)


def feature_names(df: DataFrame) -> list[str]:
    return [c for c in df.columns if c not in ("person_id", "ad_consent", "label")]


@dataclass
class LookalikeResult:
    scores: DataFrame  # person_id, score, reach_bucket (eligible population only)
    evaluation: dict[str, float]
    thresholds: dict[float, float]


def fit_and_score(
    feats: DataFrame,
    seeds: DataFrame,
    reach_percents: list[float],
    min_seed: int,
    holdout: float,
    unlabelled_ratio: float,
    seed: int,
    consented_only: bool,
) -> LookalikeResult:
    seeds = seeds.select("person_id").distinct()
    n_seed = seeds.count()
    if n_seed < min_seed:
        raise SeedTooSmallError(
            f"seed has {n_seed} people, fewer than the minimum of {min_seed}: a model on so few "
            "would be weak; lower lookalikes[].min_seed_size only if you accept that"
        )
    labelled = feats.join(seeds.withColumn("label", F.lit(1.0)), "person_id", "left").na.fill(
        0.0, ["label"]
    )
    pos = labelled.where("label = 1")
    pos_train, pos_hold = pos.randomSplit([1 - holdout, holdout], seed=seed)
    unl = labelled.where("label = 0")
    n_unl = unl.count()
    frac = min(1.0, unlabelled_ratio * n_seed / max(n_unl, 1))
    unl_sample = unl.sample(fraction=frac, seed=seed)
    unl_train, unl_hold = unl_sample.randomSplit([1 - holdout, holdout], seed=seed)
    names = feature_names(feats)
    pipeline = Pipeline(
        stages=[
            VectorAssembler(inputCols=names, outputCol="raw_features"),
            StandardScaler(inputCol="raw_features", outputCol="features"),
            LogisticRegression(featuresCol="features", labelCol="label", regParam=0.01, maxIter=50),
        ]
    )
    model = pipeline.fit(pos_train.unionByName(unl_train))
    score = vector_to_array("probability")[1]

    hold = model.transform(pos_hold.unionByName(unl_hold))
    auc = BinaryClassificationEvaluator(
        labelCol="label", rawPredictionCol="rawPrediction"
    ).evaluate(hold)

    eligible = labelled.where("label = 0")
    if consented_only:
        eligible = eligible.where(F.col("ad_consent"))
    scored = model.transform(eligible).select("person_id", score.alias("score")).cache()
    hold_scored = model.transform(pos_hold).select(score.alias("score")).cache()
    probs = [1 - p / 100.0 for p in reach_percents]
    cuts = scored.approxQuantile("score", probs, 0.001) if probs else []
    thresholds = dict(zip(reach_percents, cuts, strict=True))
    # smallest reach level whose threshold the score clears
    bucket = F.lit(None).cast("double")
    for p in sorted(reach_percents, reverse=True):
        bucket = F.when(F.col("score") >= F.lit(thresholds[p]), F.lit(float(p))).otherwise(bucket)
    scored = scored.withColumn("reach_bucket", bucket)

    n_hold = hold_scored.count()
    evaluation = {"auc": float(auc), "seed_size": float(n_seed), "holdout_seeds": float(n_hold)}
    recalls = (
        hold_scored.agg(
            *[
                F.avg((F.col("score") >= F.lit(thresholds[p])).cast("double")).alias(str(p))
                for p in reach_percents
            ]
        ).first()
        if reach_percents and n_hold
        else None
    )
    for p in reach_percents:
        r = float(recalls[str(p)] or 0.0) if recalls else 0.0
        evaluation[f"recall_at_{p:g}pct"] = r
        evaluation[f"lift_at_{p:g}pct"] = r / (p / 100.0)
    return LookalikeResult(scores=scored, evaluation=evaluation, thresholds=thresholds)
