"""Every column of the Google, Meta and The Trade Desk files, from raw customer records through
the ingest's hashing and the exporter, against the platform's own reference: Meta's SDK
(``facebook-business``), the UID2 SDK (``uid2-client``, The Trade Desk's rules) and Google's
documented examples. Where a platform's guide and its SDK differ, the guide's rule is computed
by hand and the test says so."""

from __future__ import annotations

import base64
import csv
import glob
import gzip
import hashlib
from functools import partial

import pytest
from facebook_business.adobjects.customaudience import CustomAudience
from pyspark.sql import functions as F
from uid2_client import input_util

from jobs.activation.files import csv_header, publish
from jobs.activation.formats import google, identifier_counts, meta, ttd
from jobs.activation.rules import EXTERNAL_ID, RULES, described
from jobs.ingest.crm import CRM_FIELDS, crm_to_bronze
from jobs.profiles.identifiers import EVENT_EMAILS, EVENT_ID_COLS, EVENT_PHONES, with_crm
from jobs.vocabulary import EMAIL_HASHES, PHONE_HASHES

KEYS = CustomAudience.Schema.MultiKeySchema


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def b64(s: str) -> str:
    return base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()


def exported(spark, records: list[dict], fmt, device_ids: dict | None = None) -> list[dict]:
    return [r.asDict() for r in exported_frame(spark, records, fmt, device_ids).collect()]


def exported_frame(spark, records: list[dict], fmt, device_ids: dict | None = None):
    """Raw customer records -> the CRM ingest's hashing -> the identifiers export reads
    (``with_crm``: a record's ``person`` field joins several records into one person) -> the
    platform's file rows."""
    rows = [
        tuple({"updated_at": "2026-11-01", **r}.get(f) for f in CRM_FIELDS) + ("x.csv",)
        for r in records
    ]
    schema = ", ".join(f"{f} string" for f in [*CRM_FIELDS, "source_file"])
    crm = crm_to_bronze(spark.createDataFrame(rows, schema), "US")
    persons = {r["customer_id"]: r.get("person", r["customer_id"]) for r in records}
    person_map = spark.createDataFrame(
        [(p, "crm", c) for c, p in persons.items()],
        "person_id string, id_type string, id_value string",
    )
    seen = [(p, (device_ids or {}).get(p)) for p in sorted(set(persons.values()))]
    events = spark.createDataFrame(seen, "person_id string, device_id string")
    emails = f"array<struct<{', '.join(f'{c}: string' for c in EMAIL_HASHES)}>>"
    phones = f"array<struct<{', '.join(f'{c}: string' for c in PHONE_HASHES)}>>"
    kinds = {EVENT_EMAILS: emails, EVENT_PHONES: phones}
    events = events.select(
        "*",
        *[
            F.lit(None).cast(kinds.get(c, "string")).alias(c)
            for c in EVENT_ID_COLS
            if c != "device_id"
        ],
    )
    out, _ = fmt(with_crm(events, person_map, crm))
    return out


def by_person(rows: list[dict]) -> dict:
    return {r["person_id"]: r for r in rows}


# international numbers, ASCII names, zips the SDK's rule covers: the SDK is the reference
META_RECORDS = [
    {
        "customer_id": "m1",
        "email": " Jane.Doe@Example.com ",
        "phone": "+1 (650) 555-1212",
        "first_name": " Mary-Jane ",
        "last_name": "O'Brien",
        "country": "US",
        "zip": "94043-1351",
    },
    {
        "customer_id": "m2",
        "email": "PIERRE@exemple.fr",
        "phone": "+33 6 12 34 56 78",
        "first_name": "Pierre",
        "last_name": "Martin.",
        "country": "fr",
        "zip": " 75008 ",
    },
    {
        "customer_id": "m3",
        "email": "j.smith@gmail.com",
        "phone": "+44 20 7946 0958",
        "first_name": "JOHN",
        "last_name": "Smith Jr",
        "country": "GB",
        "zip": None,
    },
]
MADIDS = {
    "m1": "6D92078A-8246-4BA4-AE5B-76104861E7DC",
    "m2": "cdda802e-fb9c-47ad-9866-0794d394c912",
}


def test_meta_columns_are_what_its_sdk_computes(spark):
    got = by_person(exported(spark, META_RECORDS, meta, MADIDS))
    schema = [KEYS.email, KEYS.phone, KEYS.fn, KEYS.ln, KEYS.zip, KEYS.country]
    for r in META_RECORDS:
        values = [r["email"], r["phone"], r["first_name"], r["last_name"], r["zip"], r["country"]]
        present = [(k, v) for k, v in zip(schema, values, strict=True) if v is not None]
        params = CustomAudience.format_params(
            [k for k, _ in present], [[v for _, v in present]], is_raw=True
        )
        expected = dict(zip(params["payload"]["schema"], params["payload"]["data"][0], strict=True))
        row = got[r["customer_id"]]
        for key, value in expected.items():
            assert row[key] == value, (r["customer_id"], key)
    assert got["m3"]["ZIP"] is None
    # MADID: clear text, lowercase with its hyphens (Meta's guide; the SDK's single-key
    # mobile_advertiser_id schema sends it unhashed too)
    assert got["m1"]["MADID"] == MADIDS["m1"].lower()
    assert got["m2"]["MADID"] == MADIDS["m2"] and got["m3"]["MADID"] is None


def test_meta_extern_id_only_where_a_destination_opts_in(spark):
    """EXTERN_ID as the SDK sends it (trimmed, lowercased, not hashed), the latest CRM record's
    customer id; absent from the file and its manifest unless the destination opts in."""
    opted = frozenset({EXTERNAL_ID})
    records = [dict(r, customer_id=f" {r['customer_id'].upper()} ") for r in META_RECORDS[:2]]
    got = exported(spark, records, partial(meta, opted=opted))
    params = CustomAudience.format_params(
        [KEYS.extern_id], [[r["customer_id"]] for r in records], is_raw=True
    )
    assert sorted(r["EXTERN_ID"] for r in got) == sorted(u[0] for u in params["payload"]["data"])
    assert "EXTERN_ID" in described("meta", opted) and "EXTERN_ID" not in described("meta")
    assert all("EXTERN_ID" not in r for r in exported(spark, records, meta))


def test_meta_zips_of_several_countries_follow_the_guide(spark):
    """The guide: lowercase, no spaces; US the first five digits; UK area, district and
    sector. The SDK only cuts at a hyphen (it keeps ``123456789`` whole and a UK space)."""
    cases = {
        "z1": ("US", "02134-1234", "02134"),
        "z2": ("US", "021341234", "02134"),  # ZIP+4 written without its hyphen
        "z3": ("US", "2134", "02134"),  # a spreadsheet dropped the leading zero
        "z4": ("GB", "SW1A 1AA", "sw1a1"),
        "z5": ("GB", "m1 1ae", "m11"),
        "z6": ("GB", "EC1A", "ec1a"),  # an outward code alone stays as given
        "z7": ("NL", "1012 AB", "1012ab"),
        "z8": ("CA", "K1A 0B1", "k1a0b1"),
        "z9": ("DE", "10115", "10115"),
        "z10": ("PL", "00-950", "00-950"),  # a hyphen elsewhere is part of the code
        "z11": (None, "94043-1351", "94043"),  # unknown country: the default one (US)
        "z12": ("US", "  ", None),
    }
    records = [
        {"customer_id": k, "email": f"{k}@example.com", "country": c, "zip": z}
        for k, (c, z, _) in cases.items()
    ]
    got = by_person(exported(spark, records, meta))
    for k, (_, _, expected) in cases.items():
        assert got[k]["ZIP"] == (None if expected is None else sha(expected)), k
    assert got["z11"]["COUNTRY"] is None  # the default guides the zip, never claims a country


# (customer_id, country, city, state, gender, date of birth as written, (year, month, day))
META_DETAILS = [
    ("d1", "US", "San Francisco", " CA ", "Female", "1985-03-07", ("1985", "3", "7")),
    ("d2", "US", "new york", "NY", "m", "3/7/1985", ("1985", "3", "7")),  # US: month first
    ("d3", "FR", "Saint-Étienne", "Loire", " MALE ", "07/03/1985", ("1985", "3", "7")),
    ("d4", "DE", "Köln", "NW", "f", "19991231", ("1999", "12", "31")),
    ("d5", "GB", "St. Albans", "Herts.", "F", "31.12.1999", ("1999", "12", "31")),
]


def test_meta_city_state_gender_and_birth_date_are_what_its_sdk_computes(spark):
    """CT, ST, GEN, DOBY, DOBM, DOBD against the SDK given the same values (the date split
    into its parts, as the SDK takes it). The SDK keeps a-z only: on accented cities the guide
    (accents kept, as for names) is the reference, checked on its own below."""
    records = [
        {"customer_id": k, "email": f"{k}@example.com", "country": country, "city": city,
         "state": state, "gender": gender, "date_of_birth": dob}
        for k, country, city, state, gender, dob, _ in META_DETAILS
    ]  # fmt: skip
    got = by_person(exported(spark, records, meta))
    keys = [KEYS.ct, KEYS.st, KEYS.gen, KEYS.doby, KEYS.dobm, KEYS.dobd]
    for k, _, city, state, gender, _, parts in META_DETAILS:
        params = CustomAudience.format_params(keys, [[city, state, gender, *parts]], is_raw=True)
        expected = dict(zip(keys, params["payload"]["data"][0], strict=True))
        if not city.isascii():
            expected[KEYS.ct] = sha(city.lower().replace("-", ""))
        for key, value in expected.items():
            assert got[k][key] == value, (k, key)


def test_meta_details_the_sdk_does_not_cover(spark):
    """A US state's full name becomes its code (the guide); a gender other than f or m, a date
    that does not exist or lies in the future, and empty values are not sent."""
    records = [
        {"customer_id": "e1", "email": "e1@example.com", "country": "US", "state": "California",
         "gender": "x", "date_of_birth": "1985-02-30"},
        {"customer_id": "e2", "email": "e2@example.com", "country": "US", "state": "New York",
         "gender": " ", "date_of_birth": "2199-01-01", "city": " "},
        {"customer_id": "e3", "email": "e3@example.com", "country": "CA", "state": "Ontario"},
    ]  # fmt: skip
    got = by_person(exported(spark, records, meta))
    assert (got["e1"]["ST"], got["e2"]["ST"], got["e3"]["ST"]) == (
        sha("ca"),
        sha("ny"),
        sha("ontario"),
    )
    for k in ("e1", "e2", "e3"):
        assert [got[k][c] for c in ("GEN", "DOBY", "DOBM", "DOBD", "CT")] == [None] * 5, k


def test_meta_names_keep_accented_letters_as_the_guide_allows(spark):
    """The guide: lowercase letters, special characters in UTF-8. (The SDK's normalize_key keeps
    a-z only and would send ``jos``: on ASCII names, above, the two agree.)"""
    records = [
        {
            "customer_id": "n1",
            "email": "n1@example.com",
            "first_name": "José",
            "last_name": "Núñez",
        },
        {
            "customer_id": "n2",
            "email": "n2@example.com",
            "first_name": "Zoë",
            "last_name": "Ångström",
        },
    ]
    got = by_person(exported(spark, records, meta))
    assert (got["n1"]["FN"], got["n1"]["LN"]) == (sha("josé"), sha("núñez"))
    assert (got["n2"]["FN"], got["n2"]["LN"]) == (sha("zoë"), sha("ångström"))


# Google's documented example records (Google Ads API, add_customer_match_user_list): emails and
# names trimmed and lowercased, phones E.164, country and postal code in clear; the Customer
# Match guide's gmail rule (every dot of the local part removed, gmail.com and googlemail.com)
GOOGLE_RECORDS = [
    {"customer_id": "g1", "email": "dana@example.com", "phone": "+1 800 5550101"},
    {
        "customer_id": "g2",
        "email": "alex.2@example.com",
        "first_name": "Alex",
        "last_name": "Quinn",
        "country": "US",
        "zip": "94045",
        "phone": "+1 800 5550102",
    },
    {"customer_id": "g3", "email": " Jane.Doe@GoogleMail.com"},
    {"customer_id": "g4", "email": "x@example.com", "first_name": " Zoë ", "country": "fr"},
]


def test_google_columns_follow_its_documented_examples(spark):
    got = by_person(exported(spark, GOOGLE_RECORDS, google))
    g1, g2, g3, g4 = (got[k] for k in ("g1", "g2", "g3", "g4"))
    assert (g1["Email"], g1["Phone"]) == (sha("dana@example.com"), sha("+18005550101"))
    assert g2["Email"] == sha("alex.2@example.com")  # a dot outside gmail stays
    assert (g2["First Name"], g2["Last Name"]) == (sha("alex"), sha("quinn"))
    assert (g2["Country"], g2["Zip"], g2["Phone"]) == ("US", "94045", sha("+18005550102"))
    assert g3["Email"] == sha("janedoe@googlemail.com")
    assert (g4["First Name"], g4["Country"], g4["Zip"]) == (sha("zoë"), "FR", None)


TTD_EMAILS = [
    "Jane.Doe@gmail.com",
    " JaneDoe+Shopping@Gmail.com ",
    "jane.doe+x@googlemail.com",  # googlemail is not gmail to UID2
    "First.Last+tag@example.co.uk",
    "USER@EXAMPLE.COM",
]
TTD_PHONES = ["+1 (650) 555-1212", "+44 20 7946 0958", "+33 6 12 34 56 78"]


def test_trade_desk_columns_are_what_the_uid2_sdk_computes(spark):
    records = [{"customer_id": f"e{i}", "email": e} for i, e in enumerate(TTD_EMAILS)] + [
        {"customer_id": f"p{i}", "phone": p} for i, p in enumerate(TTD_PHONES)
    ]
    got = {(r["person_id"], r["IdType"]): r["Id"] for r in exported(spark, records, ttd)}
    for i, email in enumerate(TTD_EMAILS):
        assert got[(f"e{i}", "EmailHash")] == input_util.normalize_and_hash_email(email.strip())
    for i, phone in enumerate(TTD_PHONES):
        e164 = "+" + "".join(ch for ch in phone if ch.isdigit())
        assert got[(f"p{i}", "PhoneHash")] == input_util.normalize_and_hash_phone(e164)


@pytest.mark.parametrize("platform", ["google", "meta", "ttd"])
def test_the_manifest_describes_every_column_from_the_same_table(platform):
    everything = frozenset(r.opt_in for r in RULES[platform] if r.opt_in)
    spec = described(platform, everything)
    assert list(spec) == list(dict.fromkeys(csv_header([r.header for r in RULES[platform]])))
    assert all("[" in text and "]" in text for text in spec.values())  # each names its source


# one person known by four CRM records: four emails, two phones (the latest record: 2026-11-01)
MANY = [
    ("c1", "b.one@example.com", "+1 650 555 0101", "2026-10-01"),
    ("c2", "A.Two@Example.com", "+1 650 555 0102", "2026-11-01"),
    ("c3", "c.three@gmail.com", None, "2026-09-01"),
    ("c4", "d.four@example.org", None, "2026-08-01"),
]


def _many(spark, fmt) -> list[dict]:
    records = [
        {"customer_id": c, "person": "P", "email": e, "phone": p, "updated_at": t}
        for c, e, p, t in MANY
    ]
    return exported(spark, records, fmt)


def test_every_email_and_phone_of_a_person_is_sent_the_latest_first(spark):
    emails = [e.strip().lower() for _, e, _, _ in MANY]
    latest = emails[1]
    # Google and Meta: three columns of each, the latest first, then the others in the
    # order of their hash (the same on every run)
    others = sorted(e for e in emails if e != latest)
    (g,) = _many(spark, google)
    (m,) = _many(spark, meta)
    by_hash = sorted(others, key=sha)[:2]
    google_form = {
        e: (e.split("@")[0].replace(".", "") + "@gmail.com") if e.endswith("@gmail.com") else e
        for e in emails
    }
    assert [g["Email"], g["Email#2"], g["Email#3"]] == [
        sha(google_form[e]) for e in [latest, *by_hash]
    ]
    assert [m["EMAIL"], m["EMAIL#2"], m["EMAIL#3"]] == [sha(e) for e in [latest, *by_hash]]
    assert (g["Phone"], m["PHONE"]) == (sha("+16505550102"), sha("16505550102"))
    assert (g["Phone#2"], m["PHONE#2"], g["Phone#3"]) == (
        sha("+16505550101"),
        sha("16505550101"),
        None,
    )
    # The Trade Desk: a row for each, all four emails and both phones
    rows = _many(spark, ttd)
    assert sorted(r["Id"] for r in rows if r["IdType"] == "EmailHash") == sorted(
        input_util.normalize_and_hash_email(e) for e in emails
    )
    assert sorted(r["Id"] for r in rows if r["IdType"] == "PhoneHash") == sorted(
        input_util.normalize_and_hash_phone(p) for p in ("+16505550101", "+16505550102")
    )


def test_the_manifest_counts_rows_per_identifier_type(spark):
    records = [
        {"customer_id": c, "person": "P", "email": e, "phone": p, "updated_at": t}
        for c, e, p, t in MANY
    ]
    records.append({"customer_id": "solo", "email": "solo@example.com"})
    counts = identifier_counts("google", exported_frame(spark, records, google))
    assert (counts["Email"], counts["Phone"], counts["First Name"]) == (4, 2, 0)
    counts = identifier_counts("ttd", exported_frame(spark, records, ttd))
    assert counts == {"EmailHash": 5, "PhoneHash": 2}


def test_a_repeated_header_and_quoted_fields_in_the_written_csv(spark, tmp_path):
    """The CSV a platform reads, parsed by Python's csv module: the header repeats ``Email``,
    a field with a comma or a quote is quoted (RFC 4180), an empty one stays empty."""
    rows = spark.createDataFrame(
        [("h1", "h2", 'Zip, "B"'), ("h3", None, "10115")],
        "`Email` string, `Email#2` string, Zip string",
    )
    folder = str(tmp_path / "dt=2026-11-02")
    manifest = publish(spark, folder, {"full": rows}, "csv", 1000, {})
    assert manifest["parts"]["full"]["columns"] == ["Email", "Email", "Zip"]
    (path,) = glob.glob(f"{folder}/full/*.csv.gz")
    with gzip.open(path, "rt", newline="") as fh:
        got = list(csv.reader(fh))
    assert got[0] == ["Email", "Email", "Zip"]
    assert sorted(got[1:]) == [["h1", "h2", 'Zip, "B"'], ["h3", "", "10115"]]
