"""The generated world written as each collector writes it: the platform's native NDJSON,
Segment's and RudderStack's S3 logs, Snowplow's enriched TSV and GA4's BigQuery export.

An encoder turns one native event into the lines its collector would have written (usually
one; Snowplow states consent in an event of its own) and names the file it lands in, laid out
as that collector lays out its bucket. Nothing here draws from the people's random streams:
what varies per event (a device's clock skew, network and send delays, generated ids) is
derived from the event id, so every format carries the same world and the same truth.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta

from jobs.ingest.formats.snowplow import FIELDS as SNOWPLOW_FIELDS

FORMATS = ("native", "segment", "rudderstack", "snowplow", "ga4")
SOURCES = ("web", "app", "email")
# --format mix: the web through Segment, the app through Snowplow, email as the ESP exports it
MIX = {"web": "segment", "app": "snowplow", "email": "native"}
COUNTRY_NAMES = {"US": "United States", "GB": "United Kingdom", "FR": "France", "DE": "Germany"}
SITE = "https://shop.example.com"


def parse_formats(text: str) -> dict[str, str]:
    """``native`` / ``segment`` / ... (every source), ``mix``, or ``web=segment,app=...``."""
    if text == "mix":
        return dict(MIX)
    if text in FORMATS:
        return dict.fromkeys(SOURCES, text)
    out = dict.fromkeys(SOURCES, "native")
    for part in text.split(","):
        source, sep, fmt = part.partition("=")
        if not sep or source not in SOURCES or fmt not in FORMATS:
            raise ValueError(
                f"--format {text!r}: expected one of {', '.join(FORMATS)}, 'mix', or "
                f"source=format pairs ({', '.join(SOURCES)}), e.g. web=segment,app=snowplow"
            )
        out[source] = fmt
    return out


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("|".join(map(str, parts)).encode()).digest()


def _uuid(*parts: object) -> str:
    return str(uuid.UUID(bytes=_digest(*parts)[:16], version=4))


def _when(e: dict) -> datetime:
    return datetime.strptime(e["event_ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _day_ms(dt: str) -> int:
    return int(datetime.fromisoformat(dt).replace(tzinfo=UTC).timestamp() * 1000)


class Clocks:
    """The four times a collector records for one event: the device's clock is off for some
    (up to three hours either way), the event is sent after a delay (a day when it arrives in
    the next day's folder), and the network adds up to 250 ms. Correcting the device's clock
    gives back the true time plus the network delay, which is what the truth records."""

    def __init__(self, e: dict, arrival: str):
        rng = random.Random(_digest("clock", e["event_id"]))
        true = _when(e)
        self.skew = timedelta(seconds=rng.choice([0, 0, 0, 0, rng.randint(-10800, 10800)]))
        late = arrival > true.date().isoformat()
        self.delay = timedelta(days=1) if late else timedelta(milliseconds=rng.randint(50, 20000))
        self.network = timedelta(milliseconds=rng.randint(0, 250))
        self.created = true + self.skew  # the device's clock at the event
        self.sent = true + self.delay + self.skew  # the device's clock when sending
        self.received = true + self.delay + self.network  # the collector's clock
        self.corrected = self.received - (self.sent - self.created)


class Encoder:
    """The native format: the event as it is."""

    name = "native"

    def lines(self, e: dict, arrival: str) -> list[str]:
        return [json.dumps(e, ensure_ascii=False)]

    def malformed(self, kind: str, e: dict, arrival: str, rng: random.Random) -> str:
        if kind == "truncated":
            return json.dumps(e)[: rng.randint(5, 40)]
        if kind == "not_json":
            return "<html><body>502 Bad Gateway</body></html>"
        bad = dict(e, event_id="bad-" + e["event_id"])
        if kind == "bad_timestamp":
            bad["event_ts"] = "2026-13-45T99:00:00Z"
        elif kind == "missing_event_id":
            del bad["event_id"]
        else:
            bad["price"] = "abc"
        return json.dumps(bad)

    def path(self, source: str, arrival: str, shard: int) -> str:
        return f"{source}/dt={arrival}/part-{shard:04d}.ndjson.gz"

    def file_day(self, e: dict, arrival: str) -> str:
        """The day whose file an event lands in: the day it arrived (GA4: the event's day)."""
        return arrival

    def writes_announced_bots(self) -> bool:
        return True

    def source_entry(self, source: str) -> dict:
        return {"name": source, "format": self.name}


class SegmentEncoder(Encoder):
    """Segment spec messages as the S3 destination writes them (gzipped NDJSON under
    ``segment-logs/<source-id>/<received day in epoch ms>/``)."""

    name = "segment"
    CHANNELS = {"web": "browser", "app": "mobile", "email": "server"}
    LIBRARIES = {"web": "analytics.js", "app": "analytics-ios", "email": "analytics-python"}

    def source_id(self, source: str) -> str:
        return "Gen" + hashlib.md5(f"{self.name}-{source}".encode()).hexdigest()[:7]

    def path(self, source: str, arrival: str, shard: int) -> str:
        ms = _day_ms(arrival)
        name = f"{ms + 3_600_000 + shard}.{_uuid(self.name, source, arrival, shard)}.gz"
        return f"{source}/segment-logs/{self.source_id(source)}/{ms}/{name}"

    def call(self, e: dict) -> tuple[str, dict]:
        """(message type, the type's own fields)."""
        t = e["event_type"]
        product = {
            "product_id": e.get("product_id"),
            "category": e.get("category"),
            "price": e.get("price"),
        }
        if t == "product_view":
            return "track", {"event": "Product Viewed", "properties": product}
        if t == "add_to_cart":
            product["quantity"] = e.get("quantity")
            return "track", {"event": "Product Added", "properties": product}
        if t == "purchase":
            product["quantity"] = e.get("quantity")
            props = {
                "order_id": e.get("order_id"),
                "revenue": e.get("revenue"),
                "currency": e.get("currency"),
                "products": [product],
            }
            return "track", {"event": "Order Completed", "properties": props}
        if t == "login":
            traits = {k: e[k] for k in ("email", "phone") if e.get(k)}
            return "identify", {"traits": traits}
        if t == "page_view":
            return "page", {"properties": {"path": e.get("page")}}
        if t == "email_open":
            return "track", {"event": "Email Opened", "properties": _campaign(e)}
        if t == "email_click":
            props = {**_campaign(e), "link_url": SITE + e.get("page", "")}
            return "track", {"event": "Email Link Clicked", "properties": props}
        return "track", {"event": t, "properties": {}}

    def context(self, e: dict, source: str) -> dict:
        ctx = {"library": {"name": self.LIBRARIES[source], "version": "4.1.0"}}
        ctx.update({"ip": e.get("ip"), "userAgent": e.get("user_agent")})
        ctx["location"] = {"country": e.get("country")}
        if e.get("page") and source != "email":
            ctx["page"] = {"path": e["page"], "url": SITE + e["page"]}
        if e.get("device_id"):
            ctx["device"] = {"advertisingId": e["device_id"], "adTrackingEnabled": True}
        if e.get("ad_consent") is not None:
            prefs = {"Advertising": e["ad_consent"], "Analytics": True}
            ctx["consent"] = {"categoryPreferences": prefs}
        if source == "email" and e.get("email"):
            ctx["traits"] = {"email": e["email"]}
        return {k: v for k, v in ctx.items() if v is not None}

    def message(self, e: dict, arrival: str) -> dict:
        source = e["source"]
        clocks = Clocks(e, arrival)
        kind, own = self.call(e)
        anonymous = e.get("anonymous_id")
        if anonymous is None and e.get("device_id"):  # mobile libraries always set one
            anonymous = "ios-" + _uuid("install", e["device_id"])
        msg = {
            "messageId": e["event_id"],
            "type": kind,
            **own,
            "anonymousId": anonymous,
            "userId": e.get("user_id"),
            "channel": self.CHANNELS[source],
            "context": self.context(e, source),
            "originalTimestamp": _iso(clocks.created),
            "sentAt": _iso(clocks.sent),
            "receivedAt": _iso(clocks.received),
            "timestamp": _iso(clocks.corrected),
            "version": 2,
        }
        return {k: v for k, v in msg.items() if v is not None}

    def lines(self, e: dict, arrival: str) -> list[str]:
        return [json.dumps(self.message(e, arrival), ensure_ascii=False)]

    def malformed(self, kind: str, e: dict, arrival: str, rng: random.Random) -> str:
        msg = self.message(dict(e, event_id="bad-" + e["event_id"]), arrival)
        if kind == "truncated":
            return json.dumps(msg)[: rng.randint(5, 40)]
        if kind == "not_json":
            return "<html><body>502 Bad Gateway</body></html>"
        if kind == "bad_timestamp":
            for key in ("originalTimestamp", "sentAt", "receivedAt", "timestamp"):
                msg[key] = "2026-13-45T99:00:00Z"
        elif kind == "missing_event_id":
            del msg["messageId"]
        else:
            msg["type"], msg["event"] = "track", "Product Viewed"
            msg["properties"] = {"product_id": e.get("product_id"), "price": "abc"}
        return json.dumps(msg)


def _campaign(e: dict) -> dict:
    return {"campaign_id": e.get("campaign_id"), "email_subject": "This week at the shop"}


class RudderStackEncoder(SegmentEncoder):
    """The same spec as RudderStack's object-storage destination writes it: the client's IP
    as ``request_ip``, its own channel names and ``rudderId``, under
    ``rudder-logs/<source-id>/<MM-DD-YYYY>/<unix seconds>.<source-id>.<uuid>.json.gz``."""

    name = "rudderstack"
    CHANNELS = {"web": "web", "app": "mobile", "email": "server"}

    def path(self, source: str, arrival: str, shard: int) -> str:
        day = date.fromisoformat(arrival)
        sid = self.source_id(source)
        seconds = _day_ms(arrival) // 1000 + 3600 + shard
        name = f"{seconds}.{sid}.{_uuid(self.name, source, arrival, shard)}.json.gz"
        return f"{source}/rudder-logs/{sid}/{day.strftime('%m-%d-%Y')}/{name}"

    def message(self, e: dict, arrival: str) -> dict:
        msg = super().message(e, arrival)
        msg.pop("version", None)
        ip = msg["context"].pop("ip", None)
        if ip:
            msg["request_ip"] = ip
        msg["rudderId"] = _uuid("rudder", msg.get("userId"), msg.get("anonymousId"))
        return msg


class SnowplowEncoder(Encoder):
    """Snowplow enriched events, 131 tab-separated fields, as the S3 loader writes them (one
    gzipped file per load, named by the load's time). E-commerce through the e-commerce
    plugin's action event and its product / transaction entities, logins as ``identify``,
    consent as a ``consent_preferences`` event of its own."""

    name = "snowplow"
    PLATFORMS = {"web": "web", "app": "mob", "email": "srv"}
    ECOM = "iglu:com.snowplowanalytics.snowplow.ecommerce"
    ACTIONS = {
        "product_view": "product_view",
        "add_to_cart": "add_to_cart",
        "purchase": "transaction",
    }

    def path(self, source: str, arrival: str, shard: int) -> str:
        return f"{source}/{arrival}-2330{shard:02d}-{_uuid(self.name, source, arrival, shard)}.gz"

    def _entity(self, schema: str, data: dict) -> dict:
        return {"schema": schema, "data": data}

    def _event_fields(self, e: dict) -> dict:
        t = e["event_type"]
        entities = []
        out: dict = {}
        if t in self.ACTIONS:
            out["event"] = "unstruct"
            action = {"type": self.ACTIONS[t], "name": None}
            out["unstruct"] = self._entity(
                f"{self.ECOM}/snowplow_ecommerce_action/jsonschema/1-0-2", action
            )
            product = {
                "id": e["product_id"],
                "category": e["category"],
                "price": e["price"],
                "currency": "USD",
            }
            if e.get("quantity") is not None:
                product["quantity"] = e["quantity"]
            entities.append(self._entity(f"{self.ECOM}/product/jsonschema/1-0-0", product))
            if t == "purchase":
                tx = {
                    "transaction_id": e["order_id"],
                    "revenue": e["revenue"],
                    "currency": e["currency"],
                    "payment_method": "card",
                    "total_quantity": e.get("quantity") or 1,
                }
                entities.append(self._entity(f"{self.ECOM}/transaction/jsonschema/1-0-0", tx))
        elif t == "login":
            out["event"] = "unstruct"
            data = {"id": e.get("user_id"), "email": e.get("email")}
            schema = "iglu:com.snowplowanalytics.snowplow/identify/jsonschema/1-0-0"
            out["unstruct"] = self._entity(schema, data)
        elif t in ("email_open", "email_click"):
            out.update(
                event="struct", se_category="email", se_action=t, se_label=e.get("campaign_id")
            )
            user = {
                "id": "r-" + _digest(e.get("email"))[:6].hex(),
                "email": e.get("email"),
                "is_guest": True,
            }
            entities.append(self._entity(f"{self.ECOM}/user/jsonschema/1-0-0", user))
        else:
            out["event"] = t
        out["entities"] = entities
        return out

    def _row(self, e: dict, arrival: str, event_id: str, fields: dict) -> dict:
        source = e["source"]
        c = Clocks(e, arrival)
        entities = list(fields.pop("entities", []))
        if e.get("device_id"):
            mobile = {
                "osType": "ios",
                "osVersion": "17.5",
                "deviceManufacturer": "Apple",
                "deviceModel": "iPhone15,2",
                "appleIdfa": e["device_id"],
            }
            entities.append(
                self._entity(
                    "iglu:com.snowplowanalytics.snowplow/mobile_context/jsonschema/1-0-2", mobile
                )
            )
        row = {
            "app_id": f"shop-{source}",
            "platform": self.PLATFORMS[source],
            "etl_tstamp": _sp(c.received + timedelta(seconds=2)),
            "collector_tstamp": _sp(c.received),
            "dvce_created_tstamp": _sp(c.created),
            "dvce_sent_tstamp": _sp(c.sent),
            "derived_tstamp": _sp(c.corrected),
            "event_id": event_id,
            "v_tracker": "js-3.24.0" if source == "web" else "ios-6.0.0",
            "v_collector": "ssc-3.2.0-kinesis",
            "v_etl": "snowplow-enrich-kinesis-5.0.0",
            "user_id": e.get("user_id"),
            "user_ipaddress": e.get("ip"),
            "domain_userid": e.get("anonymous_id"),
            "domain_sessionid": e.get("session_id"),
            "geo_country": e.get("country"),
            "useragent": e.get("user_agent"),
            "page_urlpath": e.get("page"),
            "page_url": SITE + e["page"] if e.get("page") else None,
            **{k: v for k, v in fields.items() if k != "unstruct"},
        }
        if fields.get("unstruct"):
            row["unstruct_event"] = json.dumps(
                {
                    "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
                    "data": fields["unstruct"],
                }
            )
        if entities:
            row["contexts"] = json.dumps(
                {
                    "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1",
                    "data": entities,
                }
            )
        return row

    def _tsv(self, row: dict) -> str:
        return "\t".join("" if row.get(f) is None else str(row[f]) for f in SNOWPLOW_FIELDS)

    def lines(self, e: dict, arrival: str) -> list[str]:
        out = [self._tsv(self._row(e, arrival, e["event_id"], self._event_fields(e)))]
        if e.get("ad_consent") is not None:
            granted = e["ad_consent"]
            data = {
                "basisForProcessing": "consent",
                "consentUrl": SITE + "/privacy",
                "consentVersion": "2.0",
                "consentScopes": ["necessary", "analytics", "advertisement"]
                if granted
                else ["necessary"],
                "domainsApplied": ["shop.example.com"],
                "eventType": "allow_all" if granted else "allow_selected",
            }
            schema = "iglu:com.snowplowanalytics.snowplow/consent_preferences/jsonschema/1-0-0"
            consent = {"event": "unstruct", "unstruct": self._entity(schema, data)}
            consent_id = _uuid("consent", e["event_id"])
            out.append(self._tsv(self._row(e, arrival, consent_id, consent)))
        return out

    def malformed(self, kind: str, e: dict, arrival: str, rng: random.Random) -> str:
        row = self._row(e, arrival, "bad-" + e["event_id"], self._event_fields(e))
        if kind == "truncated":
            return self._tsv(row)[: rng.randint(20, 200)]
        if kind == "not_json":
            return "<html><body>502 Bad Gateway</body></html>"
        if kind == "bad_timestamp":
            row["derived_tstamp"] = row["collector_tstamp"] = "2026-13-45 99:00:00.000"
        elif kind == "missing_event_id":
            row["event_id"] = None
        else:
            row.update(
                event="transaction_item", ti_sku=e.get("product_id"), ti_price="abc", ti_quantity=1
            )
        return self._tsv(row)


def _sp(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def _ga4_params(e: dict) -> list[tuple]:
    """An event's GA4 ``event_params`` as (key, value type, value)."""
    params = [("ga_session_id", "int_value", _session_number(e.get("session_id")))]
    if e.get("page"):
        params.append(("page_location", "string_value", SITE + e["page"]))
    for key in ("email", "phone"):
        if e.get(key):
            params.append((key, "string_value", e[key]))
    if e.get("campaign_id"):
        params.append(("campaign_id", "string_value", e["campaign_id"]))
    if e["event_type"] == "purchase":
        params += [
            ("transaction_id", "string_value", e["order_id"]),
            ("currency", "string_value", e["currency"]),
            ("value", "double_value", e["revenue"]),
        ]
    return params


class Ga4Encoder(Encoder):
    """GA4's BigQuery export as ``bq extract`` writes NDJSON: one folder per daily table
    (``events_YYYYMMDD``, the event's day), 64-bit integers as text, null fields left out.
    GA4 drops known bots itself, so crawlers announced in the user agent are not written."""

    name = "ga4"
    NAMES = {
        "product_view": "view_item",
        "add_to_cart": "add_to_cart",
        "purchase": "purchase",
        "page_view": "page_view",
        "login": "login",
    }
    PLATFORMS = {"web": "WEB", "app": "IOS", "email": "WEB"}

    def writes_announced_bots(self) -> bool:
        return False

    def path(self, source: str, arrival: str, shard: int) -> str:
        return f"{source}/events_{arrival.replace('-', '')}/part-{shard:012d}.json.gz"

    def file_day(self, e: dict, arrival: str) -> str:
        return e["event_ts"][:10]  # the daily table of the event's day, exported again

    def row(self, e: dict, arrival: str) -> dict:
        t = e["event_type"]
        c = Clocks(e, arrival)
        ts = c.corrected
        params = _ga4_params(e)
        pseudo = e.get("anonymous_id")
        if pseudo is None and e.get("device_id"):
            pseudo = _digest("instance", e["device_id"])[:16].hex()
        row = {
            "event_date": ts.strftime("%Y%m%d"),
            "event_timestamp": str(int(ts.timestamp() * 1_000_000)),
            "event_name": self.NAMES.get(t, t),
            "event_params": [_param(k, kind, v) for k, kind, v in params if v is not None],
            "user_id": e.get("user_id"),
            "user_pseudo_id": pseudo,
            "platform": self.PLATFORMS[e["source"]],
            "stream_id": str(int.from_bytes(_digest("stream", e["source"])[:4], "big")),
            "geo": {"country": COUNTRY_NAMES.get(e.get("country"), e.get("country"))},
        }
        device = {"category": "mobile" if e.get("device_id") else "desktop"}
        if e.get("device_id"):
            device.update(advertising_id=e["device_id"], is_limited_ad_tracking="No")
        row["device"] = device
        if e.get("ad_consent") is not None:
            yes = "Yes" if e["ad_consent"] else "No"
            row["privacy_info"] = {"analytics_storage": "Yes", "ads_storage": yes}
        if t in ("product_view", "add_to_cart", "purchase"):
            item = {"item_id": e["product_id"], "item_category": e["category"], "price": e["price"]}
            item["quantity"] = str(e.get("quantity") or 1)
            row["items"] = [item]
        if t == "purchase":
            row["ecommerce"] = {"transaction_id": e["order_id"], "purchase_revenue": e["revenue"]}
        return {k: v for k, v in row.items() if v is not None}

    def lines(self, e: dict, arrival: str) -> list[str]:
        return [json.dumps(self.row(e, arrival), ensure_ascii=False)]

    def malformed(self, kind: str, e: dict, arrival: str, rng: random.Random) -> str:
        row = self.row(dict(e, session_id=f"bad-{e.get('session_id')}"), arrival)
        if kind == "truncated":
            return json.dumps(row)[: rng.randint(5, 40)]
        if kind == "not_json":
            return "<html><body>502 Bad Gateway</body></html>"
        if kind == "bad_timestamp":
            row["event_timestamp"] = "2026-13-45"
        elif kind == "missing_event_id":
            del row["event_timestamp"]  # what makes a GA4 event distinct
        else:
            row["event_name"] = "view_item"
            row["items"] = [{"item_id": e.get("product_id"), "price": "abc"}]
        return json.dumps(row)


def _session_number(session: str | None) -> str | None:
    return None if session is None else str(int.from_bytes(_digest(session)[:4], "big"))


def _param(key: str, kind: str, value) -> dict:
    return {"key": key, "value": {kind: value if kind == "double_value" else str(value)}}


ENCODERS: dict[str, Encoder] = {
    e.name: e
    for e in (Encoder(), SegmentEncoder(), RudderStackEncoder(), SnowplowEncoder(), Ga4Encoder())
}


def sources_config(formats: dict[str, str]) -> list[dict]:
    """``ingest.sources`` for a world written in these formats under one raw root."""
    return [ENCODERS[formats[s]].source_entry(s) for s in SOURCES]
