"""The bronze row every format maps its lines onto, and the pieces the formats share.

A bronze row is one delivered line: every field as text, as the collector sent it, except that
emails, phones and names are replaced by their hashes at once (raw PII never leaves the
landing zone). A message that names several products keeps them in ``items`` (a JSON array of
``{product_id, category, price, quantity}``); silver gives each its own row.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.ingest.normalise import (
    EMAIL_SHAPE,
    PHONE_SHAPE,
    email_hashes,
    google_name,
    meta_name,
    phone_hashes,
    sha256_hex,
)

# The text fields of a bronze row (and of the silver row, typed). ``event_name`` is the name the
# collector gave the event; ``event_type`` the platform's type it maps to (the name itself when
# the format has no mapping for it).
EVENT_FIELDS = [
    "event_id",
    "event_type",
    "event_name",
    "event_ts",
    "source",
    "anonymous_id",
    "alt_anonymous_id",
    "device_id",
    "advertising_id",
    "user_id",
    "session_id",
    "ip",
    "user_agent",
    "country",
    "page",
    "page_url",
    "page_title",
    "referrer",
    "product_id",
    "category",
    "price",
    "quantity",
    "order_id",
    "revenue",
    "currency",
    "campaign_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "search_query",
    "ad_consent",
    "items",
]
ITEM_SCHEMA = "array<struct<product_id:string,category:string,price:string,quantity:string>>"
EMAIL_LIKE = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
PHONE_LIKE = r"\+?[0-9][0-9 ()\-]{7,}[0-9]"
# standard JSON only: no single quotes, no NaN / Infinity (Spark's parser accepts both by default)
STRICT_JSON = {"allowSingleQuotes": "false", "allowNonNumericNumbers": "false"}
TS_OUT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"  # how formats other than native write event_ts


# free-text fields a URL or a search may carry an email or a phone number in
FREE_TEXT = ["page", "page_url", "page_title", "referrer", "search_query"]
FREE_TEXT += ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"]


# every email has an @, every phone shape a + or three digits before a separator: text with
# none (most paths and titles) skips the two costly patterns (-13% of the native mapping)
MAYBE_PII = r"[@+]|[0-9]{3}[ .)-]"


def mask_shapes(text: Column) -> Column:
    """Emails and phone numbers inside free text (``?email=jane@...`` in a URL), in the PII
    scanner's shapes, so that a product path's digits stay as they are."""
    masked = F.regexp_replace(
        F.regexp_replace(text, EMAIL_SHAPE, "<email>"), PHONE_SHAPE, "<phone>"
    )
    return F.when(text.rlike(MAYBE_PII), masked).otherwise(text)


def mask_pii(text: Column) -> Column:
    """For text kept as it came: blank out anything email- or phone-shaped before storing."""
    return F.regexp_replace(F.regexp_replace(text, EMAIL_LIKE, "<email>"), PHONE_LIKE, "<phone>")


CARRY = "_carry_"  # columns of the lines named so ride along to the bronze row


def carried(frame: DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(CARRY)]


def checked_lines(lines: DataFrame, max_line_chars: int) -> DataFrame:
    """(value, source_file) -> (source_file, line_error, value: null on a line error,
    bad_text: the start of a line in error, made valid UTF-8), and the ``CARRY`` columns."""
    valid_utf8 = F.expr("is_valid_utf8(value)")
    # a character is at least one byte: count characters only on lines with that many bytes
    too_long = (F.octet_length("value") > max_line_chars) & (F.length("value") > max_line_chars)
    line_error = F.when(~valid_utf8, F.lit("invalid_utf8")).when(too_long, F.lit("line_too_long"))
    text = F.when(valid_utf8, F.col("value")).otherwise(F.expr("make_valid_utf8(value)"))
    return lines.select(
        "source_file",
        *carried(lines),
        line_error.alias("line_error"),
        F.when(line_error.isNull(), text).alias("value"),
        F.when(line_error.isNotNull(), F.substring(text, 1, 2000)).alias("bad_text"),
    )


def json_object(text: Column) -> tuple[Column, Column]:
    """(map of the top-level fields as text, whether ``text`` is one JSON object with no key
    given twice: a key given twice is ambiguous, so not accepted either)."""
    m = F.from_json(text, "map<string,string>", STRICT_JSON)
    keys = F.map_keys(m)
    return m, m.isNotNull() & (F.size(keys) == F.size(F.array_distinct(keys)))


def lookup(mapping: dict[str, str], key: Column) -> Column:
    """``mapping[key]`` as a Column (null for a key it does not have)."""
    if not mapping:
        return F.lit(None).cast("string")
    return F.create_map(*[F.lit(x) for kv in mapping.items() for x in kv])[key]


def blank_to_null(col: Column) -> Column:
    return F.when(F.trim(col) != "", col)


def first_of(*cols: Column) -> Column:
    """The first non-blank value."""
    return F.coalesce(*[blank_to_null(c) for c in cols])


def iso_ts(col: Column) -> Column:
    """A timestamp from ISO-8601 text with any fraction and zone (``Z``, ``+05:30``), or a
    Snowplow ``yyyy-MM-dd HH:mm:ss.SSS`` (UTC); null if it is neither."""
    return F.try_to_timestamp(col)


def ts_text(ts: Column, raw: Column) -> Column:
    """The event time as bronze keeps it: ISO-8601 with microseconds when it could be read,
    else the text that arrived (so the quarantine shows what was wrong)."""
    return F.coalesce(F.date_format(ts, TS_OUT), raw)


def unmapped(m: Column, known: list[str], prefix: str = "") -> Column:
    """The entries of map ``m`` whose key is not in ``known``, keys prefixed, values masked."""
    names = F.array(*[F.lit(k) for k in known])
    rest = F.map_filter(m, lambda k, v: ~F.array_contains(names, k))
    if prefix:
        rest = F.transform_keys(rest, lambda k, v: F.concat(F.lit(prefix), k))
    return F.transform_values(rest, lambda k, v: mask_pii(v))


def merge_maps(*maps: Column) -> Column:
    """One map of several (null ones skipped); an empty result is null."""
    parts = [F.coalesce(m, F.create_map().cast("map<string,string>")) for m in maps]
    merged = parts[0] if len(parts) == 1 else F.map_concat(*parts)
    return F.when(F.size(merged) > 0, merged)


def bronze(  # noqa: PLR0913 -- keyword-only: what each format maps, by name
    frame: DataFrame,
    fields: dict[str, Column],
    *,
    pii: dict[str, Column],
    extra: Column | None,
    unparsed: Column,
    format_error: Column | None,
    arrival_day: Column,
    default_country: str,
) -> DataFrame:
    """The bronze row: ``fields`` (any of ``EVENT_FIELDS``; the others are null), hashes of the
    raw ``pii`` (``email``, ``phone``, ``first_name``, ``last_name``; any may be missing),
    the fields no mapping knows (``extra``, masked), the line's format error, and the masked
    line itself where it could not be parsed. ``frame`` has ``source_file`` and ``line_error``."""
    none = F.lit(None).cast("string")
    email, phone = pii.get("email", none), pii.get("phone", none)
    first, last = pii.get("first_name", none), pii.get("last_name", none)
    country = fields.get("country", none)
    hashes = {
        **email_hashes(email),
        **phone_hashes(phone, F.upper(country), default_country),
        "first_name_sha256": sha256_hex(google_name(first)),
        "last_name_sha256": sha256_hex(google_name(last)),
        "first_name_meta_sha256": sha256_hex(meta_name(first)),
        "last_name_meta_sha256": sha256_hex(meta_name(last)),
    }

    def text(f: str) -> Column:
        value = fields.get(f, none).cast("string")
        return (mask_shapes(value) if f in FREE_TEXT else value).alias(f)

    return frame.select(
        *[text(f) for f in EVENT_FIELDS],
        *[c.alias(n) for n, c in hashes.items()],
        blank_to_null(email).isNotNull().alias("had_email"),
        blank_to_null(phone).isNotNull().alias("had_phone"),
        (extra if extra is not None else F.lit(None).cast("map<string,string>")).alias(
            "extra_fields"
        ),
        "line_error",
        (format_error if format_error is not None else none).alias("format_error"),
        unparsed.alias("unparsed_line"),
        "source_file",
        arrival_day.alias("dt"),
        F.current_timestamp().alias("ingested_at"),
        *carried(frame),
    )
