"""Profiles job: attribute silver events to persons and aggregate one row per person, plus the
identifiers activation sends for each person (``gold.person_identifiers``), in one pass.

The aggregation goes through a running state (``gold.profile_state``: mergeable parts per
person, interest units per person, category and day). A daily run is incremental: it adds the
events ingested since the previous run to that state, and aggregates again from all their
events only the persons identity moved identifiers between (``jobs.profiles.incremental``).
A full rebuild runs on the first run, on a rerun or out-of-order date, when the settings that
decide attribution changed, when silver events were deleted or rewritten (retention, erasure),
when the state itself was changed (erasure), or on request (``dmp profiles --full``); both
give the same profiles."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from pyspark.sql import functions as F

from jobs.activation.identifiers import EVENT_ID_COLS, identifier_aggregates, with_crm
from jobs.identity.graph import blocked_email_hashes
from jobs.identity.resolve import attribute_events
from jobs.lake import Lake
from jobs.profiles.incremental import changed_nodes, next_state, persons_to_redo
from jobs.profiles.transform import behaviour_parts, finish_profiles, profile_state
from jobs.report import JobReport

STATE_FORMAT = 1  # raise when the parts change: a state of another format is rebuilt
# past this share of the person map changed, a full rebuild costs less than the redo
MAX_CHANGED_SHARE = 0.25


def events_until(lake: Lake, run_date: str):
    return lake.read("silver.events").where(F.col("event_date") <= F.lit(run_date).cast("date"))


def attributed_events(lake: Lake, run_date: str):
    return attribute_events(
        events_until(lake, run_date),
        lake.read("identity.person_map"),
        lake.settings.identity.link_types,
    )


def fingerprint(settings) -> str:
    """What the state depends on besides the events: a change forces a full rebuild."""
    s = settings.identity
    key = {"format": STATE_FORMAT, "links": s.link_types, "blocked": s.blocked_emails}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def choose_mode(lake: Lake, run_date: str, key: str, full: bool) -> tuple[dict, str]:
    """-> (the previous run's record or {}, why a full rebuild is needed or '' for incremental)."""
    if full:
        return {}, "full rebuild requested"
    if not (lake.exists("gold.profile_runs") and lake.exists("gold.profile_state")):
        return {}, "first run"
    prev = lake.read("gold.profile_runs").orderBy(F.desc("run_date")).first()
    if prev is None:
        return {}, "first run"
    if str(prev["run_date"]) >= run_date:
        return {}, f"a run on or after {run_date} exists (rerun or out of order)"
    if prev["fingerprint"] != key:
        return {}, f"attribution settings or state format changed since {prev['run_date']}"
    if lake.version("gold.profile_state") != prev["state_version"]:
        return {}, f"the state was changed since {prev['run_date']} (an erasure)"
    rewrite = lake.rewrite_since("silver.events", prev["silver_version"])
    if rewrite:
        return {}, f"silver events were changed since {prev['run_date']} ({rewrite})"
    try:
        lake.read_version("identity.person_map", prev["person_map_version"]).limit(1).count()
    except Exception as exc:  # vacuumed away
        return {}, f"the previous person map is gone ({type(exc).__name__})"
    return prev.asDict(), ""


def _incremental(lake, report, prev, events, person_map, parts):
    """The next state, or None when a full rebuild is needed (the reason in the report)."""
    link_types = lake.settings.identity.link_types
    old_map = lake.read_version("identity.person_map", prev["person_map_version"])
    # what the previous state does not hold: ingested since, or dated after its run date
    is_new = (F.col("ingested_at") > F.lit(prev["watermark"])) | (
        F.col("event_date") > F.lit(prev["run_date"]).cast("date")
    )
    new_events = events.where(is_new)
    with report.step("find the persons identity changed"):
        changed = changed_nodes(old_map, person_map).localCheckpoint()
        n_changed = changed.count()
        if n_changed > MAX_CHANGED_SHARE * max(1, person_map.count()):
            return None, f"{n_changed:,} identifiers changed person: cheaper to rebuild"
        held = events.where(~is_new)
        redo = persons_to_redo(held, changed, old_map, person_map, link_types)
        redo = redo.localCheckpoint()
        if redo.where(F.col("person_id").isNull()).count():
            return None, "events of no known person changed hands"
        redo = redo.where(F.col("person_id").isNotNull())
    report.facts["identifiers changed"] = n_changed
    report.facts["persons aggregated again"] = redo.count()
    state = next_state(
        lake.read_version("gold.profile_state", prev["state_version"]),
        events,
        new_events,
        redo,
        person_map,
        link_types,
        parts,
    )
    return (state, new_events), ""


def run(lake: Lake, report: JobReport, run_date: str, full: bool = False) -> None:
    crm = lake.read("silver.crm") if lake.exists("silver.crm") else None
    link_types = lake.settings.identity.link_types
    silver_version = lake.version("silver.events")
    silver = lake.read_version("silver.events", silver_version)  # one snapshot for the run
    watermark = silver.agg(F.max("ingested_at")).first()[0] or datetime(1970, 1, 1)
    events = silver.where(F.col("event_date") <= F.lit(run_date).cast("date"))
    map_version = lake.version("identity.person_map")
    person_map = lake.read_version("identity.person_map", map_version)
    parts = behaviour_parts(
        identifier_aggregates(blocked_email_hashes(lake.settings.identity.blocked_emails))
    )
    key = fingerprint(lake.settings)
    prev, why_full = choose_mode(lake, run_date, key, full)
    step = None
    if prev:
        step, why_full = _incremental(lake, report, prev, events, person_map, parts)
    report.facts["mode"] = "incremental" if step else f"full ({why_full})"
    with report.step("update the running state" if step else "aggregate all events"):
        if step:
            state, new_events = step
            report.read["new events"] = new_events.count()
        else:
            state = profile_state(attribute_events(events, person_map, link_types), parts)
        lake.overwrite(state, "gold.profile_state")
        state_version = lake.version("gold.profile_state")
    report.written["gold.profile_state"] = lake.last_write_rows("gold.profile_state")
    with report.step("profiles and identifiers from the state"):
        state = lake.read_version("gold.profile_state", state_version)
        wide = finish_profiles(state, person_map, crm, run_date, parts).persist()
        lake.overwrite(wide.drop(*EVENT_ID_COLS), "gold.profiles")
        ids = with_crm(wide.select("person_id", *EVENT_ID_COLS), person_map, crm)
        lake.overwrite(
            ids.withColumn("run_date", F.lit(run_date).cast("date")), "gold.person_identifiers"
        )
        wide.unpersist()
    for table in ("gold.profiles", "gold.person_identifiers"):
        report.written[table] = lake.last_write_rows(table)
    record = {
        "run_date": run_date,
        "mode": report.facts["mode"],
        "watermark": watermark,
        "silver_version": silver_version,
        "person_map_version": map_version,
        "state_version": state_version,
        "fingerprint": key,
    }
    lake.replace_partition(
        lake.spark.createDataFrame([record], RUN_SCHEMA), "gold.profile_runs", "run_date", run_date
    )
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


RUN_SCHEMA = (
    "run_date string, mode string, watermark timestamp, silver_version long, "
    "person_map_version long, state_version long, fingerprint string"
)
