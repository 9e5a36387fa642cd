"""Ingest job: every raw file exactly once (Structured Streaming, availableNow, one checkpoint per
source), bronze appended idempotently per micro-batch, silver merged on the event id so that
duplicate and late deliveries land once, bad rows quarantined with a reason."""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.cache import cached
from jobs.config import ArrivalDate
from jobs.ingest.crm import (
    CORE_FIELDS,
    CRM_SCHEMA,
    as_contract,
    by_header,
    crm_to_bronze,
    header_fields,
    header_names,
    header_schema,
    split_crm,
)
from jobs.ingest.events import busy_cookie_days, silver_day, split_bronze
from jobs.ingest.files import check_files
from jobs.ingest.formats import parse, snowplow
from jobs.ingest.formats.spec import SESSIONLESS
from jobs.ingest.sources import LAYOUTS, Source, arrival_day, arrival_day_column, sources
from jobs.lake import Lake
from jobs.report import JobReport, say
from jobs.storage import first_line


def _add(d: dict[str, int], key: str, n: int) -> None:
    d[key] = d.get(key, 0) + n


def _in_days(column: str, days: list[str]) -> str:
    """A predicate on a date partition column: Delta reads only those days' files."""
    if not days:
        return "false"
    dates = ", ".join(f"DATE'{d}'" for d in days)
    return f"{column} IN ({dates})"


def _merge_insert_new(lake: Lake, df: DataFrame, days: list[str]) -> int:
    """Insert the events silver does not have yet (by event id and date), reading only the
    partitions of ``days``, the days ``df``'s events fall on: a day's merge costs what the day
    brings, not what history holds."""
    table = "silver.events"
    if not lake.exists(table):
        lake.append(df, table)
        return lake.last_write_rows(table)
    target = lake.merge_target(table, df)
    same = "t.event_id = s.event_id AND t.event_date = s.event_date"
    on = f"{_in_days('t.event_date', days)} AND {same}"
    merge = target.alias("t").merge(df.alias("s"), on).whenNotMatchedInsertAll()
    if set(df.columns) - set(target.toDF().columns):  # a lake from before a column was added
        merge = merge.withSchemaEvolution()
    merge.execute()
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
    """The per-file ledger: size, lines zlib counted, lines Spark read, and any file error;
    and, not kept in the table, ``_days``: the days its lines' silver rows fall on (the same
    pass over bronze finds both)."""
    read = lines.groupBy("source_file").agg(
        F.count("*").alias("lines_read"),
        F.collect_set(silver_day(F.col("event_ts"))).alias("_days"),
    )
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
            F.coalesce("_days", F.array().cast("array<string>")).alias("_days"),
        )
    )


def _bad_file_rows(ledger: DataFrame, source: Source) -> DataFrame:
    """A quarantine row per damaged file, with the lines salvaged from it."""
    return ledger.where(F.col("file_error").isNotNull()).select(
        F.regexp_extract("file_error", r"^(\w+)", 1).alias("reason"),
        F.lit(None).cast("string").alias("event_id"),
        F.lit(source.name).alias("source"),
        "source_file",
        arrival_day_column(F.col("source_file"), source.arrival).alias("dt"),
        F.concat(
            "file_error",
            F.lit(": "),
            F.col("lines_read").cast("string"),
            F.lit(" complete lines salvaged"),
        ).alias("detail"),
        "ingested_at",
    )


FEW_FILES = 200


def batch_rows(bronze: DataFrame, names: list[str], arrival: ArrivalDate | None = None):
    """The bronze rows of one batch's files: the partitions of their arrival days, then the
    files (``arrival``: how a path gives its day; the native ``dt=`` folders by default)."""
    arrival = arrival or LAYOUTS["native"][1]
    days = {arrival_day(n, arrival) for n in names}
    in_days = F.col("dt").isin(sorted(d for d in days if d))
    if None in days:  # a file whose path gives no day
        in_days = in_days | F.col("dt").isNull() | (F.col("dt") == "")
    rows = bronze.where(in_days)
    if len(names) <= FEW_FILES:  # Delta skips the data files of other source files
        return rows.where(F.col("source_file").isin(names))
    # a filter on thousands of literals costs more than the join (10,000 names: 8.1 s to 1.9 s)
    wanted = bronze.sparkSession.createDataFrame([(n,) for n in names], "source_file string")
    return rows.join(F.broadcast(wanted), "source_file", "left_semi")


def _read_lines(spark, paths: list[str]) -> DataFrame:
    """(value, source_file): the lines of text files, or each row of a Parquet file as one
    JSON object (GA4's export can be either)."""
    schema = "value string, source_file string"
    text = [p for p in paths if not p.endswith(".parquet")]
    parquet = [p for p in paths if p.endswith(".parquet")]
    frames = []
    if text:  # ignoreCorruptFiles salvages the complete lines at a truncated file's head
        lines = spark.read.option("ignoreCorruptFiles", "true").text(text)
        frames.append(lines.select("value", _uri("_metadata.file_path").alias("source_file")))
    if parquet:
        rows = spark.read.option("ignoreCorruptFiles", "true").option("mergeSchema", "true")
        rows = rows.parquet(*parquet)
        value = F.to_json(F.struct(*[F.col(f"`{c}`") for c in rows.columns]))
        frames.append(
            rows.select(value.alias("value"), _uri("_metadata.file_path").alias("source_file"))
        )
    if not frames:
        return spark.createDataFrame([], schema)
    return frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])


BYTES_PER_PARTITION = 16 << 20  # compressed: some 150 MB of text


def _batch_bytes(batch: DataFrame) -> int:
    """The size of a batch's files, from their listing (the files are not read for it)."""
    return batch.agg(F.sum("length")).first()[0] or 0


def _fewer_partitions(lines: DataFrame, total_bytes: int) -> DataFrame:
    """Many small files are read as one partition per 32 files (Spark counts 4 MB of opening
    cost per file), which makes as many tasks (each a round trip to Python when the files are
    checked) and as many small bronze files; a batch needs no more partitions than its size
    asks for, and at least one per core. 10,000 files of 5 lines: the check took 49 s in 313
    tasks."""
    wanted = max(
        lines.sparkSession.sparkContext.defaultParallelism, -(-total_bytes // BYTES_PER_PARTITION)
    )
    if lines.rdd.getNumPartitions() > wanted:
        return lines.coalesce(wanted)
    return lines


def _new_lines(
    lake: Lake, bronze: DataFrame, inserted: int, exploded: bool, days: list[str]
) -> int:
    """Lines of the batch that made new silver events. A message listing several products
    makes several rows: then the batch's first rows are counted in silver (its rows carry the
    batch's bronze time, and only its new files have it)."""
    if not exploded:
        return inserted
    stamp = bronze.agg(F.max("ingested_at")).first()[0]
    if stamp is None:
        return 0
    silver = lake.read("silver.events").where(_in_days("event_date", days))
    mine = silver.where(F.col("ingested_at") == F.lit(stamp))
    return mine.where(F.coalesce(F.col("line_item"), F.lit(1)) == 1).count()


def ingest_events(lake: Lake, source: Source, report: JobReport) -> None:
    s = lake.settings.ingest
    if not _has_files(lake, source.glob):
        say(f"[ingest] {source.name}: no raw files under {source.glob}")
        return
    limit = (
        ("maxFilesPerTrigger", s.max_files_per_batch)
        if s.max_files_per_batch
        else ("maxBytesPerTrigger", s.max_bytes_per_batch)
    )
    stream = (
        lake.spark.readStream.format("binaryFile")
        .schema("path string, modificationTime timestamp, length long, content binary")
        .option(*limit)
        .load(source.glob)
    )

    def handle(batch: DataFrame, batch_id: int) -> None:
        _ingest_batch(lake, source, batch, batch_id, report)

    _run_stream(lake, stream, source.name, handle)


def _ingest_batch(
    lake: Lake, source: Source, batch: DataFrame, batch_id: int, report: JobReport
) -> None:
    s = lake.settings.ingest
    with cached() as keep:
        files = keep(check_files(_fewer_partitions(batch, _batch_bytes(batch))))
        listed = files.where(~F.coalesce(F.col("file_error"), F.lit("")).startswith("corrupt"))
        names = listed.select("source_file", _uri("source_file").alias("name"), "bytes").collect()
        lines = _read_lines(lake.spark, [r["source_file"] for r in names])
        lines = _fewer_partitions(lines, sum(r["bytes"] for r in names))
        bronze = parse(lines, source, s)
        txn = (f"bronze-{source.name}", batch_id)
        lake.append(bronze, "bronze.events", txn=txn, merge_schema=True)
        # everything after this reads the batch back as bronze holds it (also when an earlier
        # attempt committed it): column-pruned Parquet, not a cache of millions of wide rows
        uris = [r["name"] for r in names]
        bronze = batch_rows(lake.read("bronze.events"), uris, source.arrival)
        ledger = keep(_file_rows(files, bronze, source.name, batch_id))
        lake.append(ledger.drop("_days"), "bronze.files", txn=(f"files-{source.name}", batch_id))
        # the few busy cookies, found once for both the quarantine and the silver rows
        busy = keep(busy_cookie_days(bronze, s.max_events_per_cookie_per_day))
        silver, quarantine = split_bronze(
            bronze,
            s.bot_user_agent_patterns,
            s.max_events_per_cookie_per_day,
            busy,
            items=source.format != "native",
            session_timeout=s.session_timeout_minutes if source.format in SESSIONLESS else None,
        )
        quarantine = keep(quarantine.unionByName(_bad_file_rows(ledger, source)))
        txn = (f"quarantine-{source.name}", batch_id)
        lake.append(quarantine, "silver.quarantine", txn=txn)
        by_reason = {
            r["reason"]: r["n"]
            for r in quarantine.groupBy("reason").agg(F.count("*").alias("n")).collect()
        }
        tally = _tally(ledger)
        days = list(tally["days"])
        inserted = _merge_insert_new(lake, silver, days)
        if tally["unread"]:
            raise IngestConsistencyError(
                f"{source.name} batch {batch_id}: {tally['unread']} lines counted in intact "
                "files were not read: refusing to publish a partial batch"
            )
        new = _new_lines(lake, bronze, inserted, source.format != "native", days)
        counts = BatchCounts(tally["files"], tally["lines"] or 0, tally["bad_files"] or 0, new)
        _report_batch(report, source, batch_id, counts, by_reason, inserted)
        _warn_if_foreign(report, source, counts, by_reason, quarantine)
        _report_new_fields(report, source, bronze)


def _tally(ledger: DataFrame):
    return ledger.agg(
        F.count("*").alias("files"),
        F.sum("lines_read").alias("lines"),
        F.sum(F.when(F.col("file_error").isNull(), F.col("newlines") - F.col("lines_read"))).alias(
            "unread"
        ),
        F.sum(F.col("file_error").isNotNull().cast("int")).alias("bad_files"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_list("_days")))).alias("days"),
    ).first()


@dataclass(frozen=True)
class BatchCounts:
    files: int
    lines: int
    bad_files: int
    new_lines: int


def _report_batch(
    report: JobReport,
    source: Source,
    batch_id: int,
    counts: BatchCounts,
    by_reason: dict[str, int],
    inserted: int,
) -> None:
    """The count equation, per batch: lines = new + quarantined + duplicates."""
    name = source.name
    quarantined = sum(by_reason.values()) - counts.bad_files
    duplicates = counts.lines - quarantined - counts.new_lines
    _add(report.read, f"{name}_files", counts.files)
    _add(report.read, f"{name}_lines", counts.lines)
    _add(report.written, "silver.events", inserted)
    _add(report.written, "silver.quarantine", sum(by_reason.values()))
    for reason, n in by_reason.items():
        _add(report.dropped, reason, n)
    _add(report.dropped, "duplicate_event", duplicates)
    if inserted != counts.new_lines:
        _add(report.facts, f"{name}: extra rows for listed products", inserted - counts.new_lines)
    say(
        f"[ingest] {name} batch {batch_id}: {counts.files} files, {counts.lines:,} lines = "
        f"{counts.new_lines:,} new + {quarantined:,} quarantined + {duplicates:,} duplicates"
        + (f"; {inserted:,} silver rows" if inserted != counts.new_lines else "")
        + (f"; {counts.bad_files} damaged files quarantined" if counts.bad_files else "")
    )


FOREIGN_SHARE = 0.5  # a batch with more of its lines quarantined is likely in another format
READ_FINE = {"bot_user_agent", "bot_volume"}  # lines read well, kept out for what they are


def _warn_if_foreign(
    report: JobReport,
    source: Source,
    counts: BatchCounts,
    by_reason: dict[str, int],
    quarantine: DataFrame,
) -> None:
    """Most lines quarantined: say so loudly, with the reason and the files most affected
    (a file in the wrong format for its source, a tracker that changed)."""
    unread = {r: n for r, n in by_reason.items() if r not in READ_FINE}
    quarantined = sum(unread.values()) - counts.bad_files
    if not counts.lines or quarantined / counts.lines < FOREIGN_SHARE:
        return
    reason = max(unread, key=unread.get)
    worst = quarantine.where(~F.col("reason").isin(*READ_FINE)).groupBy("source_file").count()
    files = [r["source_file"] for r in worst.orderBy(F.desc("count")).limit(3).collect()]
    text = (
        f"{quarantined:,} of {counts.lines:,} lines quarantined, most as {reason}: are these "
        f"files in the {source.format} format? e.g. {', '.join(files)}"
    )
    report.facts[f"WARNING {source.name}"] = text
    say(f"[ingest] WARNING {source.name}: {text}")


MAX_FIELD_NAMES = 20
EXPECTED_EXTRA = {"snowplow": snowplow.KEPT}  # fields a format keeps aside on purpose


def _report_new_fields(report: JobReport, source: Source, bronze: DataFrame) -> None:
    """Fields no mapping knows (a tracker's own properties, a field added to the schema),
    counted per name, the most frequent first."""
    expected = EXPECTED_EXTRA.get(source.format, [])
    fields = (
        bronze.where(F.col("extra_fields").isNotNull())
        .select(F.explode(F.map_keys("extra_fields")).alias("f"))
        .where(~F.col("f").isin(expected))
        .groupBy("f")
        .count()
        .orderBy(F.desc("count"), "f")
        .limit(MAX_FIELD_NAMES + 1)
        .collect()
    )
    for row in fields[:MAX_FIELD_NAMES]:
        key = f"new field in {source.name} events: {row['f']}"
        report.facts[key] = report.facts.get(key, 0) + row["count"]
    if len(fields) > MAX_FIELD_NAMES:
        report.facts[f"new fields in {source.name} events"] = f"more than {MAX_FIELD_NAMES}"


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
            rows = _customer_files(lake, batch, report)
            bronze = keep(crm_to_bronze(rows, default_country))
            # merge_schema: a lake from before the optional fields gains their columns
            lake.append(bronze, "bronze.crm", txn=("bronze-crm", batch_id), merge_schema=True)
            n_bronze = lake.last_write_rows("bronze.crm")
            silver, quarantine = split_crm(bronze)
            lake.append(quarantine, "silver.quarantine", txn=("quarantine-crm", batch_id))
            n_quarantined = lake.last_write_rows("silver.quarantine")
            if not lake.exists("silver.crm"):
                lake.append(silver, "silver.crm")
            else:
                target = lake.merge_target("silver.crm", silver)
                merge = (
                    target.alias("t")
                    .merge(silver.alias("s"), "t.customer_id = s.customer_id")
                    .whenMatchedUpdateAll(condition="s.updated_at >= t.updated_at")
                    .whenNotMatchedInsertAll()
                )
                if set(silver.columns) - set(target.toDF().columns):  # a lake from before
                    merge = merge.withSchemaEvolution()
                merge.execute()
            n_silver = lake.last_write_rows("silver.crm")
            _add(report.read, "crm_rows", n_bronze)
            _add(report.written, "silver.crm", n_silver)
            _add(report.written, "silver.quarantine", n_quarantined)
            say(
                f"[ingest] crm batch {batch_id}: {n_bronze:,} rows -> {n_silver:,} customers, "
                f"{n_quarantined:,} quarantine notes"
            )

    _run_stream(lake, stream, "crm", handle)


def _customer_files(lake: Lake, batch: DataFrame, report: JobReport) -> DataFrame:
    """The batch's customer files read by the names in their headers (the stream only says
    which files are new): files that share a header in one read."""
    spark = lake.spark
    new = [r[0] for r in batch.select("source_file").distinct().collect()]
    frames = [batch.where(F.lit(False))]
    for fields, (header, paths) in by_header(new, lambda p: first_line(spark, p)).items():
        _say_columns(paths, header, report)
        rows = (
            spark.read.schema(header_schema(list(fields)))
            .option("header", "true")
            .option("mode", "PERMISSIVE")
            .csv(paths)
            .withColumn("source_file", F.col("_metadata.file_path"))
        )
        frames.append(as_contract(rows))
    return reduce(DataFrame.unionByName, frames)


def _say_columns(paths: list[str], header: str, report: JobReport) -> None:
    """Columns no field is read from and fields no column holds, said and kept in the report."""
    fields = header_fields(header)
    unread = [n for n, f in zip(header_names(header), fields, strict=True) if f is None]
    absent = [f for f in CORE_FIELDS if f not in fields]
    if unread:
        seen = report.facts.setdefault("crm columns not read", [])
        seen.extend(n for n in unread if n not in seen)
    if "customer_id" in absent:
        say(f"[ingest] crm: no customer id column in {paths[0]} ({header!r}): rows quarantined")
    elif unread or absent:
        say(
            f"[ingest] crm: {len(paths)} file(s) like {paths[0]}: columns not read "
            f"{unread or '-'}, fields absent {absent or '-'}"
        )


def run(lake: Lake, report: JobReport) -> None:
    for source in sources(lake.settings):
        with report.step(f"ingest {source.name} ({source.format})"):
            ingest_events(lake, source, report)
    with report.step("ingest crm"):
        ingest_crm(lake, report)
