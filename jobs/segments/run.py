"""Segments job: evaluate every segment definition for the run date, keep the history."""

from __future__ import annotations

from pyspark.sql import functions as F

from jobs.lake import Lake
from jobs.profiles.run import attributed_events
from jobs.report import JobReport
from jobs.segments.membership import changes
from jobs.segments.rules import evaluate, load_segments


def previous_membership(lake: Lake, run_date: str, segments: list[str] | None = None):
    """The latest membership before ``run_date`` (None on a first run)."""
    if not lake.exists("gold.segment_membership"):
        return None
    m = lake.read("gold.segment_membership")
    last = m.where(F.col("run_date") < run_date).agg(F.max("run_date")).first()[0]
    if last is None:
        return None
    prev = m.where(F.col("run_date") == last)
    return prev.where(F.col("segment").isin(segments)) if segments else prev


def write_membership(lake: Lake, members, run_date: str, segments: list[str]) -> dict[str, int]:
    """Replace this run's membership of the given segments and record entries and exits."""
    members = members.withColumn("run_date", F.lit(run_date)).persist()
    prev = previous_membership(lake, run_date, segments)
    lake.replace_keys(members, "gold.segment_membership", run_date, "segment", segments)
    lake.replace_keys(
        changes(members, prev, run_date), "gold.segment_changes", run_date, "segment", segments
    )
    sizes = {
        r["segment"]: r["n"]
        for r in members.groupBy("segment").agg(F.count("*").alias("n")).collect()
    }
    members.unpersist()
    return {s: sizes.get(s, 0) for s in segments}


def run(lake: Lake, report: JobReport, run_date: str) -> None:
    segments = load_segments(lake.settings.resolve(lake.settings.segments_dir))
    profiles = lake.read("gold.profiles")
    with report.step(f"evaluate {len(segments)} segments"):
        members = evaluate(profiles, attributed_events(lake, run_date), segments, run_date)
        sizes = write_membership(lake, members, run_date, list(segments))
    report.read["gold.profiles"] = lake.last_write_rows("gold.profiles")
    report.written["gold.segment_membership"] = sum(sizes.values())
    for name, n in sizes.items():
        report.facts[f"segment {name}"] = n
