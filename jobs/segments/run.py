"""Segments job: evaluate every segment definition for the run date, keep the history, sizes
and overlaps."""

from __future__ import annotations

from pyspark.sql import functions as F

from jobs.identity.resolve import attributed_sums
from jobs.lake import Lake, events_until
from jobs.report import JobReport, say
from jobs.segments.membership import write_membership, write_overlaps
from jobs.segments.rules import (
    CHECKED_FILTERS,
    all_conditions,
    evaluate,
    load_segments,
    sums_fingerprint,
    unseen_values,
)


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
