"""Publishing audience folders atomically on any Hadoop filesystem (local, s3a).

Files are written under a temporary name, moved into place, and the manifest is written last:
an ad platform (or our own reader) trusts a folder only when its ``_MANIFEST.json`` exists."""

from __future__ import annotations

import json

from pyspark.sql import DataFrame, SparkSession


def _fs(spark: SparkSession, path: str):
    jvm = spark._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    return p.getFileSystem(spark._jsc.hadoopConfiguration()), p


def write_text(spark: SparkSession, path: str, text: str) -> None:
    fs, p = _fs(spark, path)
    out = fs.create(p, True)
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()


def list_files(spark: SparkSession, folder: str) -> list[str]:
    fs, p = _fs(spark, folder)
    if not fs.exists(p):
        return []
    return sorted(
        s.getPath().getName()
        for s in fs.listStatus(p)
        if not s.getPath().getName().startswith(("_", "."))
    )


def publish(
    spark: SparkSession,
    final: str,
    parts: dict[str, DataFrame],
    fmt: str,
    max_rows: int,
    manifest: dict,
) -> dict:
    """Write each part (full / add / remove) under ``final + '._tmp'``, move into place,
    then write the manifest. A rerun replaces the folder whole."""
    tmp = final.rstrip("/") + "._tmp"
    fs, tmp_p = _fs(spark, tmp)
    fs.delete(tmp_p, True)
    files = {}
    for name, df in parts.items():
        n = df.count()
        # as few files as the platform's size limit allows, never one per shuffle partition
        df = df.coalesce(max(1, -(-n // max_rows)))
        writer = df.write.mode("overwrite").option("maxRecordsPerFile", max_rows)
        if fmt == "csv":
            writer.option("header", "true").csv(f"{tmp}/{name}")
        else:
            writer.parquet(f"{tmp}/{name}")
        files[name] = list_files(spark, f"{tmp}/{name}")
    _, final_p = _fs(spark, final)
    fs.delete(final_p, True)
    fs.mkdirs(final_p.getParent())
    if not fs.rename(tmp_p, final_p):
        raise OSError(f"could not move {tmp} to {final}")
    manifest = {**manifest, "files": files, "format": fmt}
    write_text(spark, f"{final}/_MANIFEST.json", json.dumps(manifest, indent=2, sort_keys=True))
    return manifest
