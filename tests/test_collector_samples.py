"""Examples published by Segment, RudderStack, Snowplow and GA4 tooling (tests/fixtures/
collectors, each with its source and licence) through the format mappings, checked field by
field in silver and in the identity graph. The expected values are read from the samples
themselves (or computed by hand: hashes with hashlib, clock corrections with datetime)."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs.config import SourceSettings
from jobs.identity.components import connected_components
from jobs.identity.graph import build_edges
from jobs.ingest.events import split_bronze
from jobs.ingest.formats import parse
from jobs.ingest.formats.snowplow import FIELDS
from jobs.ingest.formats.spec import SESSIONLESS
from jobs.ingest.sources import resolve_source

FIXTURES = Path(__file__).parent / "fixtures" / "collectors"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def ingest(spark, settings, fmt: str, lines: list[str], path: str, **options):
    """-> (bronze rows, silver rows by event id, quarantine rows) of ``lines`` read as one
    file of a source in ``fmt``."""
    source = resolve_source(settings, SourceSettings(name="samples", format=fmt, **options))
    frame = spark.createDataFrame([(v, path) for v in lines], "value string, source_file string")
    bronze = parse(frame, source, settings.ingest).localCheckpoint()
    timeout = settings.ingest.session_timeout_minutes if fmt in SESSIONLESS else None
    silver, quarantine = split_bronze(bronze, ["bot"], 10_000, session_timeout=timeout)
    return (
        bronze.collect(),
        {r["event_id"]: r.asDict() for r in silver.collect()},
        [r.asDict() for r in quarantine.collect()],
    )


def lines_of(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


SEGMENT_PATH = "s3a://raw/segment-logs/P0OJ3CTID1/1561075200000/1561118000000.x.gz"


@pytest.fixture(scope="module")
def segment(spark, settings):
    lines = lines_of("segment/messages.ndjson")
    return [json.loads(v) for v in lines], ingest(spark, settings, "segment", lines, SEGMENT_PATH)


def test_segment_examples_keep_their_ids_times_and_identifiers(segment):
    messages, (bronze, silver, quarantine) = segment
    assert len(bronze) == len(messages)
    assert {r["dt"] for r in bronze} == {"2019-06-21"}  # the received-day folder, epoch ms
    ids = [m.get("messageId") for m in messages]
    shared = "022bb90c-bbac-11e4-8dfc-aa07a5b093db"
    assert ids.count(shared) == 6  # the docs reuse one id: one event lands, five are duplicates
    for m in messages:
        row = silver.get(m.get("messageId"))
        if row is None or m["messageId"] == shared:
            continue
        # Segment's own `timestamp` is its clock correction: ours must give the same instant
        assert row["event_ts"] == utc(m["timestamp"]), m["messageId"]
        assert row["anonymous_id"] == m.get("anonymousId")
        assert row["user_id"] == m.get("userId")
        assert row["ip"] == m["context"].get("ip")
        assert row["page"] == m["context"]["page"]["path"]
        assert row["source"] == "web"  # analytics.js, channel "client"
    assert set(silver) == {i for i in ids if i} - {"delete-reg-6543321::job-2-P0OJ3CTID1"}
    reasons = {(q["event_id"], q["reason"]) for q in quarantine}
    assert ("delete-reg-6543321::job-2-P0OJ3CTID1", "unknown_message_type") in reasons
    assert sum(1 for q in quarantine if q["reason"] == "missing_event_id") == ids.count(None)


def test_segment_calls_map_onto_event_types_traits_and_consent(segment, spark, settings):
    messages, (_, silver, _) = segment
    identify = silver["ajs-54ca80b0e856b62bb239ca9debbf5e2e"]
    assert identify["event_type"] == "identify"
    assert identify["email_sha256"] == sha("peter@example.com")
    # traits.name "Peter Gibbons": first and last name, hashed as Google and Meta want them
    assert identify["first_name_sha256"] == sha("peter")
    assert identify["last_name_meta_sha256"] == sha("gibbons")
    track = silver["ajs-920a8b6591f0d25cc117fb71602a6b17"]
    assert (track["event_type"], track["event_name"]) == ("Registered", "Registered")
    page = silver["ajs-472682d0fbe3250d9e436f18e18d1966"]
    assert (page["event_type"], page["event_name"], page["page_url"]) == (
        "page_view",
        "Home",
        "https://example.com/index.html",
    )
    alias = silver["ajs-d45a45c1384424545c2cff67345f25ce"]
    assert (alias["event_type"], alias["alt_anonymous_id"], alias["user_id"]) == (
        "alias",
        "97980cfea0067",
        "507f191e81",
    )
    assert silver["ajs-faf5e68c4da409781e30660f918d7be6"]["event_type"] == "group"
    # names a Signed Up event sends in its properties are hashed, never kept aside in clear
    kept = " ".join(str(b["extra_fields"]) for b in segment[1][0])
    assert "Peter" not in kept and "Gibbons" not in kept and "@" not in kept
    # the consent example carries no messageId; sent as a library sends it, it is a yes
    consent = next(m for m in messages if m.get("event", "").startswith("Segment Consent"))
    _, rows, _ = ingest(
        spark, settings, "segment", [json.dumps({**consent, "messageId": "c1"})], SEGMENT_PATH
    )
    assert (rows["c1"]["event_type"], rows["c1"]["ad_consent"]) == ("consent_update", True)
    no = {**consent, "messageId": "c2"}
    no["context"] = {"consent": {"categoryPreferences": {"Advertising": False, "Analytics": True}}}
    _, rows, _ = ingest(spark, settings, "segment", [json.dumps(no)], SEGMENT_PATH)
    assert rows["c2"]["ad_consent"] is False


def test_segment_order_completed_gives_a_row_per_product(spark, settings):
    """The docs' Order Completed (sent without the fields the library adds: we add a
    messageId and a timestamp): one purchase row per product, revenue price x quantity, which
    adds up to the order's stated revenue (25 = 19 + 2 x 3)."""
    sample = json.loads(lines_of("segment/messages.ndjson")[19])
    assert sample["event"] == "Order Completed"
    msg = {**sample, "type": "track", "messageId": "oc-1", "timestamp": "2026-11-02T10:00:00Z"}
    bronze, silver, quarantine = ingest(spark, settings, "segment", [json.dumps(msg)], SEGMENT_PATH)
    assert not quarantine and len(bronze) == 1
    products = sample["properties"]["products"]
    rows = sorted(silver.values(), key=lambda r: r["line_item"])
    assert [r["event_id"] for r in rows] == ["oc-1#1", "oc-1#2"]
    for row, p in zip(rows, products, strict=True):
        assert row["event_type"] == "purchase" and row["event_name"] == "Order Completed"
        assert row["order_id"] == sample["properties"]["orderId"]
        assert (row["product_id"], row["category"]) == (p["productId"], p["category"])
        assert (row["price"], row["quantity"]) == (p["price"], p["quantity"])
        assert row["revenue"] == p["price"] * p["quantity"]
        assert row["currency"] == "USD"
    assert sum(r["revenue"] for r in rows) == sample["properties"]["revenue"]


def test_segment_events_get_sessions_of_30_minutes_without_an_event(spark, settings):
    """Segment sends no session id: a cookie's events are one session until 30 minutes pass
    without an event; a session id that a message does carry is kept; email has none."""
    sent = [  # (message id, cookie, minutes after 10:00, event, session id sent)
        ("a1", "A", 0, "Product Viewed", None),
        ("a2", "A", 20, "Product Viewed", None),
        ("a3", "A", 50, "Product Added", None),  # 30 minutes after a2: still the same session
        ("a4", "A", 81, "Product Viewed", None),  # 31 minutes: a new one
        ("b1", "B", 5, "Product Viewed", None),
        ("e1", "A", 30, "Email Opened", None),
        ("k1", "C", 0, "Product Viewed", "kept-1"),
    ]
    lines = [
        json.dumps(
            {
                "type": "track",
                "messageId": mid,
                "anonymousId": cookie,
                "event": event,
                "timestamp": f"2026-11-02T{10 + minute // 60:02d}:{minute % 60:02d}:00Z",
                "context": {"sessionId": session} if session else {},
            }
        )
        for mid, cookie, minute, event, session in sent
    ]
    _, silver, quarantine = ingest(spark, settings, "segment", lines, SEGMENT_PATH)
    assert not quarantine
    session = {k: r["session_id"] for k, r in silver.items()}
    assert session["a1"] == session["a2"] == session["a3"] != session["a4"]
    assert len({session["a1"], session["a4"], session["b1"]}) == 3
    assert session["e1"] is None and session["k1"] == "kept-1"
    first_of_a = "A|2026-11-02T10:00:00.000000"
    assert session["a1"] == "s-" + sha(first_of_a)[:32]


def test_rudderstack_examples(spark, settings):
    messages = [json.loads(v) for v in lines_of("rudderstack/messages.ndjson")]
    path = "s3a://raw/rudder-logs/1uXKx/06-22-2022/1655881279.1uXKx.u.json.gz"
    bronze, silver, _ = ingest(
        spark, settings, "rudderstack", lines_of("rudderstack/messages.ndjson"), path
    )
    assert {r["dt"] for r in bronze} == {"2022-06-22"}  # MM-DD-YYYY folder
    kafka = silver["4bb69e26-b5a6-446a-a140-dbb6263369c9"]
    m = messages[5]
    assert kafka["ip"] == m["request_ip"]  # RudderStack's own field for the client's IP
    assert kafka["email_sha256"] == sha(m["context"]["traits"]["email"])
    assert kafka["event_type"] == "add_to_cart"
    # receivedAt - (sentAt - originalTimestamp), in UTC: 12:31:15.656+05:30
    assert kafka["event_ts"] == datetime(2022, 6, 22, 7, 1, 15, 656000)
    identify = silver["508d5e8c-96e4-4301-bd46-1890dba5c866"]
    assert identify["email_sha256"] == sha(messages[0]["context"]["traits"]["email"])
    assert identify["source"] == "web"
    # the web and Android examples share a messageId: the first file's line wins
    android = [x for x in messages if x.get("channel") == "mobile"][0]
    both = [x for x in messages if x["messageId"] == android["messageId"]]
    assert len(both) == 2 and silver[android["messageId"]]["event_type"] == "Product Reviewed"


def _snowplow_lines() -> list[str]:
    out = []
    for name in sorted((FIXTURES / "snowplow").glob("rdbloader-*.tsv")):
        out += name.read_text().splitlines()
    return out


def test_snowplow_enriched_lines(spark, settings):
    lines = _snowplow_lines()
    assert all(len(v.split("\t")) == 131 for v in lines)
    cut = lines[0].rsplit("\t", 3)[0]  # a line cut short
    path = "s3a://raw/enriched/2022-02-02-010203-3e3b.gz"
    bronze, silver, quarantine = ingest(spark, settings, "snowplow", [*lines, cut], path)
    assert {r["dt"] for r in bronze} == {"2022-02-02"}  # from the loader's file name
    reasons = sorted(q["reason"] for q in quarantine)
    fields = [dict(zip(FIELDS, v.split("\t"), strict=True)) for v in lines]
    # the generated struct events carry no se_action: quarantined with that reason
    no_action = [f for f in fields if f["event"] == "struct" and not f["se_action"]]
    assert reasons == sorted(["wrong_field_count"] + ["missing_se_action"] * len(no_action))
    landed = [f for f in fields if f not in no_action]
    # two 2014 events share one event id: one lands
    assert len(silver) == len({f["event_id"] for f in landed}) == len(landed) - 1
    once = [f for f in landed if [g["event_id"] for g in landed].count(f["event_id"]) == 1]
    for f in once:
        row = silver[f["event_id"]]
        if f["event"] == "page_view":
            assert row["event_type"] == "page_view"
            assert (row["page"], row["page_url"]) == (f["page_urlpath"], f["page_url"])
        assert row["anonymous_id"] == (f["domain_userid"] or None)
        assert row["alt_anonymous_id"] == (f["network_userid"] or None)
        assert row["ip"] == f["user_ipaddress"]
        when = f["derived_tstamp"] or f["collector_tstamp"]
        assert abs((row["event_ts"] - datetime.fromisoformat(when[:26])).total_seconds()) < 1e-3
    link = [f for f in landed if f["event"] == "unstruct"]
    assert {silver[f["event_id"]]["event_type"] for f in link} == {"link_click"}


ENTITY_COLUMNS = {  # dbt-snowplow-ecommerce's warehouse columns -> the enriched event's JSON
    "unstruct_event_com_snowplowanalytics_snowplow_ecommerce_snowplow_ecommerce_action_1_0_0": (
        "iglu:com.snowplowanalytics.snowplow.ecommerce/snowplow_ecommerce_action/jsonschema/1-0-0"
    ),
    "contexts_com_snowplowanalytics_snowplow_ecommerce_product_1_0_0": (
        "iglu:com.snowplowanalytics.snowplow.ecommerce/product/jsonschema/1-0-0"
    ),
    "contexts_com_snowplowanalytics_snowplow_ecommerce_transaction_1_0_0": (
        "iglu:com.snowplowanalytics.snowplow.ecommerce/transaction/jsonschema/1-0-0"
    ),
    "contexts_com_snowplowanalytics_snowplow_ecommerce_cart_1_0_0": (
        "iglu:com.snowplowanalytics.snowplow.ecommerce/cart/jsonschema/1-0-0"
    ),
}


def _ecommerce_rows() -> list[dict]:
    with open(
        FIXTURES / "snowplow" / "dbt-snowplow-ecommerce_8be9608_snowplow_ecommerce_events.csv"
    ) as fh:
        return list(csv.DictReader(fh))


def _as_enriched(row: dict) -> str:
    """A warehouse row of the dbt package's seed back into the enriched TSV it was loaded from:
    atomic columns by name, entity columns wrapped in their self-describing JSON."""
    out = {f: row.get(f, "") for f in FIELDS}
    for col in ("collector_tstamp", "derived_tstamp", "dvce_created_tstamp", "dvce_sent_tstamp"):
        out[col] = out[col].replace("+00:00", "")
    entities = []
    for col, schema in ENTITY_COLUMNS.items():
        data = json.loads(row.get(col) or "null")
        if col.startswith("unstruct_event") and data:
            inner = {"schema": schema, "data": data}
            out["unstruct_event"] = json.dumps(
                {"schema": "iglu:x/unstruct_event/jsonschema/1-0-0", "data": inner}
            )
        elif data:
            entities += [{"schema": schema, "data": d} for d in data]
    if entities:
        out["contexts"] = json.dumps(
            {"schema": "iglu:x/contexts/jsonschema/1-0-0", "data": entities}
        )
    return "\t".join(out[f] for f in FIELDS)


def test_snowplow_ecommerce_actions_and_products(spark, settings):
    rows = _ecommerce_rows()
    lines = [_as_enriched(r) for r in rows]
    _, silver, quarantine = ingest(
        spark, settings, "snowplow", lines, "s3a://raw/e/2022-12-22-132548-a.gz"
    )
    assert not quarantine
    action_col = next(iter(ENTITY_COLUMNS))
    product_col = "contexts_com_snowplowanalytics_snowplow_ecommerce_product_1_0_0"
    tx_col = "contexts_com_snowplowanalytics_snowplow_ecommerce_transaction_1_0_0"
    kinds = {
        "product_view": "product_view",
        "add_to_cart": "add_to_cart",
        "transaction": "purchase",
        "checkout_step": "checkout_step",
        "refund": "refund",
    }
    for r in rows:
        action = json.loads(r[action_col])["type"]
        products = json.loads(r[product_col] or "[]")
        got = sorted(
            (v for k, v in silver.items() if k.split("#")[0] == r["event_id"]),
            key=lambda v: v["line_item"] or 0,
        )
        assert len(got) == max(1, len(products)), r["event_id"]
        for row, p in zip(got, products, strict=False):
            assert row["event_type"] == kinds[action]
            assert (row["product_id"], row["category"]) == (p["id"], p["category"])
            assert row["price"] == float(p["price"])
        if action == "transaction":
            tx = json.loads(r[tx_col])[0]
            assert {row["order_id"] for row in got} == {tx["transaction_id"]}
            priced = all(p.get("price") is not None for p in products)
            want = [float(p["price"]) * int(p.get("quantity") or 1) for p in products]
            assert [row["revenue"] for row in got] == (want if priced else [float(tx["revenue"])])


def _ga4_lines() -> list[str]:
    return lines_of("ga4/ga4_export_rows__ArtemKorneevGA_dataform-ga4-sessions.ndjson") + lines_of(
        "ga4/ga4_export_row__Velir_dbt-ga4_session_start.ndjson"
    )


def _param(row: dict, key: str):
    for p in row["event_params"]:
        if p["key"] == key:
            v = p["value"]
            return next(
                (
                    v[t]
                    for t in ("string_value", "int_value", "double_value")
                    if v.get(t) is not None
                ),
                None,
            )
    return None


def test_ga4_export_rows(spark, settings, tmp_path):
    lines = _ga4_lines()
    rows = [json.loads(v) for v in lines]
    path = "s3a://raw/ga4/events_20231215/000000000000.json.gz"
    bronze, silver, quarantine = ingest(spark, settings, "ga4", lines, path)
    assert not quarantine and {r["dt"] for r in bronze} == {"2023-12-15"}
    by_row = {}
    for b, r in zip(bronze, rows, strict=True):
        by_row.setdefault(b["event_id"], r)
    # an event is its stream, user, microsecond time, name and parameters, as dbt-ga4 keys it
    # (its event_key): the fixture's two variants of one purchase (item_params added) are one
    key = {
        (r["stream_id"], r["user_pseudo_id"], r["event_timestamp"], r["event_name"])
        + (json.dumps(r["event_params"], sort_keys=True),)
        for r in rows
    }
    assert len(by_row) == len(key) == len(rows) - 1
    for event_id, r in by_row.items():
        got = sorted(
            (v for k, v in silver.items() if k.split("#")[0] == event_id),
            key=lambda v: v["line_item"] or 0,
        )
        items = r.get("items") or []
        assert len(got) == max(1, len(items))
        row = got[0]
        assert row["event_ts"] == datetime.fromtimestamp(
            int(r["event_timestamp"]) / 1e6, UTC
        ).replace(tzinfo=None)
        assert row["anonymous_id"] == r["user_pseudo_id"]
        assert row["page_url"] == _param(r, "page_location")
        ads = (r.get("privacy_info") or {}).get("ads_storage")
        assert row["ad_consent"] == {"Yes": True, "No": False}.get(ads)
        if r["event_name"] == "purchase":
            assert {g["order_id"] for g in got} == {r["ecommerce"]["transaction_id"]}
            assert [g["product_id"] for g in got] == [i["item_id"] for i in items]
            assert [g["revenue"] for g in got] == [
                float(i["price"]) * int(i["quantity"]) for i in items
            ]
            assert {g["event_type"] for g in got} == {"purchase"}
    # the same rows exported as Parquet give the same events, ids included
    parquet = tmp_path / "events_20231215"
    spark.read.json(
        str(FIXTURES / "ga4" / "ga4_export_rows__ArtemKorneevGA_dataform-ga4-sessions.ndjson")
    ).write.parquet(str(parquet))
    from jobs.ingest.run import _read_lines

    files = [str(p) for p in parquet.glob("*.parquet")]
    source = resolve_source(settings, SourceSettings(name="g", format="ga4"))
    again = parse(_read_lines(spark, files), source, settings.ingest)
    assert {r["event_id"] for r in again.collect()} == {b["event_id"] for b in bronze[:12]}


def test_one_login_seen_by_segment_and_snowplow_is_one_person(spark, settings):
    """A login on the web through Segment and in the app through Snowplow: one person, with
    the web cookie, the app's advertising id and the email of the identify call."""
    web = {
        "type": "identify",
        "messageId": "w1",
        "anonymousId": "cookie-1",
        "userId": "u-42",
        "traits": {"email": "Jane.Doe@Example.com"},
        "timestamp": "2026-11-02T10:00:00Z",
    }
    app = {f: "" for f in FIELDS}
    mobile = {
        "schema": "iglu:com.snowplowanalytics.snowplow/mobile_context/jsonschema/1-0-2",
        "data": {
            "appleIdfa": "IDFA-9",
            "osType": "ios",
            "osVersion": "17",
            "deviceManufacturer": "Apple",
            "deviceModel": "x",
        },
    }
    app.update(
        platform="mob",
        event="page_view",
        event_id="a1",
        user_id="u-42",
        collector_tstamp="2026-11-02 11:00:00.000",
        contexts=json.dumps({"schema": "iglu:x/contexts/jsonschema/1-0-1", "data": [mobile]}),
    )
    _, s1, _ = ingest(spark, settings, "segment", [json.dumps(web)], SEGMENT_PATH)
    _, s2, _ = ingest(
        spark,
        settings,
        "snowplow",
        ["\t".join(app[f] for f in FIELDS)],
        "s3a://r/2026-11-02-110000-x.gz",
    )
    cols = [
        "event_ts",
        "anonymous_id",
        "alt_anonymous_id",
        "device_id",
        "advertising_id",
        "user_id",
        "email_sha256",
        "phone_sha256",
    ]
    schema = ", ".join(f"{c} {'timestamp' if c == 'event_ts' else 'string'}" for c in cols)
    rows = [tuple(r[c] for c in cols) for r in [*s1.values(), *s2.values()]]
    events = spark.createDataFrame(rows, schema)
    edges = build_edges(events, None, [], [])
    comp = {
        r["node"]: r["component"]
        for r in connected_components(edges.select("src", "dst")).collect()
    }
    nodes = [
        "cookie:cookie-1",
        "user:u-42",
        "device:IDFA-9",
        "email:" + sha("jane.doe@example.com"),
    ]
    assert len({comp[n] for n in nodes}) == 1, comp
    assert s2["a1"]["source"] == "app"


def test_urls_lose_emails_and_phones_in_the_scanners_shapes_and_keep_the_rest(spark):
    from jobs.ingest.formats.common import mask_shapes
    from jobs.privacy.scan import scan_frame

    texts = {
        "https://shop.example.com/p/1234567890?ref=home": None,  # a product path's digits stay
        "/checkout?email=Jane.Doe%40x.com&e=jane.doe@example.com": (
            "/checkout?email=Jane.Doe%40x.com&e=<email>"
        ),
        "/call?n=+33 6 12 34 56 78&x=1": "/call?n=<phone>&x=1",
        "/us?phone=(555) 123-4567": "/us?phone=<phone>",
        "/order/555-123-4567": "/order/<phone>",
        "Spring sale 2026": None,
    }
    df = spark.createDataFrame([(t,) for t in texts], "text string")
    got = [r[0] for r in df.select(mask_shapes(F.col("text"))).collect()]
    assert got == [want or text for text, want in texts.items()]
    assert scan_frame(spark.createDataFrame([(g,) for g in got], "text string"), "urls") == []
