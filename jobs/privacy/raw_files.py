"""Erasure in the landing zone: raw files holding a person's lines are rewritten without them.

Lines are matched the way ingestion reads them: each source's lines go through its own
format's mapping (``jobs/ingest/formats``), so a person is found by the same identifier
fields, and by the same hashes of their emails and phones, whatever wrote the file and however
their email was spelled. Customer files are matched as CSV. Only the files that hold a match
are rewritten, each under a temporary name and then moved over the original; the streaming
checkpoint knows the file by its path and does not ingest it again."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.config import Settings
from jobs.ingest.crm import by_header, header_schema
from jobs.ingest.formats import parse
from jobs.ingest.formats.common import CARRY
from jobs.ingest.normalise import email_hashes, phone_hashes
from jobs.ingest.sources import Source, sources
from jobs.storage import first_line, hadoop_fs
from jobs.vocabulary import EVENT_IDENTIFIERS

MIN_FREE_TEXT_MATCH = 8  # shorter ids are matched only as whole fields, never inside text
LINE = CARRY + "line"  # the line (or Parquet row) as it is in the file


def contains_any(col: Column, values: list[str]) -> Column:
    cond = F.lit(False)
    for v in values:
        if len(v) >= MIN_FREE_TEXT_MATCH:
            cond = cond | col.contains(v)
    return cond


def _clear(ids: dict[str, list[str]]) -> list[str]:
    return [v for t in ("cookie", "device", "user") for v in ids.get(t, [])]


def event_matches(ids: dict[str, list[str]]) -> Column:
    """Whether a bronze row (with the line carried along) is about the person: an identifier
    field equal to one of theirs, or, for a line that could not be parsed, one of their ids
    inside its text."""
    cond = F.lit(False)
    for column, kind in EVENT_IDENTIFIERS.items():
        if ids.get(kind):
            cond = cond | F.coalesce(F.col(column).isin(ids[kind]), F.lit(False))
    unparsed = F.col("unparsed_line").isNotNull()
    return cond | (unparsed & contains_any(F.col(LINE).cast("string"), _clear(ids)))


def crm_matches(
    ids: dict[str, list[str]], default_country: str, fields: list[str | None]
) -> Column:
    """Whether a CRM CSV line is about the person; ``fields``: its file's header, as
    ``header_fields`` reads it (ingestion reads the file by the same names)."""
    schema = header_schema(fields)
    row = F.from_csv("value", ", ".join(f"`{f.name}` string" for f in schema.fields))

    def get(field: str) -> Column:
        return row[field] if field in fields else F.lit(None).cast("string")

    cond = F.trim(get("customer_id")).isin(ids.get("crm", []))
    cond = cond | email_hashes(get("email"))["email_sha256"].isin(ids.get("email", []))
    phone = phone_hashes(get("phone"), F.upper(get("country")), default_country)["phone_sha256"]
    return F.coalesce(cond | phone.isin(ids.get("phone", [])), F.lit(False))


def _text(spark: SparkSession, paths: list[str] | str) -> DataFrame:
    return spark.read.text(paths).select("value", F.col("_metadata.file_path").alias("source_file"))


def _event_lines(spark: SparkSession, paths: list[str] | str, parquet: bool) -> DataFrame:
    """(value, source_file, line): Parquet rows as JSON for the mapping, the row kept whole."""
    if not parquet:
        return _text(spark, paths).withColumn(LINE, F.col("value"))
    rows = spark.read.option("mergeSchema", "true").parquet(
        *([paths] if isinstance(paths, str) else paths)
    )
    whole = F.struct(*[F.col(f"`{c}`") for c in rows.columns])
    return rows.select(
        F.to_json(whole).alias("value"),
        F.col("_metadata.file_path").alias("source_file"),
        whole.alias(LINE),
    )


def _replace(spark: SparkSession, path: str, keep: DataFrame, parquet: bool) -> None:
    """Write ``keep`` (one column: the lines, or the rows) over the file at ``path``."""
    fs, final = hadoop_fs(spark, path)
    tmp = f"{path}._erasing"
    writer = keep.coalesce(1).write.mode("overwrite")
    if parquet:
        writer.parquet(tmp)
    else:
        if path.endswith(".gz"):
            writer = writer.option("compression", "gzip")
        writer.text(tmp)
    tfs, tmp_p = hadoop_fs(spark, tmp)
    part = next(
        s.getPath() for s in tfs.listStatus(tmp_p) if s.getPath().getName().startswith("part-")
    )
    fs.delete(final, False)
    if not fs.rename(part, final):
        raise OSError(f"could not move the rewritten {path} into place")
    fs.delete(tmp_p, True)


def _rewrite(spark, path: str, lines: DataFrame, hit: Column, parquet: bool) -> int:
    """Rewrites one file without the lines ``hit`` selects (deletes it if none is left);
    -> lines removed."""
    keep = lines.where(~hit)
    kept = keep.count()
    removed = lines.count() - kept
    if kept == 0:  # nothing left in the file but the person
        fs, final = hadoop_fs(spark, path)
        fs.delete(final, False)
        return removed
    body = keep.select(f"{LINE}.*") if parquet else keep.select(F.col(LINE).alias("value"))
    _replace(spark, path, body, parquet)
    return removed


def erase_source(
    spark: SparkSession, source: Source, settings: Settings, ids: dict[str, list[str]]
) -> tuple[int, int]:
    """-> (files rewritten, lines removed) of one clickstream source."""
    fs, _ = hadoop_fs(spark, source.root)
    found = fs.globStatus(spark._jvm.org.apache.hadoop.fs.Path(source.glob))
    paths = [str(s.getPath().toString()) for s in (found or [])]
    files = lines = 0
    for parquet in (False, True):
        group = [p for p in paths if p.endswith(".parquet") == parquet]
        if not group:
            continue
        everything = parse(_event_lines(spark, group, parquet), source, settings.ingest)
        hits = everything.where(event_matches(ids)).select("source_file").distinct().collect()
        for path in [r["source_file"] for r in hits]:
            one = parse(_event_lines(spark, path, parquet), source, settings.ingest)
            lines += _rewrite(spark, path, one, event_matches(ids), parquet)
            files += 1
    return files, lines


def erase_crm(
    spark: SparkSession, settings: Settings, ids: dict[str, list[str]]
) -> tuple[int, int]:
    raw = settings.resolve(settings.storage.raw_root).rstrip("/")
    fs, root = hadoop_fs(spark, f"{raw}/crm")
    if not fs.exists(root):
        return 0, 0
    country = settings.ingest.default_country
    found = fs.globStatus(spark._jvm.org.apache.hadoop.fs.Path(f"{raw}/crm/dt=*/*.csv"))
    every = [str(s.getPath().toString()) for s in (found or [])]
    files = removed = 0
    # files that share a header are searched together
    for fields, (_, paths) in by_header(every, lambda p: first_line(spark, p)).items():
        match = crm_matches(ids, country, list(fields))
        hits = _text(spark, paths).where(match).select("source_file").distinct().collect()
        for path in [r["source_file"] for r in hits]:
            one = _text(spark, path).withColumn(LINE, F.col("value"))
            removed += _rewrite(spark, path, one, match, parquet=False)
        files += len(hits)
    return files, removed


def erase_raw(
    spark: SparkSession, settings: Settings, ids: dict[str, list[str]]
) -> tuple[int, int]:
    """-> (files rewritten, lines removed) over every configured source and the CRM files."""
    files = lines = 0
    for source in [*sources(settings)]:
        fs, root = hadoop_fs(spark, source.root)
        if fs.exists(root):
            f, n = erase_source(spark, source, settings, ids)
            files, lines = files + f, lines + n
    f, n = erase_crm(spark, settings, ids)
    return files + f, lines + n
