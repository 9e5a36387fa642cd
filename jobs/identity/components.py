"""Connected components on any edge list, at scale, by Spark's own graph library: GraphX's
``ConnectedComponents`` (``spark-graphx`` ships in every Spark, pyspark's jars included; it is
also what GraphFrames runs for ``connectedComponents(algorithm="graphx")``).

GraphX has no Python API, so it is driven through the JVM with no Python in the data path:
node names (typed hashes of ~70 characters) become order-preserving long ids, the id pairs go
to GraphX as a Dataset of (long, long) tuples, GraphX labels every vertex with the smallest
vertex id it reaches (a Pregel label propagation: one superstep per hop of the longest
shortest path), and the labels come back as a DataFrame. Because the ids keep the order of
the names, the smallest id of a component names its smallest node: the component id is the
smallest node (deterministic), and nodes that only appear in self-loops are singletons.

This replaced a DataFrame implementation of Large-Star / Small-Star (Kiveris et al., SoCC
2014) that took 1.3 to 2.8 times as long on every graph measured, from 500 nodes to the
1.3M-node bench graph (BENCHMARKS.md, "Connected components by GraphX").
"""

from __future__ import annotations

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.cache import cached

# the default cap on supersteps (``identity.max_iterations``)
MAX_SUPERSTEPS = 1000


class NoConvergenceError(RuntimeError):
    """Raised when the supersteps run out before every edge joins two equal labels."""


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


def _graphx_labels(pairs: DataFrame, max_iterations: int) -> tuple[DataFrame, tuple]:
    """pairs(u, v) of long ids -> ((id, label), GraphX's cached graphs). The label is the
    smallest vertex id reachable."""
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
    labelled = graphx.lib.ConnectedComponents.run(graph, max_iterations, int_tag, int_tag)
    labels = spark._jsparkSession.createDataset(labelled.vertices(), id_pair).toDF()
    # the caller materialises the labels; GraphX's cached graphs are released then
    return DataFrame(labels, spark).toDF("id", "label"), (graph, labelled)


def connected_components(
    edges: DataFrame, max_iterations: int = MAX_SUPERSTEPS, checkpoint: bool = True
) -> DataFrame:
    """edges(src, dst) -> (node, component). ``component`` is the smallest node reachable.

    ``max_iterations`` caps GraphX's supersteps (one per hop of the longest shortest path in
    a component); a graph that needs more raises ``NoConvergenceError`` rather than return
    half-propagated labels. ``checkpoint`` writes the ids and labels to the checkpoint
    directory (survives a lost executor) instead of keeping them on the executors."""

    def keep(df: DataFrame) -> DataFrame:
        if not checkpoint:
            return df.localCheckpoint()
        # a reliable checkpoint computes its input twice (a count, then the write) unless the
        # input is persisted
        with cached() as hold:
            return hold(df, StorageLevel.MEMORY_AND_DISK).checkpoint()

    with cached() as hold:
        # the edges feed the ids' sort (sampled, then sorted) and the id pairs: read once (on a
        # slice of the edge table, as an incremental run's region is, 3.3 -> 2.1 s warm)
        edges = hold(edges.select("src", "dst"), StorageLevel.MEMORY_AND_DISK)
        ids = keep(_node_ids(edges))
        src = ids.select(F.col("node").alias("src"), F.col("id").alias("u"))
        dst = ids.select(F.col("node").alias("dst"), F.col("id").alias("v"))
        pairs = hold(edges.join(src, "src").join(dst, "dst").select("u", "v"))
        labels, graphs = _graphx_labels(pairs, max_iterations)
        try:
            labels = keep(labels)
        finally:
            for graph in graphs:
                graph.unpersist(False)
        # converged when no edge joins two labels (Pregel also stops on its cap, silently)
        left = labels.select(F.col("id").alias("u"), F.col("label").alias("lu"))
        right = labels.select(F.col("id").alias("v"), F.col("label").alias("lv"))
        if not pairs.join(left, "u").join(right, "v").where(F.col("lu") != F.col("lv")).isEmpty():
            raise NoConvergenceError(
                f"connected components did not converge in {max_iterations} supersteps "
                "(identity.max_iterations; a component's longest shortest path is longer)"
            )
    names = ids.select(F.col("id").alias("label"), F.col("node").alias("component"))
    return labels.join(ids, "id").join(names, "label").select("node", "component")
