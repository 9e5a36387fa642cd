"""A crash between the bronze write and the rest of the batch: the rerun finishes the batch from
the rows bronze already holds (Delta skips the repeated bronze write), and the lake equals that
of a run that never crashed."""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import date

import pytest

from jobs.generate import generate
from jobs.ingest.crm import DETAIL_COLS
from jobs.lake import Lake
from jobs.pipeline import run_job

pytestmark = pytest.mark.slow  # the fast tier (make test-fast) leaves it out

RUN_DATE = "2026-11-03"


def _lake(spark, settings, root) -> Lake:
    storage = settings.storage.model_copy(
        update={"raw_root": str(root.parent / "landing" / "raw"), "lake_root": str(root)}
    )
    return Lake(spark, settings.model_copy(update={"storage": storage}))


def _rows(lake: Lake, table: str) -> Counter:
    df = lake.read(table).drop("ingested_at")
    return Counter(tuple(r) for r in df.select(*sorted(df.columns)).collect())


def test_a_crash_after_the_bronze_write_reruns_to_the_same_lake(
    spark, settings, tmp_path, monkeypatch
):
    landing = tmp_path / "landing"
    generate(str(landing), 80, 3, 17, date(2026, 11, 1), progress=lambda m: None)
    lines = sum(
        len(gzip.decompress(f.read_bytes()).splitlines())
        for f in (landing / "raw").rglob("*.ndjson.gz")
    )
    clean = _lake(spark, settings, tmp_path / "clean")
    run_job(clean, "ingest", RUN_DATE)

    crashed = _lake(spark, settings, tmp_path / "crashed")
    append = Lake.append

    def crash_after_bronze(self, df, table, txn=None, **options):
        if table == "bronze.files":
            raise RuntimeError("crash after the bronze write")
        append(self, df, table, txn, **options)

    monkeypatch.setattr(Lake, "append", crash_after_bronze)
    with pytest.raises(Exception, match="crash after the bronze write"):
        run_job(crashed, "ingest", RUN_DATE)
    monkeypatch.setattr(Lake, "append", append)
    assert crashed.read("bronze.events").count() > 0  # the first source's batch was committed
    assert not crashed.exists("silver.events")

    report = run_job(crashed, "ingest", RUN_DATE)
    assert crashed.read("bronze.events").count() == lines  # each line once, not twice
    for table in ("bronze.files", "silver.events", "silver.quarantine"):
        assert _rows(crashed, table) == _rows(clean, table), table
    assert sum(v for k, v in report.read.items() if k.endswith("_lines")) == lines


NEW_COLUMNS = [  # columns bronze and silver gained with the collectors' formats
    "event_name",
    "source_name",
    "alt_anonymous_id",
    "advertising_id",
    "page_url",
    "page_title",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "search_query",
    "items",
    "format_error",
    "first_name_sha256",
    "last_name_sha256",
    "first_name_meta_sha256",
    "last_name_meta_sha256",
    "line_item",
]


def test_a_lake_written_before_the_formats_gains_their_columns(spark, settings, tmp_path):
    """bronze.events and silver.events as an older lake holds them (without the columns the
    formats added): the next ingest appends and merges into them, old rows keep nulls."""
    landing = tmp_path / "landing"
    generate(str(landing), 40, 3, 5, date(2026, 11, 1), progress=lambda m: None)
    later = landing / "raw" / "web" / "dt=2026-11-03"
    aside = tmp_path / "aside"
    later.rename(aside)
    lake = _lake(spark, settings, tmp_path / "lake")
    run_job(lake, "ingest", RUN_DATE)
    gone = {"bronze.events": NEW_COLUMNS, "silver.events": NEW_COLUMNS}
    gone |= {"bronze.crm": DETAIL_COLS, "silver.crm": DETAIL_COLS}
    for table, columns in gone.items():
        old = lake.read(table)
        old = old.drop(*[c for c in columns if c in old.columns]).localCheckpoint()
        lake.overwrite(old, table)
        assert not set(columns) & set(lake.read(table).columns)
    before = lake.read("silver.events").count()
    customers = lake.read("silver.crm").count()
    aside.rename(later)
    crm = next((landing / "raw" / "crm").glob("dt=*"))
    again = (crm / "customers.csv").read_text(encoding="utf-8").splitlines()[:4]
    (crm / "again.csv").write_text("\n".join(again) + "\n", encoding="utf-8")
    report = run_job(lake, "ingest", RUN_DATE)
    # three customers sent again gain the optional fields' columns; the others keep nulls
    silver_crm = lake.read("silver.crm")
    assert silver_crm.count() == customers
    assert silver_crm.where("city_meta_sha256 IS NOT NULL").count() == 3
    silver = lake.read("silver.events")
    assert set(NEW_COLUMNS) - {"items", "format_error"} <= set(silver.columns)
    assert silver.count() == before + report.written["silver.events"] > before
    assert silver.where("source_name IS NULL").count() == before
