"""Publishing audience folders atomically on any Hadoop filesystem (local, s3a).

Files are written under a temporary name and moved into place, then ``manifest.json``, then
``_SUCCESS``: an ad platform (or our own reader) trusts a folder only once ``_SUCCESS`` exists."""

from __future__ import annotations

import json
import re
from collections import Counter

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.storage import hadoop_fs, write_text

MANIFEST, SUCCESS = "manifest.json", "_SUCCESS"
# a CSV column named ``Email#2`` is headed ``Email``: platforms take repeated columns (several
# emails of one person) that a DataFrame cannot hold under one name
REPEAT = re.compile(r"#\d+$")


def csv_header(columns: list[str]) -> list[str]:
    return [REPEAT.sub("", c) for c in columns]


def unique_names(header: list[str]) -> list[str]:
    """The DataFrame names of a CSV header (the inverse of ``csv_header``)."""
    seen: Counter = Counter()
    out = []
    for h in header:
        seen[h] += 1
        out.append(h if seen[h] == 1 else f"{h}#{seen[h]}")
    return out


def _csv_field(col) -> F.Column:
    """RFC 4180: a field holding a comma or a quote is quoted, its quotes doubled."""
    v = F.regexp_replace(F.coalesce(col.cast("string"), F.lit("")), r"[\r\n]+", " ")
    quoted = F.concat(F.lit('"'), F.regexp_replace(v, '"', '""'), F.lit('"'))
    return F.when(v.rlike('[",]'), quoted).otherwise(v)


def csv_lines(df: DataFrame) -> DataFrame:
    """One column: each row as its CSV line, named by the header line (repeated names kept)."""
    header = ",".join(csv_header(df.columns))
    return df.select(
        F.concat_ws(",", *[_csv_field(F.col(f"`{c}`")) for c in df.columns]).alias(header)
    )


# the lines are written as they are: no quoting, no trimming by the writer itself
AS_IS = {
    "header": "true",
    "compression": "gzip",
    "sep": "\u0001",
    "quote": "",
    "escapeQuotes": "false",
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}


def file_checksums(spark: SparkSession, folder: str) -> dict[str, dict]:
    """{relative path: {sha256, bytes}} of every part file under ``folder``, hashed on the
    executors (binaryFile), so the driver never reads the audience."""
    files = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "part-*")
        .load(folder)
        .select("path", "length", F.sha2("content", 256).alias("sha256"))
        .collect()
    )
    base = folder.rstrip("/").split("://", 1)[-1]
    out = {}
    for r in files:
        rel = r["path"].split("://", 1)[-1].split(base, 1)[-1].lstrip("/")
        out[rel] = {"sha256": r["sha256"], "bytes": int(r["length"])}
    return out


def publish(  # noqa: PLR0913 -- a folder, its parts and how each is written
    spark: SparkSession,
    final: str,
    parts: dict[str, DataFrame],
    fmt: str,
    max_rows: int,
    manifest: dict,
    known_rows: dict[str, int] | None = None,
) -> dict:
    """Write each part (full / add / remove) under ``final + '._tmp'`` (CSV gzipped), move the
    folder into place, write ``manifest.json`` (rows, columns, SHA-256 and size of every file),
    then ``_SUCCESS`` last. Readers trust a folder only once ``_SUCCESS`` exists; a rerun first
    withdraws the marker, then replaces the folder whole. ``known_rows`` gives the row counts
    of parts the caller has already counted on a cached frame: those are not counted again."""
    tmp = final.rstrip("/") + "._tmp"
    fs, tmp_p = hadoop_fs(spark, tmp)
    fs.delete(tmp_p, True)
    described = {}
    for name, df in parts.items():
        n = (known_rows or {}).get(name)
        counted_here = n is None
        if counted_here:
            df = df.cache()  # counted, then written: computed once
            n = df.count()
        # as few files as the platform's size limit allows, never one per shuffle partition
        out = df.coalesce(max(1, -(-n // max_rows)))
        if fmt == "csv":
            out = csv_lines(out)
        writer = out.write.mode("overwrite").option("maxRecordsPerFile", max_rows)
        if fmt == "csv":
            writer.options(**AS_IS).csv(f"{tmp}/{name}")
        else:
            writer.parquet(f"{tmp}/{name}")
        columns = csv_header(df.columns) if fmt == "csv" else df.columns
        described[name] = {"rows": n, "columns": columns}
        if counted_here:
            df.unpersist()
    sums = file_checksums(spark, tmp)
    for name, part in described.items():
        part["files"] = {
            rel.split("/", 1)[1]: v for rel, v in sorted(sums.items()) if rel.startswith(name + "/")
        }
    _, final_p = hadoop_fs(spark, final)
    _, success = hadoop_fs(spark, f"{final}/{SUCCESS}")
    fs.delete(success, False)  # withdrawn first: no reader trusts the folder while it changes
    fs.delete(final_p, True)
    fs.mkdirs(final_p.getParent())
    if not fs.rename(tmp_p, final_p):
        raise OSError(f"could not move {tmp} to {final}")
    manifest = {**manifest, "parts": described, "format": fmt}
    if fmt == "csv":
        manifest["compression"] = "gzip"
    write_text(spark, f"{final}/{MANIFEST}", json.dumps(manifest, indent=2, sort_keys=True))
    write_text(spark, f"{final}/{SUCCESS}", "")
    return manifest
