"""From the guarded graph to people: person map and attribution of events to persons."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.identity.graph import EVENT_IDENTIFIERS, node, node_type
from jobs.identity.split import split_over_limits
from jobs.identity.stable_ids import assign_ids


def build_person_map(
    edges: DataFrame,
    hubs: DataFrame,
    limits: dict[str, int],
    max_cluster_size: int | None,
    previous: DataFrame | None,
    run_date: str,
    max_iterations: int = 40,
    split_rounds: int = 5,
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """-> person_map(node, id_type, id_value, component, person_id, person_created, is_hub,
    hub_reason, cluster_size, quarantined), lineage, cut edges.
    Hubs stay in the map as people of their own, so their events are not lost, but they link
    nobody; clusters over ``max_cluster_size`` are kept but flagged ``quarantined``."""
    hub_nodes = hubs.select(F.col("node").alias("h"))
    links = (
        edges.where(F.col("src") != F.col("dst"))
        .join(hub_nodes, F.col("src") == F.col("h"), "left_anti")
        .join(hub_nodes, F.col("dst") == F.col("h"), "left_anti")
        .select("src", "dst", "count", "last_seen")
    )
    nodes = (
        edges.select(F.col("src").alias("node"))
        .unionByName(edges.select(F.col("dst").alias("node")))
        .distinct()
    )
    cc, cuts = split_over_limits(links, nodes, limits, split_rounds, max_iterations)
    sizes = cc.groupBy("component").agg(F.count("*").alias("cluster_size"))
    cc = cc.join(sizes, "component")
    assigned, lineage = assign_ids(cc, previous, run_date)
    too_big = F.lit(False) if max_cluster_size is None else F.col("cluster_size") > max_cluster_size
    person_map = assigned.join(hubs, "node", "left").select(
        "node",
        node_type("node").alias("id_type"),
        F.expr("substring(node, instr(node, ':') + 1)").alias("id_value"),
        "component",
        "person_id",
        "person_created",
        F.col("reason").isNotNull().alias("is_hub"),
        F.col("reason").alias("hub_reason"),
        "cluster_size",
        too_big.alias("quarantined"),
    )
    return person_map, lineage, cuts


def attribute_events(events: DataFrame, person_map: DataFrame, link_types: list[str]) -> DataFrame:
    """Adds ``person_id`` to each event through its most trusted identifier (order of
    ``link_types``); a hub identifier is used only when the event has nothing better."""
    rank = {t: i for i, t in enumerate(link_types)}
    cands = F.array(
        *[
            F.struct(F.lit(rank.get(t, 99)).alias("rank"), node(t, c).alias("node"))
            for t, c in EVENT_IDENTIFIERS.items()
        ]
    )
    ids = events.select("event_id", "event_date", F.explode(cands).alias("c")).where(
        F.col("c.node").isNotNull()
    )
    pm = person_map.select("node", "person_id", "is_hub")
    best = (
        ids.join(pm, F.col("c.node") == F.col("node"))
        .withColumn("r", F.col("c.rank") + F.when(F.col("is_hub"), 100).otherwise(0))
        .groupBy("event_id", "event_date")
        .agg(F.min_by("person_id", "r").alias("person_id"))
    )
    return events.join(best, ["event_id", "event_date"], "left")
