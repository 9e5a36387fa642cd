"""Erasure in the audience bucket: every published folder that holds an erased person is
rewritten without them (``_SUCCESS`` withdrawn, the parts rewritten, a new manifest,
``_SUCCESS`` back, all by ``activation.files.publish``).

A file row is theirs when any of its cells holds one of their identifiers in a form some
platform file carries: every email and phone hash they were seen with (hex, and Base64 of the
digest as The Trade Desk takes it) and their device ids (as sent, and lowercased as Meta takes
them). Names, zips and countries never decide: they are not unique to a person."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from jobs.activation.files import MANIFEST, SUCCESS, publish, unique_names
from jobs.identity.resolve import attribute_events
from jobs.lake import Lake
from jobs.storage import hadoop_fs, read_text
from jobs.vocabulary import HASH_COLUMNS

DEVICE_COLS = ["device_id", "advertising_id"]


# the columns a customer id is sent in (Meta's EXTERN_ID, the generic file's): a customer id may
# look like any other value (a numeric id like a zip), so it is matched in these alone
CUSTOMER_ID_COLUMNS = ("EXTERN_ID", "customer_id")


@dataclass(frozen=True)
class Forms:
    """What identifies the persons in an audience file."""

    anywhere: list[str]  # hashes (hex and Base64) and device ids: matched in any column
    customer_ids: list[str]  # matched in ``CUSTOMER_ID_COLUMNS`` only


def identifying_values(lake: Lake, pids: list[str], ids: dict[str, list[str]]) -> Forms:
    """Every form in which an audience file may hold one of the persons (read before their rows
    are deleted): the hashes and device ids of their events and CRM records and of the graph,
    and their customer ids."""
    customers = set(ids.get("crm", []))
    events = attribute_events(
        lake.read("silver.events"),
        lake.read("identity.person_map"),
        lake.settings.identity.link_types,
    ).where(F.col("person_id").isin(pids))
    frames = [_values(events, HASH_COLUMNS, DEVICE_COLS)]
    if lake.exists("silver.crm"):
        pm = lake.read("identity.person_map").where(
            F.col("person_id").isin(pids) & (F.col("id_type") == "crm")
        )
        crm = lake.read("silver.crm").join(
            pm.select(F.col("id_value").alias("customer_id")), "customer_id", "left_semi"
        )
        frames.append(_values(crm, HASH_COLUMNS, []))
        customers |= {r[0] for r in pm.select("id_value").collect()}
    found = reduce(DataFrame.unionByName, frames).collect()
    hashes = {r["v"] for r in found if r["k"] == "h"}
    devices = {r["v"] for r in found if r["k"] == "d"}
    hashes |= set(ids.get("email", [])) | set(ids.get("phone", []))
    devices |= set(ids.get("device", []))
    forms = set(hashes) | {_b64_of_hex(h) for h in hashes if len(h) == 64}
    forms |= devices | {d.lower() for d in devices}
    customers = {c.strip() for c in customers}  # EXTERN_ID is sent lowercased
    return Forms(sorted(forms), sorted(customers | {c.lower() for c in customers}))


def _values(df: DataFrame, hash_cols: list[str], device_cols: list[str]) -> DataFrame:
    cols = [
        F.struct(F.lit("h").alias("k"), F.col(c).alias("v")) for c in hash_cols if c in df.columns
    ]
    cols += [
        F.struct(F.lit("d").alias("k"), F.col(c).alias("v")) for c in device_cols if c in df.columns
    ]
    return (
        df.select(F.explode(F.array(*cols)).alias("x"))
        .select("x.k", "x.v")
        .where(F.col("v").isNotNull())
        .distinct()
    )


def _b64_of_hex(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def candidate_folders(lake: Lake, pids: list[str]) -> dict[str, int]:
    """{published folder that may hold the persons: how many of them its full file held}:
    every folder of an audience they were exported in, from the first date they were (a later
    folder's remove part may list them). Read before their gold.exports rows are deleted."""
    if not lake.exists("gold.exports"):
        return {}
    sent = (
        lake.read("gold.exports")
        .where(F.col("person_id").isin(pids))
        .groupBy("destination", "segment", "run_date")
        .agg(F.count("*").alias("n"))
        .collect()
    )
    held: dict[tuple[str, str], dict[str, int]] = {}
    for r in sent:
        held.setdefault((r["destination"], r["segment"]), {})[str(r["run_date"])] = r["n"]
    root = lake.settings.resolve(lake.settings.storage.audience_root).rstrip("/")
    folders = {}
    for (destination, segment), dates in held.items():
        audience = f"{root}/{destination}/{segment}"
        fs, path = hadoop_fs(lake.spark, audience)
        if not fs.exists(path):
            continue
        for status in fs.listStatus(path):
            name = status.getPath().getName()
            day = name.removeprefix("dt=")
            if name.startswith("dt=") and not name.endswith("._tmp") and day >= min(dates):
                folders[f"{audience}/{name}"] = dates.get(day, 0)
    return dict(sorted(folders.items()))


def _part(spark, folder: str, name: str, described: dict, fmt: str) -> DataFrame:
    columns = described["columns"]
    if fmt == "csv":  # a repeated header (Email, Email) read under names of its own
        schema = StructType([StructField(c, StringType()) for c in unique_names(columns)])
        if not described["files"]:
            return spark.createDataFrame([], schema)
        return spark.read.schema(schema).option("header", "true").csv(f"{folder}/{name}")
    return spark.read.parquet(f"{folder}/{name}").select(*[f"`{c}`" for c in columns])


def _quoted_in(text: F.Column):
    """v -> whether ``text`` (JSON) holds the string ``v`` (a one-argument lambda: Spark reads
    a second argument as the element's index)."""
    return lambda v: text.contains(F.concat(F.lit('"'), v, F.lit('"')))


def _theirs(df: DataFrame, forms: Forms) -> F.Column:
    """A cell equal to one of the ``forms`` its column may hold; in a list column (Parquet), an
    element holding one."""
    hit = F.lit(False)
    for field in df.schema.fields:
        col = F.col(f"`{field.name}`")
        values = forms.anywhere
        if field.name in CUSTOMER_ID_COLUMNS:
            values = [*values, *forms.customer_ids]
        wanted = F.array(*[F.lit(v) for v in values])
        if field.dataType.simpleString().startswith(("array", "struct", "map")):
            text = F.to_json(col)
            found = F.exists(wanted, _quoted_in(text))
        else:
            found = col.cast("string").isin(values)
        hit = hit | F.coalesce(found, F.lit(False))
    return hit


def rewrite_folder(lake: Lake, folder: str, values: Forms, persons: int, erasure_id: str) -> int:
    """Rewrite one published folder without the rows holding ``values`` (``persons``: how many
    of the erased its full file held); -> rows removed."""
    spark = lake.spark
    fs, success = hadoop_fs(spark, f"{folder}/{SUCCESS}")
    if not fs.exists(success):  # never completed: no platform reads it, the next export replaces it
        return 0
    manifest = json.loads(read_text(spark, f"{folder}/{MANIFEST}"))
    fmt = manifest["format"]
    parts = {
        name: _part(spark, folder, name, described, fmt)
        for name, described in manifest["parts"].items()
    }
    removed = {n: df.where(_theirs(df, values)).count() for n, df in parts.items()}
    if not any(removed.values()):
        return 0
    kept = {n: df.where(~_theirs(df, values)) for n, df in parts.items()}
    meta = {k: v for k, v in manifest.items() if k not in ("parts", "format", "compression")}
    meta["rows"] = manifest["parts"]["full"]["rows"] - removed.get("full", 0)
    meta["people"] = max(0, int(manifest.get("people", 0)) - persons)
    meta["erasures"] = [*manifest.get("erasures", []), erasure_id]
    publish(spark, folder, kept, fmt, _max_rows(lake, manifest.get("destination")), meta)
    return sum(removed.values())


def _max_rows(lake: Lake, destination: str | None) -> int:
    for d in lake.settings.destinations:
        if d.name == destination:
            return d.max_rows_per_file
    return 1_000_000


def erase_audience_files(
    lake: Lake, folders: dict[str, int], values: Forms, erasure_id: str
) -> tuple[int, int]:
    """-> (folders rewritten, rows removed) over the ``candidate_folders``."""
    rewritten = rows = 0
    for folder, persons in folders.items():
        n = rewrite_folder(lake, folder, values, persons, erasure_id)
        if n:
            rewritten, rows = rewritten + 1, rows + n
    return rewritten, rows
