"""Erasure (GDPR art. 17, CCPA deletion): find a person through the identity graph, delete
every row about them in every table, vacuum the versions time travel could bring back, queue a
removal for every audience they were last sent in, rewrite the published audience folders and
the landing files that hold them, and record an audit row that holds counts, never the
identifiers."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.identity.graph import blocked_email_hashes
from jobs.identity.resolve import attribute_events
from jobs.ingest.normalise import email_hashes, phone_hashes
from jobs.lake import TABLES, Lake, per_table
from jobs.privacy.audiences import candidate_folders, erase_audience_files, identifying_values
from jobs.privacy.raw_files import MIN_FREE_TEXT_MATCH, contains_any, erase_raw
from jobs.privacy.vacuum import may_hold_deletion_vectors, vacuum_conf
from jobs.profiles.identifiers import person_identifiers
from jobs.report import JobReport
from jobs.session import session_conf
from jobs.vocabulary import EVENT_IDENTIFIERS, ID_TYPES

# every column that holds an identifier of a type (events hold two of some types)
ID_COLUMNS = {
    **{c: t for t, c in ID_TYPES.items()},
    **EVENT_IDENTIFIERS,
}
PERSON_COLUMNS = ("person_id", "old_person_id", "new_person_id")
NODE_COLUMNS = ("node", "src", "dst")
TEXT_COLUMNS = ("unparsed_line", "detail")  # free text that may quote an identifier
REDACT_TABLES = ("identity.report", "reports.runs", "quality.results")  # aggregates: redact
# the audit row's counts the job's report repeats
REPORTED = (
    "raw_files_rewritten",
    "raw_lines_removed",
    "removals_queued",
    "audience_folders_rewritten",
    "audience_rows_removed",
)


class ErasureError(ValueError):
    """The request names nothing the lake knows, or is malformed."""


def parse_identifier(text: str) -> tuple[str, str]:
    kind, sep, value = text.partition("=")
    if not sep or kind not in ID_TYPES or not value.strip():
        raise ErasureError(
            f"--identifier {text!r}: expected TYPE=VALUE with TYPE one of {', '.join(ID_TYPES)}"
        )
    return kind, value.strip()


def request_nodes(lake: Lake, identifiers: list[tuple[str, str]]) -> list[str]:
    """Identifier nodes as the graph stores them: emails and phones normalised and hashed by
    the functions ingestion uses (an already hashed value is taken as it is)."""
    country = lake.settings.ingest.default_country
    nodes = []
    for kind, value in identifiers:
        if kind in ("email", "phone"):
            v = F.lit(value)
            col = (
                email_hashes(v)["email_sha256"]
                if kind == "email"
                else phone_hashes(v, F.lit(None), country)["phone_sha256"]
            )
            hashed = lake.spark.range(1).select(col.alias("h")).first()["h"]
            if hashed is None:
                raise ErasureError(f"--identifier {kind}=...: not a valid {kind}")
            value = hashed
        nodes.append(f"{kind}:{value}")
    return nodes


def find_person(lake: Lake, nodes: list[str], person_ids: list[str]) -> tuple[list, list]:
    """-> (person ids, every identifier node of those persons)."""
    pm = lake.read("identity.person_map")
    hit = F.col("node").isin(nodes) | F.col("person_id").isin(person_ids)
    pids = {r["person_id"] for r in pm.where(hit).select("person_id").distinct().collect()}
    if pids and lake.exists("identity.lineage"):  # ids they had before merges and splits
        lineage = lake.read("identity.lineage").select("old_person_id", "new_person_id")
        for _ in range(20):
            older = lineage.where(F.col("new_person_id").isin(sorted(pids)))
            more = {r["old_person_id"] for r in older.collect()} - pids
            if not more:
                break
            pids |= more
    pids = sorted(pids)
    owned = pm.where(F.col("person_id").isin(pids)).select("node").collect()
    return pids, sorted(set(nodes) | {r["node"] for r in owned})


def by_type(nodes: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n in nodes:
        kind, _, value = n.partition(":")
        out.setdefault(kind, []).append(value)
    return out


def _clear_ids(ids: dict[str, list[str]]) -> list[str]:
    """The ids stored in clear (not hashed) that free text may quote."""
    return [v for k in ("cookie", "device", "user") for v in ids.get(k, [])]


SOURCE_PREFIX = "_erase_"  # no table has a column of that name


def _quotes_any(text: Column, values: Column) -> Column:
    return F.exists(values, lambda v: text.contains(v))


def every_value(ids: dict[str, list[str]], pids: list[str]) -> list[str]:
    """Their person ids and identifier values, as free text may quote them."""
    return pids + [v for vs in ids.values() for v in vs]


def request_row(spark, ids: dict[str, list[str]], pids: list[str], nodes: list[str]):
    """The request as a one-row frame of arrays, to join a Delta command to (``source``).

    Delta writes a DELETE's or UPDATE's predicate into the table's log (``commitInfo``), where
    it stays until log clean-up: a predicate holding the identifiers would keep them there
    after the rows are gone. A MERGE with this row logs ``array_contains(s.<column>, ...)``
    instead, and the values stay in the job's memory."""
    values = {f"{SOURCE_PREFIX}{k}": ids.get(k, []) for k in ID_TYPES}
    values[f"{SOURCE_PREFIX}person"] = pids
    values[f"{SOURCE_PREFIX}node"] = nodes
    values[f"{SOURCE_PREFIX}text"] = [v for v in _clear_ids(ids) if len(v) >= MIN_FREE_TEXT_MATCH]
    values[f"{SOURCE_PREFIX}pattern"] = _pattern(every_value(ids, pids))
    schema = ", ".join(
        f"{k} {'string' if k.endswith('pattern') else 'array<string>'}" for k in values
    )
    return spark.createDataFrame([tuple(values.values())], schema)


def _memberships(df: DataFrame, ids, pids: list[str], nodes: list[str]) -> list[tuple]:
    """(column, key, values) for every identifier, person and node column the table has."""
    cols = set(df.columns)
    found = [(n, kind, ids[kind]) for n, kind in ID_COLUMNS.items() if n in cols and ids.get(kind)]
    if pids:
        found += [(n, "person", pids) for n in PERSON_COLUMNS if n in cols]
    return found + [(n, "node", nodes) for n in NODE_COLUMNS if n in cols]


def row_predicate(
    df: DataFrame,
    ids: dict[str, list[str]],
    pids: list[str],
    nodes: list[str],
    source: str | None = None,
):
    """The rows of a table that are about the person, or None if the table cannot hold any.
    With ``source``, the alias of ``request_row`` in a MERGE whose target is ``t``: the
    predicate names that row's columns instead of holding the values."""

    def col(name: str) -> Column:
        return F.col(name if source is None else f"t.`{name}`")

    def member(name: str, key: str, values: list[str]) -> Column:
        if source is None:
            return col(name).isin(values)
        return F.array_contains(F.col(f"{source}.{SOURCE_PREFIX}{key}"), col(name))

    conds = [member(*m) for m in _memberships(df, ids, pids, nodes)]
    for name in [n for n in TEXT_COLUMNS if n in df.columns]:
        if source is None:
            conds.append(contains_any(col(name), _clear_ids(ids)))
        else:
            conds.append(_quotes_any(col(name), F.col(f"{source}.{SOURCE_PREFIX}text")))
    if not conds:
        return None
    return reduce(lambda a, b: a | b, [F.coalesce(c, F.lit(False)) for c in conds])


def queue_removals(lake: Lake, pids: list[str], erasure_id: str) -> int:
    """For every (destination, segment) whose latest export held the person: the identifiers
    the platform knows them by, so the next export's remove file can carry them."""
    if not lake.exists("gold.exports") or not pids:
        return 0
    ex = lake.read("gold.exports")
    latest = ex.groupBy("destination", "segment").agg(F.max("run_date").alias("run_date"))
    sent = ex.join(latest, ["destination", "segment", "run_date"]).where(
        F.col("person_id").isin(pids)
    )
    events = lake.read("silver.events")
    pm = lake.read("identity.person_map")
    attributed = attribute_events(events, pm, lake.settings.identity.link_types)
    attributed = attributed.where(F.col("person_id").isin(pids))
    crm = lake.read("silver.crm") if lake.exists("silver.crm") else None
    ids = person_identifiers(
        attributed, pm, crm, blocked_email_hashes(lake.settings.identity.blocked_emails)
    ).where(F.col("person_id").isin(pids))
    pending = sent.select("destination", "segment", "person_id").join(ids, "person_id")
    pending = pending.select(
        F.lit(erasure_id).alias("erasure_id"),
        "*",
        F.lit(None).cast("string").alias("sent_run_date"),
    ).localCheckpoint()
    n = pending.count()
    if n:
        # merge_schema: a queue written before the identifier lists existed
        lake.append(pending, "privacy.pending_removals", merge_schema=True)
    return n


def _pattern(values: list[str]) -> str:
    return "|".join(re.escape(v) for v in values if len(v) >= 8)


def _redact(lake: Lake, table: str, values: list[str], request: DataFrame) -> int:
    """Aggregate tables keep their row; any mention of the person is replaced (a MERGE with
    ``request_row``, so that the pattern is not logged)."""
    from delta.tables import DeltaTable

    df = lake.read(table)
    strings = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
    pattern = _pattern(values)
    if not pattern or not strings:
        return 0

    def mentions(col, pattern: Column) -> Column:
        hit = F.lit(False)
        for c in strings:
            hit = hit | F.coalesce(F.regexp_like(col(c), pattern), F.lit(False))
        return hit

    n = df.where(mentions(F.col, F.lit(pattern))).count()
    if n:
        logged = mentions(lambda c: F.col(f"t.`{c}`"), F.col(f"s.{SOURCE_PREFIX}pattern"))
        erased = F.lit("<erased>")
        (
            DeltaTable.forPath(lake.spark, lake.path(table))
            .alias("t")
            .merge(request.alias("s"), logged)
            .whenMatchedUpdate(
                set={
                    f"`{c}`": F.regexp_replace(
                        F.col(f"t.`{c}`"), F.col(f"s.{SOURCE_PREFIX}pattern"), erased
                    )
                    for c in strings
                }
            )
            .execute()
        )
    return n


def _delete_rows(lake: Lake, ids, pids: list[str], all_nodes: list[str]):
    """Deletes the person's rows in every table -> (the tables, rows deleted per table)."""
    from delta.tables import DeltaTable

    spark = lake.spark
    # quarantined lines of their events carry the event id, not always an identifier
    events = lake.read("silver.events")
    their_events = events.where(row_predicate(events, ids, pids, all_nodes))
    event_ids = their_events.select("event_id").distinct().localCheckpoint()
    values = every_value(ids, pids)
    request = request_row(spark, ids, pids, all_nodes).localCheckpoint()

    def delete_rows(table: str) -> int:
        # files rewritten from here on keep no statistics of identifier columns (a table
        # of an older lake), so their values do not reach the log that way either
        lake.ensure_properties(table)
        if table in REDACT_TABLES:
            return _redact(lake, table, values, request)
        dt = DeltaTable.forPath(spark, lake.path(table))
        df = dt.toDF()
        pred = row_predicate(df, ids, pids, all_nodes)
        if pred is None:
            return 0
        n = 0
        if "event_id" in df.columns and table == "silver.quarantine":
            dt.alias("t").merge(
                event_ids.alias("s"), "t.event_id = s.event_id"
            ).whenMatchedDelete().execute()
            n += lake.deleted_rows(table)
        if df.where(pred).limit(1).count():
            logged = row_predicate(df, ids, pids, all_nodes, source="s")
            dt.alias("t").merge(request.alias("s"), logged).whenMatchedDelete().execute()
            n += lake.deleted_rows(table)
        return n

    # every table, not only the changed ones: an older version of an untouched table (e.g.
    # an overwritten one) may still hold the person
    tables = [t for t in TABLES if not t.startswith("privacy.") and lake.exists(t)]
    counts = per_table(delete_rows, tables)
    return tables, {t: n for t, n in zip(tables, counts, strict=True) if n}


def _purge(lake: Lake, tables: list[str], deleted: dict[str, int]) -> None:
    """Rewrites the files whose rows were deleted and vacuums every table at once, so no older
    version still holds the person."""
    from delta.tables import DeltaTable

    spark = lake.spark
    hours = float(lake.settings.privacy.erasure_vacuum_hours)

    def purge(table: str) -> None:
        delta = DeltaTable.forPath(spark, lake.path(table))
        if table in deleted and may_hold_deletion_vectors(delta):
            # deletion vectors only mask rows: rewrite the files
            spark.sql(f"REORG TABLE delta.`{lake.path(table)}` APPLY (PURGE)")
        delta.vacuum(hours)

    with session_conf(spark, vacuum_conf(hours)):
        per_table(purge, tables)


def erase(
    lake: Lake,
    report: JobReport,
    identifiers: list[tuple[str, str]],
    person_ids: list[str],
    raw_files: bool = True,
) -> dict:
    spark = lake.spark
    erasure_id = uuid.uuid4().hex
    requested_at = datetime.now(UTC).replace(tzinfo=None)
    nodes = request_nodes(lake, identifiers)
    with report.step("find the person through the identity graph"):
        pids, all_nodes = find_person(lake, nodes, person_ids)
    if not pids:
        raise ErasureError(
            "no person in identity.person_map holds the given identifiers or ids; nothing erased"
        )
    ids = by_type(all_nodes)
    report.facts["persons"] = len(pids)
    report.facts["identifiers"] = len(all_nodes)
    with report.step("queue removals for the audiences they were sent in"):
        queued = queue_removals(lake, pids, erasure_id)
    with report.step("rewrite the published audience folders that hold them"):
        # before their rows go: their exports and every hash they were seen with are read here
        forms = identifying_values(lake, pids, ids)
        folders, audience_rows = erase_audience_files(
            lake, candidate_folders(lake, pids), forms, erasure_id
        )
    with report.step("delete their rows in every table"):
        tables, deleted = _delete_rows(lake, ids, pids, all_nodes)
    with report.step(f"purge and vacuum {len(tables)} tables"):
        _purge(lake, tables, deleted)
    files = lines = 0
    if raw_files:
        with report.step("rewrite landing files"):
            files, lines = erase_raw(spark, lake.settings, ids)
    audit = {
        "erasure_id": erasure_id,
        "requested_at": requested_at,
        "request": json.dumps(
            {
                "identifier_types": sorted({k for k, _ in identifiers}),
                "person_ids_given": len(person_ids),
            }
        ),
        "persons": len(pids),
        "identifiers": len(all_nodes),
        "rows_deleted": json.dumps(deleted, sort_keys=True),
        "tables_vacuumed": len(tables),
        "vacuum_retention_hours": lake.settings.privacy.erasure_vacuum_hours,
        "raw_files_rewritten": files,
        "raw_lines_removed": lines,
        "removals_queued": queued,
        "audience_folders_rewritten": folders,
        "audience_rows_removed": audience_rows,
    }
    # merge_schema: a lake whose erasures table predates the audience columns
    lake.append(lake.spark.createDataFrame([audit]), "privacy.erasures", merge_schema=True)
    report.written.update({f"deleted {t}": n for t, n in deleted.items()})
    report.facts["erasure id"] = erasure_id
    report.facts.update({k.replace("_", " "): audit[k] for k in REPORTED})
    return audit
