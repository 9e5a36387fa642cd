"""Ingest job: every raw file exactly once (Structured Streaming, availableNow, one checkpoint per
source), bronze appended idempotently per micro-batch, silver merged on the event id so that
duplicate and late deliveries land once, bad rows quarantined with a reason."""

from __future__ import annotations

import re

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.cache import cached
from jobs.ingest.crm import CRM_SCHEMA, crm_to_bronze, split_crm
from jobs.ingest.events import busy_cookie_days, split_bronze, to_bronze
from jobs.ingest.files import check_files
from jobs.lake import Lake
from jobs.report import JobReport, say

DT = re.compile(r"dt=(\d{4}-\d{2}-\d{2})")


def _add(d: dict[str, int], key: str, n: int) -> None:
    d[key] = d.get(key, 0) + n


def _merge_insert_new(lake: Lake, df: DataFrame, table: str, on: str) -> int:
    if not lake.exists(table):
        lake.append(df, table)
        return lake.last_write_rows(table)
    target = lake.merge_target(table, df)
    target.alias("t").merge(df.alias("s"), on).whenNotMatchedInsertAll().execute()
    return lake.last_write_rows(table)


def _raw_glob(lake: Lake, source: str, pattern: str) -> str:
    raw = lake.settings.resolve(lake.settings.storage.raw_root).rstrip("/")
    return f"{raw}/{source}/dt=*/{pattern}"


def _has_files(lake: Lake, glob: str) -> bool:
    jvm = lake.spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(glob)
    fs = path.getFileSystem(lake.spark._jsc.hadoopConfiguration())
    found = fs.globStatus(path)
    return found is not None and len(found) > 0


def _run_stream(lake: Lake, stream: DataFrame, name: str, handle) -> None:
    query = (
        stream.writeStream.foreachBatch(handle)
        .option("checkpointLocation", lake.checkpoint(f"ingest/{name}"))
        .trigger(availableNow=True)
        .queryName(f"ingest_{name}")
        .start()
    )
    query.awaitTermination()


def _uri(col: str):
    """file:/x and file:///x are the same file; make the two listings agree."""
    return F.regexp_replace(F.col(col), "^file:/+", "file:///")


def _file_rows(files: DataFrame, lines: DataFrame, source: str, batch_id: int) -> DataFrame:
    """The per-file ledger: size, lines zlib counted, lines Spark read, and any file error."""
    read = lines.groupBy("source_file").agg(F.count("*").alias("lines_read"))
    return (
        files.withColumn("source_file", _uri("source_file"))
        .join(read, "source_file", "left")
        .select(
            "source_file",
            F.lit(source).alias("source"),
            F.lit(batch_id).cast("long").alias("batch_id"),
            "bytes",
            "newlines",
            F.coalesce("lines_read", F.lit(0)).alias("lines_read"),
            "file_error",
            F.current_timestamp().alias("ingested_at"),
        )
    )


def batch_rows(bronze: DataFrame, names: list[str]) -> DataFrame:
    """The bronze rows of one batch's files: the partitions of their dates, then the files."""
    days = sorted({m.group(1) for n in names if (m := DT.search(n))})
    in_days = F.col("dt").isin(days)
    if any(not DT.search(n) for n in names):  # a file outside a dt= folder has no date
        in_days = in_days | F.col("dt").isNull() | (F.col("dt") == "")
    return bronze.where(in_days & F.col("source_file").isin(names))


def ingest_events(lake: Lake, source: str, report: JobReport) -> None:
    s = lake.settings.ingest
    spark = lake.spark
    glob = _raw_glob(lake, source, "*.ndjson.gz")
    if not _has_files(lake, glob):
        say(f"[ingest] {source}: no raw files under {glob}")
        return
    stream = (
        spark.readStream.format("binaryFile")
        .schema("path string, modificationTime timestamp, length long, content binary")
        .option("maxFilesPerTrigger", s.max_files_per_batch)
        .load(glob)
    )

    def handle(batch: DataFrame, batch_id: int) -> None:
        with cached() as keep:
            files = keep(check_files(batch))
            listed = files.where(~F.coalesce(F.col("file_error"), F.lit("")).startswith("corrupt"))
            names = listed.select("source_file", _uri("source_file").alias("name")).collect()
            paths = [r["source_file"] for r in names]  # names, not data
            if paths:
                lines = (
                    spark.read.option(
                        "ignoreCorruptFiles", "true"
                    )  # salvage a truncated file's head
                    .text(paths)
                    .select("value", _uri("_metadata.file_path").alias("source_file"))
                )
            else:
                lines = spark.createDataFrame([], "value string, source_file string")
            bronze = to_bronze(lines, s.default_country, s.max_line_chars).withColumn(
                "source", F.coalesce("source", F.lit(source))
            )
            lake.append(bronze, "bronze.events", txn=(f"bronze-{source}", batch_id))
            # everything after this reads the batch back as bronze holds it (also when an earlier
            # attempt committed it): column-pruned Parquet, not a cache of millions of wide rows
            bronze = batch_rows(lake.read("bronze.events"), [r["name"] for r in names])
            ledger = keep(_file_rows(files, bronze, source, batch_id))
            lake.append(ledger, "bronze.files", txn=(f"files-{source}", batch_id))
            # the few busy cookies, found once for both the quarantine and the silver rows
            busy = keep(busy_cookie_days(bronze, s.max_events_per_cookie_per_day))
            silver, quarantine = split_bronze(
                bronze, s.bot_user_agent_patterns, s.max_events_per_cookie_per_day, busy
            )
            bad_files = ledger.where(F.col("file_error").isNotNull()).select(
                F.regexp_extract("file_error", r"^(\w+)", 1).alias("reason"),
                F.lit(None).cast("string").alias("event_id"),
                F.lit(source).alias("source"),
                "source_file",
                F.regexp_extract("source_file", r"dt=(\d{4}-\d{2}-\d{2})", 1).alias("dt"),
                F.concat(
                    "file_error",
                    F.lit(": "),
                    F.col("lines_read").cast("string"),
                    F.lit(" complete lines salvaged"),
                ).alias("detail"),
                "ingested_at",
            )
            quarantine = keep(quarantine.unionByName(bad_files))
            lake.append(quarantine, "silver.quarantine", txn=(f"quarantine-{source}", batch_id))
            by_reason = {
                r["reason"]: r["n"]
                for r in quarantine.groupBy("reason").agg(F.count("*").alias("n")).collect()
            }
            inserted = _merge_insert_new(
                lake,
                silver,
                "silver.events",
                "t.event_id = s.event_id AND t.event_date = s.event_date",
            )
            tally = ledger.agg(
                F.count("*").alias("files"),
                F.sum("lines_read").alias("lines"),
                F.sum(
                    F.when(F.col("file_error").isNull(), F.col("newlines") - F.col("lines_read"))
                ).alias("unread"),
                F.sum(F.col("file_error").isNotNull().cast("int")).alias("bad_files"),
            ).first()
            n_lines = tally["lines"] or 0
            if tally["unread"]:
                raise IngestConsistencyError(
                    f"{source} batch {batch_id}: {tally['unread']} lines counted in intact files "
                    "were not read: refusing to publish a partial batch"
                )
            n_bad_files = tally["bad_files"] or 0
            n_quarantined = sum(by_reason.values()) - n_bad_files
            duplicates = n_lines - n_quarantined - inserted
            _add(report.read, f"{source}_files", tally["files"])
            _add(report.read, f"{source}_lines", n_lines)
            _add(report.written, "silver.events", inserted)
            _add(report.written, "silver.quarantine", sum(by_reason.values()))
            for reason, n in by_reason.items():
                _add(report.dropped, reason, n)
            _add(report.dropped, "duplicate_event", duplicates)
            for row in (
                bronze.where(F.col("extra_fields").isNotNull())
                .select(F.explode(F.map_keys("extra_fields")).alias("f"))
                .groupBy("f")
                .count()
                .collect()
            ):
                report.facts[f"new field in {source} events: {row['f']}"] = row["count"]
            say(
                f"[ingest] {source} batch {batch_id}: {tally['files']} files, {n_lines:,} lines = "
                f"{inserted:,} new + {n_quarantined:,} quarantined + {duplicates:,} duplicates"
                + (f"; {n_bad_files} damaged files quarantined" if n_bad_files else "")
            )

    _run_stream(lake, stream, source, handle)


class IngestConsistencyError(RuntimeError):
    """Lines counted in an intact file were not all read: the batch is not published."""


def ingest_crm(lake: Lake, report: JobReport) -> None:
    glob = _raw_glob(lake, "crm", "*.csv")
    if not _has_files(lake, glob):
        say(f"[ingest] crm: no raw files under {glob}")
        return
    stream = (
        lake.spark.readStream.format("csv")
        .option("header", "true")
        .schema(CRM_SCHEMA)
        .option("mode", "PERMISSIVE")
        .load(glob)
        .withColumn("source_file", F.col("_metadata.file_path"))
    )
    default_country = lake.settings.ingest.default_country

    def handle(batch: DataFrame, batch_id: int) -> None:
        with cached() as keep:
            bronze = keep(crm_to_bronze(batch, default_country))
            lake.append(bronze, "bronze.crm", txn=("bronze-crm", batch_id))
            n_bronze = lake.last_write_rows("bronze.crm")
            silver, quarantine = split_crm(bronze)
            lake.append(quarantine, "silver.quarantine", txn=("quarantine-crm", batch_id))
            n_quarantined = lake.last_write_rows("silver.quarantine")
            if not lake.exists("silver.crm"):
                lake.append(silver, "silver.crm")
            else:
                (
                    lake.merge_target("silver.crm", silver)
                    .alias("t")
                    .merge(silver.alias("s"), "t.customer_id = s.customer_id")
                    .whenMatchedUpdateAll(condition="s.updated_at >= t.updated_at")
                    .whenNotMatchedInsertAll()
                    .execute()
                )
            n_silver = lake.last_write_rows("silver.crm")
            _add(report.read, "crm_rows", n_bronze)
            _add(report.written, "silver.crm", n_silver)
            _add(report.written, "silver.quarantine", n_quarantined)
            say(
                f"[ingest] crm batch {batch_id}: {n_bronze:,} rows -> {n_silver:,} customers, "
                f"{n_quarantined:,} quarantine notes"
            )

    _run_stream(lake, stream, "crm", handle)


def run(lake: Lake, report: JobReport) -> None:
    for source in lake.settings.ingest.sources:
        with report.step(f"ingest {source}"):
            ingest_events(lake, source, report)
    with report.step("ingest crm"):
        ingest_crm(lake, report)
