"""Files on whatever file system a path names (local, s3a://, hdfs://), through the JVM's
Hadoop FileSystem with the session's configuration: one place for every stage."""

from __future__ import annotations

from pyspark.sql import SparkSession


def hadoop_fs(spark: SparkSession, path: str):
    """(Hadoop FileSystem, Path) of ``path``, on whatever filesystem it names (local, s3a)."""
    jvm = spark._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    return p.getFileSystem(spark._jsc.hadoopConfiguration()), p


def write_text(spark: SparkSession, path: str, text: str) -> None:
    fs, p = hadoop_fs(spark, path)
    out = fs.create(p, True)
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()


def read_text(spark: SparkSession, path: str) -> str:
    fs, p = hadoop_fs(spark, path)
    stream = fs.open(p)
    try:
        reader = spark._jvm.java.io.BufferedReader(
            spark._jvm.java.io.InputStreamReader(stream, "UTF-8")
        )
        return "\n".join(iter(reader.readLine, None))
    finally:
        stream.close()


def list_files(spark: SparkSession, folder: str) -> list[str]:
    fs, p = hadoop_fs(spark, folder)
    if not fs.exists(p):
        return []
    return sorted(
        s.getPath().getName()
        for s in fs.listStatus(p)
        if not s.getPath().getName().startswith(("_", "."))
    )


def first_line(spark: SparkSession, path: str) -> str | None:
    """The first line of a text file (a CSV header) without reading the rest; None if empty."""
    fs, p = hadoop_fs(spark, path)
    stream = fs.open(p)
    try:
        reader = spark._jvm.java.io.BufferedReader(
            spark._jvm.java.io.InputStreamReader(stream, "UTF-8")
        )
        return reader.readLine()
    finally:
        stream.close()
