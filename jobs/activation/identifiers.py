"""Per-person identifiers for activation: the latest hashed email / phone / device seen for
each person in silver events, completed with CRM names, zip and country."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

EMAIL_COLS = ["email_sha256", "email_google_sha256", "email_uid2_sha256"]
PHONE_COLS = ["phone_sha256", "phone_digits_sha256"]
NAME_COLS = [
    "first_name_sha256",
    "last_name_sha256",
    "first_name_meta_sha256",
    "last_name_meta_sha256",
]


def person_identifiers(
    events: DataFrame, person_map: DataFrame, crm: DataFrame | None, blocked_email_hashes: list[str]
) -> DataFrame:
    c = F.col
    ev = events.where(~F.coalesce(c("email_sha256").isin(blocked_email_hashes), F.lit(False)))
    agg = ev.groupBy("person_id").agg(
        *[
            F.max_by(col, F.when(c("email_sha256").isNotNull(), c("event_ts"))).alias(col)
            for col in EMAIL_COLS
        ],
        *[
            F.max_by(col, F.when(c("phone_sha256").isNotNull(), c("event_ts"))).alias(col)
            for col in PHONE_COLS
        ],
        F.max_by("device_id", F.when(c("device_id").isNotNull(), c("event_ts"))).alias("device_id"),
        F.max_by("country", "event_ts").alias("event_country"),
    )
    if crm is None:
        return agg.select(
            "*",
            *[F.lit(None).cast("string").alias(n) for n in NAME_COLS],
            F.col("event_country").alias("country"),
            F.lit(None).cast("string").alias("zip"),
        ).drop("event_country")
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
    out = agg.join(crm_p, "person_id", "full")
    return out.select(
        "person_id",
        *[F.coalesce(col, f"crm_{col}").alias(col) for col in EMAIL_COLS + PHONE_COLS],
        *[c(f"crm_{col}").alias(col) for col in NAME_COLS],
        F.coalesce("crm_country", "event_country").alias("country"),
        c("crm_zip").alias("zip"),
        "device_id",
    )
