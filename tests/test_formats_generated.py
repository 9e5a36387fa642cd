"""One generated world written by every collector (native, Segment, RudderStack, Snowplow,
GA4), each read by the ingest job from its collector's own bucket layout: exact counts against
the generator's truth per format, and the same events as the native world, field by field."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from datetime import date

import pytest
import yaml
from pyspark.sql import functions as F

from jobs.generate import generate
from jobs.generate.formats import FORMATS, parse_formats
from jobs.ingest.sources import with_sources
from jobs.lake import Lake
from jobs.pipeline import run_job

pytestmark = pytest.mark.slow  # the fast tier (make test-fast) leaves it out

PEOPLE, DAYS, SEED = 100, 4, 5
RUN_DATE = "2026-11-04"
MALFORMED = ["unparseable_json", "wrong_field_count", "missing_event_id", "invalid_event_ts"]


@pytest.fixture(scope="module")
def worlds(spark, settings, tmp_path_factory):
    out = {}
    for fmt in FORMATS:
        root = tmp_path_factory.mktemp(f"world-{fmt}")
        summary = generate(
            str(root), PEOPLE, DAYS, SEED, date(2026, 11, 1), lambda m: 0, parse_formats(fmt)
        )
        shutil.rmtree(root / "raw" / "crm")  # customer files are no collector's format
        entries = yaml.safe_load((root / "sources.yaml").read_text())["ingest"]["sources"]
        storage = settings.storage.model_copy(
            update={"raw_root": str(root / "raw"), "lake_root": str(root / "lake")}
        )
        lake = Lake(spark, with_sources(settings.model_copy(update={"storage": storage}), entries))
        report = run_job(lake, "ingest", RUN_DATE)
        out[fmt] = (summary, report, lake)
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_counts_are_the_truth_of_every_format(worlds, fmt):
    summary, report, lake = worlds[fmt]
    lines = sum(v for k, v in report.read.items() if k.endswith("_lines") and k != "crm_lines")
    assert lines == summary["lines"]
    assert lake.read("silver.events").count() == summary["events"]
    assert report.dropped["duplicate_event"] == summary["duplicate_deliveries"]
    assert (
        sum(report.dropped.get(r, 0) for r in [*MALFORMED, "invalid_price"])
        == summary["malformed_lines"]
    )
    bots = report.dropped.get("bot_user_agent", 0) + report.dropped["bot_volume"]
    assert bots == summary["bot_events"]
    # lines = new + quarantined + duplicates, per source
    quarantined = sum(n for r, n in report.dropped.items() if r != "duplicate_event")
    assert lines == summary["events"] + quarantined + report.dropped["duplicate_event"]
    assert "WARNING web" not in report.facts  # a bot's many lines are no format problem


# how each collector names the native types it carries
RENAMED = {
    "segment": {"login": "identify"},
    "rudderstack": {"login": "identify"},
    "snowplow": {"login": "identify"},
}


def _events(lake: Lake, fmt: str) -> Counter:
    """Every event as the fields all formats carry: the type (as that collector names it), the
    ids a person is known by, the product, the money and the day."""
    ev = lake.read("silver.events").where(F.col("event_type") != "consent_preferences")
    renamed = RENAMED.get(fmt, {})
    etype = F.col("event_type")
    for old, new in renamed.items():
        etype = F.when(etype == old, F.lit(new)).otherwise(etype)
    web_cookie = F.when(F.col("source") == "web", F.col("anonymous_id"))
    cols = [
        etype.alias("type"),
        "source",
        web_cookie.alias("cookie"),
        F.coalesce("advertising_id", "device_id").alias("device"),
        "user_id",
        "email_sha256",
        "product_id",
        "category",
        "price",
        # GA4 exports a quantity of 1 where none was given (a viewed item)
        F.when(F.col("event_type") != "product_view", F.col("quantity")).alias("quantity"),
        "order_id",
        "revenue",
        "event_date",
    ]
    return Counter(tuple(r) for r in ev.select(*cols).collect())


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "native"])
def test_every_format_carries_the_native_events(worlds, fmt):
    native = _events(worlds["native"][2], "native")
    other = _events(worlds[fmt][2], fmt)
    # the native login events say `login`; the collectors' identify calls say `identify`
    native = Counter({(RENAMED.get(fmt, {}).get(k[0], k[0]), *k[1:]): n for k, n in native.items()})
    assert other == native


def test_snowplow_states_consent_in_events_of_its_own(worlds):
    native = worlds["native"][2].read("silver.events")
    snowplow = worlds["snowplow"][2].read("silver.events")
    stated = native.where(F.col("ad_consent").isNotNull())
    consent = snowplow.where(F.col("event_type") == "consent_preferences")
    key = ["anonymous_id", "advertising_id", "user_id", "ad_consent"]
    want = Counter(tuple(r) for r in stated.select(*key).collect())
    assert Counter(tuple(r) for r in consent.select(*key).collect()) == want


def test_a_file_in_another_format_is_quarantined_and_reported_loudly(worlds, tmp_path):
    """Snowplow's enriched TSV dropped where a Segment source reads: every line quarantined as
    not JSON, the count equation holds, and the report says which files and why."""
    _, _, snowplow = worlds["snowplow"]
    app = snowplow.settings.resolve(snowplow.settings.storage.raw_root) + "/app"
    tsv = sorted(p for p in os.listdir(app) if p.endswith(".gz"))[0]
    folder = tmp_path / "raw" / "web" / "segment-logs" / "S1" / "1793491200000"
    folder.mkdir(parents=True)
    (folder / "wrong.gz").write_bytes(open(f"{app}/{tsv}", "rb").read())
    storage = snowplow.settings.storage.model_copy(
        update={"raw_root": str(tmp_path / "raw"), "lake_root": str(tmp_path / "lake")}
    )
    settings = snowplow.settings.model_copy(update={"storage": storage})
    lake = Lake(snowplow.spark, with_sources(settings, [{"name": "web", "format": "segment"}]))
    report = run_job(lake, "ingest", RUN_DATE)
    lines = report.read["web_lines"]
    assert lines > 0 and report.dropped == {"unparseable_json": lines, "duplicate_event": 0}
    warning = report.facts["WARNING web"]
    assert f"{lines:,} of {lines:,} lines quarantined, most as unparseable_json" in warning
    assert "segment format" in warning and "wrong.gz" in warning
