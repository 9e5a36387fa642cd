"""The expectations each silver table must meet (Great Expectations 1.x expectation objects).

Critical expectations stop the pipeline; ``severity="warning"`` ones are reported only."""

from __future__ import annotations

from datetime import date, timedelta

import great_expectations as gx

from jobs.ingest.events import CHANNELS
from jobs.ingest.normalise import SHA256_HEX
from jobs.vocabulary import HASH_COLUMNS, NAME_HASHES

HASHED = [*HASH_COLUMNS, *NAME_HASHES]


def silver_events_expectations(run_date: str, columns: list[str] | None = None) -> list:
    """The silver events suite; the hash checks are for those of ``columns`` (all by default)."""
    ex = gx.expectations
    day = date.fromisoformat(run_date)
    out = [
        # freshness: the run date has data at all
        ex.ExpectTableRowCountToBeBetween(min_value=1),
        ex.ExpectColumnValuesToNotBeNull(column="event_id"),
        ex.ExpectColumnValuesToBeUnique(column="event_id"),
        ex.ExpectColumnValuesToNotBeNull(column="event_ts"),
        # timestamp sanity: the partition holds that day's events only
        ex.ExpectColumnValuesToBeBetween(
            column="event_date", min_value=day.isoformat(), max_value=day.isoformat()
        ),
        # event types are open-ended (a collector's own event names keep their name)
        ex.ExpectColumnValuesToNotBeNull(column="event_type"),
        ex.ExpectColumnValuesToBeInSet(column="source", value_set=CHANNELS),
        ex.ExpectColumnValuesToBeBetween(column="price", min_value=0, max_value=100_000),
        ex.ExpectColumnValuesToBeBetween(column="revenue", min_value=0, max_value=1_000_000),
        # warnings: unusual but not wrong
        ex.ExpectColumnValuesToNotBeNull(column="session_id", mostly=0.95, severity="warning"),
        ex.ExpectColumnValuesToBeInSet(
            column="currency", value_set=["USD", "EUR", "GBP"], severity="warning"
        ),
        ex.ExpectColumnMaxToBeBetween(
            column="event_date",
            min_value=(day - timedelta(days=1)).isoformat(),
            max_value=day.isoformat(),
            severity="warning",
        ),
    ]
    # hashed identifiers must look like hashes: a raw email here would be a privacy breach
    hashed = [c for c in HASHED if columns is None or c in columns]
    out += [ex.ExpectColumnValuesToMatchRegex(column=c, regex=SHA256_HEX) for c in hashed]
    return out


def silver_crm_expectations() -> list:
    ex = gx.expectations
    return [
        ex.ExpectColumnValuesToNotBeNull(column="customer_id"),
        ex.ExpectColumnValuesToBeUnique(column="customer_id"),
        ex.ExpectColumnValuesToMatchRegex(column="email_sha256", regex=SHA256_HEX),
        ex.ExpectColumnValuesToMatchRegex(column="phone_sha256", regex=SHA256_HEX),
        ex.ExpectColumnValuesToBeInSet(column="opt_out", value_set=[True, False]),
    ]
