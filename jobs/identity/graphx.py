"""Spark GraphX's own connected components, as the library reference for this project's.

GraphX ships in every Spark (``spark-graphx`` is in pyspark's jars) and has no Python API, so
it is driven through the JVM: node names become the same order-preserving long ids that
``connected_components`` uses, the id pairs go to GraphX as a Dataset of (long, long) tuples
(``Graph.fromEdgeTuples``), ``graphx.lib.ConnectedComponents`` labels every vertex with the
smallest vertex id it reaches, and the labels come back as a DataFrame. This is the algorithm
GraphFrames runs for ``connectedComponents(algorithm="graphx")``; GraphFrames itself is not
served by the Maven Central this project builds from (see BENCHMARKS.md).

Not used by any job (GraphX is RDD-based: it needs a classic session, not Spark Connect). The
benchmark and the tests compare ``connected_components`` with it.
"""

from __future__ import annotations

import time

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.identity.components import node_ids


def graphx_components(edges: DataFrame) -> tuple[DataFrame, dict]:
    """edges(src, dst) -> ((node, component), seconds per step). ``component`` is the smallest
    node reachable, as in ``connected_components``. The result is materialised."""
    spark = edges.sparkSession
    jvm = spark.sparkContext._jvm
    encoders = jvm.org.apache.spark.sql.Encoders
    id_pair = encoders.tuple(encoders.LONG(), encoders.LONG())
    seconds = {}

    t0 = time.time()
    ids = node_ids(edges).localCheckpoint()
    src = ids.select(F.col("node").alias("src"), F.col("id").alias("u"))
    dst = ids.select(F.col("node").alias("dst"), F.col("id").alias("v"))
    pairs = edges.join(src, "src").join(dst, "dst").select("u", "v")
    seconds["names to ids"] = time.time() - t0

    t0 = time.time()
    level = jvm.org.apache.spark.storage.StorageLevel.MEMORY_AND_DISK()
    int_tag = jvm.scala.reflect.ClassTag.Int()
    graph = jvm.org.apache.spark.graphx.Graph.fromEdgeTuples(
        getattr(pairs._jdf, "as")(id_pair).rdd(), 0, jvm.scala.Option.empty(), level, level, int_tag
    )
    labelled = jvm.org.apache.spark.graphx.lib.ConnectedComponents.run(graph, int_tag, int_tag)
    labels = DataFrame(
        spark._jsparkSession.createDataset(labelled.vertices(), id_pair).toDF(), spark
    )
    labels = labels.toDF("id", "label").localCheckpoint()
    graph.unpersist(False)
    labelled.unpersist(False)
    seconds["graphx"] = time.time() - t0

    t0 = time.time()
    names = ids.select(F.col("id").alias("label"), F.col("node").alias("component"))
    result = labels.join(ids, "id").join(names, "label").select("node", "component")
    result = result.localCheckpoint()
    seconds["ids to names"] = time.time() - t0
    return result, seconds
