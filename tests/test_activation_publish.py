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

pytestmark = pytest.mark.slow  # the fast tier (make test-fast) leaves it out

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


@pytest.fixture()
def faulty_store(spark, tmp_path):
    """A second MinIO on its own port for bucket `faulty` only (per-bucket s3a endpoint), so
    it can be stopped and started without touching the session's server."""
    import subprocess

    import boto3

    from tests.conftest import ROOT, _free_port

    script, port = str(ROOT / "infra" / "scripts" / "s3-server.sh"), _free_port()
    folder = str(tmp_path / "faulty-s3")
    subprocess.run(["bash", script, "start", folder, str(port)], check=True)
    endpoint = f"http://127.0.0.1:{port}"
    spark._jsc.hadoopConfiguration().set("fs.s3a.bucket.faulty.endpoint", endpoint)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="faulty")

    def stop():
        subprocess.run(["bash", script, "stop", folder], check=True)

    def start():
        subprocess.run(["bash", script, "start", folder, str(port)], check=True)

    yield client, stop, start
    stop()


def test_the_store_going_down_fails_the_export_fast_and_the_next_run_completes(spark, faulty_store):
    import time

    client, stop, start = faulty_store
    folder = "s3a://faulty/google/vip/dt=2026-11-03"
    publish(spark, folder, _parts(spark, 20, 1), "csv", 100, {"run_date": "2026-11-03"})
    stop()
    t0 = time.time()
    with pytest.raises(Exception) as failure:
        publish(spark, folder, _parts(spark, 30, 2), "csv", 100, {"run_date": "2026-11-03"})
    assert time.time() - t0 < 120  # bounded retries, not the SDK's defaults
    assert "faulty" in str(failure.value) or "127.0.0.1" in str(failure.value)
    start()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="faulty").get("Contents", [])]
    # the first export is intact and still trusted, or withdrawn: never a mixed folder
    if "google/vip/dt=2026-11-03/_SUCCESS" in keys:
        manifest = json.loads(
            client.get_object(Bucket="faulty", Key="google/vip/dt=2026-11-03/manifest.json")[
                "Body"
            ].read()
        )
        assert manifest["parts"]["full"]["rows"] == 20
    publish(spark, folder, _parts(spark, 30, 2), "csv", 100, {"run_date": "2026-11-03"})
    body = client.get_object(Bucket="faulty", Key="google/vip/dt=2026-11-03/manifest.json")
    assert json.loads(body["Body"].read())["parts"]["full"]["rows"] == 30
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="faulty").get("Contents", [])]
    assert "google/vip/dt=2026-11-03/_SUCCESS" in keys and not [k for k in keys if "_tmp" in k]
