"""The lake's shared vocabulary: identifier types and the columns that hold them, the hashed
columns, and the order of the daily jobs.

Every stage, the DAG and the tests read these names from here, so that a new identifier column
or a new job is written once. Plain Python on purpose: the DAG file imports it at parse time,
where no Spark may be loaded."""

from __future__ import annotations

# the daily pipeline, in order: each job reads what the ones before it wrote
DAILY_JOBS = ("ingest", "quality", "identity", "profiles", "segments", "lookalike", "export")
# jobs on their own schedule, outside the daily chain
MAINTENANCE_JOBS = ("retention", "vacuum")

# identifier type -> the column that holds it in events, customer records and identity tables
ID_TYPES = {
    "cookie": "anonymous_id",
    "device": "device_id",
    "user": "user_id",
    "email": "email_sha256",
    "phone": "phone_sha256",
    "crm": "customer_id",
}
# every silver.events / bronze.events column holding an identifier -> its type (events hold
# two columns of some types)
EVENT_IDENTIFIERS = {
    "anonymous_id": "cookie",
    "alt_anonymous_id": "cookie",  # an alias call's previousId, Snowplow's network_userid
    "device_id": "device",
    "advertising_id": "device",  # IDFA / GAID; the native format's device_id is one
    "user_id": "user",
    "email_sha256": "email",
    "phone_sha256": "phone",
}
# silver.crm column -> identifier type
CRM_IDENTIFIERS = {"customer_id": "crm", "email_sha256": "email", "phone_sha256": "phone"}

# each email is kept as three hashes (plain, Google's normalisation, UID2's), each phone as two
EMAIL_HASHES = ("email_sha256", "email_google_sha256", "email_uid2_sha256")
PHONE_HASHES = ("phone_sha256", "phone_digits_sha256")
HASH_COLUMNS = (*EMAIL_HASHES, *PHONE_HASHES)
# names, for the platforms that match on them (Meta's normalisation apart)
NAME_HASHES = (
    "first_name_sha256",
    "last_name_sha256",
    "first_name_meta_sha256",
    "last_name_meta_sha256",
)
