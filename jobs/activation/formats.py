"""Platform file formats, from per-person hashed identifiers (see DESIGN.md facts).

Input columns (one row per person): person_id, email_sha256, email_google_sha256,
email_uid2_sha256, phone_sha256, phone_digits_sha256, first_name_sha256, last_name_sha256,
first_name_meta_sha256, last_name_meta_sha256, country, zip, device_id.
Each function returns (rows, rejected): a person with nothing the platform can match on is
rejected on its own, the rest of the file still ships.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ingest.normalise import sha256_hex


def _split(df: DataFrame, usable) -> tuple[DataFrame, DataFrame]:
    return df.where(usable), df.where(~usable).select("person_id")


def google(ids: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Customer Match CSV: SHA-256 hex of gmail-normalised email, E.164 phone and names;
    country and zip in clear."""
    c = F.col
    rows = ids.select(
        "person_id",
        F.coalesce("email_google_sha256", "email_sha256").alias("Email"),
        c("phone_sha256").alias("Phone"),
        c("first_name_sha256").alias("First Name"),
        c("last_name_sha256").alias("Last Name"),
        c("country").alias("Country"),
        c("zip").alias("Zip"),
    )
    return _split(rows, c("Email").isNotNull() | c("Phone").isNotNull())


def meta(ids: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Custom Audiences multi-key: everything hashed except MADID (mobile advertiser id)."""
    c = F.col
    zip_norm = F.lower(F.regexp_replace(c("zip"), r"\s", ""))
    rows = ids.select(
        "person_id",
        c("email_sha256").alias("EMAIL"),
        c("phone_digits_sha256").alias("PHONE"),
        c("first_name_meta_sha256").alias("FN"),
        c("last_name_meta_sha256").alias("LN"),
        F.when(F.length(zip_norm) > 0, sha256_hex(zip_norm)).alias("ZIP"),
        F.when(c("country").isNotNull(), sha256_hex(F.lower("country"))).alias("COUNTRY"),
        c("device_id").alias("MADID"),
    )
    usable = c("EMAIL").isNotNull() | c("PHONE").isNotNull() | c("MADID").isNotNull()
    return _split(rows, usable)


def ttd(ids: DataFrame) -> tuple[DataFrame, DataFrame]:
    """The Trade Desk first-party data: UID2-normalised email as Base64 of the SHA-256 digest,
    phone likewise from E.164, device ids (DAID) as they are. One row per identifier."""
    c = F.col
    b64 = lambda col: F.base64(F.unhex(col))  # noqa: E731  hex digest -> Base64 of raw bytes
    cands = F.array(
        F.struct(F.lit("EmailHash").alias("IdType"), b64(c("email_uid2_sha256")).alias("Id")),
        F.struct(F.lit("PhoneHash").alias("IdType"), b64(c("phone_sha256")).alias("Id")),
        F.struct(F.lit("DAID").alias("IdType"), c("device_id").alias("Id")),
    )
    rows = ids.select("person_id", F.explode(cands).alias("x")).where(c("x.Id").isNotNull())
    rows = rows.select("person_id", "x.IdType", "x.Id")
    rejected = ids.join(rows.select("person_id").distinct(), "person_id", "left_anti").select(
        "person_id"
    )
    return rows, rejected


def generic(ids: DataFrame) -> tuple[DataFrame, DataFrame]:
    cols = [c for c in ids.columns]
    return ids.select(*cols), ids.where(F.lit(False)).select("person_id")


# what each column holds and how it was normalised and hashed; written into every manifest
HASHING = {
    "google": {
        "Email": "SHA-256 hex of the trimmed, lowercased email; gmail.com/googlemail.com with "
        "dots removed from the local part",
        "Phone": "SHA-256 hex of the E.164 number (with +)",
        "First Name, Last Name": "SHA-256 hex of the trimmed, lowercased name",
        "Country, Zip": "clear text",
    },
    "meta": {
        "EMAIL": "SHA-256 hex of the trimmed, lowercased email",
        "PHONE": "SHA-256 hex of the E.164 digits without + (country code included)",
        "FN, LN": "SHA-256 hex of the lowercased name, a-z only",
        "ZIP": "SHA-256 hex of the lowercased zip without spaces",
        "COUNTRY": "SHA-256 hex of the lowercased ISO 3166-1 alpha-2 code",
        "MADID": "mobile advertiser id, clear text",
    },
    "ttd": {
        "EmailHash": "Base64 of the SHA-256 digest of the UID2-normalised email",
        "PhoneHash": "Base64 of the SHA-256 digest of the E.164 number",
        "DAID": "device advertising id, clear text",
    },
    "generic": {"*_sha256": "SHA-256 hex as stored in the lake (see README)"},
}

FORMATS = {"google": google, "meta": meta, "ttd": ttd, "generic": generic}
