"""GA4's BigQuery export (the ``events_YYYYMMDD`` tables), one row per event, as NDJSON
(``bq extract --destination_format NEWLINE_DELIMITED_JSON``; 64-bit integers arrive as text,
null fields are left out) or Parquet (each row read as the same JSON).

- GA4 rows have no event id: it is a hash of what makes an event distinct (stream, user,
  microsecond time, name, batch indexes and parameters: dbt-ga4's ``event_key`` plus the batch
  indexes), so an export read twice, or a day exported again, lands once.
- ``event_timestamp`` (microseconds, UTC) is the event time. ``user_pseudo_id`` -> cookie,
  ``user_id`` -> user, ``device.vendor_id`` -> device, ``device.advertising_id`` -> advertising
  id; ``event_params`` (key + typed value) give the page, session, currency, value and
  transaction id; ``items[]`` become items; ``privacy_info.ads_storage`` is the ad consent.
- GA4's recommended events map onto the platform's types (``GA4_EVENTS``); others keep their
  name. A parameter value of a type GA4 does not have is quarantined (``unknown_value_type``).
- GA4 forbids sending emails and phones, but a site that sends them anyway as ``email`` /
  ``phone`` parameters has them hashed at once like any other.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.config import SourceSettings
from jobs.ingest.formats.common import (
    STRICT_JSON,
    bronze,
    checked_lines,
    first_of,
    lookup,
    mask_pii,
    merge_maps,
    ts_text,
)

GA4_EVENTS = {
    "page_view": "page_view",
    "screen_view": "screen_view",
    "view_item": "product_view",
    "view_item_list": "product_list_view",
    "select_item": "product_click",
    "add_to_cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "view_cart": "cart_view",
    "begin_checkout": "checkout_start",
    "add_shipping_info": "checkout_step",
    "add_payment_info": "checkout_step",
    "purchase": "purchase",
    "refund": "refund",
    "add_to_wishlist": "add_to_wishlist",
    "view_promotion": "promotion_view",
    "select_promotion": "promotion_click",
    "search": "search",
    "view_search_results": "search",
    "login": "login",
    "sign_up": "signup",
    "first_open": "app_install",
}
VALUE_TYPES = ["string_value", "int_value", "float_value", "double_value"]
PARAMS = "array<struct<key:string, value:map<string,string>>>"
ROW = (
    "struct<event_timestamp:string, event_name:string, event_params:string,"
    " user_id:string, user_pseudo_id:string, stream_id:string, platform:string,"
    " event_bundle_sequence_id:string, batch_event_index:string, batch_page_id:string,"
    " batch_ordering_id:string,"
    " privacy_info:struct<ads_storage:string>,"
    " device:struct<vendor_id:string, advertising_id:string, language:string,"
    "   web_info:struct<hostname:string>>,"
    " geo:struct<country:string>,"
    " traffic_source:struct<name:string, medium:string, source:string>,"
    " collected_traffic_source:struct<manual_campaign_id:string, manual_campaign_name:string,"
    "   manual_source:string, manual_medium:string, manual_term:string,"
    "   manual_content:string>,"
    " ecommerce:struct<purchase_revenue:string, transaction_id:string>,"
    " items:array<map<string,string>>>"
)
PLATFORMS = {"WEB": "web", "IOS": "app", "ANDROID": "app"}
MAPPED_PARAMS = [
    "page_location",
    "page_title",
    "page_referrer",
    "ga_session_id",
    "currency",
    "value",
    "transaction_id",
    "search_term",
    "campaign",
    "source",
    "medium",
    "term",
    "content",
    "campaign_id",
    "email",
    "phone",
]
# GA4 reports geo.country as an English name; the platform keeps ISO 3166 alpha-2 codes
COUNTRIES = {
    "United States": "US",
    "Canada": "CA",
    "United Kingdom": "GB",
    "France": "FR",
    "Germany": "DE",
    "Spain": "ES",
    "Italy": "IT",
    "Netherlands": "NL",
    "Belgium": "BE",
    "Australia": "AU",
    "Ireland": "IE",
    "Austria": "AT",
    "Switzerland": "CH",
    "Sweden": "SE",
    "Norway": "NO",
    "Denmark": "DK",
    "Finland": "FI",
    "Poland": "PL",
    "Portugal": "PT",
    "Japan": "JP",
    "India": "IN",
    "Brazil": "BR",
    "Mexico": "MX",
    "New Zealand": "NZ",
    "Singapore": "SG",
}


def _param(name: str) -> Column:
    return F.try_element_at(F.filter(F.col("params"), lambda p: p["key"] == name), F.lit(1))["v"]


def _typed(value: Column) -> Column:
    return F.coalesce(*[value[t] for t in VALUE_TYPES])


def _items() -> Column:
    listed = F.col("row.items")
    items = F.transform(
        listed,
        lambda i: F.struct(
            i["item_id"].alias("product_id"),
            first_of(i["item_category"], i["item_category2"]).alias("category"),
            i["price"].alias("price"),
            F.regexp_replace(i["quantity"], r"\.0+$", "").alias("quantity"),
        ),
    )
    return F.when(F.size(listed) > 0, F.to_json(items))


def event_id() -> Column:
    r = F.col("row")
    keys = [
        r["stream_id"],
        r["user_pseudo_id"],
        r["event_timestamp"],
        r["event_name"],
        r["event_bundle_sequence_id"],
        r["batch_event_index"],
        r["batch_ordering_id"],
        r["batch_page_id"],
        F.to_json(F.col("params")),
    ]
    digest = F.sha2(F.concat_ws("\u001f", *[F.coalesce(k, F.lit("")) for k in keys]), 256)
    return F.when(r["event_timestamp"].isNotNull(), F.concat(F.lit("ga4-"), digest))


def _fields(source: SourceSettings) -> dict[str, Column]:
    r = F.col("row")
    name = r["event_name"]
    names = {**GA4_EVENTS, **source.event_names}
    micros = r["event_timestamp"].try_cast("long")
    ts = F.timestamp_micros(micros)
    session = _param("ga_session_id")
    traffic = r["collected_traffic_source"]
    ads = F.lower(F.col("row.privacy_info.ads_storage"))
    return {
        "event_id": event_id(),
        "event_type": F.coalesce(lookup(names, name), name),
        "event_name": name,
        "event_ts": ts_text(ts, r["event_timestamp"]),
        "source": F.coalesce(
            lookup(PLATFORMS, F.upper(r["platform"])), F.lit(source.channel), F.lit("web")
        ),
        "anonymous_id": r["user_pseudo_id"],
        "device_id": F.col("row.device.vendor_id"),
        "advertising_id": F.col("row.device.advertising_id"),
        "user_id": r["user_id"],
        "session_id": F.when(session.isNotNull(), F.concat_ws(".", r["user_pseudo_id"], session)),
        "country": F.coalesce(
            lookup(COUNTRIES, F.col("row.geo.country")),
            F.when(F.col("row.geo.country").rlike("^[A-Z]{2}$"), F.col("row.geo.country")),
        ),
        "page": F.expr("parse_url(_page_location, 'PATH')"),
        "page_url": F.col("_page_location"),
        "page_title": _param("page_title"),
        "referrer": _param("page_referrer"),
        "order_id": F.when(
            first_of(F.col("row.ecommerce.transaction_id"), _param("transaction_id"))
            != "(not set)",
            first_of(F.col("row.ecommerce.transaction_id"), _param("transaction_id")),
        ),
        "revenue": F.when(
            name == "purchase", first_of(F.col("row.ecommerce.purchase_revenue"), _param("value"))
        ),
        "currency": _param("currency"),
        "search_query": _param("search_term"),
        "utm_source": first_of(traffic["manual_source"], _param("source")),
        "utm_medium": first_of(traffic["manual_medium"], _param("medium")),
        "utm_campaign": first_of(traffic["manual_campaign_name"], _param("campaign")),
        "utm_term": first_of(traffic["manual_term"], _param("term")),
        "utm_content": first_of(traffic["manual_content"], _param("content")),
        "campaign_id": first_of(traffic["manual_campaign_id"], _param("campaign_id")),
        "ad_consent": F.when(ads == "yes", F.lit("true")).when(ads == "no", F.lit("false")),
        "items": _items(),
    }


def _format_error() -> Column:
    allowed = F.array(*[F.lit(t) for t in VALUE_TYPES])
    unknown_type = F.exists(
        F.col("raw_params"),
        lambda p: F.exists(
            F.map_keys(F.map_filter(p["value"], lambda k, v: v.isNotNull())),
            lambda k: ~F.array_contains(allowed, k),
        ),
    )
    return F.when(first_of(F.col("row.event_name")).isNull(), F.lit("missing_event_name")).when(
        F.coalesce(unknown_type, F.lit(False)), F.lit("unknown_value_type")
    )


def to_bronze(
    lines: DataFrame,
    arrival_day: Column,
    default_country: str,
    max_line_chars: int,
    source: SourceSettings,
) -> DataFrame:
    parsed = checked_lines(lines, max_line_chars)
    top = F.from_json(F.col("value"), "map<string,string>", STRICT_JSON)
    keys = F.map_keys(top)
    is_json = top.isNotNull() & (F.size(keys) == F.size(F.array_distinct(keys)))
    parsed = parsed.withColumns(
        {"is_json": is_json, "row": F.from_json(F.col("value"), ROW, STRICT_JSON)}
    )
    raw_params = F.from_json(F.col("row.event_params"), PARAMS)
    parsed = parsed.withColumn("raw_params", raw_params).withColumn(
        "params",
        F.transform(
            F.col("raw_params"),
            lambda p: F.struct(p["key"].alias("key"), _typed(p["value"]).alias("v")),
        ),
    )
    parsed = parsed.withColumn("_page_location", _param("page_location"))
    names = F.array(*[F.lit(p) for p in MAPPED_PARAMS])
    keys = F.transform(F.col("params"), lambda p: p["key"])
    # a key given twice keeps its first value (a map cannot hold it twice)
    first = F.filter(
        F.col("params"),
        lambda p, i: (F.array_position(keys, p["key"]) == i + 1)
        & ~F.array_contains(names, p["key"])
        & p["v"].isNotNull(),
    )
    extra = F.map_from_entries(
        F.transform(
            first, lambda p: F.struct(F.concat(F.lit("param."), p["key"]), mask_pii(p["v"]))
        )
    )
    bad = ~F.col("is_json") | F.col("line_error").isNotNull()
    return bronze(
        parsed,
        _fields(source),
        pii={"email": _param("email"), "phone": _param("phone")},
        extra=merge_maps(extra),
        unparsed=F.when(bad, mask_pii(F.coalesce(F.col("bad_text"), F.col("value")))),
        format_error=_format_error(),
        arrival_day=arrival_day,
        default_country=default_country,
    )
