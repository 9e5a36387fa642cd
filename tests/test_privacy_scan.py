"""The PII scanner finds email- and phone-shaped values and leaves the lake's ordinary values
(hashes, ids, dates, paths, prices) alone."""

from __future__ import annotations

from jobs.privacy.scan import scan_frame

PII = [
    ("Jane.Doe+news@Example.co.uk", "email"),
    ("contact me at bob@mail.example.org please", "email"),
    ("+44 20 7946 0958", "phone"),
    ("+1-202-555-0143", "phone"),
    ("0049 30 1234567", "phone"),
    ("(202) 555-0143", "phone"),
    ("202.555.0143", "phone"),
]
CLEAN = [
    "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
    "8f14e45f-ceea-467a-9af0-2d0b1b5e6e7c",
    "2026-11-01",
    "2026-11-01 12:34:56.789",
    "s3a://raw/web/dt=2026-11-01/part-00000-1234567890.json.gz",
    "19.99",
    "ord-20261101-000123",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
    "/products/winter-coats/12345678",
    "<email> wrote from <phone>",
]


def test_scanner_finds_each_planted_value_and_nothing_else(spark):
    for value, shape in PII:
        df = spark.createDataFrame([(value, "x")], "a string, b string")
        found = scan_frame(df, "t")
        assert found == [{"where": "t", "column": "a", "shape": shape, "rows": 1}], value
    clean = spark.createDataFrame([(v,) for v in CLEAN], "a string")
    assert scan_frame(clean, "t") == []


def test_scanner_looks_inside_maps_and_counts_rows(spark):
    df = spark.createDataFrame(
        [({"note": "call +33 1 42 68 53 00"},), ({"note": "ok"},), ({"k": "x@y.io"},)],
        "extra map<string,string>",
    )
    found = sorted(scan_frame(df, "t"), key=lambda f: f["shape"])
    assert [(f["shape"], f["rows"]) for f in found] == [("email", 1), ("phone", 1)]


def test_only_the_columns_known_to_hold_no_person_are_left_unread(spark):
    """The matching model's JSON holds probabilities such as 0.0012345678 (read as a number
    dialled with 00); that column alone is not read, in that table alone."""
    model = '{"m_probability": 0.0012345678912345}'
    df = spark.createDataFrame([(model, "+44 20 7946 0958")], "model string, note string")
    assert [f["column"] for f in scan_frame(df, "identity.match_model")] == ["note"]
    assert sorted(f["column"] for f in scan_frame(df, "gold.profiles")) == ["model", "note"]
