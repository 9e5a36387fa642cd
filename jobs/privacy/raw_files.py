"""Erasure in the landing zone: raw files holding a person's lines are rewritten without them.

Lines are matched the way ingestion reads them (JSON fields, emails and phones normalised and
hashed by the same functions), so a person is found whatever spelling of their email a file
used. Only the files that hold a match are rewritten, each under a temporary name and then
moved over the original; the streaming checkpoint knows the file by its path and does not
ingest it again."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.activation.files import _fs
from jobs.ingest.crm import CRM_SCHEMA
from jobs.ingest.events import RAW_SCHEMA
from jobs.ingest.normalise import email_hashes, phone_hashes

CRM_DDL = ", ".join(f"{f} string" for f in CRM_SCHEMA.fieldNames())
MIN_FREE_TEXT_MATCH = 8  # shorter ids are matched only as whole fields, never inside text


def contains_any(col: Column, values: list[str]) -> Column:
    cond = F.lit(False)
    for v in values:
        if len(v) >= MIN_FREE_TEXT_MATCH:
            cond = cond | col.contains(v)
    return cond


def line_matches(ids: dict[str, list[str]], default_country: str) -> Column:
    """Whether a raw line (event JSON or CRM CSV row in the contract's column order) is about
    the person: an identifier field equal to one of theirs, an email or phone that hashes to
    one of theirs, or, for a line that is not JSON, one of their ids inside the text."""
    j = F.from_json("value", RAW_SCHEMA, {"mode": "PERMISSIVE"})
    c = F.from_csv("value", CRM_DDL)
    get = ids.get
    cond = (
        j.anonymous_id.isin(get("cookie", []))
        | j.device_id.isin(get("device", []))
        | j.user_id.isin(get("user", []))
        | F.trim(c.customer_id).isin(get("crm", []))
    )
    for raw in (j.email, c.email):
        cond = cond | email_hashes(raw)["email_sha256"].isin(get("email", []))
    for raw, country in ((j.phone, j.country), (c.phone, c.country)):
        hashed = phone_hashes(raw, F.upper(country), default_country)["phone_sha256"]
        cond = cond | hashed.isin(get("phone", []))
    not_json = F.expr("try_parse_json(value) IS NULL") & ~F.col("file").endswith(".csv")
    ids_in_text = contains_any(
        F.col("value"), [v for t in ("cookie", "device", "user") for v in get(t, [])]
    )
    return F.coalesce(cond, F.lit(False)) | (not_json & ids_in_text)


def _read(spark: SparkSession, paths: list[str] | str) -> DataFrame:
    return spark.read.text(paths).select("value", F.col("_metadata.file_path").alias("file"))


def erase_raw(
    spark: SparkSession, raw_root: str, ids: dict[str, list[str]], default_country: str
) -> tuple[int, int]:
    """-> (files rewritten, lines removed)."""
    fs, root = _fs(spark, raw_root)
    if not fs.exists(root):
        return 0, 0
    everything = _read(spark, f"{raw_root.rstrip('/')}/*/dt=*/*")
    hit = everything.where(line_matches(ids, default_country))
    files = [r["file"] for r in hit.select("file").distinct().collect()]
    removed = 0
    for path in files:
        lines = _read(spark, path)
        keep = lines.where(~line_matches(ids, default_country)).select("value")
        kept = keep.count()
        removed += lines.count() - kept
        _, final = _fs(spark, path)
        if kept == 0:  # nothing left in the file but the person
            fs.delete(final, False)
            continue
        tmp = f"{path}._erasing"
        writer = keep.coalesce(1).write.mode("overwrite")
        if path.endswith(".gz"):
            writer = writer.option("compression", "gzip")
        writer.text(tmp)
        tfs, tmp_p = _fs(spark, tmp)
        part = next(
            s.getPath() for s in tfs.listStatus(tmp_p) if s.getPath().getName().startswith("part-")
        )
        fs.delete(final, False)
        if not fs.rename(part, final):
            raise OSError(f"could not move the rewritten {path} into place")
        fs.delete(tmp_p, True)
    return len(files), removed
