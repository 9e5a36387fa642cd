"""Ingestion from a real S3 server (MinIO on loopback) through s3a://: exactly once across
reruns and late files, the count equation, and a quarantine reason for every kind of bad input."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs.generate import generate
from jobs.lake import STATS_COLUMNS, STATS_PROPERTY, Lake
from jobs.pipeline import run_job

pytestmark = pytest.mark.slow  # the fast tier (make test-fast) leaves it out


def on_s3(settings, name: str):
    storage = settings.storage.model_copy(
        update={"raw_root": f"s3a://raw/{name}", "lake_root": f"s3a://lake/{name}"}
    )
    return settings.model_copy(update={"storage": storage})


def upload(s3, folder: Path, bucket: str, prefix: str, skip=()) -> None:
    for f in sorted(folder.rglob("*")):
        rel = f.relative_to(folder).as_posix()
        if f.is_file() and rel not in skip:
            s3.upload_file(str(f), bucket, f"{prefix}/{rel}")


def lines_in(folder: Path) -> int:
    return sum(len(gzip.decompress(f.read_bytes()).splitlines()) for f in folder.rglob("*.gz"))


def ids_in(files) -> set[str]:
    """The event ids of generated files, read with gzip and json alone."""
    ids = set()
    for f in files:
        for line in gzip.decompress(f.read_bytes()).splitlines():
            try:
                value = json.loads(line).get("event_id")
            except (ValueError, AttributeError):  # the generator's malformed lines
                continue
            if isinstance(value, str):
                ids.add(value)
    return ids


@pytest.fixture(scope="module")
def buckets(s3):
    for b in ("raw", "lake"):
        if b not in [x["Name"] for x in s3.list_buckets()["Buckets"]]:
            s3.create_bucket(Bucket=b)
    return s3


def test_exactly_once_with_late_files_and_reruns(spark, settings, buckets, tmp_path):
    s3 = buckets
    summary = generate(str(tmp_path), 150, 4, 21, date(2026, 11, 1), progress=lambda m: None)
    raw = tmp_path / "raw"
    late = "web/dt=2026-11-02/part-0000.ndjson.gz"  # arrives after day 2 was already ingested
    upload(s3, raw, "raw", "exactly-once", skip={late})
    lake = Lake(spark, on_s3(settings, "exactly-once"))

    first = run_job(lake, "ingest", "2026-11-04")
    s3.upload_file(str(raw / late), "raw", f"exactly-once/{late}")
    second = run_job(lake, "ingest", "2026-11-04")
    third = run_job(lake, "ingest", "2026-11-04")

    assert second.read == {"web_files": 1, "web_lines": second.read["web_lines"]}
    assert third.read == {}  # a rerun is a no-op
    # every line of every file is in bronze exactly once (counted independently with gzip)
    assert lake.read("bronze.events").count() == lines_in(raw)
    assert lake.read("silver.events").count() == summary["events"]
    assert lake.read("silver.crm").count() == summary["crm_rows"] - 1
    for report in (first, second):
        lines = sum(v for k, v in report.read.items() if k.endswith("_lines"))
        line_reasons = {k: v for k, v in report.dropped.items() if k != "duplicate_event"}
        assert lines == (
            report.written["silver.events"]
            + sum(line_reasons.values())
            + report.dropped["duplicate_event"]
        )
    # retries in the late file of events delivered on the day before: its batch's MERGE must
    # read that day's silver too, or they would land twice
    retried = ids_in([raw / late]) & ids_in(raw.glob("*/dt=2026-11-01/*.gz"))
    assert retried  # the exact silver count above then proves each landed once
    silver = lake.read("silver.events").where(F.col("event_id").isin(sorted(retried)))
    assert silver.groupBy("event_id").count().where("count > 1").isEmpty()
    ledger = lake.read("bronze.files")
    assert ledger.count() == len(list(raw.rglob("*.ndjson.gz")))
    assert ledger.where(F.col("newlines") != F.col("lines_read")).count() == 0
    for table in ("bronze.events", "silver.events"):
        assert_stats_only_on(lake, table)


def assert_stats_only_on(lake, table):
    """The table has its statistics columns set, and every file's statistics hold no others
    (those columns are never null, so each file has a minimum for each)."""
    wanted = ",".join(STATS_COLUMNS[table])
    props = lake.spark.sql(f"DESCRIBE DETAIL delta.`{lake.path(table)}`").first()["properties"]
    assert props[STATS_PROPERTY] == wanted
    log = lake.spark.read.json(f"{lake.path(table)}/_delta_log/*.json")
    stats = [json.loads(r[0]) for r in log.where("add IS NOT NULL").select("add.stats").collect()]
    assert len(stats) > 1
    for s in stats:
        assert set(s["minValues"]) == set(s["nullCount"]) == set(wanted.split(","))


def _event(i: int, **over) -> dict:
    e = {
        "event_id": f"e-{i}",
        "event_type": "product_view",
        "event_ts": "2026-11-02T10:00:00.000Z",
        "source": "web",
        "anonymous_id": f"c-{i}",
        "user_agent": "Mozilla/5.0",
        "price": 10.5,
    }
    e.update(over)
    return {k: v for k, v in e.items() if v is not None}


def test_every_kind_of_bad_input_is_quarantined_with_its_reason(spark, settings, buckets, tmp_path):
    s3 = buckets
    day = tmp_path / "web" / "dt=2026-11-02"
    day.mkdir(parents=True)
    good = json.dumps(_event(1)).encode()
    lines = [
        good,
        json.dumps(_event(2, coupon_code="WINTER10")).encode(),  # new optional field
        json.dumps(_event(3, quantity="two")).encode(),  # changed type of a known field
        json.dumps(_event(4, price={"amount": 5})).encode(),
        json.dumps(_event(5, event_id=None)).encode(),
        json.dumps(_event(6, event_ts="2026-13-45T99:00:00Z")).encode(),
        json.dumps(_event(7, event_ts="1970-01-01T00:00:00Z")).encode(),
        json.dumps(_event(8, event_type="teleport")).encode(),
        b"<html>502 Bad Gateway</html>",
        b'{"event_id": "e-10", "page": "caf\xe9 \xff\xfe"}',  # not UTF-8
        json.dumps(_event(11, page="x" * 70_000)).encode(),  # oversized line
        good,  # duplicate delivery
    ]
    (day / "part-0000.ndjson.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    whole = gzip.compress(
        b"\n".join(json.dumps(_event(100 + i)).encode() for i in range(3000)) + b"\n"
    )
    (day / "part-0001.ndjson.gz").write_bytes(whole[: len(whole) // 2])  # truncated transfer
    (day / "part-0002.ndjson.gz").write_bytes(b'{"event_id": "plain text, not gzip"}\n')
    upload(s3, tmp_path, "raw", "bad-input")

    lake = Lake(spark, on_s3(settings, "bad-input"))
    report = run_job(lake, "ingest", "2026-11-02")

    reasons = Counter(
        r["reason"] for r in lake.read("silver.quarantine").select("reason").collect()
    )
    assert reasons == Counter(
        {
            "invalid_quantity": 1,
            "invalid_price": 1,
            "missing_event_id": 1,
            "invalid_event_ts": 1,
            "implausible_event_ts": 1,
            "unknown_event_type": 1,
            "unparseable_json": 1,
            "invalid_utf8": 1,
            "line_too_long": 1,
            "truncated_gzip": 1,
            "corrupt_gzip": 1,
        }
    )
    silver = {r["event_id"] for r in lake.read("silver.events").collect()}
    salvaged = {f"e-{100 + i}" for i in range(3000)} & silver
    assert {"e-1", "e-2"} <= silver
    assert silver == {"e-1", "e-2"} | salvaged  # nothing else got through
    assert 0 < len(salvaged) < 3000
    assert report.dropped["duplicate_event"] == 1
    assert report.facts["new field in web events: coupon_code"] == 1
    extra = lake.read("bronze.events").where("event_id = 'e-2'").first()["extra_fields"]
    assert extra == {"coupon_code": "WINTER10"}
    truncated = lake.read("silver.quarantine").where("reason = 'truncated_gzip'").first()
    assert f"{len(salvaged)} complete lines salvaged" in truncated["detail"]
    # the raw text is kept for diagnosis, with PII masked
    assert lake.read("silver.quarantine").where("reason = 'invalid_utf8'").first()["detail"]
    # days later, a file re-delivers e-1 (an event of 2026-11-02) next to a new event: e-1 is
    # recognised as a duplicate against what silver already holds, the new one is inserted
    later = tmp_path / "late" / "web" / "dt=2026-11-05"
    later.mkdir(parents=True)
    fresh = _event(200, event_ts="2026-11-05T08:00:00.000Z")
    (later / "part-0000.ndjson.gz").write_bytes(
        gzip.compress(good + b"\n" + json.dumps(fresh).encode() + b"\n")
    )
    upload(s3, tmp_path / "late", "raw", "bad-input")
    again = run_job(lake, "ingest", "2026-11-05")
    assert again.written["silver.events"] == 1 and again.dropped["duplicate_event"] == 1
    assert {r["event_id"] for r in lake.read("silver.events").collect()} == silver | {"e-200"}
