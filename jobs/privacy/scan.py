"""PII scanner: no email- or phone-shaped value may sit in any table or audience file.

Every string column of every lake table (maps and structs as their JSON text) and every line of
every audience file is matched against the shapes below; the scan counts per place and shows a
masked example, never the value."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ingest.normalise import EMAIL_SHAPE, PHONE_SHAPE
from jobs.lake import TABLES, Lake, per_table

SHAPES = {"email": EMAIL_SHAPE, "phone": PHONE_SHAPE}
# columns that hold no person's data by construction, each with why; their text is not read
NOT_PERSONAL = {
    ("identity.match_model", "model"): "the matching model: m and u probabilities learned from "
    "pairs and the SQL of its comparisons, no record's value (its 0.00... numbers look like "
    "phones dialled with 00)",
}


def _text_columns(df: DataFrame) -> dict[str, object]:
    out = {}
    for f in df.schema.fields:
        t = f.dataType.simpleString()
        if t == "string":
            out[f.name] = F.col(f.name)
        elif t.startswith(("map<", "struct<", "array<")):
            out[f.name] = F.to_json(F.col(f.name))
    return out


def scan_frame(df: DataFrame, where: str) -> list[dict]:
    cols = {n: c for n, c in _text_columns(df).items() if (where, n) not in NOT_PERSONAL}
    if not cols:
        return []
    aggs = [
        F.sum(F.coalesce(expr.rlike(pattern), F.lit(False)).cast("int")).alias(f"{name}|{kind}")
        for name, expr in cols.items()
        for kind, pattern in SHAPES.items()
    ]
    row = df.agg(*aggs).first().asDict()
    found = []
    for key, n in row.items():
        if n:
            name, kind = key.split("|")
            found.append({"where": where, "column": name, "shape": kind, "rows": int(n)})
    return found


def scan(lake: Lake) -> list[dict]:
    """Every finding as {where, column, shape, rows}; empty when the lake and audiences are
    clean."""
    spark = lake.spark
    tables = [t for t in TABLES if lake.exists(t)]
    findings = [
        f for found in per_table(lambda t: scan_frame(lake.read(t), t), tables) for f in found
    ]
    root = lake.settings.resolve(lake.settings.storage.audience_root).rstrip("/")
    from jobs.storage import hadoop_fs

    fs, p = hadoop_fs(spark, root)
    if fs.exists(p):
        reader = spark.read.option("recursiveFileLookup", "true")
        csv = reader.option("pathGlobFilter", "*.csv").text(root)
        findings += scan_frame(csv.withColumnRenamed("value", "line"), f"{root} (csv)")
        manifests = reader.option("pathGlobFilter", "*.json").text(root)
        findings += scan_frame(manifests.withColumnRenamed("value", "line"), f"{root} (json)")
        try:
            parquet = reader.option("pathGlobFilter", "*.parquet").parquet(root)
        except Exception:  # no parquet audience yet
            parquet = None
        if parquet is not None:
            findings += scan_frame(parquet, f"{root} (parquet)")
    return findings
