"""Identity job: rebuild the identifier graph from silver, guard it, resolve persons with ids
that stay stable across runs, and report the health of the clusters."""

from __future__ import annotations

import json

from pyspark.sql import functions as F

from jobs.identity.graph import blocked_identifiers, blocked_nodes, build_edges, find_hubs
from jobs.identity.resolve import build_person_map
from jobs.lake import Lake
from jobs.report import JobReport


def previous_person_map(lake: Lake, run_date: str):
    """The person map of the latest run before ``run_date``: a rerun of a day is computed from
    the same starting point, so it gives the same ids."""
    if not lake.exists("identity.person_map_history"):
        return None
    hist = lake.read("identity.person_map_history")
    last = hist.where(F.col("run_date") < run_date).agg(F.max("run_date")).first()[0]
    return None if last is None else hist.where(F.col("run_date") == last)


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
    return report


def run(lake: Lake, report: JobReport, run_date: str) -> None:
    s = lake.settings.identity
    events = lake.read("silver.events").where(F.col("event_date") <= F.lit(run_date).cast("date"))
    crm = lake.read("silver.crm") if lake.exists("silver.crm") else None
    guards = s.guards_enabled
    blocked = blocked_nodes(s.blocked_emails) if guards else []
    patterns = s.blocked_value_patterns if guards else []
    report.read["silver.events"] = events.count()
    with report.step("build identifier graph"):
        edges = build_edges(events, crm, blocked, patterns)
        lake.overwrite(edges, "identity.edges")
        edges = lake.read("identity.edges")
        report.written["identity.edges"] = lake.last_write_rows("identity.edges")
    with report.step("over-merge guards"):
        hubs = find_hubs(edges, s.anchor_types, s.max_anchor_links, s.max_degree)
        if not guards:
            hubs = hubs.where(F.lit(False))
        hubs = hubs.cache()
        kept_out = blocked_identifiers(events, crm, blocked, patterns).cache()
        lake.replace_partition(
            kept_out.withColumn("run_date", F.lit(run_date)),
            "identity.blocked",
            "run_date",
            run_date,
        )
    with report.step("connected components, splits and stable ids"):
        pm, lineage, cuts = build_person_map(
            edges,
            hubs,
            s.max_per_person if guards else {},
            s.max_cluster_size if guards else None,
            previous_person_map(lake, run_date),
            run_date,
            s.max_iterations,
            s.split_rounds,
        )
        lake.overwrite(pm, "identity.person_map")
        pm = lake.read("identity.person_map")
        lake.replace_partition(
            pm.withColumn("run_date", F.lit(run_date)),
            "identity.person_map_history",
            "run_date",
            run_date,
        )
        lake.replace_partition(
            lineage.withColumn("run_date", F.lit(run_date)),
            "identity.lineage",
            "run_date",
            run_date,
        )
        report.written["identity.person_map"] = lake.last_write_rows("identity.person_map")
    lineage = lake.read("identity.lineage").where(F.col("run_date") == run_date)
    rep = cluster_report(pm, lineage, kept_out, cuts, run_date)
    lake.replace_partition(
        lake.spark.createDataFrame([rep]), "identity.report", "run_date", run_date
    )
    for key in (
        "persons",
        "largest_cluster",
        "hub_identifiers",
        "quarantined_clusters",
        "merges",
        "splits",
        "weak_links_cut",
    ):
        report.facts[key.replace("_", " ")] = rep[key]
    report.facts["blocked identifiers"] = rep["blocked"]
