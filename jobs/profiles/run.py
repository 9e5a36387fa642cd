"""Profiles job: attribute silver events to persons and aggregate one row per person."""

from __future__ import annotations

from pyspark.sql import functions as F

from jobs.identity.resolve import attribute_events
from jobs.lake import Lake
from jobs.profiles.transform import build_profiles
from jobs.report import JobReport


def attributed_events(lake: Lake, run_date: str):
    events = lake.read("silver.events").where(F.col("event_date") <= F.lit(run_date).cast("date"))
    return attribute_events(
        events, lake.read("identity.person_map"), lake.settings.identity.link_types
    )


def run(lake: Lake, report: JobReport, run_date: str) -> None:
    crm = lake.read("silver.crm") if lake.exists("silver.crm") else None
    with report.step("aggregate profiles"):
        profiles = build_profiles(
            attributed_events(lake, run_date), lake.read("identity.person_map"), crm, run_date
        )
        lake.overwrite(profiles, "gold.profiles")
    report.written["gold.profiles"] = lake.last_write_rows("gold.profiles")
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
