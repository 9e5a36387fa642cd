"""The expectations each layer must meet (Great Expectations 1.x expectation objects)."""

from __future__ import annotations

import great_expectations as gx

from jobs.ingest.events import EVENT_TYPES
from jobs.ingest.normalise import SHA256_HEX


def silver_events_expectations() -> list:
    ex = gx.expectations
    out = [
        ex.ExpectColumnValuesToNotBeNull(column="event_id"),
        ex.ExpectColumnValuesToBeUnique(column="event_id"),
        ex.ExpectColumnValuesToNotBeNull(column="event_ts"),
        ex.ExpectColumnValuesToNotBeNull(column="event_date"),
        ex.ExpectColumnValuesToBeInSet(column="event_type", value_set=EVENT_TYPES),
        ex.ExpectColumnValuesToBeInSet(column="source", value_set=["web", "app", "email"]),
        ex.ExpectColumnValuesToBeBetween(column="price", min_value=0, max_value=100_000),
        ex.ExpectColumnValuesToBeBetween(column="revenue", min_value=0, max_value=1_000_000),
    ]
    # hashed identifiers must look like hashes: a raw email here would be a privacy breach
    for col in [
        "email_sha256",
        "email_google_sha256",
        "email_uid2_sha256",
        "phone_sha256",
        "phone_digits_sha256",
    ]:
        out.append(ex.ExpectColumnValuesToMatchRegex(column=col, regex=SHA256_HEX))
    return out


def silver_crm_expectations() -> list:
    ex = gx.expectations
    return [
        ex.ExpectColumnValuesToNotBeNull(column="customer_id"),
        ex.ExpectColumnValuesToBeUnique(column="customer_id"),
        ex.ExpectColumnValuesToMatchRegex(column="email_sha256", regex=SHA256_HEX),
        ex.ExpectColumnValuesToMatchRegex(column="phone_sha256", regex=SHA256_HEX),
    ]
