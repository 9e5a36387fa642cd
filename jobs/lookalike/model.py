"""Positive-unlabelled lookalike model in Spark ML: features, fit, score, reach, evaluation.

Seeds are positives, a sample of everyone else is "unlabelled"; a logistic regression and
gradient-boosted trees on scaled profile features learn what sets seeds apart, and the better on
a validation split is kept. A cosine-similarity baseline is scored on the same split. Scoring is
a distributed transform; reach levels are score thresholds from approximate quantiles (no global
sort, no all-pairs).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.cache import cached

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


FEATURE_GROUPS = ("affinity", "counts", "channels", "recency")


def features(
    profiles: DataFrame,
    categories: list[str] | None = None,
    groups: tuple[str, ...] | list[str] = FEATURE_GROUPS,
) -> DataFrame:
    """Profile -> numeric feature columns by group: category affinity shares, log counts,
    channel mix, recency. Purchases, carts and revenue are left out on purpose: seeds are usually
    defined by them, and a model that sees them only learns the seed rule back (label leakage).
    Affinity columns are always present (the cosine baseline needs them)."""
    cats = categories or top_categories(profiles)
    c = F.col
    total_aff = F.aggregate(F.map_values("category_views"), F.lit(0.0), lambda a, x: a + x)
    cols = [
        F.coalesce(c("category_views")[k] / F.greatest(total_aff, F.lit(1e-9)), F.lit(0.0)).alias(
            f"aff_{k}"
        )
        for k in cats
    ]
    if "counts" in groups:
        cols += [
            F.log1p(F.coalesce(c(k), F.lit(0)).cast("double")).alias(f"log_{k}")
            for k in COUNT_FEATURES
        ]
    if "channels" in groups:
        total = F.greatest(c("events"), F.lit(1))
        cols += [(c(f"{s}_events") / total).alias(f"share_{s}") for s in ("web", "app", "email")]
    if "recency" in groups:
        cols += [F.coalesce(c("recency_days"), F.lit(365)).cast("double").alias("recency")]
    return profiles.select("person_id", "ad_consent", *cols)


def affinity_names(df: DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith("aff_")]


def feature_names(df: DataFrame, groups=FEATURE_GROUPS) -> list[str]:
    names = [c for c in df.columns if c not in ("person_id", "ad_consent", "label")]
    return [c for c in names if "affinity" in groups or not c.startswith("aff_")]


def candidates(seed: int) -> dict:
    """The models tried every run; the one with the best validation AUC is kept."""
    return {
        "logistic_regression": LogisticRegression(
            featuresCol="features", labelCol="label", regParam=0.01, maxIter=50
        ),
        "gradient_boosted_trees": GBTClassifier(
            featuresCol="features", labelCol="label", maxDepth=3, maxIter=20, seed=seed
        ),
    }


def seed_centroid(seeds: DataFrame, names: list[str]) -> list[float]:
    """The seeds' average affinity vector (one number per category comes to the driver)."""
    row = seeds.agg(*[F.avg(n).alias(n) for n in names]).first()
    return [float(row[n] or 0.0) for n in names]


def cosine(names: list[str], centre: list[float]):
    """Cosine similarity of each row's affinity vector to ``centre``, as a Column."""
    norm_c = math.sqrt(sum(x * x for x in centre)) or 1.0
    dot = sum((F.col(n) * F.lit(x) for n, x in zip(names, centre, strict=True)), F.lit(0.0))
    norm = F.sqrt(sum((F.col(n) * F.col(n) for n in names), F.lit(0.0)))
    return F.when(norm > 0, dot / (norm * F.lit(norm_c))).otherwise(F.lit(0.0))


class SeedSimilarity(Transformer):
    """Adds ``seed_similarity`` (the cosine baseline's score) as a model feature, with the
    centroid of the training seeds fixed at fit time, so scoring new people needs no seeds."""

    def __init__(self, names: list[str], centre: list[float]):
        super().__init__()
        self.names, self.centre = names, centre

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return dataset.withColumn("seed_similarity", cosine(self.names, self.centre))


class LookalikeError(ValueError):
    """The lookalike cannot be built from this seed and population."""


@dataclass
class LookalikeResult:
    scores: DataFrame  # person_id, score, reach_bucket (eligible population only)
    evaluation: dict[str, float | str]
    thresholds: dict[float, float]
    model: PipelineModel  # scores any profile features, including people never seen in training


def score(model: PipelineModel, feats: DataFrame) -> DataFrame:
    """person_id, score in [0, 1] for every row of ``feats``: a distributed transform."""
    probability = vector_to_array("probability")[1]
    return model.transform(feats).select("person_id", probability.alias("score"))


def _thresholds(scored: DataFrame, column: str, reach_percents: list[float]) -> dict:
    probs = [1 - p / 100.0 for p in reach_percents]
    cuts = scored.approxQuantile(column, probs, 0.001) if probs else []
    if not cuts:  # nobody to rank: no threshold can be met
        cuts = [float("inf")] * len(reach_percents)
    return dict(zip(reach_percents, cuts, strict=True))


def _recalls(held: DataFrame, column: str, thresholds: dict) -> dict[float, float]:
    """Share of held-out seeds at or above each reach level's threshold."""
    if not thresholds:
        return {}
    row = held.agg(
        *[
            F.avg((F.col(column) >= F.lit(t)).cast("double")).alias(str(p))
            for p, t in thresholds.items()
        ]
    ).first()
    return {p: float(row[str(p)] or 0.0) for p in thresholds}


def _uniform(column: str, seed: int):
    """A number in [0, 1) from the column's hash and the seed: a reproducible coin."""
    return F.pmod(F.xxhash64(F.col(column), F.lit(seed)), F.lit(1_000_003)) / F.lit(1_000_003.0)


def _labelled(feats: DataFrame, seeds: DataFrame, min_seed: int):
    """-> (the seeds' features, everyone else's, the seed's size, the others' number); a seed
    under ``min_seed`` or a population that is all seed is an error."""
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
    unl = labelled.where("label = 0")
    n_unl = unl.count()
    if n_unl == 0:
        raise LookalikeError(
            "everyone with a profile is in the seed: nobody to learn the difference from or to "
            "reach"
        )
    return labelled.where("label = 1"), unl, n_seed, n_unl


def _split(pos: DataFrame, unl: DataFrame, sizes: tuple[int, int], la) -> dict[str, DataFrame]:
    """Train / validation (model choice) / hold-out (the reported numbers) of the seeds and of
    a sample of the unlabelled. Sampling and splits hash the person id with the seed: the same
    people land in the same split whatever the partitioning (randomSplit and sample depend
    on it)."""
    n_seed, n_unl = sizes
    frac = min(1.0, la.unlabelled_ratio * n_seed / n_unl)
    u = _uniform("person_id", la.seed)
    unl_sample = unl.where(_uniform("person_id", la.seed + 1) < frac)
    fit_cut, val_cut = 1 - la.holdout_fraction * 1.5, 1 - la.holdout_fraction

    def parts(df):
        return (
            df.where(u < fit_cut),
            df.where((u >= fit_cut) & (u < val_cut)),
            df.where(u >= val_cut),
        )

    pos_fit, pos_val, pos_hold = parts(pos)
    unl_fit, unl_val, unl_hold = parts(unl_sample)
    return {
        "pos_fit": pos_fit,
        "fit": pos_fit.unionByName(unl_fit),
        "validation": pos_val.unionByName(unl_val),
        "pos_hold": pos_hold,
        "hold": pos_hold.unionByName(unl_hold),
    }


def _choose(feats: DataFrame, split: dict, la, keep) -> tuple:
    """Fits every candidate on the training rows -> (the one with the best validation AUC,
    its name, the training seeds' mean affinity, the validation AUCs)."""
    fit = keep(split["fit"])
    auc_of = BinaryClassificationEvaluator(labelCol="label", rawPredictionCol="rawPrediction")
    centre = seed_centroid(split["pos_fit"], affinity_names(feats))
    assemble = [
        SeedSimilarity(affinity_names(feats), centre),
        VectorAssembler(
            inputCols=[*feature_names(feats, la.features), "seed_similarity"],
            outputCol="raw_features",
        ),
        StandardScaler(inputCol="raw_features", outputCol="features"),
    ]
    evaluation: dict[str, float | str] = {}
    models = {}
    for name, estimator in candidates(la.seed).items():
        models[name] = Pipeline(stages=[*assemble, estimator]).fit(fit)
        evaluation[f"validation_auc_{name}"] = float(
            auc_of.evaluate(models[name].transform(split["validation"]))
        )
    chosen = max(models, key=lambda n: (evaluation[f"validation_auc_{n}"], n))
    fit.unpersist()  # not needed for scoring
    return models[chosen], chosen, centre, evaluation


def _reach(model, eligible: DataFrame, reach_percents: list[float]):
    """Scores every eligible person -> (scores with their reach bucket, the thresholds)."""
    scored = score(model, eligible).cache()
    thresholds = _thresholds(scored, "score", reach_percents)
    bucket = F.lit(None).cast("double")
    for p in sorted(reach_percents, reverse=True):
        bucket = F.when(F.col("score") >= F.lit(thresholds[p]), F.lit(float(p))).otherwise(bucket)
    return scored.withColumn("reach_bucket", bucket), thresholds


def _held_out(model, split: dict, eligible, feats, centre, thresholds, la, keep) -> dict:  # noqa: PLR0913 -- the model and what it is measured on
    """AUC and recall at each reach level on the hold-out, for the model and for the
    baseline: cosine to the training seeds' mean affinity, on the same split."""
    aff = affinity_names(feats)
    auc = BinaryClassificationEvaluator(labelCol="label", rawPredictionCol="rawPrediction")
    base = eligible.withColumn("baseline_score", cosine(aff, centre))
    base_hold = split["hold"].withColumn("baseline_score", cosine(aff, centre))
    base_auc = BinaryClassificationEvaluator(
        labelCol="label", rawPredictionCol="baseline_score"
    ).evaluate(base_hold)
    base_thresholds = _thresholds(base, "baseline_score", la.reach_percents)
    held_seeds = keep(score(model, split["pos_hold"]))
    recall = _recalls(held_seeds, "score", thresholds)
    base_recall = _recalls(base_hold.where("label = 1"), "baseline_score", base_thresholds)
    out = {
        "auc": float(auc.evaluate(model.transform(split["hold"]))),
        "baseline_auc": float(base_auc),
        "holdout_seeds": float(held_seeds.count()),
    }
    for p in la.reach_percents:
        out[f"recall_at_{p:g}pct"] = recall.get(p, 0.0)
        out[f"lift_at_{p:g}pct"] = recall.get(p, 0.0) / (p / 100.0)
        out[f"baseline_recall_at_{p:g}pct"] = base_recall.get(p, 0.0)
    return out


def fit_and_score(feats: DataFrame, seeds: DataFrame, la) -> LookalikeResult:
    """Positive-unlabelled learning of ``la`` (a ``LookalikeSettings``): the seeds against a
    sample of everyone else, the better of the candidates on validation, every eligible
    person scored and bucketed by reach, and the hold-out evaluation beside the baseline."""
    t0 = time.monotonic()
    pos, unl, n_seed, n_unl = _labelled(feats, seeds, la.min_seed_size)
    split = _split(pos, unl, (n_seed, n_unl), la)
    with cached() as keep:  # the training rows and the held-out seeds
        model, chosen, centre, evaluation = _choose(feats, split, la, keep)
        t1 = time.monotonic()
        eligible = unl.where(F.col("ad_consent")) if la.consented_only else unl
        scored, thresholds = _reach(model, eligible, la.reach_percents)
        n_eligible = scored.count()
        t2 = time.monotonic()
        held = _held_out(model, split, eligible, feats, centre, thresholds, la, keep)
        evaluation.update(
            {
                "model": chosen,
                "auc": held.pop("auc"),
                "baseline_auc": held.pop("baseline_auc"),
                "seed_size": float(n_seed),
                "holdout_seeds": held.pop("holdout_seeds"),
                "eligible": float(n_eligible),
                "train_seconds": round(t1 - t0, 2),
                "score_seconds": round(t2 - t1, 2),
                **held,
            }
        )
    return LookalikeResult(scores=scored, evaluation=evaluation, thresholds=thresholds, model=model)
