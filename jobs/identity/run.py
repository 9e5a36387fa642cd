"""Identity job: rebuild the identifier graph from silver, guard it, resolve persons."""

from __future__ import annotations

from pyspark.sql import functions as F

from jobs.identity.graph import blocked_nodes, build_edges, find_hubs
from jobs.identity.resolve import build_person_map
from jobs.lake import Lake
from jobs.report import JobReport


def cluster_report(person_map, run_date: str):
    sizes = person_map.groupBy("person_id").agg(
        F.count("*").alias("size"), F.sum(F.col("is_hub").cast("int")).alias("hubs")
    )
    return sizes.agg(
        F.lit(run_date).alias("run_date"),
        F.count("*").alias("persons"),
        F.sum("size").alias("identifiers"),
        F.max("size").alias("largest_cluster"),
        F.expr("percentile_approx(size, 0.5)").alias("median_cluster"),
        F.expr("percentile_approx(size, 0.99)").alias("p99_cluster"),
        F.sum(F.when(F.col("size") == 1, 1).otherwise(0)).alias("singletons"),
        F.sum("hubs").alias("hub_identifiers"),
    )


def run(lake: Lake, report: JobReport, run_date: str) -> None:
    s = lake.settings.identity
    events = lake.read("silver.events").where(F.col("event_date") <= F.lit(run_date).cast("date"))
    crm = lake.read("silver.crm") if lake.exists("silver.crm") else None
    report.read["silver.events"] = events.count()
    with report.step("build identifier graph"):
        edges = build_edges(events, crm, blocked_nodes(s.blocked_emails), s.blocked_value_patterns)
        lake.overwrite(edges, "identity.edges")
        edges = lake.read("identity.edges")
        report.written["identity.edges"] = lake.last_write_rows("identity.edges")
    with report.step("over-merge guards"):
        hubs = find_hubs(edges, s.anchor_types, s.max_anchor_links, s.max_degree).cache()
        report.facts["hub identifiers cut"] = hubs.count()
    with report.step("connected components"):
        pm = build_person_map(edges, hubs, s.max_iterations)
        lake.overwrite(pm, "identity.person_map")
        report.written["identity.person_map"] = lake.last_write_rows("identity.person_map")
    rep = cluster_report(lake.read("identity.person_map"), run_date)
    lake.replace_partition(rep, "identity.report", "run_date", run_date)
    row = lake.read("identity.report").where(F.col("run_date") == run_date).first()
    report.facts["persons"] = row["persons"]
    report.facts["largest cluster"] = row["largest_cluster"]
