"""Identifier normalisation checked against hashlib and the platforms' documented rules."""

import base64
import hashlib

from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.activation.formats import ttd
from jobs.ingest.normalise import (
    email_hashes,
    google_email,
    meta_name,
    normalise_email,
    normalise_phone,
    phone_hashes,
    uid2_email,
)
from jobs.profiles.identifiers import with_lists

EMAIL_FORMS = ["email_sha256", "email_google_sha256", "email_uid2_sha256"]


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def test_email_forms(spark):
    df = spark.createDataFrame(
        [
            (" John.Doe+promo@GMail.com ",),
            ("ann.lee@googlemail.com",),
            ("x.y@yahoo.com",),
            ("not an email",),
            (None,),
        ],
        "raw string",
    )
    e = normalise_email(F.col("raw"))
    out = df.select(e.alias("e"), google_email(e).alias("g"), uid2_email(e).alias("u"))
    expected = spark.createDataFrame(
        [
            ("john.doe+promo@gmail.com", "johndoe+promo@gmail.com", "johndoe@gmail.com"),
            ("ann.lee@googlemail.com", "annlee@googlemail.com", "ann.lee@googlemail.com"),
            ("x.y@yahoo.com", "x.y@yahoo.com", "x.y@yahoo.com"),
            (None, None, None),
            (None, None, None),
        ],
        "e string, g string, u string",
    )
    assert_df_equality(out, expected, ignore_nullable=True)


def test_email_hashes_match_hashlib_and_never_double_hash(spark):
    pre = sha("someone@example.org")
    df = spark.createDataFrame([(" Someone@Example.org",), (pre,)], "raw string")
    rows = df.select(*[c.alias(n) for n, c in email_hashes(F.col("raw")).items()]).collect()
    assert rows[0]["email_sha256"] == pre
    assert rows[1]["email_sha256"] == pre  # already hashed: kept, not hashed again


def test_phone_to_e164(spark):
    df = spark.createDataFrame(
        [
            ("(415) 555-0100", "US"),
            ("1-4155550100", "US"),
            ("+44 20 7946 0958", "GB"),
            ("0044 2079460958", "GB"),
            ("020 7946 0958", "GB"),
            ("06 12 34 56 78", "FR"),
            ("12", "US"),
            ("call me", "DE"),
        ],
        "raw string, country string",
    )
    got = [r[0] for r in df.select(normalise_phone(F.col("raw"), F.col("country"))).collect()]
    assert got == [
        "+14155550100",
        "+14155550100",
        "+442079460958",
        "+442079460958",
        "+442079460958",
        "+33612345678",
        None,
        None,
    ]


def test_meta_name_keeps_letters_only(spark):
    df = spark.createDataFrame([(" O'Brien ",), ("Zoë",), ("  ",)], "n string")
    assert [r[0] for r in df.select(meta_name(F.col("n"))).collect()] == ["obrien", "zoë", None]


def test_ttd_email_is_base64_of_the_digest(spark):
    email = "jane.doe@gmail.com"
    uid2 = "janedoe@gmail.com"  # gmail: dots removed before hashing
    ids = spark.createDataFrame(
        [("p1", sha(uid2), None, None)],
        "person_id string, email_uid2_sha256 string, phone_sha256 string, device_id string",
    )
    rows, rejected = ttd(with_lists(ids))
    (row,) = rows.collect()
    assert row["IdType"] == "EmailHash"
    assert row["Id"] == base64.b64encode(hashlib.sha256(uid2.encode()).digest()).decode()
    assert row["Id"] != base64.b64encode(hashlib.sha256(email.encode()).digest()).decode()
    assert rejected.count() == 0


# Published test vectors: UID2 "Normalization and Encoding" (the rules The Trade Desk uses),
# https://unifiedid.com/docs/getting-started/gs-normalization-encoding
UID2_EMAILS = [
    ("USER@example.com", "tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ="),
    ("MyEmail@example.com", "FsGNM28LJQ8OLZB0Us65ZYp07NrovJSGTCMSKnLMJ6U="),
    ("My.Email@example.com", "4itTvG+HEnTzpiqzejyu1yFPwU1nYhWpaiQvz62hyB8="),
    ("Jane.Saoirse@example.com", "sZZDLHuYmiypHIN5mVfFFdpT5sE6vyC3j+qU8RfpC/g="),
    ("JaneSaoirse+Work@example.com", "KKruSBUjDNO069iMUVImVQZm6RrAGZKeOtrD9mwogYA="),
    ("JANE.SAOIRSE@gmail.com", "ku4mBX7Z3qJTXWyLFB1INzkyR2WZGW4ANSJUiW21iI8="),
    ("JaneSaoirse+Work@gmail.com", "ku4mBX7Z3qJTXWyLFB1INzkyR2WZGW4ANSJUiW21iI8="),
]
UID2_PHONE = ("1 (234) 567-8901", "US", "EObwtHBUqDNZR33LNSMdtt5cafsYFuGmuY4ZLenlue4=")


def test_the_trade_desk_file_matches_the_published_uid2_vectors(spark):
    rows = [(f"p{i}", e) for i, (e, _) in enumerate(UID2_EMAILS)]
    raw = spark.createDataFrame(rows, "person_id string, email string")
    phone = spark.createDataFrame(
        [("ph", UID2_PHONE[0], UID2_PHONE[1])], "p string, v string, c string"
    )
    e164 = phone.select(phone_hashes(F.col("v"), F.col("c"), "US")["phone_sha256"].alias("h"))
    ids = raw.select(
        "person_id",
        *[c.alias(n) for n, c in email_hashes(F.col("email")).items()],
        F.lit(None).cast("string").alias("phone_sha256"),
        F.lit(None).cast("string").alias("device_id"),
    ).unionByName(
        e164.select(
            F.lit("ph").alias("person_id"),
            *[F.lit(None).cast("string").alias(n) for n in EMAIL_FORMS],
            F.col("h").alias("phone_sha256"),
            F.lit(None).cast("string").alias("device_id"),
        )
    )
    out, rejected = ttd(with_lists(ids))
    got = {(r["person_id"], r["IdType"]): r["Id"] for r in out.collect()}
    for i, (_, expected) in enumerate(UID2_EMAILS):
        assert got[(f"p{i}", "EmailHash")] == expected
    assert got[("ph", "PhoneHash")] == UID2_PHONE[2]
    assert rejected.count() == 0
