"""Pure transformations for CRM / third-party customer files (CSV, every column as text).

A customer file is read by the names in its header, not by position: CRM exports order their
columns as they please and name them in their own words (``E-mail Address``, ``Postcode``).
``header_fields`` maps each column to the field it holds; columns it does not know are never
read (they may hold personal data the platform has no rule for)."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from jobs.ingest.normalise import (
    detail_hashes,
    email_hashes,
    google_name,
    match_features,
    meta_name,
    phone_hashes,
    sha256_hex,
)
from jobs.vocabulary import HASH_COLUMNS, NAME_HASHES

CORE_FIELDS = [
    "customer_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "country",
    "zip",
    "opt_out",
    "updated_at",
]
# Meta matches on city, state, gender and date of birth; the street address only serves the
# platform's own matching of customer records (jobs/identity/matching.py)
OPTIONAL_FIELDS = ["city", "state", "gender", "date_of_birth", "address"]
CRM_FIELDS = CORE_FIELDS + OPTIONAL_FIELDS
DETAIL_COLS = [  # their hashes in bronze and silver (jobs/ingest/normalise.py)
    "city_meta_sha256",
    "state_meta_sha256",
    "gender_meta_sha256",
    "dob_year_sha256",
    "dob_month_sha256",
    "dob_day_sha256",
]
MATCH_COLS = ["first_name_grams", "last_name_grams", "address_sha256", "address_grams"]
CRM_SCHEMA = StructType([StructField(f, StringType()) for f in CRM_FIELDS])

# header names (lowercased, runs of other characters as "_") -> the field they hold
HEADER_ALIASES = {
    **{k: "customer_id" for k in ("id", "customer", "customerid", "customer_no", "crm_id")},
    **{k: "email" for k in ("e_mail", "email_address", "e_mail_address", "mail")},
    **{k: "phone" for k in ("phone_number", "telephone", "tel", "mobile", "mobile_phone")},
    **{k: "first_name" for k in ("firstname", "first", "given_name", "forename")},
    **{k: "last_name" for k in ("lastname", "last", "surname", "family_name")},
    **{k: "country" for k in ("country_code", "countrycode")},
    **{k: "zip" for k in ("zipcode", "zip_code", "postcode", "postal_code", "post_code")},
    **{k: "opt_out" for k in ("optout", "opted_out", "unsubscribed")},
    **{k: "updated_at" for k in ("updated", "last_updated", "modified_at", "last_modified")},
    **{k: "city" for k in ("town", "ct")},
    **{k: "state" for k in ("region", "province", "state_code", "st")},
    **{k: "gender" for k in ("sex", "gen", "ge")},
    **{k: "date_of_birth" for k in ("dob", "birth_date", "birthdate", "birthday", "db")},
    **{
        k: "address"
        for k in ("street", "street_address", "address_1", "address1", "address_line_1", "addr")
    },
}


def header_names(header: str) -> list[str]:
    """The column names of a CSV header line (a spreadsheet's byte-order mark dropped)."""
    return next(csv.reader([header.lstrip("\ufeff")]), [])


def header_fields(header: str) -> list[str | None]:
    """A customer file's header line -> the CRM field of each column, in order; None for a
    column no field is read from (unknown, or a second column of a field already read)."""
    names = header_names(header)
    fields: list[str | None] = []
    for name in names:
        key = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
        field = key if key in CRM_FIELDS else HEADER_ALIASES.get(key)
        fields.append(field if field not in fields else None)
    return fields


def by_header(
    paths: list[str], first_line: Callable[[str], str | None]
) -> dict[tuple[str | None, ...], tuple[str, list[str]]]:
    """Customer files grouped by the fields their headers hold (files of one group are read in
    one pass): fields -> (the first file's header line, the files). ``first_line`` reads a
    file's header; empty files are left out."""
    groups: dict[tuple[str | None, ...], tuple[str, list[str]]] = {}
    for path in sorted(paths):
        header = first_line(path)
        if header is not None:
            groups.setdefault(tuple(header_fields(header)), (header, []))[1].append(path)
    return groups


def header_schema(fields: list[str | None]) -> StructType:
    """The positional schema that reads a file with this header by its names."""
    names = [f or f"_unread_{i}" for i, f in enumerate(fields)]
    return StructType([StructField(n, StringType()) for n in names])


def as_contract(rows: DataFrame) -> DataFrame:
    """Rows read with ``header_schema`` -> the contract's columns (absent ones null), in order."""
    have = set(rows.columns)
    cols = [F.col(f) if f in have else F.lit(None).cast("string").alias(f) for f in CRM_FIELDS]
    return rows.select(*cols, *[c for c in ("source_file",) if c in have])


def crm_to_bronze(rows: DataFrame, default_country: str) -> DataFrame:
    """Raw CRM rows -> bronze: as delivered, but emails, phones, names and addresses hashed at
    once (names and the address also as hashed bigrams, for matching)."""
    c = F.col
    country = F.upper(F.trim(c("country")))
    return rows.select(
        "customer_id",
        *[col.alias(n) for n, col in email_hashes(c("email")).items()],
        *[col.alias(n) for n, col in phone_hashes(c("phone"), country, default_country).items()],
        sha256_hex(google_name(c("first_name"))).alias("first_name_sha256"),
        sha256_hex(google_name(c("last_name"))).alias("last_name_sha256"),
        sha256_hex(meta_name(c("first_name"))).alias("first_name_meta_sha256"),
        sha256_hex(meta_name(c("last_name"))).alias("last_name_meta_sha256"),
        *[
            col.alias(n)
            for n, col in detail_hashes(
                c("city"), c("state"), c("gender"), c("date_of_birth"), country
            ).items()
        ],
        *[
            col.alias(n)
            for n, col in match_features(c("first_name"), c("last_name"), c("address")).items()
        ],
        _given("email").alias("had_email"),
        _given("phone").alias("had_phone"),
        _given("date_of_birth").alias("had_date_of_birth"),
        country.alias("country"),
        F.trim(c("zip")).alias("zip"),
        "opt_out",
        "updated_at",
        "source_file",
        F.regexp_extract("source_file", r"dt=(\d{4}-\d{2}-\d{2})", 1).alias("dt"),
        F.current_timestamp().alias("ingested_at"),
    )


def _given(field: str) -> Column:
    return F.length(F.trim(F.coalesce(F.col(field), F.lit("")))) > 0


def split_crm(bronze: DataFrame) -> tuple[DataFrame, DataFrame]:
    """bronze CRM -> (silver: one row per customer, latest update wins; quarantine).
    A row without a customer id is quarantined; a broken email or phone only loses that field
    (the row still carries the rest) and is reported as a quarantine row of its own."""
    c = F.col
    updated = F.coalesce(
        F.try_to_timestamp(c("updated_at"), F.lit("yyyy-MM-dd'T'HH:mm:ssX")),
        F.try_to_timestamp(c("updated_at"), F.lit("yyyy-MM-dd")),
    )
    b = bronze.withColumn("updated_ts", updated)
    reason = F.when(
        c("customer_id").isNull() | (F.trim(c("customer_id")) == ""), F.lit("missing_customer_id")
    ).when(c("updated_ts").isNull(), F.lit("invalid_updated_at"))
    bad_dob = c("had_date_of_birth") & c("dob_year_sha256").isNull()
    field_issue = (
        F.when(c("had_email") & c("email_sha256").isNull(), F.lit("invalid_email"))
        .when(c("had_phone") & c("phone_sha256").isNull(), F.lit("invalid_phone"))
        .when(bad_dob, F.lit("invalid_date_of_birth"))
    )
    b = b.withColumn("reason", reason).withColumn("field_issue", field_issue)
    quarantine = b.where(c("reason").isNotNull() | c("field_issue").isNotNull()).select(
        F.coalesce("reason", "field_issue").alias("reason"),
        F.col("customer_id").alias("event_id"),
        F.lit("crm").alias("source"),
        "source_file",
        "dt",
        F.to_json(F.struct("customer_id", "country", "updated_at")).alias("detail"),
        "ingested_at",
    )
    latest = Window.partitionBy("customer_id").orderBy(c("updated_ts").desc(), c("source_file"))
    opt_out = F.upper(F.trim(c("opt_out")))
    silver = (
        b.where(c("reason").isNull())
        .withColumn("_n", F.row_number().over(latest))
        .where("_n = 1")
        .select(
            F.trim("customer_id").alias("customer_id"),
            *HASH_COLUMNS,
            *NAME_HASHES,
            "country",
            "zip",
            *DETAIL_COLS,
            *MATCH_COLS,
            F.when(opt_out.isin("Y", "YES", "TRUE", "1"), True)
            .when(opt_out.isin("N", "NO", "FALSE", "0"), False)
            .alias("opt_out"),
            c("updated_ts").alias("updated_at"),
            "source_file",
        )
    )
    return silver, quarantine
