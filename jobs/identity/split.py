"""Per-type limits with priority: a cluster holding more identifiers of a limited type than
allowed (e.g. two login ids) is split at its weakest links instead of being merged."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs.cache import Keep, cached
from jobs.identity.components import connected_components
from jobs.identity.graph import node_type


def over_limit(cc: DataFrame, limits: dict[str, int]) -> DataFrame:
    counts = (
        cc.where(node_type("node").isin(list(limits)))
        .groupBy("component", node_type("node").alias("t"))
        .agg(F.count("*").alias("n"))
    )
    limit = F.create_map(*[F.lit(x) for kv in limits.items() for x in kv])
    return counts.where(F.col("n") > limit[F.col("t")]).select("component").distinct()


def split_over_limits(
    links: DataFrame,
    nodes: DataFrame,
    limits: dict[str, int],
    max_rounds: int,
    supersteps: int,
    keep: Keep = DataFrame.cache,
) -> tuple[DataFrame, DataFrame]:
    """links(src, dst, count, last_seen), nodes(node) -> (components(node, component,
    raw_component), cut edges(src, dst, count, last_seen)). ``raw_component`` is the component
    before any split: no link crosses it, so an incremental run can recompute one on its own.
    Only offending clusters are recomputed: each round drops their weakest links (fewest
    co-occurrences, then oldest) and re-runs components. The first components are cached with
    ``keep``: a caller's ``jobs.cache.cached`` frees them when its block ends, also when no
    split round runs and they are the result."""
    graph = links.select("src", "dst").unionByName(
        nodes.select(F.col("node").alias("src"), F.col("node").alias("dst"))
    )
    cc = connected_components(graph, supersteps=supersteps)
    cc = keep(cc.withColumn("raw_component", F.col("component")))
    empty_cuts = links.where(F.lit(False))
    if not limits:
        return cc, empty_cuts
    cuts = empty_cuts
    done = cc
    for _ in range(max_rounds):
        with cached() as keep:  # this round's offending clusters, freed each round
            bad = keep(over_limit(done, limits))
            if bad.isEmpty():
                break
            bad_nodes = done.join(bad, "component")
            sub_links = links.join(
                bad_nodes.select(F.col("node").alias("src"), "component"), "src"
            ).join(cuts.select("src", "dst"), ["src", "dst"], "left_anti")
            w = Window.partitionBy("component")
            weakest = (
                sub_links.withColumn("min_count", F.min("count").over(w))
                .where(F.col("count") == F.col("min_count"))
                .withColumn("min_seen", F.min("last_seen").over(w))
                .where(F.col("last_seen") == F.col("min_seen"))
                .select("src", "dst", "count", "last_seen")
            )
            cuts = cuts.unionByName(weakest).localCheckpoint()
            remaining = sub_links.select("src", "dst").join(
                cuts.select("src", "dst"), ["src", "dst"], "left_anti"
            )
            sub_graph = remaining.unionByName(
                bad_nodes.select(F.col("node").alias("src"), F.col("node").alias("dst"))
            )
            resplit = connected_components(sub_graph, supersteps=supersteps).join(
                bad_nodes.select("node", "raw_component"), "node"
            )
            done = done.join(bad, "component", "left_anti").unionByName(resplit).localCheckpoint()
    if done is not cc:  # every round's result is checkpointed: the first components are done with
        cc.unpersist()
    return done, cuts
