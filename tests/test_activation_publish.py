"""Audience folders on a real S3 server (MinIO on loopback) through s3a://: gzipped parts, a
manifest whose checksums match the bytes, _SUCCESS last, a rerun that replaces the folder
exactly, and a failure in the middle that leaves nothing a reader would trust."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from jobs.activation import files as audience_files
from jobs.activation.files import publish

BUCKET, PREFIX = "audiences", "meta/vip/dt=2026-11-02"
FOLDER = f"s3a://{BUCKET}/{PREFIX}"


@pytest.fixture(scope="module")
def bucket(s3):
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    return s3


def _objects(s3) -> dict[str, bytes]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="meta/"):
        for o in page.get("Contents", []):
            out[o["Key"]] = s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
    return out


def _parts(spark, n_full: int, n_remove: int):
    full = spark.range(n_full).selectExpr("sha2(cast(id as string), 256) AS EMAIL", "'x' AS MADID")
    remove = spark.range(n_remove).selectExpr(
        "sha2(cast(id + 100000 as string), 256) AS EMAIL", "'y' AS MADID"
    )
    return {"full": full, "remove": remove}


def _check_complete(s3, n_full: int, n_remove: int):
    objs = _objects(s3)
    manifest = json.loads(objs[f"{PREFIX}/manifest.json"])
    assert objs[f"{PREFIX}/_SUCCESS"] == b""
    assert not [k for k in objs if "_tmp" in k]
    for part, n in (("full", n_full), ("remove", n_remove)):
        desc = manifest["parts"][part]
        assert desc["rows"] == n and desc["columns"] == ["EMAIL", "MADID"]
        rows = 0
        for name, meta in desc["files"].items():
            body = objs[f"{PREFIX}/{part}/{name}"]
            assert name.endswith(".csv.gz")
            assert hashlib.sha256(body).hexdigest() == meta["sha256"]
            assert len(body) == meta["bytes"]
            lines = gzip.decompress(body).decode().splitlines()
            assert lines[0] == "EMAIL,MADID"
            assert len(lines) - 1 <= 100  # the destination's file size limit
            rows += len(lines) - 1
        assert rows == n
        # every part file in the bucket is in the manifest
        listed = {k.split("/")[-1] for k in objs if f"/{part}/part-" in k}
        assert listed == set(desc["files"])
    return manifest


def test_publish_to_s3_manifest_success_and_exact_rerun(spark, bucket):
    publish(spark, FOLDER, _parts(spark, 250, 7), "csv", 100, {"run_date": "2026-11-02"})
    manifest = _check_complete(bucket, 250, 7)
    assert len(manifest["parts"]["full"]["files"]) >= 3  # 250 rows, at most 100 per file
    # a rerun with a different audience replaces the folder exactly: no file of the first run
    publish(spark, FOLDER, _parts(spark, 40, 0), "csv", 100, {"run_date": "2026-11-02"})
    _check_complete(bucket, 40, 0)


def test_a_failure_mid_export_leaves_no_success_and_the_next_run_completes(
    spark, bucket, monkeypatch
):
    publish(spark, FOLDER, _parts(spark, 30, 2), "csv", 100, {"run_date": "2026-11-02"})
    real = audience_files.write_text

    def dies_on_manifest(spark_, path, text):
        if path.endswith("manifest.json"):
            raise OSError("injected: the process died after moving the files")
        real(spark_, path, text)

    monkeypatch.setattr(audience_files, "write_text", dies_on_manifest)
    with pytest.raises(OSError, match="injected"):
        publish(spark, FOLDER, _parts(spark, 60, 3), "csv", 100, {"run_date": "2026-11-02"})
    objs = _objects(bucket)
    assert f"{PREFIX}/_SUCCESS" not in objs  # the old marker was withdrawn, no new one
    assert f"{PREFIX}/manifest.json" not in objs
    monkeypatch.setattr(audience_files, "write_text", real)

    def dies_while_hashing(spark_, folder):
        raise OSError("injected: the process died with the parts half written")

    monkeypatch.setattr(audience_files, "file_checksums", dies_while_hashing)
    with pytest.raises(OSError, match="injected"):
        publish(spark, FOLDER, _parts(spark, 70, 1), "csv", 100, {"run_date": "2026-11-02"})
    assert f"{PREFIX}/_SUCCESS" not in _objects(bucket)
    monkeypatch.undo()
    publish(spark, FOLDER, _parts(spark, 60, 3), "csv", 100, {"run_date": "2026-11-02"})
    _check_complete(bucket, 60, 3)
