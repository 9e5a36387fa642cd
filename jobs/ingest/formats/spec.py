"""Segment / RudderStack spec messages (``track``, ``page``, ``screen``, ``identify``,
``alias``, ``group``), one JSON object per line, as their S3 destinations write them.

- ``messageId`` is the event id (duplicates are dropped on it, as Segment's warehouse loads do).
- The event time is corrected for the device's clock as the spec describes:
  ``receivedAt - (sentAt - originalTimestamp)`` when all three are there, else ``timestamp``,
  else ``originalTimestamp``, else ``receivedAt``.
- ``anonymousId`` -> cookie, ``userId`` -> user, alias ``previousId`` -> a second anonymous id,
  ``context.device.id`` -> device, ``context.device.advertisingId`` -> advertising id (unless
  ``adTrackingEnabled`` is false); emails, phones and names from ``traits``,
  ``context.traits`` and ``properties``, hashed at once.
- Event names of the E-commerce spec v2 and of the mobile, email and B2B specs map onto the
  platform's types (``SPEC_EVENTS``; a source's ``event_names`` extends it); any other name
  stays the event's type as sent. ``products[]`` become ``items``.
- Consent: ``context.consent.categoryPreferences``; a category named in the source's
  ``ad_consent_categories`` set to false is a no, else one set to true is a yes.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.config import SourceSettings
from jobs.ingest.formats.common import (
    bronze,
    checked_lines,
    first_of,
    iso_ts,
    json_object,
    lookup,
    mask_pii,
    merge_maps,
    ts_text,
    unmapped,
)

# the formats whose messages may come without a session id (Segment's never carry one;
# RudderStack's SDKs send ``context.sessionId``)
SESSIONLESS = ("segment", "rudderstack")

SPEC_EVENTS = {
    # E-commerce spec v2
    "products searched": "search",
    "product list viewed": "product_list_view",
    "product list filtered": "product_list_view",
    "product clicked": "product_click",
    "product viewed": "product_view",
    "product added": "add_to_cart",
    "product removed": "remove_from_cart",
    "cart viewed": "cart_view",
    "checkout started": "checkout_start",
    "checkout step viewed": "checkout_step",
    "checkout step completed": "checkout_step",
    "payment info entered": "checkout_step",
    "order completed": "purchase",
    "order updated": "order_update",
    "order refunded": "refund",
    "order cancelled": "order_cancel",
    "product added to wishlist": "add_to_wishlist",
    "promotion viewed": "promotion_view",
    "promotion clicked": "promotion_click",
    # v1 names Segment still aliases
    "completed order": "purchase",
    "viewed product": "product_view",
    "added product": "add_to_cart",
    # mobile, email and B2B SaaS specs
    "application opened": "app_open",
    "application installed": "app_install",
    "email opened": "email_open",
    "email link clicked": "email_click",
    "signed up": "signup",
    "signed in": "login",
    "segment consent preference updated": "consent_update",
}
CALL_TYPES = {
    "page": "page_view",
    "screen": "screen_view",
    "identify": "identify",
    "alias": "alias",
    "group": "group",
}
TOP_LEVEL = [
    "type",
    "event",
    "name",
    "category",
    "messageId",
    "anonymousId",
    "userId",
    "previousId",
    "groupId",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "receivedAt",
    "context",
    "properties",
    "traits",
    "integrations",
    "channel",
    "version",
    "projectId",
    "writeKey",
    "_metadata",
    "request_ip",
    "rudderId",
    "options",
]
CONTEXT = (
    "struct<ip:string, userAgent:string, locale:string, sessionId:string,"
    " page:struct<path:string, url:string, title:string, referrer:string>,"
    " campaign:struct<name:string, source:string, medium:string, term:string, content:string>,"
    " device:struct<id:string, advertisingId:string, adTrackingEnabled:string>,"
    " location:struct<country:string>, library:struct<name:string>,"
    " traits:map<string,string>, consent:struct<categoryPreferences:map<string,string>>>"
)
# platform field -> the property names the spec uses for it, in order
PROPERTIES = {
    "product_id": ["product_id", "productId", "id", "sku"],  # the database id before the SKU
    "category": ["category"],
    "price": ["price"],
    "quantity": ["quantity"],
    "order_id": ["order_id", "orderId"],
    "revenue": ["revenue", "total", "subtotal"],
    "currency": ["currency"],
    "search_query": ["query"],
    "campaign_id": ["campaign_id"],
}
# properties about the person (Signed Up sends them): hashed where the platform uses them,
# never kept in clear among the unmapped fields
PERSONAL = ["email", "phone", "first_name", "last_name", "firstName", "lastName", "username"]
PERSONAL += ["birthday", "address", "age", "gender"]
# the channel a message says it came from -> the platform's source
CHANNELS = {"browser": "web", "web": "web", "client": "web", "mobile": "app", "server": "server"}
MOBILE_LIBRARIES = ["ios", "android", "swift", "kotlin", "react-native", "flutter", "xamarin"]


def _prop(props: Column, names: list[str]) -> Column:
    return first_of(*[props[n] for n in names])


def _trait(name: str) -> Column:
    """A trait from identify ``traits``, ``context.traits`` or the properties (Signed Up),
    in camel or snake case."""
    snake = "".join("_" + ch.lower() if ch.isupper() else ch for ch in name)
    return first_of(
        *[
            m[key]
            for m in (F.col("traits"), F.col("ctx.traits"), F.col("props"))
            for key in dict.fromkeys([name, snake])
        ]
    )


def event_time(m: Column) -> tuple[Column, Column]:
    """(corrected event time, the text it came from)."""
    original, sent, received = (iso_ts(m[k]) for k in ("originalTimestamp", "sentAt", "receivedAt"))
    skew = F.unix_micros(received) - F.unix_micros(sent) + F.unix_micros(original)
    ts = F.coalesce(F.timestamp_micros(skew), iso_ts(m["timestamp"]), original, received)
    raw = F.coalesce(m["timestamp"], m["originalTimestamp"], m["receivedAt"], m["sentAt"])
    return ts, raw


def ad_consent(preferences: Column, categories: list[str]) -> Column:
    """'false' if any advertising category is false, 'true' if one is true, else null."""
    wanted = F.array(*[F.lit(c.lower()) for c in categories])
    ad = F.map_filter(preferences, lambda k, v: F.array_contains(wanted, F.lower(k)))
    values = F.transform(F.map_values(ad), lambda v: F.lower(F.trim(v)))
    return F.when(F.array_contains(values, "false"), F.lit("false")).when(
        F.array_contains(values, "true"), F.lit("true")
    )


def channel(m: Column, event_type: Column, default: str | None) -> Column:
    library = F.lower(F.col("ctx.library.name"))
    mobile_library = F.lit(False)
    for name in MOBILE_LIBRARIES:
        mobile_library = mobile_library | library.contains(name)
    return F.when(event_type.isin("email_open", "email_click"), F.lit("email")).otherwise(
        F.coalesce(
            lookup(CHANNELS, F.lower(m["channel"])),
            F.lit(default),
            F.when(mobile_library, F.lit("app")),
            F.when(library.isNotNull(), F.lit("web")),
        )
    )


def products(props: Column, fields: dict[str, list[str]]) -> Column:
    """``properties.products`` as items (JSON text), or null when the message has none."""
    listed = F.from_json(props["products"], "array<map<string,string>>")
    items = F.transform(
        listed,
        lambda p: F.struct(
            _prop(p, fields["product_id"]).alias("product_id"),
            _prop(p, fields["category"]).alias("category"),
            _prop(p, fields["price"]).alias("price"),
            _prop(p, fields["quantity"]).alias("quantity"),
        ),
    )
    return F.when(F.size(listed) > 0, F.to_json(items))


def format_error(call: Column, m: Column) -> Column:
    return (
        F.when(call.isNull(), F.lit("missing_type"))
        .when(~call.isin("track", *CALL_TYPES), F.lit("unknown_message_type"))
        .when((call == "track") & first_of(m["event"]).isNull(), F.lit("missing_event_name"))
        .when((call == "alias") & first_of(m["previousId"]).isNull(), F.lit("missing_previous_id"))
    )


def to_bronze(
    lines: DataFrame,
    arrival_day: Column,
    default_country: str,
    max_line_chars: int,
    source: SourceSettings,
) -> DataFrame:
    parsed = checked_lines(lines, max_line_chars)
    m, is_json = json_object(F.col("value"))
    parsed = parsed.withColumn("m", m).withColumn("is_json", is_json)
    m = F.col("m")
    parsed = parsed.withColumns(
        {
            "ctx": F.from_json(m["context"], CONTEXT),
            "props": F.from_json(m["properties"], "map<string,string>"),
            "traits": F.from_json(m["traits"], "map<string,string>"),
            "call": F.lower(F.trim(m["type"])),
        }
    )
    props, call = F.col("props"), F.col("call")
    fields = {k: source.properties.get(k, []) + v for k, v in PROPERTIES.items()}
    names = {**SPEC_EVENTS, **{k.lower(): v for k, v in source.event_names.items()}}
    name = F.when(call == "track", F.trim(m["event"])).otherwise(
        F.coalesce(first_of(m["name"]), call)
    )
    event_type = F.when(call == "track", F.coalesce(lookup(names, F.lower(name)), name))
    event_type = event_type.otherwise(lookup(CALL_TYPES, call))
    ts, raw_ts = event_time(m)
    device = F.col("ctx.device")
    tracking_off = F.lower(device["adTrackingEnabled"]) == "false"
    props_text = {k: _prop(props, v) for k, v in fields.items()}
    full_name = F.split(F.trim(_trait("name")), r"\s+", 2)
    out = {
        **props_text,
        "event_id": m["messageId"],
        "event_type": event_type,
        "event_name": name,
        "event_ts": ts_text(ts, raw_ts),
        "source": channel(m, event_type, source.channel),
        "anonymous_id": m["anonymousId"],
        "alt_anonymous_id": F.when(call == "alias", m["previousId"]),
        "device_id": device["id"],
        "advertising_id": F.when(~F.coalesce(tracking_off, F.lit(False)), device["advertisingId"]),
        "user_id": m["userId"],
        "session_id": F.col("ctx.sessionId"),
        "ip": F.coalesce(F.col("ctx.ip"), m["request_ip"]),
        "user_agent": F.col("ctx.userAgent"),
        "country": F.when(
            F.col("ctx.location.country").rlike("^[A-Za-z]{2}$"), F.col("ctx.location.country")
        ),
        "page": first_of(F.col("ctx.page.path"), props["path"]),
        "page_url": first_of(F.col("ctx.page.url"), props["url"]),
        "page_title": first_of(F.col("ctx.page.title"), props["title"]),
        "referrer": first_of(F.col("ctx.page.referrer"), props["referrer"]),
        "quantity": F.regexp_replace(props_text["quantity"], r"\.0+$", ""),
        "utm_source": F.col("ctx.campaign.source"),
        "utm_medium": F.col("ctx.campaign.medium"),
        "utm_campaign": F.col("ctx.campaign.name"),
        "utm_term": F.col("ctx.campaign.term"),
        "utm_content": F.col("ctx.campaign.content"),
        "ad_consent": ad_consent(
            F.col("ctx.consent.categoryPreferences"), source.ad_consent_categories
        ),
        "items": products(props, fields),
    }
    pii = {
        "email": _trait("email"),
        "phone": _trait("phone"),
        "first_name": F.coalesce(_trait("firstName"), F.when(F.size(full_name) == 2, full_name[0])),
        "last_name": F.coalesce(_trait("lastName"), F.when(F.size(full_name) == 2, full_name[1])),
    }
    consumed = [n for names_ in fields.values() for n in names_]
    consumed += ["products", "path", "url", "title", "referrer", *PERSONAL]
    bad = ~F.col("is_json") | F.col("line_error").isNotNull()
    return bronze(
        parsed,
        out,
        pii=pii,
        extra=merge_maps(unmapped(m, TOP_LEVEL), unmapped(props, consumed, prefix="properties.")),
        unparsed=F.when(bad, mask_pii(F.coalesce(F.col("bad_text"), F.col("value")))),
        format_error=format_error(call, m),
        arrival_day=arrival_day,
        default_country=default_country,
    )
