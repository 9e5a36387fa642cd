"""Great Expectations gates: a real checkpoint passes clean data, fails the run on bad data, and
lets warnings through."""

from datetime import date

import pytest

from jobs.lake import Lake
from jobs.pipeline import run_job
from jobs.quality.run import QualityGateError
from jobs.quality.suites import silver_events_expectations

SILVER = (
    "event_id string, event_type string, event_ts timestamp, event_date date, source string,"
    " session_id string, currency string, price double, revenue double, email_sha256 string,"
    " email_google_sha256 string, email_uid2_sha256 string, phone_sha256 string,"
    " phone_digits_sha256 string"
)
H = "a" * 64


def _rows(spark, rows):
    from datetime import datetime

    full = [
        (
            eid,
            et,
            datetime(2026, 11, 2, 10),
            date(2026, 11, 2),
            "web",
            "s1",
            cur,
            1.0,
            None,
            email,
            H,
            H,
            None,
            None,
        )
        for eid, et, cur, email in rows
    ]
    return spark.createDataFrame(full, SILVER)


def _lake(spark, settings, tmp_path, name):
    storage = settings.storage.model_copy(
        update={"lake_root": str(tmp_path / name), "reports_root": str(tmp_path / "reports")}
    )
    return Lake(spark, settings.model_copy(update={"storage": storage}))


def test_clean_data_passes_and_warnings_do_not_stop(spark, settings, tmp_path):
    # an unknown currency breaks only a warning-level expectation
    lake = _lake(spark, settings, tmp_path, "clean")
    lake.overwrite(
        _rows(spark, [("e1", "page_view", "USD", H), ("e2", "purchase", "BTC", H)]), "silver.events"
    )
    report = run_job(lake, "quality", "2026-11-02")
    assert "0 critical failures, 1 warnings" in report.facts["silver_events"]
    assert (tmp_path / "reports" / "great_expectations").exists()  # Data Docs written


def test_bad_data_fails_the_gate(spark, settings, tmp_path):
    lake = _lake(spark, settings, tmp_path, "bad")
    bad = [("e1", "page_view", "USD", H), ("e1", "page_view", "USD", "jane@example.org")]
    lake.overwrite(_rows(spark, bad), "silver.events")
    with pytest.raises(QualityGateError, match="silver_events"):
        run_job(lake, "quality", "2026-11-02")
    failures = lake.read("quality.results").first()["failures"]
    assert "expect_column_values_to_be_unique(event_id)" in failures
    assert "expect_column_values_to_match_regex(email_sha256)" in failures


def test_a_day_without_data_fails_freshness(spark, settings, tmp_path):
    lake = _lake(spark, settings, tmp_path, "empty")
    lake.overwrite(_rows(spark, [("e1", "page_view", "USD", H)]), "silver.events")
    with pytest.raises(QualityGateError):
        run_job(lake, "quality", "2026-11-03")


def test_suite_has_critical_and_warning_expectations():
    sev = {str(e.severity) for e in silver_events_expectations("2026-11-02")}
    assert len(sev) == 2
