"""What each column of an audience file holds, per platform: the value (built from the lake's
identifier columns), its normalisation in words and where the platform publishes that rule.

The exporter builds every file from this table (``formats.py``) and writes its ``described``
form into each manifest, so what a platform reads about a file and the code that wrote it
cannot disagree. Emails, phones, names, and the CRM's city, state, gender and date of birth
reach the lake already normalised and hashed in every form a platform needs
(``jobs/ingest/normalise.py``: a hash cannot be undone); country, zip and advertising ids are
kept in clear and normalised here, per platform.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.activation.files import REPEAT
from jobs.ingest.normalise import sha256_hex

GOOGLE_GUIDE = "https://support.google.com/google-ads/answer/7659867 (format your customer data)"
GOOGLE_API = (
    "https://developers.google.com/google-ads/api/docs/remarketing/audience-types/customer-match"
)
META_SDK = "facebook-business Python SDK, CustomAudienceMixin.format_params / normalize_key"
META_GUIDE = (
    "https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences"
    " (hashing and normalization)"
)
UID2_GUIDE = "https://unifiedid.com/docs/getting-started/gs-normalization-encoding"
UID2_SDK = "uid2-client Python SDK, input_util.normalize_and_hash_email / _phone"

# emails and phones per row: Meta's customer-list template has three columns of each; Google's
# file takes repeated Email and Phone columns (its template shows two), three here as for Meta
PER_ROW = 3
META_TEMPLATE = "Meta's customer list template (email, phone: three columns each)"

# a UK postcode without its spaces: outward code, then the inward code's sector digit and unit
GB_POSTCODE = r"^([a-z]{1,2}[0-9][a-z0-9]?)([0-9])[a-z]{2}$"


# the destination setting that sends the CRM's customer id (``send_external_id``): it matches
# only where the advertiser also sends it to the platform (a pixel, a server API), and gives
# the platform a stable id of the person, so it is off unless a destination asks for it
EXTERNAL_ID = "send_external_id"


@dataclass(frozen=True)
class Rule:
    header: str  # the column in the platform's file
    rule: str  # the normalisation, as the manifest states it
    source: str  # where the platform publishes it
    # the person's country (the default one when unknown) -> the column's value
    value: Callable[[Column], Column]
    # a destination setting that must be on for the column to be sent (None: always sent)
    opt_in: str | None = None


def _col(name: str) -> Callable[[Column], Column]:
    return lambda country: F.col(name)


def _nth(array: str, i: int, *fields: str) -> Callable[[Column], Column]:
    """The first non-null of ``fields`` of the ``i``-th (0-based) element of an array column
    (``emails`` / ``phones``: the latest first), null past its end."""

    def value(country: Column) -> Column:
        item = F.try_element_at(F.col(array), F.lit(i + 1))
        return F.coalesce(*[item[f] for f in fields])

    return value


def _repeated(header: str, rule: str, source: str, array: str, *fields: str) -> list[Rule]:
    """``PER_ROW`` columns of one header: the person's latest email (phone) first."""
    return [
        Rule(header if i == 0 else f"{header}#{i + 1}", rule, source, _nth(array, i, *fields))
        for i in range(PER_ROW)
    ]


def _b64_each(array: str, field: str) -> Column:
    """Base64 of the raw digest of ``field`` (SHA-256 hex) of every element of ``array``."""
    return F.transform(F.col(array), lambda x: F.base64(F.unhex(x[field])))


def meta_zip(zip_code: Column, country: Column) -> Column:
    """Meta's ZIP: lowercase without spaces; US: the first five digits (of a ZIP+4 too; three or
    four digits are a zip that lost its leading zeros in a spreadsheet); GB: area, district and
    sector (``SW1A 1AA`` -> ``sw1a1``); elsewhere the whole code."""
    z = F.lower(F.regexp_replace(zip_code, r"\s", ""))
    us = F.regexp_extract(z, r"^([0-9]{3,5})(-?[0-9]{4})?$", 1)
    gb = F.concat(F.regexp_extract(z, GB_POSTCODE, 1), F.regexp_extract(z, GB_POSTCODE, 2))
    value = (
        F.when(country == "US", F.when(us != "", F.lpad(us, 5, "0")))
        .when((country == "GB") & z.rlike(GB_POSTCODE), gb)
        .otherwise(z)
    )
    return F.when(F.length(value) > 0, value)


def _meta_zip_hash(country: Column) -> Column:
    return sha256_hex(meta_zip(F.col("zip"), country))


def _own_country() -> Column:
    """The person's own country (the default one only guides how a zip is read)."""
    country = F.upper(F.trim(F.col("country")))
    return F.when(country.rlike("^[A-Z]{2}$"), country)


def _meta_country_hash(country: Column) -> Column:
    return sha256_hex(F.lower(_own_country()))


def _google_country(country: Column) -> Column:
    return _own_country()


def _google_zip(country: Column) -> Column:
    z = F.trim(F.col("zip"))
    return F.when(F.length(z) > 0, z)


RULES: dict[str, list[Rule]] = {
    "google": [
        *_repeated(
            "Email",
            "SHA-256 hex of the trimmed, lowercased email; gmail.com and googlemail.com lose "
            "every dot of the local part",
            GOOGLE_GUIDE,
            "emails",
            "email_google_sha256",
            "email_sha256",
        ),
        *_repeated(
            "Phone",
            "SHA-256 hex of the E.164 number (+, country code, digits only)",
            GOOGLE_API,
            "phones",
            "phone_sha256",
        ),
        Rule(
            "First Name",
            "SHA-256 hex of the trimmed, lowercased name (accents kept)",
            GOOGLE_API,
            _col("first_name_sha256"),
        ),
        Rule(
            "Last Name",
            "SHA-256 hex of the trimmed, lowercased name (accents kept)",
            GOOGLE_API,
            _col("last_name_sha256"),
        ),
        Rule("Country", "ISO 3166-1 alpha-2 code, clear text", GOOGLE_GUIDE, _google_country),
        Rule("Zip", "postal code, trimmed, clear text", GOOGLE_GUIDE, _google_zip),
    ],
    "meta": [
        *_repeated(
            "EMAIL",
            "SHA-256 hex of the trimmed, lowercased email",
            META_SDK,
            "emails",
            "email_sha256",
        ),
        *_repeated(
            "PHONE",
            "SHA-256 hex of the digits, country code included",
            META_SDK,
            "phones",
            "phone_digits_sha256",
        ),
        Rule(
            "FN",
            "SHA-256 hex of the lowercased name, letters only (UTF-8 accented letters kept, as "
            "the guide allows; the SDK keeps a-z only, the same on ASCII names)",
            META_GUIDE,
            _col("first_name_meta_sha256"),
        ),
        Rule(
            "LN",
            "SHA-256 hex of the lowercased name, letters only (as FN)",
            META_GUIDE,
            _col("last_name_meta_sha256"),
        ),
        Rule(
            "CT",
            "SHA-256 hex of the lowercased city, letters only (as FN)",
            META_GUIDE,
            _col("city_meta_sha256"),
        ),
        Rule(
            "ST",
            "SHA-256 hex of the lowercased state, letters only; a US state's name as its "
            "2-letter ANSI code",
            META_GUIDE,
            _col("state_meta_sha256"),
        ),
        Rule(
            "ZIP",
            "SHA-256 hex of the lowercased code without spaces; US: its first five digits; "
            "GB: area, district and sector",
            META_GUIDE,
            _meta_zip_hash,
        ),
        Rule(
            "COUNTRY",
            "SHA-256 hex of the lowercased ISO 3166-1 alpha-2 code",
            META_SDK,
            _meta_country_hash,
        ),
        *[
            Rule(header, f"SHA-256 hex of the {what} of birth, {digits}", META_SDK, _col(col))
            for header, what, digits, col in [
                ("DOBY", "year", "4 digits", "dob_year_sha256"),
                ("DOBM", "month", "2 digits", "dob_month_sha256"),
                ("DOBD", "day", "2 digits", "dob_day_sha256"),
            ]
        ],
        Rule(
            "GEN",
            "SHA-256 hex of f or m, the first letter of the lowercased gender",
            META_SDK,
            _col("gender_meta_sha256"),
        ),
        Rule(
            "MADID",
            "mobile advertising id (IDFA / AAID), lowercased, clear text",
            META_SDK,
            lambda country: F.lower("device_id"),
        ),
        Rule(
            "EXTERN_ID",
            "the advertiser's own customer id (the latest CRM record's), trimmed, lowercased, "
            "clear text",
            META_SDK,
            lambda country: F.lower(F.trim("customer_id")),
            opt_in=EXTERNAL_ID,
        ),
    ],
    # one row per identifier: every email and phone of the person, each a row of its own
    "ttd": [
        Rule(
            "EmailHash",
            "Base64 of the SHA-256 digest of the UID2-normalised email (trimmed, lowercased; "
            "gmail.com loses the dots and a +suffix of the local part)",
            UID2_SDK,
            lambda country: _b64_each("emails", "email_uid2_sha256"),
        ),
        Rule(
            "PhoneHash",
            "Base64 of the SHA-256 digest of the E.164 number",
            UID2_SDK,
            lambda country: _b64_each("phones", "phone_sha256"),
        ),
        Rule(
            "DAID",
            "device advertising id, clear text",
            UID2_GUIDE,
            lambda country: F.array(F.col("device_id")),
        ),
    ],
}


def rules(platform: str, opted: frozenset[str] = frozenset()) -> list[Rule]:
    """The platform's rules a destination sends: those with no opt-in, and those it opted in."""
    return [r for r in RULES[platform] if r.opt_in is None or r.opt_in in opted]


def described(platform: str, opted: frozenset[str] = frozenset()) -> dict[str, str]:
    """The manifest's hashing spec of a platform: column -> rule (source)."""
    if platform not in RULES:
        return {"*_sha256": 'SHA-256 hex as stored in the lake (README, "Audience files")'}
    out: dict[str, str] = {}
    for r in rules(platform, opted):
        header = REPEAT.sub("", r.header)
        if header == r.header:
            out[header] = f"{r.rule} [{r.source}]"
        elif not out[header].endswith("first"):
            out[header] += f"; up to {PER_ROW} columns of it, the latest first"
    return out


def columns(platform: str, country: Column, opted: frozenset[str] = frozenset()) -> list[Column]:
    """The file's columns for a platform, each named by its header."""
    return [r.value(country).alias(r.header) for r in rules(platform, opted)]
