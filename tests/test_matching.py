"""Probabilistic matching of customer records: the comparison features by hand, and the model
against FEBRL's known truth (records someone else wrote and linked)."""

from __future__ import annotations

import hashlib

import pytest
from pyspark.sql import functions as F

from jobs.ingest.normalise import address_key, hashed_grams


def _gram(g: str) -> str:
    return hashlib.sha256(g.encode()).hexdigest()[:8]


def test_street_addresses_written_short_meet(spark):
    df = spark.createDataFrame(
        [("12 Main St.",), ("12  main STREET",), ("Flat 3, 7 Oak Ave N",), ("  ",), (None,)],
        "a string",
    )
    keys = [r[0] for r in df.select(address_key(F.col("a"))).collect()]
    assert keys == ["12mainstreet", "12mainstreet", "flat37oakavenuenorth", None, None]


def test_hashed_bigrams_and_their_dice_by_hand(spark):
    df = spark.createDataFrame([("jon", "john"), (None, "x")], "a string, b string")
    rows = df.select(hashed_grams(F.col("a")).alias("a"), hashed_grams(F.col("b")).alias("b"))
    first, second = rows.collect()
    assert first["a"] == sorted(_gram(g) for g in ("_j", "jo", "on", "n_"))
    assert first["b"] == sorted(_gram(g) for g in ("_j", "jo", "oh", "hn", "n_"))
    shared = set(first["a"]) & set(first["b"])
    assert 2 * len(shared) / (len(first["a"]) + len(first["b"])) == pytest.approx(6 / 9)
    assert second["a"] is None and len(second["b"]) == 2


@pytest.mark.slow
def test_febrl1_links_above_the_deterministic_match(spark):
    """FEBRL1: 1,000 records, 500 of them duplicates of the others with typos and missing
    fields. Exact name and birth date finds 211 of the 500 pairs; the model, trained without
    labels on hashes and hashed bigrams only, finds nearly all with no false link."""
    from dev.match_febrl import febrl, run

    result = run(spark, febrl("febrl1"), [0.5])
    det, model = result["deterministic"], result[0.5]
    assert det["precision"] == 1.0 and det["pairs"] == 211
    assert model["precision"] >= 0.99 and model["recall"] >= 0.95, model
    assert model["f1"] > det["f1"] + 0.3


@pytest.mark.slow
def test_training_twice_learns_the_same_model(spark):
    """A rerun of identity that trains again stores the same model, to the last digit (DuckDB's
    EM adds its sums in one order), so the scored edges it writes are the same too."""
    from dev.match_febrl import febrl, silver_records
    from jobs.identity.matching import train

    # FEBRL4's 10,000 records: enough pairs for DuckDB to split EM's sums over threads
    records = silver_records(spark, febrl("febrl4")).localCheckpoint()
    assert train(records, 100_000, seed=1) == train(records, 100_000, seed=1)


def test_training_reads_a_fixed_sample_of_a_large_customer_table(spark, monkeypatch):
    from jobs.identity import matching

    records = spark.range(2_000).select(F.concat(F.lit("c"), "id").alias("customer_id"))
    assert matching.training_sample(records) is records  # under the cap: all of them
    monkeypatch.setattr(matching, "TRAIN_RECORDS", 500)
    first = {r["customer_id"] for r in matching.training_sample(records).collect()}
    again = {r["customer_id"] for r in matching.training_sample(records).collect()}
    assert first == again and 400 <= len(first) <= 600  # a quarter, by the ids' hash
