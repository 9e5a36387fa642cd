"""Profiles job: attribute silver events to persons and aggregate one row per person, plus the
identifiers activation sends for each person (``gold.person_identifiers``), in one pass."""

from __future__ import annotations

from pyspark.sql import functions as F

from jobs.cache import cached
from jobs.config import ConfigError
from jobs.identity.graph import blocked_email_hashes
from jobs.identity.resolve import attribute_events
from jobs.lake import Lake, events_until
from jobs.profiles.identifiers import EVENT_ID_COLS, identifier_aggregates, with_crm
from jobs.profiles.transform import build_profiles
from jobs.report import JobReport
from jobs.segments.rules import all_conditions, event_sums, load_segments, sums_fingerprint


def attributed_events(lake: Lake, run_date: str):
    return attribute_events(
        events_until(lake, run_date),
        lake.read("identity.person_map"),
        lake.settings.identity.link_types,
    )


def segment_conditions(lake: Lake, report: JobReport) -> list:
    """The event conditions of the segment definitions, whose sums ride along in the profiles
    pass; none if the definitions do not load (the segments job then reports why)."""
    try:
        return all_conditions(load_segments(lake.settings.resolve(lake.settings.segments_dir)))
    except ConfigError as exc:
        report.facts["segment event sums"] = f"not computed: {exc}"
        return []


def run(lake: Lake, report: JobReport, run_date: str) -> None:
    crm = lake.read("silver.crm") if lake.exists("silver.crm") else None
    person_map = lake.read("identity.person_map")
    conditions = segment_conditions(lake, report)
    sums = [c.name for c in conditions]
    with report.step("aggregate profiles and identifiers"):
        events = attributed_events(lake, run_date)
        blocked = blocked_email_hashes(lake.settings.identity.blocked_emails)
        wide = build_profiles(
            events,
            person_map,
            crm,
            run_date,
            extra=[
                *identifier_aggregates(blocked, events.columns),
                *event_sums(conditions, run_date),
            ],
        )
        with cached() as keep:
            # one row per person: all three tables come from one pass over the events
            wide = keep(wide)
            lake.overwrite(wide.drop(*EVENT_ID_COLS, *sums), "gold.profiles")
            ids = with_crm(wide.select("person_id", *EVENT_ID_COLS), person_map, crm)
            lake.overwrite(
                ids.withColumn("run_date", F.lit(run_date).cast("date")), "gold.person_identifiers"
            )
            if conditions:
                mark = sums_fingerprint(conditions, run_date, lake.version("gold.profiles"))
                lake.overwrite(
                    wide.select("person_id", *sums, F.lit(mark).alias("fingerprint")),
                    "gold.segment_event_sums",
                )
    written = ["gold.profiles", "gold.person_identifiers"]
    if conditions:  # else not written by this run (and perhaps never)
        written.append("gold.segment_event_sums")
    for table in written:
        report.written[table] = lake.last_write_rows(table)
    stats = (
        lake.read("gold.profiles")
        .agg(
            F.sum("events").alias("events"),
            F.sum(F.col("ad_consent").cast("int")).alias("consented"),
        )
        .first()
    )
    report.read["attributed events"] = stats["events"] or 0
    report.facts["persons with ad consent"] = stats["consented"] or 0
