"""Export job: for every destination and segment, the consented audience as full + add/remove
files in the platform's format, with a size gate and a manifest."""

from __future__ import annotations

import json
from functools import partial

from pyspark.sql import functions as F

from jobs.activation.files import publish
from jobs.activation.formats import FORMATS, identifier_counts
from jobs.activation.identifiers import IDENTIFIER_COLS, with_lists
from jobs.activation.rules import described
from jobs.cache import cached
from jobs.lake import Lake
from jobs.lookalike.run import computed_on, segment_name
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


def consent_counts(members, profiles) -> tuple[int, int]:
    """(members, consented members) in one pass, by the rule of ``consenting``."""
    ok = consenting(profiles).select("person_id", F.lit(1).alias("ok"))
    row = members.join(ok, "person_id", "left").agg(F.count("*"), F.count("ok")).first()
    return int(row[0]), int(row[1])


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


def export(lake: Lake, report: JobReport, run_date: str, ids) -> None:
    spark = lake.spark
    pending = pending_removals(lake, run_date)
    removal_ids = ids
    if pending is not None:
        # a removal queued before the lists existed has the single columns only
        kept = [c for c in ids.columns if c in pending.columns]
        removal_ids = ids.unionByName(pending.select(*kept), allowMissingColumns=True)
    published = []
    profiles = lake.read("gold.profiles")
    members = lake.read("gold.segment_membership").where(F.col("run_date") == run_date)
    audience_root = lake.settings.resolve(lake.settings.storage.audience_root).rstrip("/")
    exported_rows = []
    # a lookalike's reach segments, and the lookalikes the lookalike job computed for the date
    lookalike_of = {
        segment_name(la.name, p): la.name
        for la in lake.settings.lookalikes
        for p in la.reach_percents
    }
    computed = computed_on(lake, run_date) if lookalike_of else set()
    last_dates = last_export_dates(lake, run_date)
    default_country = lake.settings.ingest.default_country
    for dest in lake.settings.destinations:
        fmt = partial(FORMATS[dest.platform], default_country=default_country, opted=dest.opted())
        for segment in dest.segments:
            with cached() as keep:  # this audience's frames
                label = f"{dest.name}/{segment}"
                if segment in lookalike_of and lookalike_of[segment] not in computed:
                    # not "empty": an audience shipped before stays as it is, with no removals
                    say(f"[export] {label}: lookalike not computed for {run_date}: not exported")
                    report.facts[label] = "skipped (its lookalike was not computed on this date)"
                    continue
                seg = members.where(F.col("segment") == segment).select("person_id")
                audience = keep(consented(seg, profiles))
                members_n, size = consent_counts(seg, profiles)
                report.dropped[f"{label} no consent"] = members_n - size
                if size < dest.min_audience_size:
                    say(
                        f"[export] {label}: {size:,} consented people, below the minimum of "
                        f"{dest.min_audience_size:,} for {dest.platform}: not exported"
                    )
                    report.facts[f"{label}"] = f"skipped ({size:,} < {dest.min_audience_size:,})"
                    continue
                rows, rejected = fmt(ids.join(audience, "person_id", "inner"))
                # the rows feed the full file, both deltas, the counts and gold.exports: formatted
                # (hashing, Base64, explode) once, not once per use
                rows = keep(rows)
                prev_date = last_dates.get((dest.name, segment))
                prev = previous_export(lake, dest.name, segment, prev_date)
                erased = None
                if pending is not None:
                    erased = pending.where(
                        (F.col("destination") == dest.name) & (F.col("segment") == segment)
                    ).select("person_id")
                # kept for gold.exports, taken while the rows are cached
                shipped = rows.select("person_id").distinct().localCheckpoint()
                parts = {"full": rows.drop("person_id")}
                kind = "parquet" if dest.platform == "generic" else "csv"
                before = None
                if prev_date is not None:
                    before = published_rows(
                        spark,
                        f"{audience_root}/{dest.name}/{segment}/dt={prev_date}",
                        kind,
                        parts["full"].columns,
                    )
                if before is not None:
                    before = keep(before)  # the shipped files are read and parsed once
                    # row level, against the files last shipped: a merge, a split, a changed email
                    # or an erased person all become exactly the adds and removes the platform needs
                    now = parts["full"]
                    if kind == "csv":
                        now = now.select(*[F.col(c).cast("string").alias(c) for c in now.columns])
                    parts["add"] = now.subtract(before)
                    removes = before.subtract(now)
                    if erased is not None:  # erased since, in case their rows were not shipped
                        gone, _ = fmt(removal_ids.join(erased, "person_id", "inner"))
                        gone = gone.drop("person_id")
                        if kind == "csv":
                            gone = gone.select(
                                *[F.col(c).cast("string").alias(c) for c in now.columns]
                            )
                        removes = removes.unionByName(gone).distinct()
                    parts["remove"] = removes
                elif prev is not None or erased is not None:
                    prev = prev if prev is not None else erased.where(F.lit(False))
                    adds = shipped.join(prev, "person_id", "left_anti")
                    removes = prev.join(shipped, "person_id", "left_anti")
                    if erased is not None:  # erased since: their last known identifiers
                        removes = removes.unionByName(erased).distinct()
                    parts["add"] = rows.join(adds, "person_id", "left_semi").drop("person_id")
                    # removals carry the identifiers the platform knows them by, consent or not
                    removed_rows, _ = fmt(removal_ids.join(removes, "person_id", "inner"))
                    parts["remove"] = removed_rows.drop("person_id")
                folder = f"{audience_root}/{dest.name}/{segment}/dt={run_date}"
                n_rows = rows.count()
                n_rejected = rejected.count()
                manifest = publish(
                    spark,
                    folder,
                    parts,
                    kind,
                    dest.max_rows_per_file,
                    {
                        "destination": dest.name,
                        "platform": dest.platform,
                        "segment": segment,
                        "run_date": run_date,
                        "people": size,
                        "rows": n_rows,
                        "rejected": n_rejected,
                        "delta_against": (
                            f"files of dt={prev_date}"
                            if before is not None
                            else ("person ids of the last export" if "remove" in parts else None)
                        ),
                        "hashing": described(dest.platform, dest.opted()),
                        "identifiers": identifier_counts(dest.platform, rows),
                        "source": {
                            "membership_run_date": run_date,
                            "tables": "gold.segment_membership",
                        },
                    },
                    known_rows={"full": n_rows},  # the full file is the cached rows
                )
                exported_rows.append((run_date, dest.name, segment, shipped))
                published.append((dest.name, segment))
                report.written[label] = n_rows
                report.dropped[f"{label} rejected"] = n_rejected
                report.facts[label] = (
                    f"{n_rows:,} rows -> {folder} "
                    f"({sum(len(p['files']) for p in manifest['parts'].values())} files)"
                )
    if exported_rows:
        frames = [
            s.select(
                F.lit(d).alias("run_date"),
                F.lit(n).alias("destination"),
                F.lit(g).alias("segment"),
                "person_id",
            )
            for d, n, g, s in exported_rows
        ]
        allx = frames[0]
        for f in frames[1:]:
            allx = allx.unionByName(f)
        lake.replace_partition(allx, "gold.exports", "run_date", run_date)
    mark_sent(lake, published, run_date)
