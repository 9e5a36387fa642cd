"""Snowplow enriched events: the 131 tab-separated fields the S3 loader writes (gzipped), an
empty field meaning null; contexts and self-describing events are JSON inside three of them.

- ``event_id`` is the event id; the event time is ``derived_tstamp`` (Snowplow's own
  correction of the device clock), else ``collector_tstamp``.
- ``domain_userid`` (or, on mobile, ``client_session.userId``) -> cookie, ``network_userid`` ->
  a second anonymous id, ``user_id`` -> user; the mobile context's ``appleIdfv`` -> device and
  ``appleIdfa`` / ``androidIdfa`` -> advertising id; the email of the ``identify`` event or of
  the e-commerce ``user`` entity, hashed.
- ``page_view`` -> page_view; a structured event takes ``se_action`` as its name; a
  self-describing event its schema's name, except the e-commerce action
  (``snowplow_ecommerce_action``), whose ``type`` maps onto the platform's types with its
  ``product`` and ``transaction`` entities, and the older ``add_to_cart`` /
  ``remove_from_cart``. Legacy e-commerce: each ``transaction_item`` is a purchase line (the
  order-level ``transaction`` keeps its name, so an order is not counted twice).
- Consent: ``consent_preferences`` (``allow_all``, or ``allow_selected`` with an advertising
  scope, is a yes; ``deny_all`` / ``withdrawn`` / ``expired`` or a selection without one is a
  no) and ``consent_withdrawn`` with ``all: true``.
- A line without exactly 131 fields is quarantined as ``wrong_field_count``.
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
    lookup,
    mask_pii,
    merge_maps,
    ts_text,
)

FIELDS = (
    "app_id platform etl_tstamp collector_tstamp dvce_created_tstamp event event_id txn_id "
    "name_tracker v_tracker v_collector v_etl user_id user_ipaddress user_fingerprint "
    "domain_userid domain_sessionidx network_userid geo_country geo_region geo_city geo_zipcode "
    "geo_latitude geo_longitude geo_region_name ip_isp ip_organization ip_domain ip_netspeed "
    "page_url page_title page_referrer page_urlscheme page_urlhost page_urlport page_urlpath "
    "page_urlquery page_urlfragment refr_urlscheme refr_urlhost refr_urlport refr_urlpath "
    "refr_urlquery refr_urlfragment refr_medium refr_source refr_term mkt_medium mkt_source "
    "mkt_term mkt_content mkt_campaign contexts se_category se_action se_label se_property "
    "se_value unstruct_event tr_orderid tr_affiliation tr_total tr_tax tr_shipping tr_city "
    "tr_state tr_country ti_orderid ti_sku ti_name ti_category ti_price ti_quantity "
    "pp_xoffset_min pp_xoffset_max pp_yoffset_min pp_yoffset_max useragent br_name br_family "
    "br_version br_type br_renderengine br_lang br_features_pdf br_features_flash "
    "br_features_java br_features_director br_features_quicktime br_features_realplayer "
    "br_features_windowsmedia br_features_gears br_features_silverlight br_cookies "
    "br_colordepth br_viewwidth br_viewheight os_name os_family os_manufacturer os_timezone "
    "dvce_type dvce_ismobile dvce_screenwidth dvce_screenheight doc_charset doc_width "
    "doc_height tr_currency tr_total_base tr_tax_base tr_shipping_base ti_currency "
    "ti_price_base base_currency geo_timezone mkt_clickid mkt_network etl_tags "
    "dvce_sent_tstamp refr_domain_userid refr_dvce_tstamp derived_contexts domain_sessionid "
    "derived_tstamp event_vendor event_name event_format event_version event_fingerprint "
    "true_tstamp"
).split()
assert len(FIELDS) == 131
INDEX = {name: i for i, name in enumerate(FIELDS)}
# fields kept as they came in extra_fields (the rest are mapped, or of no use downstream)
KEPT = ["app_id", "se_category", "se_label", "se_property", "se_value", "tr_total", "event_vendor"]
ECOMMERCE_ACTIONS = {
    "product_view": "product_view",
    "add_to_cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "list_view": "product_list_view",
    "list_click": "product_click",
    "checkout_step": "checkout_step",
    "transaction": "purchase",
    "refund": "refund",
    "promo_view": "promotion_view",
    "promo_click": "promotion_click",
}
PLATFORMS = {"web": "web", "mob": "app", "app": "app", "srv": "server", "tv": "app", "pc": "app"}
ENTITY = "array<struct<schema:string, data:map<string,string>>>"
REFUSALS = ["deny_all", "withdrawn", "expired"]


def _field(name: str) -> Column:
    return F.nullif(F.col("f")[INDEX[name]], F.lit(""))


def _schema_name(uri: Column) -> Column:
    """iglu:vendor/name/format/version -> name."""
    return F.regexp_extract(uri, r"^iglu:[^/]+/([^/]+)/", 1)


def _entities(name: str) -> Column:
    """The data of every context entity of schema ``name`` (any vendor and version)."""
    return F.filter(F.col("entities"), lambda e: _schema_name(e["schema"]) == name)


def _entity(name: str, key: str) -> Column:
    return F.try_element_at(_entities(name), F.lit(1))["data"][key]


def _consent(categories: list[str]) -> Column:
    ev, data = F.col("ue_name"), F.col("ue")
    scopes = F.from_json(data["consentScopes"], "array<string>")
    wanted = [c.lower() for c in categories]
    ad_scope = F.exists(scopes, lambda s: F.lower(s).isin(wanted))
    kind = data["eventType"]
    preferences = (
        F.when(kind == "allow_all", F.lit("true"))
        .when(kind.isin(REFUSALS), F.lit("false"))
        .when(kind == "allow_selected", F.when(ad_scope, F.lit("true")).otherwise("false"))
    )
    return F.when(ev == "consent_preferences", preferences).when(
        (ev == "consent_withdrawn") & (F.lower(data["all"]) == "true"), F.lit("false")
    )


def _products() -> Column:
    listed = _entities("product")
    items = F.transform(
        listed,
        lambda e: F.struct(
            e["data"]["id"].alias("product_id"),
            e["data"]["category"].alias("category"),
            e["data"]["price"].alias("price"),
            e["data"]["quantity"].alias("quantity"),
        ),
    )
    return F.when(F.size(listed) > 0, F.to_json(items))


def _event(names: dict[str, str]) -> tuple[Column, Column]:
    """(event name as sent, platform type)."""
    event, ue_name = _field("event"), F.col("ue_name")
    action = F.col("ue")["type"]
    name = (
        F.when(event == "struct", _field("se_action"))
        .when(event == "unstruct", F.when(ue_name == "snowplow_ecommerce_action", action))
        .otherwise(event)
    )
    name = F.coalesce(name, F.when(event == "unstruct", ue_name))
    mapped = F.coalesce(
        lookup(names, name),
        F.when(ue_name == "snowplow_ecommerce_action", lookup(ECOMMERCE_ACTIONS, action)),
        F.when(event == "transaction_item", F.lit("purchase")),
        F.when(event == "unstruct", ue_name),
        name,
    )
    return name, mapped


def _format_error() -> Column:
    event = _field("event")
    return (
        F.when(event.isNull(), F.lit("missing_event"))
        .when((event == "struct") & _field("se_action").isNull(), F.lit("missing_se_action"))
        .when(
            (event == "unstruct") & first_of(F.col("ue_name")).isNull(),
            F.lit("invalid_unstruct_event"),
        )
    )


def _fields(source: SourceSettings) -> dict[str, Column]:
    names = {k: v for k, v in source.event_names.items()}
    name, event_type = _event(names)
    ue, legacy_cart = F.col("ue"), F.col("ue_name").isin("add_to_cart", "remove_from_cart")
    item = _field("event") == "transaction_item"
    ts = F.coalesce(iso_ts(_field("derived_tstamp")), iso_ts(_field("collector_tstamp")))
    price = F.coalesce(F.when(item, _field("ti_price")), F.when(legacy_cart, ue["unitPrice"]))
    quantity = F.coalesce(F.when(item, _field("ti_quantity")), F.when(legacy_cart, ue["quantity"]))
    revenue = F.coalesce(
        F.when(item, F.try_multiply(price.try_cast("double"), quantity.try_cast("double"))),
        _entity("transaction", "revenue"),
        F.when(_field("event") == "transaction", _field("tr_total")),
    )
    platform = lookup(PLATFORMS, _field("platform"))
    return {
        "event_id": _field("event_id"),
        "event_type": event_type,
        "event_name": name,
        "event_ts": ts_text(ts, first_of(_field("derived_tstamp"), _field("collector_tstamp"))),
        "source": F.coalesce(platform, F.lit(source.channel), F.lit("web")),
        "anonymous_id": F.coalesce(_field("domain_userid"), _entity("client_session", "userId")),
        "alt_anonymous_id": _field("network_userid"),
        "device_id": _entity("mobile_context", "appleIdfv"),
        "advertising_id": first_of(
            _entity("mobile_context", "appleIdfa"), _entity("mobile_context", "androidIdfa")
        ),
        "user_id": F.coalesce(_field("user_id"), F.when(F.col("ue_name") == "identify", ue["id"])),
        "session_id": F.coalesce(
            _field("domain_sessionid"), _entity("client_session", "sessionId")
        ),
        "ip": _field("user_ipaddress"),
        "user_agent": _field("useragent"),
        "country": _field("geo_country"),
        "page": _field("page_urlpath"),
        "page_url": _field("page_url"),
        "page_title": _field("page_title"),
        "referrer": _field("page_referrer"),
        "product_id": F.coalesce(F.when(item, _field("ti_sku")), F.when(legacy_cart, ue["sku"])),
        "category": F.coalesce(
            F.when(item, _field("ti_category")), F.when(legacy_cart, ue["category"])
        ),
        "price": price,
        "quantity": F.regexp_replace(quantity, r"\.0+$", ""),
        "order_id": F.coalesce(
            F.when(item, _field("ti_orderid")),
            _field("tr_orderid"),
            _entity("transaction", "transaction_id"),
        ),
        "revenue": revenue.cast("string"),
        "currency": F.coalesce(
            _field("tr_currency"),
            _field("ti_currency"),
            _entity("transaction", "currency"),
            F.when(legacy_cart, ue["currency"]),
            F.try_element_at(_entities("product"), F.lit(1))["data"]["currency"],
        ),
        "utm_source": _field("mkt_source"),
        "utm_medium": _field("mkt_medium"),
        "utm_campaign": _field("mkt_campaign"),
        "utm_term": _field("mkt_term"),
        "utm_content": _field("mkt_content"),
        "ad_consent": _consent(source.ad_consent_categories),
        "items": _products(),
    }


def to_bronze(
    lines: DataFrame,
    arrival_day: Column,
    default_country: str,
    max_line_chars: int,
    source: SourceSettings,
) -> DataFrame:
    parsed = checked_lines(lines, max_line_chars)
    f = F.split(F.col("value"), "\t", -1)
    wrong_count = F.col("value").isNotNull() & (F.size(f) != len(FIELDS))
    parsed = parsed.withColumns(
        {
            "line_error": F.coalesce(
                F.col("line_error"), F.when(wrong_count, F.lit("wrong_field_count"))
            ),
            "f": F.when(~wrong_count, f),
        }
    )
    contexts = F.concat(
        F.coalesce(F.from_json(_field("contexts"), f"struct<data:{ENTITY}>")["data"], F.array()),
        F.coalesce(
            F.from_json(_field("derived_contexts"), f"struct<data:{ENTITY}>")["data"], F.array()
        ),
    )
    inner = F.from_json(
        _field("unstruct_event"), "struct<data:struct<schema:string, data:map<string,string>>>"
    )["data"]
    parsed = parsed.withColumns(
        {"entities": contexts, "ue_name": _schema_name(inner["schema"]), "ue": inner["data"]}
    )
    kept = F.map_from_arrays(
        F.array(*[F.lit(k) for k in KEPT]), F.array(*[mask_pii(_field(k)) for k in KEPT])
    )
    extra = merge_maps(F.map_filter(kept, lambda k, v: v.isNotNull()))
    unparsed = F.when(
        F.col("line_error").isNotNull(),
        mask_pii(F.coalesce(F.col("bad_text"), F.col("value"))),
    )
    return bronze(
        parsed,
        _fields(source),
        pii={
            "email": F.coalesce(
                F.when(F.col("ue_name") == "identify", F.col("ue")["email"]),
                _entity("user", "email"),  # the e-commerce user entity
            )
        },
        extra=extra,
        unparsed=unparsed,
        format_error=_format_error(),
        arrival_day=arrival_day,
        default_country=default_country,
    )
