"""The platform's own event format: one flat JSON object per line (README, "Event schema")."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ingest.formats.common import bronze, checked_lines, json_object, mask_pii, unmapped

NATIVE_FIELDS = [
    "event_id",
    "event_type",
    "event_ts",
    "source",
    "anonymous_id",
    "device_id",
    "user_id",
    "session_id",
    "email",
    "phone",
    "ip",
    "user_agent",
    "country",
    "page",
    "product_id",
    "category",
    "price",
    "quantity",
    "order_id",
    "revenue",
    "currency",
    "campaign_id",
    "ad_consent",
]
NATIVE_TYPES = [
    "page_view",
    "product_view",
    "add_to_cart",
    "purchase",
    "login",
    "signup",
    "search",
    "app_open",
    "email_open",
    "email_click",
    "consent_update",
]


def to_bronze(lines: DataFrame, arrival_day, default_country: str, max_line_chars: int):
    """(value, source_file) lines -> bronze rows. ``device_id`` is the app's mobile advertising
    id in this format, so it is the advertising id too."""
    parsed = checked_lines(lines, max_line_chars)
    m, is_json = json_object(F.col("value"))
    parsed = parsed.withColumn("m", m)
    m = F.col("m")
    fields = {f: m[f] for f in NATIVE_FIELDS if f not in ("email", "phone")}
    fields["event_name"] = m["event_type"]
    fields["advertising_id"] = m["device_id"]
    known_type = m["event_type"].isin(NATIVE_TYPES)
    return bronze(
        parsed,
        fields,
        pii={"email": m["email"], "phone": m["phone"]},
        extra=F.when(F.size(unmapped(m, NATIVE_FIELDS)) > 0, unmapped(m, NATIVE_FIELDS)),
        unparsed=F.when(
            ~is_json | F.col("line_error").isNotNull(),
            mask_pii(F.coalesce(F.col("bad_text"), F.col("value"))),
        ),
        format_error=F.when(~known_type, F.lit("unknown_event_type")),
        arrival_day=arrival_day,
        default_country=default_country,
    )
