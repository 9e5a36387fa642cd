"""Ingest job: every raw file exactly once (Structured Streaming, availableNow, one checkpoint per
source), bronze appended idempotently per micro-batch, silver merged on the event id so that
duplicate and late deliveries land once, bad rows quarantined with a reason."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ingest.crm import CRM_SCHEMA, crm_to_bronze, split_crm
from jobs.ingest.events import split_bronze, to_bronze
from jobs.lake import Lake
from jobs.report import JobReport, say


def _add(d: dict[str, int], key: str, n: int) -> None:
    d[key] = d.get(key, 0) + n


def _merge_insert_new(lake: Lake, df: DataFrame, table: str, on: str) -> int:
    if not lake.exists(table):
        lake.append(df, table)
        return lake.last_write_rows(table)
    target = DeltaTable.forPath(lake.spark, lake.path(table))
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


def ingest_events(lake: Lake, source: str, report: JobReport) -> None:
    s = lake.settings.ingest
    glob = _raw_glob(lake, source, "*.ndjson.gz")
    if not _has_files(lake, glob):
        say(f"[ingest] {source}: no raw files under {glob}")
        return
    stream = (
        lake.spark.readStream.format("text")
        .load(glob)
        .select("value", F.col("_metadata.file_path").alias("source_file"))
    )

    def handle(batch: DataFrame, batch_id: int) -> None:
        bronze = (
            to_bronze(batch, s.default_country)
            .withColumn("source", F.coalesce("source", F.lit(source)))
            .persist()
        )
        lake.append(bronze, "bronze.events", txn=(f"bronze-{source}", batch_id))
        n_bronze = lake.last_write_rows("bronze.events")
        silver, quarantine = split_bronze(
            bronze, s.bot_user_agent_patterns, s.max_events_per_cookie_per_day
        )
        quarantine = quarantine.persist()
        lake.append(quarantine, "silver.quarantine", txn=(f"quarantine-{source}", batch_id))
        by_reason = {
            r["reason"]: r["n"]
            for r in quarantine.groupBy("reason").agg(F.count("*").alias("n")).collect()
        }
        inserted = _merge_insert_new(
            lake, silver, "silver.events", "t.event_id = s.event_id AND t.event_date = s.event_date"
        )
        n_quarantined = sum(by_reason.values())
        _add(report.read, f"{source}_lines", n_bronze)
        _add(report.written, "silver.events", inserted)
        _add(report.written, "silver.quarantine", n_quarantined)
        for reason, n in by_reason.items():
            _add(report.dropped, reason, n)
        _add(report.dropped, "duplicate_event", n_bronze - n_quarantined - inserted)
        say(
            f"[ingest] {source} batch {batch_id}: {n_bronze:,} lines -> {inserted:,} new events, "
            f"{n_quarantined:,} quarantined"
        )
        bronze.unpersist()
        quarantine.unpersist()

    _run_stream(lake, stream, source, handle)


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
        bronze = crm_to_bronze(batch, default_country).persist()
        lake.append(bronze, "bronze.crm", txn=("bronze-crm", batch_id))
        n_bronze = lake.last_write_rows("bronze.crm")
        silver, quarantine = split_crm(bronze)
        lake.append(quarantine, "silver.quarantine", txn=("quarantine-crm", batch_id))
        n_quarantined = lake.last_write_rows("silver.quarantine")
        if not lake.exists("silver.crm"):
            lake.append(silver, "silver.crm")
        else:
            (
                DeltaTable.forPath(lake.spark, lake.path("silver.crm"))
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
        bronze.unpersist()

    _run_stream(lake, stream, "crm", handle)


def run(lake: Lake, report: JobReport) -> None:
    for source in lake.settings.ingest.sources:
        with report.step(f"ingest {source}"):
            ingest_events(lake, source, report)
    with report.step("ingest crm"):
        ingest_crm(lake, report)
