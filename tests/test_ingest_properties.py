"""Property-based: whatever lines arrive, ingestion does not crash and loses nothing: every line
is accepted, quarantined with a reason, or recognised as a duplicate."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from jobs.ingest.events import (
    RAW_FIELDS,
    bot_reason,
    quarantine_reason,
    split_bronze,
    to_bronze,
    typed_columns,
)

pytestmark = pytest.mark.slow  # the fast tier (make test-fast) leaves it out

scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
value = st.one_of(
    scalar, st.lists(scalar, max_size=3), st.dictionaries(st.text(max_size=5), scalar)
)
field_name = st.one_of(st.sampled_from(RAW_FIELDS), st.text(min_size=1, max_size=12))
event_like = st.dictionaries(field_name, value, max_size=12).map(json.dumps)
plausible = st.fixed_dictionaries(
    {
        "event_id": st.sampled_from(["a", "b", "c", "d"]),
        "event_type": st.sampled_from(["page_view", "purchase", "bogus"]),
        "event_ts": st.sampled_from(["2026-11-02T10:00:00.000Z", "2026-11-02T10:00:00Z", "x"]),
        "anonymous_id": st.one_of(st.none(), st.text(min_size=1, max_size=8)),
        "price": st.one_of(st.none(), st.floats(0, 100), st.text(max_size=4)),
    }
).map(json.dumps)
line = st.one_of(event_like, plausible, st.text(max_size=80))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(line, min_size=1, max_size=30))
def test_no_crash_and_nothing_lost(spark, lines):
    df = spark.createDataFrame(
        [(v, "s3a://raw/web/dt=2026-11-02/x.gz") for v in lines], "value string, source_file string"
    )
    bronze = to_bronze(df, "US").cache()
    silver, quarantine = split_bronze(bronze, ["zz-no-bot-zz"], 10**9)
    n_silver, n_quarantine = silver.count(), quarantine.count()
    assert bronze.count() == len(lines)  # every line reaches bronze
    assert quarantine.where(F.col("reason").isNull()).count() == 0  # always with a reason
    # rows not quarantined are kept, or dropped only as a duplicate of a kept event id
    typed = typed_columns(bronze)
    accepted = typed.withColumn("reason", quarantine_reason(typed)).where("reason IS NULL")
    accepted_ids = {r["event_id"] for r in accepted.select("event_id").collect()}
    kept = [r["event_id"] for r in silver.select("event_id").collect()]
    assert len(kept) == len(set(kept)) == n_silver
    assert set(kept) == accepted_ids
    assert n_silver + n_quarantine <= len(lines)
    assert accepted.count() + n_quarantine == len(lines)
    bronze.unpersist()


def test_only_one_standard_json_object_per_line_is_parsed(spark):
    ok = '{"event_id": "e1", "event_type": "page_view", "mood": "happy"}'
    not_an_event = [
        "[1, 2]",  # JSON, but not an object
        '"text"',
        "12",
        "null",
        '{"event_id": "e1"',  # truncated
        '{"event_id": "e1",}',  # trailing comma
        "{'event_id': 'e1'}",  # single quotes
        '{"event_id": "e1", "price": NaN}',  # not a JSON number
        '{"event_id": "e1", "event_id": "e2"}',  # which one? ambiguous
        "not json at all",
    ]
    df = spark.createDataFrame(
        [(v, "s3a://raw/web/dt=2026-11-02/x.gz") for v in [ok, *not_an_event]],
        "value string, source_file string",
    )
    rows = to_bronze(df, "US").select("event_id", "unparsed_line", "extra_fields").collect()
    assert rows[0]["unparsed_line"] is None and rows[0]["extra_fields"] == {"mood": "happy"}
    for line, row in zip(not_an_event, rows[1:], strict=True):
        assert row["unparsed_line"] is not None, line


def test_bot_patterns_match_like_case_insensitive_regexes(spark):
    """Plain words are matched as substrings of the lowercased agent, other patterns as
    regexes: both must agree with Python's case-insensitive regex search."""
    patterns = ["bot", "Crawler", "head-less", r"curl/\d+", "^Wget"]
    agents = [
        "Mozilla/5.0 (compatible; Googlebot/2.1)",
        "Mozilla/5.0 (Windows NT 10.0) Chrome/120",
        "SuperCRAWLER 1.0",
        "HEAD-LESS chrome",
        "headless chrome",
        "curl/8",
        "curl/x",
        "wget/1.2",
        "my wget",
        "",
        None,
        "ROBOT",
    ]
    df = spark.createDataFrame([(a,) for a in agents], "user_agent string").withColumn(
        "_busy", F.lit(None).cast("boolean")
    )
    got = [r[0] for r in df.select(bot_reason(patterns)).collect()]
    rx = re.compile("|".join(patterns), re.IGNORECASE)
    want = ["bot_user_agent" if a and rx.search(a) else None for a in agents]
    assert got == want
    assert want.count("bot_user_agent") == 6  # the cases above are not all one way
