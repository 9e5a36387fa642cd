"""Per-person identifiers for activation: the latest hashed email / phone / device seen for
each person in silver events, completed with CRM names, zip and country.

The event part is a list of aggregate columns (``identifier_aggregates``) so that the profiles
job computes it in its own pass over the attributed events and writes
``gold.person_identifiers``; export reads that table instead of attributing every event again."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

EMAIL_COLS = ["email_sha256", "email_google_sha256", "email_uid2_sha256"]
PHONE_COLS = ["phone_sha256", "phone_digits_sha256"]
NAME_COLS = [
    "first_name_sha256",
    "last_name_sha256",
    "first_name_meta_sha256",
    "last_name_meta_sha256",
]
EVENT_COUNTRY = "identifiers_event_country"  # apart from the profile's own event_country
EVENT_ID_COLS = [*EMAIL_COLS, *PHONE_COLS, "device_id", EVENT_COUNTRY]
IDENTIFIER_COLS = ["person_id", *EMAIL_COLS, *PHONE_COLS, *NAME_COLS, "country", "zip", "device_id"]


def identifier_aggregates(blocked_email_hashes: list[str]) -> list[Column]:
    """Aggregate columns (for a ``groupBy("person_id")`` of attributed events), named
    ``EVENT_ID_COLS``: the latest email hashes, phone hashes and device id a person was seen
    with, and the country of their latest event. An event carrying a blocked email (a shared
    test address) tells nothing about anyone: it is left out of all of them."""
    c = F.col
    usable = ~F.coalesce(c("email_sha256").isin(blocked_email_hashes), F.lit(False))

    def latest(value: str, key: str) -> Column:
        # ``value`` of the latest usable event with a ``key``; at the same instant the larger
        # key wins, so a rerun picks the same row (a flip would ship as a remove + an add)
        # and the email (or phone) hashes all come from one event. max_by skips null orderings.
        order = F.when(usable & c(key).isNotNull(), F.struct(c("event_ts"), c(key)))
        return F.max_by(value, order).alias(value)

    return [
        *[latest(col, "email_sha256") for col in EMAIL_COLS],
        *[latest(col, "phone_sha256") for col in PHONE_COLS],
        latest("device_id", "device_id"),
        F.max_by(
            "country", F.when(usable, F.struct(c("event_ts"), F.coalesce("country", F.lit(""))))
        ).alias(EVENT_COUNTRY),
    ]


def with_crm(event_ids: DataFrame, person_map: DataFrame, crm: DataFrame | None) -> DataFrame:
    """(person_id, ``EVENT_ID_COLS``) -> ``IDENTIFIER_COLS``: CRM values fill what events did
    not show (CRM-only persons included); names and zip come from CRM only."""
    c = F.col
    if crm is None:
        return event_ids.select(
            "person_id",
            *EMAIL_COLS,
            *PHONE_COLS,
            *[F.lit(None).cast("string").alias(n) for n in NAME_COLS],
            c(EVENT_COUNTRY).alias("country"),
            F.lit(None).cast("string").alias("zip"),
            "device_id",
        )
    linked = person_map.where(c("id_type") == "crm").select(
        "person_id", c("id_value").alias("customer_id")
    )
    crm_p = (
        linked.join(crm, "customer_id")
        .groupBy("person_id")
        .agg(
            *[
                F.max_by(col, "updated_at").alias(f"crm_{col}")
                for col in EMAIL_COLS + PHONE_COLS + NAME_COLS + ["country", "zip"]
            ]
        )
    )
    out = event_ids.join(crm_p, "person_id", "full")
    return out.select(
        "person_id",
        *[F.coalesce(col, f"crm_{col}").alias(col) for col in EMAIL_COLS + PHONE_COLS],
        *[c(f"crm_{col}").alias(col) for col in NAME_COLS],
        F.coalesce("crm_country", EVENT_COUNTRY).alias("country"),
        c("crm_zip").alias("zip"),
        "device_id",
    )


def person_identifiers(
    events: DataFrame, person_map: DataFrame, crm: DataFrame | None, blocked_email_hashes: list[str]
) -> DataFrame:
    """Attributed events -> ``IDENTIFIER_COLS``, one row per person."""
    event_ids = events.groupBy("person_id").agg(*identifier_aggregates(blocked_email_hashes))
    return with_crm(event_ids, person_map, crm)
