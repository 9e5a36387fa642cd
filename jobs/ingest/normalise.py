"""Identifier normalisation and hashing as pure Column expressions (no Python UDFs).

The lake keeps one SHA-256 per form that a destination needs, because a hash cannot be undone:
- ``email_sha256``: trimmed + lowercased (Meta, generic);
- ``email_google_sha256``: + dots removed from the local part for gmail.com / googlemail.com;
- ``email_uid2_sha256``: + dots and ``+suffix`` removed for gmail.com only (UID2 / The Trade Desk;
  TTD wants Base64 of the digest, derivable from this hex);
- ``phone_sha256``: E.164 with the ``+`` (Google, TTD);  ``phone_digits_sha256``: digits only
  (Meta);
- names: ``*_sha256`` trimmed + lowercased (Google), ``*_meta_sha256`` lowercase letters only;
- city, state, gender and date of birth (Meta only): ``city_meta_sha256``, ``state_meta_sha256``
  (a US state's name as its two-letter code), ``gender_meta_sha256`` (``f`` / ``m``),
  ``dob_year_sha256`` / ``dob_month_sha256`` / ``dob_day_sha256`` (``YYYY``, ``MM``, ``DD``:
  the SDK's DOBY, DOBM, DOBD). A hash of a year or a gender hides nothing: these columns are
  as personal as the values.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

EMAIL_PATTERN = r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$"
SHA256_HEX = r"^[0-9a-f]{64}$"
# what an email or a phone number looks like inside text (the PII scanner's shapes too)
EMAIL_SHAPE = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
PHONE_SHAPE = (
    r"(?<![\w+-])("
    r"(\+|00)[1-9]\d{0,2}[ .-]?\(?\d{1,4}\)?([ .-]?\d{2,4}){2,4}"  # international
    r"|\(\d{3}\) ?\d{3}[ .-]\d{4}"  # (555) 123-4567
    r"|\d{3}[ .-]\d{3}[ .-]\d{4}"  # 555-123-4567
    r")(?![\w-])"
)
CALLING_CODES = {
    "US": "1",
    "CA": "1",
    "GB": "44",
    "FR": "33",
    "DE": "49",
    "ES": "34",
    "IT": "39",
    "NL": "31",
    "BE": "32",
    "AU": "61",
    "IE": "353",
}


def sha256_hex(col: Column) -> Column:
    return F.sha2(col, 256)


def normalise_email(col: Column) -> Column:
    e = F.lower(F.trim(col))
    return F.when(e.rlike(EMAIL_PATTERN), e)


def _local(e: Column) -> Column:
    return F.substring_index(e, "@", 1)


def _domain(e: Column) -> Column:
    return F.substring_index(e, "@", -1)


def google_email(email: Column) -> Column:
    """Google Customer Match: gmail.com and googlemail.com lose every dot of the local part."""
    d = _domain(email)
    return F.when(
        d.isin("gmail.com", "googlemail.com"),
        F.concat(F.regexp_replace(_local(email), r"\.", ""), F.lit("@"), d),
    ).otherwise(email)


def uid2_email(email: Column) -> Column:
    """UID2 (The Trade Desk): gmail.com only (not googlemail.com) loses dots and a +suffix."""
    d = _domain(email)
    local = F.regexp_replace(F.regexp_replace(_local(email), r"\+.*$", ""), r"\.", "")
    return F.when(d == "gmail.com", F.concat(local, F.lit("@"), d)).otherwise(email)


def normalise_phone(col: Column, country: Column, default_country: str = "US") -> Column:
    """To E.164 (``+`` and 8..15 digits); national numbers take the record's country code."""
    raw = F.trim(col)
    digits = F.regexp_replace(raw, r"[^0-9]", "")
    cc_map = F.create_map(*[F.lit(x) for kv in CALLING_CODES.items() for x in kv])
    cc = F.coalesce(cc_map[F.upper(country)], F.lit(CALLING_CODES.get(default_country, "1")))
    e164 = (
        F.when(raw.startswith("+"), F.concat(F.lit("+"), digits))
        .when(digits.startswith("00"), F.concat(F.lit("+"), F.substring(digits, 3, 20)))
        .when(
            (cc == "1") & (F.length(digits) == 11) & digits.startswith("1"),
            F.concat(F.lit("+"), digits),
        )
        .when((cc == "1") & (F.length(digits) == 10), F.concat(F.lit("+1"), digits))
        .when(digits.startswith("0"), F.concat(F.lit("+"), cc, F.substring(digits, 2, 20)))
    )
    return F.when(e164.rlike(r"^\+[1-9][0-9]{7,14}$"), e164)


def google_name(col: Column) -> Column:
    n = F.lower(F.trim(col))
    return F.when(F.length(n) > 0, n)


def meta_name(col: Column) -> Column:
    """Meta: lowercase letters only (accents kept as letters, punctuation and spaces dropped)."""
    n = F.regexp_replace(F.lower(F.trim(col)), r"[^\p{L}]", "")
    return F.when(F.length(n) > 0, n)


US_STATES = {  # Meta: "use the 2-character ANSI abbreviation code" for US states
    "alabama": "al", "alaska": "ak", "arizona": "az", "arkansas": "ar", "california": "ca",
    "colorado": "co", "connecticut": "ct", "delaware": "de", "districtofcolumbia": "dc",
    "florida": "fl", "georgia": "ga", "hawaii": "hi", "idaho": "id", "illinois": "il",
    "indiana": "in", "iowa": "ia", "kansas": "ks", "kentucky": "ky", "louisiana": "la",
    "maine": "me", "maryland": "md", "massachusetts": "ma", "michigan": "mi", "minnesota": "mn",
    "mississippi": "ms", "missouri": "mo", "montana": "mt", "nebraska": "ne", "nevada": "nv",
    "newhampshire": "nh", "newjersey": "nj", "newmexico": "nm", "newyork": "ny",
    "northcarolina": "nc", "northdakota": "nd", "ohio": "oh", "oklahoma": "ok", "oregon": "or",
    "pennsylvania": "pa", "rhodeisland": "ri", "southcarolina": "sc", "southdakota": "sd",
    "tennessee": "tn", "texas": "tx", "utah": "ut", "vermont": "vt", "virginia": "va",
    "washington": "wa", "westvirginia": "wv", "wisconsin": "wi", "wyoming": "wy",
}  # fmt: skip


def meta_state(col: Column, country: Column) -> Column:
    """Meta's state: lowercase letters only; a US state's full name becomes its code."""
    s = meta_name(col)
    codes = F.create_map(*[F.lit(x) for kv in US_STATES.items() for x in kv])
    return F.when(country == "US", F.coalesce(codes[s], s)).otherwise(s)


def meta_gender(col: Column) -> Column:
    """Meta's gender: ``f`` or ``m``, the first letter of the lowercased value (the SDK's
    rule); anything else is not sent."""
    g = F.substring(F.lower(F.trim(col)), 1, 1)
    return F.when(g.isin("f", "m"), g)


def birth_date(col: Column, country: Column) -> Column:
    """A date of birth as customer files write it: ISO ``YYYY-MM-DD`` or ``YYYYMMDD``, else
    ``M/D/YYYY`` in the US and ``D/M/YYYY`` elsewhere (also with ``.`` or ``-``); a year
    before 1900 or a date in the future is not a birth date."""
    v = F.trim(col)
    slashed = F.regexp_replace(v, r"[.-]", "/")
    local = F.when(country == "US", F.try_to_date(slashed, "M/d/yyyy")).otherwise(
        F.try_to_date(slashed, "d/M/yyyy")
    )
    d = F.coalesce(
        F.when(v.rlike(r"^\d{4}-\d{2}-\d{2}$"), F.try_to_date(v, "yyyy-MM-dd")),
        F.when(v.rlike(r"^\d{8}$"), F.try_to_date(v, "yyyyMMdd")),
        F.when(v.rlike(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4}$"), local),
    )
    return F.when((F.year(d) >= 1900) & (d <= F.current_date()), d)


def detail_hashes(
    city: Column, state: Column, gender: Column, dob: Column, country: Column
) -> dict[str, Column]:
    """Meta's hashed city, state, gender and date of birth (year, month, day apart)."""
    d = birth_date(dob, country)
    return {
        "city_meta_sha256": sha256_hex(meta_name(city)),
        "state_meta_sha256": sha256_hex(meta_state(state, country)),
        "gender_meta_sha256": sha256_hex(meta_gender(gender)),
        "dob_year_sha256": sha256_hex(F.date_format(d, "yyyy")),
        "dob_month_sha256": sha256_hex(F.date_format(d, "MM")),
        "dob_day_sha256": sha256_hex(F.date_format(d, "dd")),
    }


# street words written short in customer files, spelled out so "12 Main St." meets
# "12 main street" (USPS Publication 28 suffixes and the common British and French ones)
ADDRESS_WORDS = {
    "st": "street", "str": "street", "rd": "road", "ave": "avenue", "av": "avenue",
    "dr": "drive", "ln": "lane", "ct": "court", "pl": "place", "blvd": "boulevard",
    "hwy": "highway", "sq": "square", "cres": "crescent", "ter": "terrace", "tce": "terrace",
    "pkwy": "parkway", "cir": "circle", "apt": "apartment", "ste": "suite", "fl": "floor",
    "n": "north", "s": "south", "e": "east", "w": "west", "bd": "boulevard",
}  # fmt: skip


def address_key(col: Column) -> Column:
    """A street address for comparison: lowercase letters and digits, the short street words
    spelled out, spaces and punctuation dropped ("12 Main St." -> "12mainstreet")."""
    words = F.split(F.regexp_replace(F.lower(F.trim(col)), r"[^\p{L}\p{N}]+", " "), " ")
    spelled = F.create_map(*[F.lit(x) for kv in ADDRESS_WORDS.items() for x in kv])
    key = F.array_join(F.transform(words, lambda w: F.coalesce(spelled[w], w)), "")
    return F.when(F.length(key) > 0, key)


def hashed_grams(key: Column) -> Column:
    """The distinct bigrams of a normalised value, padded ("jon" -> _j jo on n_), each kept as
    the first 8 hex digits of its SHA-256: two values' Dice similarity without storing
    either. Null for a null value."""
    padded = F.concat(F.lit("_"), key, F.lit("_"))
    grams = F.transform(
        F.sequence(F.lit(1), F.length(padded) - 1), lambda i: padded.substr(i, F.lit(2))
    )
    hashed = F.transform(grams, lambda g: F.substring(F.sha2(g, 256), 1, 8))
    return F.when(key.isNotNull(), F.array_sort(F.array_distinct(hashed)))


def match_features(first: Column, last: Column, address: Column) -> dict[str, Column]:
    """What probabilistic matching compares beyond the hashes the platforms take: the names'
    and street address's hashed bigrams, and the address's hash."""
    street = address_key(address)
    return {
        "first_name_grams": hashed_grams(meta_name(first)),
        "last_name_grams": hashed_grams(meta_name(last)),
        "address_sha256": sha256_hex(street),
        "address_grams": hashed_grams(street),
    }


def email_hashes(raw: Column) -> dict[str, Column]:
    """The email hash columns. A value that arrives already hashed is kept as the canonical hash
    (never hashed twice); the platform-specific forms cannot be derived from it and stay null."""
    e = normalise_email(raw)
    pre_hashed = F.lower(F.trim(raw))
    return {
        "email_sha256": F.when(pre_hashed.rlike(SHA256_HEX), pre_hashed).otherwise(sha256_hex(e)),
        "email_google_sha256": sha256_hex(google_email(e)),
        "email_uid2_sha256": sha256_hex(uid2_email(e)),
    }


def phone_hashes(raw: Column, country: Column, default_country: str) -> dict[str, Column]:
    p = normalise_phone(raw, country, default_country)
    return {
        "phone_sha256": sha256_hex(p),
        "phone_digits_sha256": sha256_hex(F.substring(p, 2, 20)),
    }
