"""Export job: for every destination and segment, the consented audience as full + add/remove
files in the platform's format, with a size gate and a manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial, reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.activation.files import publish
from jobs.activation.formats import FORMATS, identifier_counts
from jobs.activation.rules import described
from jobs.cache import cached
from jobs.lake import Lake
from jobs.lookalike.published import computed_on, segment_name
from jobs.profiles.identifiers import IDENTIFIER_COLS, with_lists
from jobs.report import JobReport, say


def consenting(profiles):
    """The one place consent is enforced for activation: only persons whose latest advertising
    statement is a yes, and never a cluster the identity guards quarantined as too large."""
    return profiles.where(
        (F.col("ad_consent") == F.lit(True)) & ~F.coalesce("identity_quarantined", F.lit(False))
    ).select("person_id")


def consented(members, profiles):
    """The members who may be sent to a platform (see ``consenting``)."""
    return members.join(consenting(profiles), "person_id", "left_semi")


def consent_counts(members, profiles, segments: list[str]) -> dict[str, tuple[int, int]]:
    """segment -> (members, consented members) for each of ``segments``, by the rule of
    ``consenting``: one pass over the date's members for every audience, not one per audience."""
    ok = consenting(profiles).select("person_id", F.lit(1).alias("ok"))
    rows = (
        members.where(F.col("segment").isin(segments))
        .join(ok, "person_id", "left")
        .groupBy("segment")
        .agg(F.count("*").alias("members"), F.count("ok").alias("consented"))
        .collect()
    )
    counts = {r["segment"]: (int(r["members"]), int(r["consented"])) for r in rows}
    return {segment: counts.get(segment, (0, 0)) for segment in segments}


def identifiers(lake: Lake, run_date: str):
    """The identifiers of every person, as the profiles job wrote them in the same pass as the
    profiles (export does not attribute the events again)."""
    if not lake.exists("gold.person_identifiers"):
        raise RuntimeError(
            f"export {run_date}: {lake.path('gold.person_identifiers')} does not exist; "
            "run the profiles job first (it writes the identifiers export sends)"
        )
    ids = lake.read("gold.person_identifiers")
    made = ids.agg(F.max("run_date")).first()[0]
    if made is not None and str(made) < run_date:
        say(
            f"[export] {run_date}: identifiers are from the profiles run of {made}; "
            "people first seen since then have none yet"
        )
    return with_lists(ids).select(*IDENTIFIER_COLS)  # a table from before the lists


def last_export_dates(lake: Lake, run_date: str) -> dict[tuple[str, str], str]:
    """{(destination, segment): the date of its latest export before ``run_date``}, for every
    audience at once (one small aggregation, not one per audience)."""
    if not lake.exists("gold.exports"):
        return {}
    rows = (
        lake.read("gold.exports")
        .where(F.col("run_date") < run_date)
        .groupBy("destination", "segment")
        .agg(F.max("run_date").alias("last"))
        .collect()
    )
    return {(r["destination"], r["segment"]): r["last"] for r in rows}


def _exports_of(lake: Lake, destination: str, segment: str):
    return lake.read("gold.exports").where(
        (F.col("destination") == destination) & (F.col("segment") == segment)
    )


def previous_export(lake: Lake, destination: str, segment: str, last: str | None):
    """The people of the export of ``last`` (the date from ``last_export_dates``)."""
    if last is None:
        return None
    return (
        _exports_of(lake, destination, segment).where(F.col("run_date") == last).select("person_id")
    )


def published_rows(spark, folder: str, file_format: str, columns: list[str]):
    """The rows the platform was given in a complete earlier export, named as ``columns`` (the
    rows of today): deltas are computed against what was really shipped. None if that folder
    is gone, was never completed, or has other columns (a file format since changed): the
    delta then goes by person ids."""
    from jobs.activation.files import MANIFEST, SUCCESS, csv_header
    from jobs.storage import hadoop_fs, read_text

    fs, marker = hadoop_fs(spark, f"{folder}/{SUCCESS}")
    if not fs.exists(marker):
        return None
    shipped = json.loads(read_text(spark, f"{folder}/{MANIFEST}"))["parts"]["full"]["columns"]
    expected = csv_header(columns) if file_format == "csv" else columns
    if shipped != expected:
        return None
    if file_format == "csv":
        return spark.read.option("header", "true").csv(f"{folder}/full").toDF(*columns)
    return spark.read.parquet(f"{folder}/full")


def pending_removals(lake: Lake, run_date: str):
    """Erased persons still to be removed from audiences: queued by ``dmp erase``, sent by the
    first export after it (and again if that export date is rerun), dropped once a later
    export runs."""
    if not lake.exists("privacy.pending_removals"):
        return None
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(lake.spark, lake.path("privacy.pending_removals"))
    table.delete(F.col("sent_run_date") < run_date)
    pending = lake.read("privacy.pending_removals").where(
        F.col("sent_run_date").isNull() | (F.col("sent_run_date") == run_date)
    )
    return pending.localCheckpoint()


def mark_sent(lake: Lake, published: list[tuple[str, str]], run_date: str) -> None:
    from delta.tables import DeltaTable

    if not published or not lake.exists("privacy.pending_removals"):
        return
    done = F.lit(False)
    for dest, seg in published:
        done = done | ((F.col("destination") == dest) & (F.col("segment") == seg))
    DeltaTable.forPath(lake.spark, lake.path("privacy.pending_removals")).update(
        F.col("sent_run_date").isNull() & done, {"sent_run_date": F.lit(run_date)}
    )


def run(lake: Lake, report: JobReport, run_date: str) -> None:
    with cached() as keep:  # the identifiers feed every audience; freed when the job ends
        export(lake, report, run_date, keep(identifiers(lake, run_date)))


@dataclass
class _Day:
    """What every audience of one export run reads."""

    lake: Lake
    report: JobReport
    run_date: str
    ids: DataFrame  # the identifiers of every person
    removal_ids: DataFrame  # and of people erased since, whose removals are queued
    pending: DataFrame | None  # queued removals (destination, segment, person_id)
    profiles: DataFrame
    members: DataFrame  # the date's segment members
    audience_root: str
    last_dates: dict[tuple[str, str], str]
    lookalike_of: dict[str, str]  # a reach segment -> its lookalike
    computed: set[str]  # the lookalikes computed for the date
    counts: dict[str, tuple[int, int]]  # segment -> (members, consented members)


def _day(lake: Lake, report: JobReport, run_date: str, ids) -> _Day:
    pending = pending_removals(lake, run_date)
    removal_ids = ids
    if pending is not None:
        # a removal queued before the lists existed has the single columns only
        kept = [c for c in ids.columns if c in pending.columns]
        removal_ids = ids.unionByName(pending.select(*kept), allowMissingColumns=True)
    lookalike_of = {
        segment_name(la.name, p): la.name
        for la in lake.settings.lookalikes
        for p in la.reach_percents
    }
    profiles = lake.read("gold.profiles")
    members = lake.read("gold.segment_membership").where(F.col("run_date") == run_date)
    segments = sorted({s for dest in lake.settings.destinations for s in dest.segments})
    return _Day(
        lake,
        report,
        run_date,
        ids,
        removal_ids,
        pending,
        profiles,
        members,
        lake.settings.resolve(lake.settings.storage.audience_root).rstrip("/"),
        last_export_dates(lake, run_date),
        lookalike_of,
        computed_on(lake, run_date) if lookalike_of else set(),
        consent_counts(members, profiles, segments),
    )


def _as_text(df: DataFrame, columns: list[str]) -> DataFrame:
    """A frame compared with parsed CSV rows: every column as text."""
    return df.select(*[F.col(c).cast("string").alias(c) for c in columns])


def _deltas(day: _Day, dest, segment: str, fmt, rows, shipped, keep) -> tuple[dict, str | None]:  # noqa: PLR0913 -- one audience's frames, each used once
    """The add and remove parts of an audience (none on its first export) -> (parts, what
    they were computed against)."""
    kind = "parquet" if dest.platform == "generic" else "csv"
    prev_date = day.last_dates.get((dest.name, segment))
    prev = previous_export(day.lake, dest.name, segment, prev_date)
    erased = None
    if day.pending is not None:
        erased = day.pending.where(
            (F.col("destination") == dest.name) & (F.col("segment") == segment)
        ).select("person_id")
    full = rows.drop("person_id")
    before = None
    if prev_date is not None:
        folder = f"{day.audience_root}/{dest.name}/{segment}/dt={prev_date}"
        before = published_rows(day.lake.spark, folder, kind, full.columns)
    if before is not None:
        before = keep(before)  # the shipped files are read and parsed once
        # row level, against the files last shipped: a merge, a split, a changed email or an
        # erased person all become exactly the adds and removes the platform needs
        now = _as_text(full, full.columns) if kind == "csv" else full
        removes = before.subtract(now)
        if erased is not None:  # erased since, in case their rows were not shipped
            gone, _ = fmt(day.removal_ids.join(erased, "person_id", "inner"))
            gone = gone.drop("person_id")
            gone = _as_text(gone, now.columns) if kind == "csv" else gone
            removes = removes.unionByName(gone).distinct()
        return {"add": now.subtract(before), "remove": removes}, f"files of dt={prev_date}"
    if prev is None and erased is None:
        return {}, None
    prev = prev if prev is not None else erased.where(F.lit(False))
    adds = shipped.join(prev, "person_id", "left_anti")
    removes = prev.join(shipped, "person_id", "left_anti")
    if erased is not None:  # erased since: their last known identifiers
        removes = removes.unionByName(erased).distinct()
    # removals carry the identifiers the platform knows them by, consent or not
    removed_rows, _ = fmt(day.removal_ids.join(removes, "person_id", "inner"))
    parts = {
        "add": rows.join(adds, "person_id", "left_semi").drop("person_id"),
        "remove": removed_rows.drop("person_id"),
    }
    return parts, "person ids of the last export"


def _audience(day: _Day, dest, segment: str, keep) -> tuple[DataFrame | None, int]:
    """-> (the consented members to send, their number), or (None, n) when the audience is
    not sent today: its lookalike was not computed, or it is under the platform's minimum."""
    label = f"{dest.name}/{segment}"
    if segment in day.lookalike_of and day.lookalike_of[segment] not in day.computed:
        # not "empty": an audience shipped before stays as it is, with no removals
        say(f"[export] {label}: lookalike not computed for {day.run_date}: not exported")
        day.report.facts[label] = "skipped (its lookalike was not computed on this date)"
        return None, 0
    seg = day.members.where(F.col("segment") == segment).select("person_id")
    audience = keep(consented(seg, day.profiles))
    members_n, size = day.counts[segment]
    day.report.dropped[f"{label} no consent"] = members_n - size
    if size < dest.min_audience_size:
        say(
            f"[export] {label}: {size:,} consented people, below the minimum of "
            f"{dest.min_audience_size:,} for {dest.platform}: not exported"
        )
        day.report.facts[label] = f"skipped ({size:,} < {dest.min_audience_size:,})"
        return None, size
    return audience, size


def _export_audience(day: _Day, dest, segment: str, fmt) -> DataFrame | None:
    """Publishes one destination's audience of one segment -> the person ids shipped, or None
    when it is not sent today."""
    label = f"{dest.name}/{segment}"
    with cached() as keep:  # this audience's frames
        audience, size = _audience(day, dest, segment, keep)
        if audience is None:
            return None
        rows, rejected = fmt(day.ids.join(audience, "person_id", "inner"))
        # the rows feed the full file, both deltas, the counts and gold.exports: formatted
        # (hashing, Base64, explode) once, not once per use
        rows = keep(rows)
        # kept for gold.exports, taken while the rows are cached
        shipped = rows.select("person_id").distinct().localCheckpoint()
        deltas, against = _deltas(day, dest, segment, fmt, rows, shipped, keep)
        parts = {"full": rows.drop("person_id"), **deltas}
        folder = f"{day.audience_root}/{dest.name}/{segment}/dt={day.run_date}"
        n_rows, n_rejected = rows.count(), rejected.count()
        manifest = {
            "destination": dest.name,
            "platform": dest.platform,
            "segment": segment,
            "run_date": day.run_date,
            "people": size,
            "rows": n_rows,
            "rejected": n_rejected,
            "delta_against": against,
            "hashing": described(dest.platform, dest.opted()),
            "identifiers": identifier_counts(dest.platform, rows),
            "source": {"membership_run_date": day.run_date, "tables": "gold.segment_membership"},
        }
        kind = "parquet" if dest.platform == "generic" else "csv"
        written = publish(
            day.lake.spark, folder, parts, kind, dest.max_rows_per_file, manifest,
            known_rows={"full": n_rows},  # the full file is the cached rows
        )  # fmt: skip
    day.report.written[label] = n_rows
    day.report.dropped[f"{label} rejected"] = n_rejected
    files = sum(len(p["files"]) for p in written["parts"].values())
    day.report.facts[label] = f"{n_rows:,} rows -> {folder} ({files} files)"
    return shipped


def _record_exports(lake: Lake, run_date: str, shipped: dict[tuple[str, str], DataFrame]):
    """gold.exports: who was sent in which audience on the date."""
    frames = [
        people.select(
            F.lit(run_date).alias("run_date"),
            F.lit(dest).alias("destination"),
            F.lit(segment).alias("segment"),
            "person_id",
        )
        for (dest, segment), people in shipped.items()
    ]
    if frames:
        exports = reduce(DataFrame.unionByName, frames)
        lake.replace_partition(exports, "gold.exports", "run_date", run_date)


def export(lake: Lake, report: JobReport, run_date: str, ids) -> None:
    day = _day(lake, report, run_date, ids)
    default_country = lake.settings.ingest.default_country
    shipped = {}
    for dest in lake.settings.destinations:
        fmt = partial(FORMATS[dest.platform], default_country=default_country, opted=dest.opted())
        for segment in dest.segments:
            people = _export_audience(day, dest, segment, fmt)
            if people is not None:
                shipped[(dest.name, segment)] = people
    _record_exports(lake, run_date, shipped)
    mark_sent(lake, list(shipped), run_date)
