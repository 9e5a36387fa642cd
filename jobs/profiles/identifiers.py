"""Per-person identifiers for activation: the latest hashed email / phone / device seen for
each person in silver events (and the names identify calls gave), completed with CRM names,
zip and country.

The event part is a list of aggregate columns (``identifier_aggregates``) so that the profiles
job computes it in its own pass over the attributed events and writes
``gold.person_identifiers``; export reads that table instead of attributing every event again."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.ingest.crm import DETAIL_COLS
from jobs.vocabulary import EMAIL_HASHES, HASH_COLUMNS, NAME_HASHES, PHONE_HASHES

EVENT_COUNTRY = "identifiers_event_country"  # apart from the profile's own event_country
EVENT_NAME_COLS = [f"identifiers_event_{n}" for n in NAME_HASHES]  # names an identify call gave
# every email / phone (all its hash forms) a person's events showed
EVENT_EMAILS, EVENT_PHONES = "identifiers_event_emails", "identifiers_event_phones"
EVENT_ID_COLS = [
    *EMAIL_HASHES,
    *PHONE_HASHES,
    "device_id",
    EVENT_COUNTRY,
    *EVENT_NAME_COLS,
    EVENT_EMAILS,
    EVENT_PHONES,
]
# ``emails`` / ``phones``: every one known, the latest (the single columns) first
IDENTIFIER_COLS = [
    "person_id",
    *EMAIL_HASHES,
    *PHONE_HASHES,
    *NAME_HASHES,
    "country",
    "zip",
    *DETAIL_COLS,
    "customer_id",  # the latest CRM record's (sent only where a destination opts in)
    "device_id",
    "emails",
    "phones",
]


def advertising_id(columns: list[str]) -> Column:
    """The mobile advertising id of an event. Rows ingested before it had a column of its own
    (no ``source_name``) come from the native format, whose ``device_id`` is one; another
    format's ``device_id`` (an IDFV, an Android id) is never sent as one."""
    if "advertising_id" not in columns:
        return F.col("device_id")
    if "source_name" not in columns:
        return F.col("advertising_id")
    old_native = F.col("source_name").isNull()
    return F.coalesce("advertising_id", F.when(old_native, F.col("device_id")))


def _event_names(columns: list[str], latest) -> list[Column]:
    """The name hashes of the latest event that gave a name (an identify call's traits)."""
    if not all(n in columns for n in NAME_HASHES):
        return [F.lit(None).cast("string").alias(a) for a in EVENT_NAME_COLS]
    key = F.coalesce(F.col(NAME_HASHES[0]), F.col(NAME_HASHES[1]))
    return [latest(n, key, a) for n, a in zip(NAME_HASHES, EVENT_NAME_COLS, strict=True)]


def identifier_aggregates(blocked_email_hashes: list[str], columns: list[str]) -> list[Column]:
    """Aggregate columns (for a ``groupBy("person_id")`` of attributed events), named
    ``EVENT_ID_COLS``: the latest email hashes, phone hashes and mobile advertising id
    (``device_id``) a person was seen with, the country of their latest event and the names
    of the latest that gave one. An event carrying a blocked email (a shared test address)
    tells nothing about anyone: it is left out of all of them."""
    c = F.col
    usable = ~F.coalesce(c("email_sha256").isin(blocked_email_hashes), F.lit(False))

    def latest(value: str | Column, key: str | Column, name: str | None = None) -> Column:
        # ``value`` of the latest usable event with a ``key``; at the same instant the larger
        # key wins, so a rerun picks the same row (a flip would ship as a remove + an add)
        # and the email (or phone) hashes all come from one event. max_by skips null orderings.
        key = c(key) if isinstance(key, str) else key
        order = F.when(usable & key.isNotNull(), F.struct(c("event_ts"), key))
        return F.max_by(value, order).alias(name or value)

    return [
        *[latest(col, "email_sha256") for col in EMAIL_HASHES],
        *[latest(col, "phone_sha256") for col in PHONE_HASHES],
        latest(advertising_id(columns), advertising_id(columns), "device_id"),
        *_event_names(columns, latest),
        F.max_by(
            "country", F.when(usable, F.struct(c("event_ts"), F.coalesce("country", F.lit(""))))
        ).alias(EVENT_COUNTRY),
        _every(usable, EMAIL_HASHES, EVENT_EMAILS),
        _every(usable, PHONE_HASHES, EVENT_PHONES),
    ]


def _every(usable: Column, cols: tuple[str, ...], name: str) -> Column:
    """The distinct (hash forms of an) email or phone of the usable events, sorted."""
    forms = F.when(usable & F.col(cols[0]).isNotNull(), F.struct(*cols))
    return F.array_sort(F.collect_set(forms)).alias(name)


def _latest_first(cols: tuple[str, ...], latest: list[Column], sets: list[Column]) -> Column:
    """The latest one (``latest``: its columns ``cols``), then the others of ``sets``, sorted."""
    first = latest[0]
    struct = F.struct(*[v.alias(c) for c, v in zip(cols, latest, strict=True)])
    empty = F.array().cast(f"array<struct<{', '.join(f'{c}:string' for c in cols)}>>")
    known = F.array_sort(F.array_distinct(F.concat(*[F.coalesce(s, empty) for s in sets])))
    others = F.filter(known, lambda x: ~F.coalesce(x[cols[0]] == first, F.lit(False)))
    return F.when(first.isNotNull(), F.concat(F.array(struct), others)).otherwise(others)


def with_crm(event_ids: DataFrame, person_map: DataFrame, crm: DataFrame | None) -> DataFrame:
    """(person_id, ``EVENT_ID_COLS``) -> ``IDENTIFIER_COLS``: CRM values fill what events did
    not show (CRM-only persons included); zip comes from CRM only, names from CRM or else from
    the latest identify call."""
    c = F.col
    if crm is None:
        return event_ids.select(
            "person_id",
            *EMAIL_HASHES,
            *PHONE_HASHES,
            *[c(e).alias(n) for n, e in zip(NAME_HASHES, EVENT_NAME_COLS, strict=True)],
            c(EVENT_COUNTRY).alias("country"),
            *[
                F.lit(None).cast("string").alias(col)
                for col in ["zip", *DETAIL_COLS, "customer_id"]
            ],
            "device_id",
            _latest_first(EMAIL_HASHES, [c(x) for x in EMAIL_HASHES], [c(EVENT_EMAILS)]).alias(
                "emails"
            ),
            _latest_first(PHONE_HASHES, [c(x) for x in PHONE_HASHES], [c(EVENT_PHONES)]).alias(
                "phones"
            ),
        )
    crm = _with_columns(crm, DETAIL_COLS)  # a CRM table from before them
    linked = person_map.where(c("id_type") == "crm").select(
        "person_id", c("id_value").alias("customer_id")
    )
    crm_p = (
        linked.join(crm, "customer_id")
        .groupBy("person_id")
        .agg(
            *[
                F.max_by(col, "updated_at").alias(f"crm_{col}")
                for col in [*HASH_COLUMNS, *NAME_HASHES, "country", "zip", *DETAIL_COLS]
            ],
            F.max_by("customer_id", F.struct("updated_at", "customer_id")).alias("crm_customer_id"),
            _every(F.lit(True), EMAIL_HASHES, "crm_emails"),
            _every(F.lit(True), PHONE_HASHES, "crm_phones"),
        )
    )
    out = event_ids.join(crm_p, "person_id", "full")
    out = out.select(
        "*",
        *[F.coalesce(col, f"crm_{col}").alias(f"_{col}") for col in EMAIL_HASHES + PHONE_HASHES],
    )
    return out.select(
        "person_id",
        *[c(f"_{col}").alias(col) for col in EMAIL_HASHES + PHONE_HASHES],
        # a CRM record's names, else those of the latest identify call
        *[
            F.when(
                c("crm_first_name_sha256").isNotNull() | c("crm_last_name_sha256").isNotNull(),
                c(f"crm_{col}"),
            )
            .otherwise(c(e))
            .alias(col)
            for col, e in zip(NAME_HASHES, EVENT_NAME_COLS, strict=True)
        ],
        F.coalesce("crm_country", EVENT_COUNTRY).alias("country"),
        *[c(f"crm_{col}").alias(col) for col in ["zip", *DETAIL_COLS, "customer_id"]],
        "device_id",
        _latest_first(
            EMAIL_HASHES, [c(f"_{x}") for x in EMAIL_HASHES], [c(EVENT_EMAILS), c("crm_emails")]
        ).alias("emails"),
        _latest_first(
            PHONE_HASHES, [c(f"_{x}") for x in PHONE_HASHES], [c(EVENT_PHONES), c("crm_phones")]
        ).alias("phones"),
    )


def _with_columns(df: DataFrame, cols: list[str]) -> DataFrame:
    """``cols`` that ``df`` lacks, as nulls."""
    missing = [F.lit(None).cast("string").alias(col) for col in cols if col not in df.columns]
    return df.select("*", *missing)


def with_lists(ids: DataFrame) -> DataFrame:
    """``emails`` / ``phones`` made of the single columns where a frame has no lists, and
    the CRM's detail columns as nulls where it has none (a table written before them)."""
    ids = _with_columns(ids, [*DETAIL_COLS, "customer_id"])
    for name, cols in (("emails", EMAIL_HASHES), ("phones", PHONE_HASHES)):
        if name not in ids.columns:
            present = [F.col(c) if c in ids.columns else F.lit(None).cast("string") for c in cols]
            one = F.struct(*[v.alias(c) for c, v in zip(cols, present, strict=True)])
            ids = ids.withColumn(name, F.when(F.coalesce(*present).isNotNull(), F.array(one)))
    return ids


def person_identifiers(
    events: DataFrame, person_map: DataFrame, crm: DataFrame | None, blocked_email_hashes: list[str]
) -> DataFrame:
    """Attributed events -> ``IDENTIFIER_COLS``, one row per person."""
    aggregates = identifier_aggregates(blocked_email_hashes, events.columns)
    event_ids = events.groupBy("person_id").agg(*aggregates)
    return with_crm(event_ids, person_map, crm)
