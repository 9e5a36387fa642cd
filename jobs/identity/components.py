"""Connected components on any edge list, at scale, in rounds that do not grow with a
component's diameter.

Two engines, each where it is fast:

1. **GraphX label propagation** (``ConnectedComponents``; ``spark-graphx`` ships in every
   Spark, pyspark's jars included; the engine GraphFrames runs for
   ``algorithm="graphx"``) for at most ``supersteps`` supersteps. It labels every vertex with
   the smallest vertex id within that many hops. Identity graphs are mostly small stars and
   short paths, which it finishes in a handful of supersteps with no Python in the data path.
2. **Large-Star / Small-Star** (Kiveris et al., "Connected Components in MapReduce and
   Beyond", SoCC 2014) on what propagation left unfinished: the graph of labels that an edge
   still joins. Its rounds grow with the logarithm of the size, not with the diameter, so a
   chain of 50,000 hops (cookie syncs, a bot rotating cookies, a CRM file linking records in a
   row) takes tens of rounds where propagation would take 50,000 supersteps.

Every vertex is joined to its label (the label is reachable from it) and every edge joins the
labels of its ends, so the components of the label graph, mapped back through the labels, are
the components of the graph. Node names (typed hashes of ~70 characters) become
order-preserving long ids first, so the smallest id of a component names its smallest node:
the component id is the smallest node (deterministic), and nodes that only appear in
self-loops are singletons.

The function needs nothing from the session it is given: every intermediate result is
checkpointed (reliably when the session has a checkpoint directory, locally otherwise), so the
lineage stays short however many rounds run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.cache import cached
from jobs.report import say

# GraphX supersteps before the finish (``identity.propagation_supersteps``)
PROPAGATION_SUPERSTEPS = 30
_RECORDER: ContextVar[dict | None] = ContextVar("components_recorder", default=None)


@contextmanager
def recorded() -> Iterator[dict]:
    """What every ``connected_components`` inside the block left to the finish: the label
    edges propagation did not close (summed) and the finish's rounds (the most of one call).
    Both 0 when propagation finished every component."""
    stats = {"finish_label_edges": 0, "finish_rounds": 0}
    token = _RECORDER.set(stats)
    try:
        yield stats
    finally:
        _RECORDER.reset(token)


def _node_ids(edges: DataFrame) -> DataFrame:
    """(node, id): every node of edges(src, dst) with a long id in the order of its name. A
    global sort range-partitions the nodes and ``monotonically_increasing_id`` numbers them
    partition by partition, in order (so the ids must be materialised before reuse)."""
    nodes = (
        edges.select(F.col("src").alias("node"))
        .unionByName(edges.select(F.col("dst").alias("node")))
        .where(F.col("node").isNotNull())
        .distinct()
    )
    return nodes.orderBy("node").select("node", F.monotonically_increasing_id().alias("id"))


def _graphx_labels(pairs: DataFrame, supersteps: int) -> tuple[DataFrame, tuple]:
    """pairs(u, v) of long ids -> ((id, label), GraphX's cached graphs). The label is the
    smallest vertex id within ``supersteps`` hops."""
    spark = pairs.sparkSession
    jvm = spark.sparkContext._jvm
    encoders = jvm.org.apache.spark.sql.Encoders
    id_pair = encoders.tuple(encoders.LONG(), encoders.LONG())
    level = jvm.org.apache.spark.storage.StorageLevel.MEMORY_AND_DISK()
    int_tag = jvm.scala.reflect.ClassTag.Int()
    graphx = jvm.org.apache.spark.graphx
    graph = graphx.Graph.fromEdgeTuples(
        getattr(pairs._jdf, "as")(id_pair).rdd(), 0, jvm.scala.Option.empty(), level, level, int_tag
    )
    labelled = graphx.lib.ConnectedComponents.run(graph, supersteps, int_tag, int_tag)
    labels = spark._jsparkSession.createDataset(labelled.vertices(), id_pair).toDF()
    # the caller materialises the labels; GraphX's cached graphs are released then
    return DataFrame(labels, spark).toDF("id", "label"), (graph, labelled)


def _normalise(edges: DataFrame) -> DataFrame:
    """Undirected edges(u, v) as (lo, hi) with lo < hi, without duplicates or self-loops."""
    return (
        edges.select(F.least("u", "v").alias("lo"), F.greatest("u", "v").alias("hi"))
        .where(F.col("lo") != F.col("hi"))
        .distinct()
    )


def _large_star(e: DataFrame) -> DataFrame:
    """Every node's larger neighbours are re-attached to the smallest node around it."""
    both = e.select(F.col("lo").alias("u"), F.col("hi").alias("v")).unionByName(
        e.select(F.col("hi").alias("u"), F.col("lo").alias("v"))
    )
    mins = both.groupBy("u").agg(F.least(F.min("v"), F.col("u")).alias("m"))
    out = both.where(F.col("v") > F.col("u")).join(mins, "u").select(F.col("v").alias("u"), "m")
    return _normalise(out.withColumnRenamed("m", "v"))


def _small_star(e: DataFrame) -> DataFrame:
    """Every node and its smaller neighbours are re-attached to the smallest of them."""
    mins = e.groupBy("hi").agg(F.min("lo").alias("m"))
    spokes = e.join(mins, "hi").select(F.col("lo").alias("u"), F.col("m").alias("v"))
    hubs = mins.select(F.col("hi").alias("u"), F.col("m").alias("v"))
    return _normalise(spokes.unionByName(hubs))


def _are_stars(e: DataFrame) -> bool:
    """Every component is a star around its smallest node: no node has two smaller
    neighbours, and no centre is a leaf of another."""
    if not e.groupBy("hi").count().where(F.col("count") > 1).isEmpty():
        return False
    return e.join(e.select(F.col("lo").alias("hi")).distinct(), "hi", "left_semi").isEmpty()


def _max_rounds(nodes: int) -> int:
    """Alternating Large-Star / Small-Star finishes in O(log^2 n) rounds (Kiveris et al.,
    Theorem 2); in practice in about log2 n. Past this bound the loop has a bug, not a hard
    graph."""
    return 4 * max(1, math.ceil(math.log2(nodes + 2))) ** 2


def star_roots(e: DataFrame, keep: Callable[[DataFrame], DataFrame]) -> tuple[DataFrame, int]:
    """e(lo, hi), materialised -> ((node, root) for every node of e but the roots, rounds).
    The root is the smallest node of the component."""
    nodes = e.select("lo").union(e.select("hi")).distinct().count()
    for rounds in range(1, _max_rounds(nodes) + 1):
        e = keep(_small_star(_large_star(e)))
        if _are_stars(e):
            return e.select(F.col("hi").alias("node"), F.col("lo").alias("root")), rounds
    raise RuntimeError(
        f"Large-Star / Small-Star did not finish {nodes} nodes in {_max_rounds(nodes)} rounds"
    )


def _keeper(spark, checkpoint: bool) -> Callable[[DataFrame], DataFrame]:
    """Materialise and cut the lineage: a reliable checkpoint when asked for and the session
    has a directory for it (it survives a lost executor), a local one otherwise."""
    reliable = checkpoint and spark.sparkContext.getCheckpointDir() is not None

    def keep(df: DataFrame) -> DataFrame:
        if not reliable:
            return df.localCheckpoint()
        # a reliable checkpoint computes its input twice (a count, then the write) unless the
        # input is persisted
        with cached() as hold:
            return hold(df, StorageLevel.MEMORY_AND_DISK).checkpoint()

    return keep


def _finish(pairs: DataFrame, labels: DataFrame, keep, supersteps: int) -> DataFrame:
    """(id, label) after propagation -> (id, label) with every component labelled by its
    smallest id."""
    left = labels.select(F.col("id").alias("u"), F.col("label").alias("lu"))
    right = labels.select(F.col("id").alias("v"), F.col("label").alias("lv"))
    joined = pairs.join(left, "u").join(right, "v")
    unfinished = joined.where(F.col("lu") != F.col("lv"))
    if unfinished.isEmpty():
        return labels
    pairs = unfinished.select(F.col("lu").alias("u"), F.col("lv").alias("v"))
    label_graph = keep(_normalise(pairs))
    roots, rounds = star_roots(label_graph, keep)
    left = label_graph.count()
    say(
        f"[components] propagation left {left:,} label edges after {supersteps} supersteps; "
        f"Large-Star / Small-Star finished them in {rounds} rounds"
    )
    stats = _RECORDER.get()
    if stats is not None:
        stats["finish_label_edges"] += left
        stats["finish_rounds"] = max(stats["finish_rounds"], rounds)
    roots = roots.withColumnRenamed("node", "label")
    finished = labels.join(roots, "label", "left")
    return keep(finished.select("id", F.coalesce("root", "label").alias("label")))


def connected_components(
    edges: DataFrame, supersteps: int = PROPAGATION_SUPERSTEPS, checkpoint: bool = True
) -> DataFrame:
    """edges(src, dst) -> (node, component). ``component`` is the smallest node reachable.

    ``supersteps`` caps GraphX's label propagation; what it leaves unfinished (components with
    a longest shortest path of more hops) is finished by Large-Star / Small-Star, so the result
    is exact whatever the cap. ``checkpoint`` asks for reliable checkpoints (see ``_keeper``)."""
    keep = _keeper(edges.sparkSession, checkpoint)
    with cached() as hold:
        # the edges feed the ids' sort (sampled, then sorted) and the id pairs: read once (on a
        # slice of the edge table, as an incremental run's region is, 3.3 -> 2.1 s warm)
        edges = hold(edges.select("src", "dst"), StorageLevel.MEMORY_AND_DISK)
        ids = keep(_node_ids(edges))
        src = ids.select(F.col("node").alias("src"), F.col("id").alias("u"))
        dst = ids.select(F.col("node").alias("dst"), F.col("id").alias("v"))
        pairs = hold(edges.join(src, "src").join(dst, "dst").select("u", "v"))
        labels, graphs = _graphx_labels(pairs, supersteps)
        try:
            labels = keep(labels)
        finally:
            for graph in graphs:
                graph.unpersist(False)
        labels = _finish(pairs, labels, keep, supersteps)
    names = ids.select(F.col("id").alias("label"), F.col("node").alias("component"))
    return labels.join(ids, "id").join(names, "label").select("node", "component")
