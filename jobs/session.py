"""The one SparkSession factory: Delta, s3a, the local jar cache and local tuning, all from
configuration. The same code runs under ``local[*]`` and ``spark-submit --master spark://...``
(a master given by spark-submit wins over the configured one)."""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from jobs.config import Settings

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


class SetupError(RuntimeError):
    """Something `make setup` provides is missing."""


def jar_paths(settings: Settings) -> list[str]:
    jar_dir = settings.resolve(settings.spark.jar_dir)
    jars = sorted(glob.glob(os.path.join(jar_dir, "*.jar")))
    if not any("delta-spark" in os.path.basename(j) for j in jars):
        raise SetupError(
            f"no Delta jar in {jar_dir}: run `make setup` "
            "(it resolves the JVM jars from Maven Central)"
        )
    return jars


def jar_conf(settings: Settings, launched_here: bool) -> dict[str, str]:
    """Where the JVMs find the jar cache (641 MB, most of it the AWS SDK bundle). Spark copies
    every ``spark.jars`` entry, ``local:`` ones too, into each executor's folder and fetch
    cache, so the jars are named there only where they must travel. Where every JVM can read
    them in place, they go on the class paths instead: a local master this process starts
    (one JVM), or workers that hold the project at the same path (``spark.jars_on_workers``)."""
    jars = jar_paths(settings)
    local = launched_here and settings.spark.master.startswith("local")
    if local or settings.spark.jars_on_workers:
        path = os.pathsep.join(jars)
        return {"spark.driver.extraClassPath": path, "spark.executor.extraClassPath": path}
    return {"spark.jars": ",".join(jars)}


def launched_by_spark_submit() -> bool:
    """Whether spark-submit started this driver (its master and jars are given already)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ or "SPARK_SUBMIT_MASTER" in os.environ


def spark_conf(settings: Settings, launched_here: bool = True) -> dict[str, str]:
    s3 = settings.s3
    conf = {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        **jar_conf(settings, launched_here),
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        # Delta's VACUUM lists directories with this many tasks (default 10,000: half a minute
        # of empty tasks per table on 2 cores)
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(
            settings.spark.shuffle_partitions
        ),
        "spark.sql.adaptive.enabled": "true",
        # connected components (GraphX's Pregel) cut their lineage every 20 supersteps
        "spark.graphx.pregel.checkpointInterval": "20",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": str(settings.spark.ui_enabled).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": settings.spark.driver_memory,
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.path.style.access": str(s3.path_style_access).lower(),
        "spark.hadoop.fs.s3a.endpoint.region": s3.region,
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(s3.ssl_enabled).lower(),
        "spark.hadoop.fs.s3a.attempts.maximum": str(s3.max_attempts),
        "spark.hadoop.fs.s3a.retry.limit": str(s3.retry_limit),
        "spark.hadoop.fs.s3a.retry.interval": s3.retry_interval,
        "spark.hadoop.fs.s3a.retry.throttle.limit": str(s3.retry_limit),
        "spark.hadoop.fs.s3a.connection.establish.timeout": s3.connect_timeout,
        # Keys only from the environment / AWS chain, never from config files.
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider,"
            "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"
        ),
    }
    if s3.endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = s3.endpoint
    conf.update(settings.spark.extra_conf)
    return conf


def get_spark(settings: Settings, app_name: str | None = None) -> SparkSession:
    # Python workers must run the project's interpreter (pyarrow, the jobs package)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name or settings.spark.app_name)
    launched_here = not launched_by_spark_submit()
    # Under spark-submit the master is already in the launcher's conf; do not override it.
    if launched_here:
        builder = builder.master(settings.spark.master)
        if settings.spark.master.startswith("local"):
            # a local session talks to itself over loopback, whatever the host's network is
            builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
                "spark.driver.host", "127.0.0.1"
            )
    for key, value in spark_conf(settings, launched_here).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    ckpt = settings.resolve(settings.storage.lake_root).rstrip("/") + "/_checkpoints/spark"
    spark.sparkContext.setCheckpointDir(ckpt)
    return spark


@contextmanager
def session_conf(spark: SparkSession, conf: dict[str, str]) -> Iterator[None]:
    """``conf`` set on the session for the block, each key restored (or unset) after it."""
    before = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
