"""Identity job: the identifier graph from silver, guarded, resolved into persons whose ids stay
stable across runs, with a cluster-health report.

A daily run is incremental: it adds the edges of events ingested since the previous run and
recomputes only the components those edges reach. A full rebuild runs on the first run, on a
rerun or out-of-order date, after the identity configuration changed, or on request
(``dmp identity --full``); both give the same person map."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.cache import cached
from jobs.identity.components import recorded
from jobs.identity.graph import (
    EDGE_COLUMNS,
    block_reason,
    blocked_identifiers,
    blocked_nodes,
    build_edges,
    changed_endpoints,
    edge_tables,
    event_part,
    find_hubs,
    incremental_hubs,
)
from jobs.identity.map_history import changes, map_before, snapshot
from jobs.identity.matching import customer_records, predict, scored_edges, train
from jobs.identity.resolve import (
    Resolution,
    build_person_map,
    incremental_seeds,
    update_person_map,
)
from jobs.lake import Lake
from jobs.report import JobReport


def previous_person_map(lake: Lake, run_date: str, state: dict):
    """The person map of the latest run before ``run_date``. A daily run reads the version the
    previous run recorded (time travel); a rerun, a first run or a state from before versions
    were kept rebuilds it from the change log, so a rerun of a day starts from the same map and
    gives the same ids (materialised once: it is read many times)."""
    if state.get("person_map_version") is not None:
        return lake.read_version("identity.person_map", state["person_map_version"])
    if not lake.exists("identity.person_map_history"):
        return None
    previous = map_before(lake.read("identity.person_map_history"), run_date)
    return None if previous is None else previous.localCheckpoint()


MIN_MATCH_RECORDS = 100  # fewer customer records teach the matching model nothing


def cluster_report(person_map, lineage, blocked, cuts, run_date: str):
    sizes = person_map.groupBy("person_id").agg(
        F.count("*").alias("size"),
        F.sum(F.col("is_hub").cast("int")).alias("hubs"),
        F.max(F.col("quarantined").cast("int")).alias("quarantined"),
    )
    report = (
        sizes.agg(
            F.lit(run_date).alias("run_date"),
            F.count("*").alias("persons"),
            F.sum("size").alias("identifiers"),
            F.max("size").alias("largest_cluster"),
            F.expr("percentile_approx(size, 0.5)").alias("median_cluster"),
            F.expr("percentile_approx(size, 0.99)").alias("p99_cluster"),
            F.sum(F.when(F.col("size") == 1, 1).otherwise(0)).alias("singletons"),
            F.sum("hubs").alias("hub_identifiers"),
            F.sum("quarantined").alias("quarantined_clusters"),
        )
        .first()
        .asDict()
    )
    types = (
        person_map.groupBy("person_id", "id_type")
        .count()
        .groupBy("person_id")
        .agg(
            F.map_from_entries(F.collect_list(F.struct("id_type", "count"))).alias("types"),
            F.sum("count").alias("size"),
        )
        .orderBy(F.desc("size"), "person_id")
        .limit(10)
        .collect()
    )
    report["largest_clusters"] = json.dumps(
        [{"person_id": r["person_id"], "size": r["size"], "types": r["types"]} for r in types]
    )
    report["size_histogram"] = json.dumps(
        {
            str(r["bucket"]): r["n"]
            for r in sizes.groupBy(
                F.when(F.col("size") <= 10, F.col("size").cast("string"))
                .otherwise(F.when(F.col("size") <= 100, "11-100").otherwise(">100"))
                .alias("bucket")
            )
            .agg(F.count("*").alias("n"))
            .collect()
        }
    )
    changes = {
        r["reason"]: r["n"]
        for r in lineage.groupBy("reason")
        .agg(F.countDistinct("old_person_id").alias("n"))
        .collect()
    }
    report["merges"] = changes.get("merge", 0)
    report["splits"] = changes.get("split", 0)
    report["blocked"] = json.dumps(
        {
            r["reason"]: r["n"]
            for r in blocked.groupBy("reason").agg(F.count("*").alias("n")).collect()
        }
    )
    report["weak_links_cut"] = cuts.count()
    report["scored_links_cut"] = cuts.where(F.col("count") == 0).count()
    return report


def config_hash(settings) -> str:
    """Fingerprint of the identity settings: a change to any guard forces a full rebuild."""
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:16]


def erasure_count(lake: Lake) -> int:
    """Erasures so far: one since the previous run invalidates its incremental state."""
    return lake.read("privacy.erasures").count() if lake.exists("privacy.erasures") else 0


def choose_mode(lake: Lake, run_date: str, fingerprint: str, full: bool) -> tuple[dict, str]:
    """-> (state of the previous run or {}, why a full rebuild is needed or '' for incremental).
    Incremental needs the previous run to be the latest one, with the same configuration, and
    its edge tables still reachable by time travel."""
    if full:
        return {}, "full rebuild requested"
    if not lake.exists("identity.report"):
        return {}, "first run"
    rep = lake.read("identity.report")
    if "watermark" not in rep.columns:
        return {}, "the previous run kept no incremental state"
    prev = rep.orderBy(F.desc("run_date")).first()
    if prev is not None and prev["run_date"] >= run_date:
        return {}, f"a run on or after {run_date} exists (rerun or out of order)"
    if prev is None or prev["watermark"] is None:
        return {}, "first run"
    state = prev.asDict()
    if state["config_hash"] != fingerprint:
        return {}, f"identity configuration changed since {state['run_date']}"
    if erasure_count(lake) != state.get("erasures_seen", 0):
        return {}, "a person was erased since the previous run"
    try:
        lake.read_version("identity.event_edges", state["event_edges_version"]).limit(1).count()
        lake.read_version("identity.crm_edges", state["crm_edges_version"]).limit(1).count()
        if state.get("person_map_version") is not None:
            lake.read_version("identity.person_map", state["person_map_version"]).limit(1).count()
    except Exception as exc:  # vacuumed away, or never written
        return {}, f"the previous edge tables or person map are gone ({type(exc).__name__})"
    return state, ""


@dataclass
class _Day:
    """What the steps of one run share: where, when, which mode, and the guards' inputs."""

    lake: Lake
    report: JobReport
    run_date: str
    state: dict  # the previous run's report row; empty for a full rebuild
    events: DataFrame  # the events this run adds (all of them for a full rebuild)
    crm: DataFrame | None
    previous: DataFrame | None  # the previous run's person map
    watermark: object
    fingerprint: str
    # what this run keeps for the next one beside the versions (silver.crm's, the model's)
    kept: dict = field(default_factory=lambda: {"crm_version": -1, "match_model_trained_on": ""})

    @property
    def s(self):
        return self.lake.settings.identity

    @property
    def incremental(self) -> bool:
        return bool(self.state)

    @cached_property  # hashes the blocked emails once per run
    def blocked(self) -> list[str]:
        return blocked_nodes(self.s.blocked_emails) if self.s.guards_enabled else []

    @property
    def patterns(self) -> list[str]:
        return self.s.blocked_value_patterns if self.s.guards_enabled else []

    @property
    def limits(self) -> dict[str, int]:
        return self.s.max_per_person if self.s.guards_enabled else {}


def _day(lake: Lake, report: JobReport, run_date: str, full: bool) -> _Day:
    """The mode (and why), and the events this run reads: those ingested up to now, and for an
    incremental run only those since the previous run's watermark."""
    silver = lake.read("silver.events")
    watermark = silver.agg(F.max("ingested_at")).first()[0]
    events = silver.where(F.col("ingested_at") <= F.lit(watermark))
    fingerprint = config_hash(lake.settings.identity)
    state, why_full = choose_mode(lake, run_date, fingerprint, full)
    report.facts["mode"] = f"full ({why_full})" if why_full else "incremental"
    if not why_full:
        events = events.where(F.col("ingested_at") > F.lit(state["watermark"]))
    report.read["silver.events"] = events.count()
    crm = lake.read("silver.crm") if lake.exists("silver.crm") else None
    previous = previous_person_map(lake, run_date, state)
    return _Day(lake, report, run_date, state, events, crm, previous, watermark, fingerprint)


def match_model(lake: Lake, crm, m, run_date: str, report: JobReport) -> tuple | None:
    """(model, the day it was trained on): the latest matching model trained on or before
    ``run_date``; trained again (and kept in identity.match_model) when there is none or it is
    ``retrain_days`` old. None when there are too few customer records to train one."""
    if lake.exists("identity.match_model"):
        models = lake.read("identity.match_model").where(F.col("trained_on") <= run_date)
        last = models.orderBy(F.desc("trained_on"), F.desc("trained_at")).first()
        if last is not None:
            age = date.fromisoformat(run_date) - date.fromisoformat(last["trained_on"])
            if age.days < m.retrain_days:
                report.facts["matching model"] = f"trained on {last['trained_on']}"
                return last["model"], last["trained_on"]
    records = customer_records(crm).localCheckpoint()
    n = records.count()
    if n < MIN_MATCH_RECORDS:
        report.facts["matching model"] = f"none: {n} customer records, {MIN_MATCH_RECORDS} needed"
        return None
    model = train(records, m.sample_pairs, seed=1)
    row = lake.spark.createDataFrame(
        [(run_date, n, model)], "trained_on string, records long, model string"
    )
    lake.append(row.withColumn("trained_at", F.current_timestamp()), "identity.match_model")
    report.facts["matching model"] = f"trained on {run_date} ({n:,} records)"
    return model, run_date


def match_edges(day: _Day):
    """Scored edges between customer records (kept whole in identity.match_edges, with their
    probability and evidence) as edge-table rows; None when no model could be trained. An
    incremental run whose customer records and model are those of the previous run keeps the
    previous run's edges instead of scoring every record again."""
    lake, m, state = day.lake, day.s.matching, day.state
    chosen = match_model(lake, day.crm, m, day.run_date, day.report)
    if chosen is None:
        return None
    model, trained_on = chosen
    day.kept.update(crm_version=lake.version("silver.crm"), match_model_trained_on=trained_on)
    same = all(state.get(k) == v for k, v in day.kept.items())
    if day.incremental and same and lake.exists("identity.match_edges"):
        day.report.facts["scored edges"] = f"kept from {state['run_date']} (nothing changed)"
        return lake.read("identity.match_edges").select(*EDGE_COLUMNS)
    blocked, patterns = day.blocked, day.patterns

    def write(pairs):
        edges = scored_edges(pairs, day.crm)
        ok = (
            block_reason(F.col("src"), blocked, patterns).isNull()
            & block_reason(F.col("dst"), blocked, patterns).isNull()
        )
        lake.overwrite(edges.where(ok), "identity.match_edges")

    records = customer_records(day.crm).localCheckpoint()
    predict(lake.spark, records, model, m.threshold, write)
    day.report.written["identity.match_edges"] = lake.last_write_rows("identity.match_edges")
    return lake.read("identity.match_edges").select(*EDGE_COLUMNS)


def _crm_edges(day: _Day, schema) -> DataFrame:
    """The customer records' edges: identifiers in one record, and scored matches."""
    if day.crm is None:
        return day.lake.spark.createDataFrame([], schema)
    edges = build_edges(None, day.crm, day.blocked, day.patterns)
    if day.s.matching.enabled:
        with day.report.step("match customer records"):
            scored = match_edges(day)
        if scored is not None:
            edges = edges.unionByName(scored)
    return edges


def _graph(day: _Day) -> tuple[DataFrame, DataFrame | None, dict[str, int]]:
    """Writes the edge tables -> (identity.edges, the seeds of an incremental run or None, the
    edge tables' versions)."""
    lake, state = day.lake, day.state
    fresh = build_edges(day.events, None, day.blocked, day.patterns)
    crm_edges = _crm_edges(day, fresh.schema)
    prev_events = None
    if day.incremental:  # the day's edges are read twice: for the edge tables and the seeds
        fresh = fresh.localCheckpoint()
        prev_events = lake.read_version("identity.event_edges", state["event_edges_version"])
    crm_edges = crm_edges.localCheckpoint()  # written, and read by the edge tables
    # both edge tables and the day's new pairs from one shuffle of the graph
    with cached() as keep:
        tables = keep(edge_tables(prev_events, fresh, crm_edges))
        lake.overwrite(event_part(tables), "identity.event_edges")
        lake.overwrite(crm_edges, "identity.crm_edges")
        lake.overwrite(tables.select(*EDGE_COLUMNS), "identity.edges")
        versions = {t: lake.version(f"identity.{t}") for t in ("event_edges", "crm_edges")}
        seeds = None
        if day.incremental:
            prev_crm = lake.read_version("identity.crm_edges", state["crm_edges_version"])
            new_pairs = tables.where("new_pair").select("src", "dst")
            seeds = incremental_seeds(new_pairs, fresh, day.previous, day.limits).unionByName(
                changed_endpoints(prev_crm, crm_edges)
            )
            seeds = seeds.distinct().localCheckpoint()
    day.report.written["identity.edges"] = lake.last_write_rows("identity.edges")
    return lake.read("identity.edges"), seeds, versions


def _guards(day: _Day, edges, seeds, keep) -> tuple[DataFrame, DataFrame]:
    """-> (hubs, identifiers a block rule kept out, as written to identity.blocked)."""
    s = day.s
    hub_rules = (s.anchor_types, s.max_anchor_links, s.max_degree)
    if day.incremental:  # only the seeds' neighbours changed: judge them alone
        hubs = incremental_hubs(edges, seeds, day.previous, *hub_rules)
    else:
        hubs = find_hubs(edges, *hub_rules)
    if not s.guards_enabled:
        hubs = hubs.where(F.lit(False))
    hubs = keep(hubs)
    kept_out = blocked_identifiers(day.events, day.crm, day.blocked, day.patterns)
    if day.incremental:
        before = day.lake.read("identity.blocked").where(F.col("run_date") == day.state["run_date"])
        kept_out = kept_out.unionByName(before.select("node", "reason")).distinct()
    kept_out = kept_out.localCheckpoint()
    _write_run(day, kept_out, "identity.blocked")
    return hubs, kept_out


def _write_run(day: _Day, df: DataFrame, table: str) -> None:
    """This run's slice of a table partitioned by run date (a rerun replaces it)."""
    stamped = df.withColumn("run_date", F.lit(day.run_date))
    day.lake.replace_partition(stamped, table, "run_date", day.run_date)


def _person_map(day: _Day, edges, hubs, seeds, keep) -> tuple[DataFrame, DataFrame, int | None]:
    """Writes the person map, its history and the lineage -> (person map, cut links, the
    identifiers recomputed: None for a full rebuild, which recomputes them all). The
    components are cached with ``keep``: freed with the hubs when the caller's block ends."""
    lake, s = day.lake, day.s
    rules = Resolution(
        limits=day.limits,
        max_cluster_size=s.max_cluster_size if s.guards_enabled else None,
        supersteps=s.propagation_supersteps,
        split_rounds=s.split_rounds,
    )
    region, region_nodes = None, None
    if day.incremental:
        pm, lineage, cuts, region = update_person_map(
            edges, hubs, seeds, day.previous, rules, day.run_date, keep
        )
        region_nodes = region.count()
    else:
        pm, lineage, cuts = build_person_map(edges, hubs, rules, day.previous, day.run_date, keep)
    lake.overwrite(pm, "identity.person_map")
    pm = lake.read("identity.person_map")
    history = changes(pm, day.previous, region) if day.incremental else snapshot(pm)
    _write_run(day, history, "identity.person_map_history")
    history_rows = lake.last_write_rows("identity.person_map_history")
    _write_run(day, lineage, "identity.lineage")
    day.report.written["identity.person_map"] = lake.last_write_rows("identity.person_map")
    day.report.written["identity.person_map_history"] = history_rows
    return pm, cuts, region_nodes


REPORTED = ["persons", "largest_cluster", "hub_identifiers", "quarantined_clusters", "merges",
            "splits", "weak_links_cut", "scored_links_cut", "recomputed_identifiers",
            "finish_rounds"]  # fmt: skip


def _report(day: _Day, pm, kept_out, cuts, region_nodes, kept: dict) -> None:
    """identity.report's row for this run (the health figures and the state the next
    incremental run starts from), and the job's facts. ``kept``: the edge tables' versions
    and what the components left to their finish."""
    lake = day.lake
    lineage = lake.read("identity.lineage").where(F.col("run_date") == day.run_date)
    rep = cluster_report(pm, lineage, kept_out, cuts, day.run_date)
    rep.update(
        mode="incremental" if day.incremental else "full",
        recomputed_identifiers=rep["identifiers"] if region_nodes is None else region_nodes,
        watermark=str(day.watermark),
        config_hash=day.fingerprint,
        event_edges_version=kept["event_edges"],
        crm_edges_version=kept["crm_edges"],
        person_map_version=lake.version("identity.person_map"),
        erasures_seen=erasure_count(lake),
        # what label propagation left to Large-Star / Small-Star (0 and 0: it finished all)
        finish_label_edges=kept["finish_label_edges"],
        finish_rounds=kept["finish_rounds"],
        **day.kept,
    )
    row = lake.spark.createDataFrame([rep])  # holds its run_date
    lake.replace_partition(row, "identity.report", "run_date", day.run_date)
    for key in REPORTED:
        day.report.facts[key.replace("_", " ")] = rep[key]
    day.report.facts["blocked identifiers"] = rep["blocked"]


def run(lake: Lake, report: JobReport, run_date: str, full: bool = False) -> None:
    day = _day(lake, report, run_date, full)
    with report.step("build identifier graph"):
        edges, seeds, versions = _graph(day)
    with cached() as keep:  # the hubs, read by the map, the report and the history
        with report.step("over-merge guards"):
            hubs, kept_out = _guards(day, edges, seeds, keep)
        step = "incremental components" if day.incremental else "connected components"
        with report.step(f"{step}, splits and stable ids"), recorded() as finish:
            pm, cuts, region_nodes = _person_map(day, edges, hubs, seeds, keep)
        _report(day, pm, kept_out, cuts, region_nodes, {**versions, **finish})
