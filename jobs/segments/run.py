"""Segments job: evaluate every segment definition for the run date, keep the history, sizes
and overlaps."""

from __future__ import annotations

from pyspark import StorageLevel
from pyspark.sql import functions as F

from jobs.cache import cached
from jobs.identity.resolve import attributed_sums
from jobs.lake import Lake
from jobs.profiles.run import events_until
from jobs.report import JobReport, say
from jobs.segments import history
from jobs.segments.overlap import overlaps
from jobs.segments.rules import (
    CHECKED_FILTERS,
    all_conditions,
    evaluate,
    load_segments,
    sums_fingerprint,
    unseen_values,
)


def previous_run(lake: Lake, run_date: str, segments: list[str]) -> str | None:
    """The latest membership run of these segments before ``run_date``."""
    if not lake.exists("gold.segment_membership"):
        return None
    m = lake.read("gold.segment_membership")
    cond = (F.col("run_date") < run_date) & F.col("segment").isin(segments)
    last = m.where(cond).agg(F.max("run_date")).first()[0]
    return None if last is None else str(last)


def lineage_steps(lake: Lake, after: str | None, run_date: str) -> list:
    """Identity lineage of each identity run in (after, run_date], oldest first."""
    if after is None or not lake.exists("identity.lineage"):
        return []
    lin = lake.read("identity.lineage").where(
        (F.col("run_date") > after) & (F.col("run_date") <= run_date)
    )
    dates = sorted(str(r[0]) for r in lin.select("run_date").distinct().collect())
    return [lin.where(F.col("run_date") == d) for d in dates]


def write_membership(lake: Lake, members, run_date: str, segments: list[str]) -> dict[str, dict]:
    """Replace this run's membership of the given segments, move its history on (entries,
    exits, memberships moved by identity merges and splits) and record the run's statistics.
    -> {segment: {size, previous_size, entered, exited, moved}}."""
    with cached() as keep:
        members = (
            members.select("segment", "person_id")
            .distinct()
            .withColumn("run_date", F.lit(run_date))
        )
        members = keep(members, StorageLevel.MEMORY_AND_DISK)
        prev = previous_run(lake, run_date, segments)
        old = lake.read("gold.segment_history") if lake.exists("gold.segment_history") else None
        rows, changes = history.update(
            old, members, lineage_steps(lake, prev, run_date), segments, run_date
        )
        # computed from the history as it was: pinned (and counted) before it is rewritten
        changes = keep(changes, StorageLevel.MEMORY_AND_DISK)
        stats = {
            s: {"size": 0, "previous_size": None, "entered": 0, "exited": 0, "moved": 0}
            for s in segments
        }
        for r in changes.groupBy("segment", "change").agg(F.count("*").alias("n")).collect():
            stats[r["segment"]][r["change"]] = r["n"]
        for r in members.groupBy("segment").agg(F.count("*").alias("n")).collect():
            stats[r["segment"]]["size"] = r["n"]
        if prev is not None:
            for s in stats.values():
                s["previous_size"] = 0
            before = lake.read("gold.segment_membership").where(
                (F.col("run_date") == prev) & F.col("segment").isin(segments)
            )
            for r in before.groupBy("segment").agg(F.count("*").alias("n")).collect():
                stats[r["segment"]]["previous_size"] = r["n"]
        lake.replace_keys(members, "gold.segment_membership", run_date, "segment", segments)
        lake.replace_where(rows, "gold.segment_history", history.rewritten_rows(segments, run_date))
        lake.replace_keys(
            changes.withColumn("run_date", F.lit(run_date)),
            "gold.segment_changes",
            run_date,
            "segment",
            segments,
        )
        stats_df = lake.spark.createDataFrame(
            [
                (
                    run_date,
                    name,
                    s["size"],
                    s["previous_size"],
                    s["entered"],
                    s["exited"],
                    s["moved"],
                )
                for name, s in stats.items()
            ],
            "run_date string, segment string, size long, previous_size long, entered long, "
            "exited long, moved long",
        )
        lake.replace_keys(stats_df, "gold.segment_stats", run_date, "segment", segments)
    return stats


def write_overlaps(lake: Lake, run_date: str) -> str:
    """Pairwise overlaps of every segment of the run date; -> the method used."""
    members = lake.read("gold.segment_membership").where(F.col("run_date") == run_date)
    out, method = overlaps(members, lake.settings.segment_overlap_exact_max_pairs)
    lake.replace_partition(
        out.withColumn("run_date", F.lit(run_date)), "gold.segment_overlap", "run_date", run_date
    )
    return method


def describe(stats: dict) -> str:
    """'1,234 people (+56 since the previous run: 80 entered, 20 exited, 4 moved)'."""
    size, prev = stats["size"], stats["previous_size"]
    if prev is None:
        return f"{size:,} people (first run)"
    return (
        f"{size:,} people ({size - prev:+,} since the previous run: {stats['entered']:,} "
        f"entered, {stats['exited']:,} exited, {stats['moved']:,} moved by identity)"
    )


def profile_sums(lake: Lake, segments: dict, run_date: str, report: JobReport):
    """The event conditions' sums per person that the profiles job of ``run_date`` computed in
    its pass over the events (``gold.segment_event_sums``), if they were made for exactly these
    conditions next to the current ``gold.profiles``; otherwise None, and the job sums the
    events itself (the report says why)."""
    conditions = all_conditions(segments)
    if not conditions:
        return None
    why = "gold.segment_event_sums does not exist"
    if lake.exists("gold.segment_event_sums"):
        sums = lake.read("gold.segment_event_sums")
        mark = sums_fingerprint(conditions, run_date, lake.version("gold.profiles"))
        # one constant per table; a file's first row holds it
        row = sums.select("fingerprint").limit(1).first()
        if row is not None and row[0] == mark:
            report.facts["segment event sums"] = "from the profiles run of this date"
            report.read["gold.segment_event_sums"] = lake.last_write_rows("gold.segment_event_sums")
            return sums.drop("fingerprint")
        why = (
            "gold.segment_event_sums was made for other conditions, another date or another "
            "version of gold.profiles"
        )
    report.facts["segment event sums"] = f"summed from silver.events ({why})"
    return None


def vocabulary(lake: Lake, segments: dict) -> dict[str, set[str]]:
    """The values the lake's events have for each event filter the rules use (one pass over
    those columns of silver.events, whatever the dates)."""
    used = {k for seg in segments.values() for c in seg.event_conditions for k in c.filters}
    columns = [k for k in CHECKED_FILTERS if k in used]
    if not columns:
        return {}
    row = lake.read("silver.events").agg(*[F.collect_set(c).alias(c) for c in columns]).first()
    return {c: set(row[c]) for c in columns}


def warn_unseen(lake: Lake, segments: dict, report: JobReport) -> None:
    for text in unseen_values(segments, vocabulary(lake, segments)):
        what, _, hint = text.partition(" (")
        report.facts[f"WARNING {what}"] = hint.rstrip(")")
        say(f"[segments] WARNING {text}")


def run(lake: Lake, report: JobReport, run_date: str) -> None:
    segments = load_segments(lake.settings.resolve(lake.settings.segments_dir))
    warn_unseen(lake, segments, report)
    sums = profile_sums(lake, segments, run_date, report)
    profiles = lake.read("gold.profiles")
    with report.step(f"evaluate {len(segments)} segments"):
        person_map = lake.read("identity.person_map")
        link_types = lake.settings.identity.link_types
        members = evaluate(
            profiles,
            events_until(lake, run_date),
            segments,
            run_date,
            lambda events, values: attributed_sums(events, person_map, link_types, values),
            sums=sums,
        )
        stats = write_membership(lake, members, run_date, list(segments))
    with report.step("pairwise overlaps"):
        report.facts["overlap method"] = write_overlaps(lake, run_date)
    report.read["gold.profiles"] = lake.last_write_rows("gold.profiles")
    report.written["gold.segment_membership"] = sum(s["size"] for s in stats.values())
    for name, s in stats.items():
        report.facts[f"segment {name}"] = describe(s)
