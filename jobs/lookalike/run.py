"""Lookalike job: one model per configured lookalike; scores, reach segments, evaluation."""

from __future__ import annotations

import json
import math
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.cache import cached
from jobs.lake import Lake
from jobs.lookalike.model import SeedTooSmallError, features, fit_and_score
from jobs.lookalike.published import segment_name
from jobs.report import JobReport, say
from jobs.segments.membership import write_membership, write_overlaps


def strict_json(obj) -> str:
    """JSON any parser reads: a non-finite number (the threshold of a reach level nobody can
    reach, an AUC without both classes) is written as null, never as Infinity or NaN."""

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(obj), allow_nan=False)


def run(lake: Lake, report: JobReport, run_date: str) -> None:
    if not lake.settings.lookalikes:
        report.facts["lookalikes"] = "none configured"
        return
    with cached() as keep:
        feats = keep(features(lake.read("gold.profiles")))
        members = lake.read("gold.segment_membership").where(F.col("run_date") == run_date)
        for la in lake.settings.lookalikes:
            with report.step(f"lookalike {la.name} from {la.seed_segment}"):
                seeds = members.where(F.col("segment") == la.seed_segment)
                try:
                    result = fit_and_score(feats, seeds, la)
                except SeedTooSmallError as err:
                    # one weak seed does not hold back the other lookalikes and the day's exports;
                    # without an evaluation row for the date, export leaves its audiences as shipped
                    say(f"[lookalike] {la.name}: skipped: {err}")
                    report.facts[f"{la.name} skipped"] = f"{err} (its audiences are not refreshed)"
                    continue
                keep(result.scores)  # cached by fit_and_score; freed with the features
                written = _write_scores(lake, run_date, la, result)
                stats = write_membership(lake, _reach_rows(written, la), run_date, _names(la))
                _write_evaluation(lake, run_date, la, result)
                report.written["gold.lookalike_scores"] = (
                    report.written.get("gold.lookalike_scores", 0) + written.count()
                )
                _report_model(report, la, result.evaluation, stats)
    with report.step("pairwise overlaps with the lookalike segments"):
        report.facts["overlap method"] = write_overlaps(lake, run_date)


def _names(la) -> list[str]:
    return [segment_name(la.name, p) for p in la.reach_percents]


def _write_scores(lake: Lake, run_date: str, la, result) -> DataFrame:
    """Writes the lookalike's scores of the date -> them, as the table holds them."""
    scores = result.scores.select(
        F.lit(run_date).alias("run_date"),
        F.lit(la.name).alias("lookalike"),
        "person_id",
        "score",
        "reach_bucket",
    )
    lake.replace_keys(scores, "gold.lookalike_scores", run_date, "lookalike", [la.name])
    return lake.read("gold.lookalike_scores").where(
        (F.col("run_date") == run_date) & (F.col("lookalike") == la.name)
    )


def _reach_rows(written: DataFrame, la) -> DataFrame:
    """One segment per reach: the people whose reach bucket is within it."""
    parts = [
        written.where(F.col("reach_bucket") <= p).select(F.lit(name).alias("segment"), "person_id")
        for p, name in zip(la.reach_percents, _names(la), strict=True)
    ]
    return reduce(DataFrame.unionByName, parts)


def _write_evaluation(lake: Lake, run_date: str, la, result) -> None:
    row = lake.spark.createDataFrame(
        [
            (
                run_date,
                la.name,
                la.seed_segment,
                strict_json(result.evaluation),
                strict_json({str(k): v for k, v in result.thresholds.items()}),
            )
        ],
        "run_date string, lookalike string, seed_segment string, metrics string, thresholds string",
    )
    lake.replace_keys(row, "gold.lookalike_evaluation", run_date, "lookalike", [la.name])


def _report_model(report: JobReport, la, ev: dict, stats: dict) -> None:
    """The chosen model, its AUC against the baseline, and each reach's size and recall."""
    aucs = ", ".join(
        f"{k.removeprefix('validation_auc_')} {v:.3f}"
        for k, v in ev.items()
        if k.startswith("validation_auc_")
    )
    report.facts[f"{la.name} model"] = f"{ev['model']} (validation AUC {aucs})"
    report.facts[f"{la.name} AUC"] = (
        f"{ev['auc']:.3f} on held-out seeds (cosine baseline {ev['baseline_auc']:.3f})"
    )
    if not ev["eligible"]:
        report.facts[f"{la.name} warning"] = (
            "nobody is eligible (consented and outside the seed): the lookalike segments are empty"
        )
    for p in la.reach_percents:
        report.facts[f"{la.name} {p:g}% reach"] = (
            f"{stats[segment_name(la.name, p)]['size']:,} people, recall "
            f"{ev[f'recall_at_{p:g}pct']:.2f}, lift {ev[f'lift_at_{p:g}pct']:.1f}x, "
            f"baseline recall {ev[f'baseline_recall_at_{p:g}pct']:.2f}"
        )
