"""From the guarded graph to people: person map and attribution of events to persons."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.identity.components import connected_components
from jobs.identity.graph import EVENT_IDENTIFIERS, node, node_type


def person_id(component):
    return F.concat(F.lit("p-"), F.substring(F.sha2(component, 256), 1, 20))


def build_person_map(edges: DataFrame, hubs: DataFrame, max_iterations: int) -> DataFrame:
    """(node, id_type, id_value, component, person_id, is_hub, hub_reason).
    Hubs stay in the map as people of their own, so their events are not lost, but they link
    nobody."""
    hub_nodes = hubs.select(F.col("node").alias("h"))
    links = (
        edges.where(F.col("src") != F.col("dst"))
        .join(hub_nodes, F.col("src") == F.col("h"), "left_anti")
        .join(hub_nodes, F.col("dst") == F.col("h"), "left_anti")
        .select("src", "dst")
    )
    all_nodes = (
        edges.select(F.col("src").alias("n"))
        .unionByName(edges.select(F.col("dst").alias("n")))
        .distinct()
    )
    graph = links.unionByName(all_nodes.select(F.col("n").alias("src"), F.col("n").alias("dst")))
    cc = connected_components(graph, max_iterations=max_iterations)
    return cc.join(hubs, "node", "left").select(
        "node",
        node_type("node").alias("id_type"),
        F.expr("substring(node, instr(node, ':') + 1)").alias("id_value"),
        "component",
        person_id(F.col("component")).alias("person_id"),
        F.col("reason").isNotNull().alias("is_hub"),
        F.col("reason").alias("hub_reason"),
    )


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
