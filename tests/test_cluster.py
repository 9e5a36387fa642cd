"""The same pipeline submitted with spark-submit to a real standalone cluster on loopback gives
the same tables as a local run."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
import yaml

from jobs.config import load_settings
from jobs.generate import generate
from jobs.lake import Lake
from jobs.pipeline import run_pipeline

from .conftest import ROOT, TEST_CONF, _free_port

RUN_DATE = "2026-11-05"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark-cluster")
    port = _free_port()
    script = ROOT / "infra" / "scripts" / "spark-cluster.sh"
    subprocess.run(["bash", str(script), "start", str(folder), str(port)], check=True)
    yield f"spark://127.0.0.1:{port}"
    subprocess.run(["bash", str(script), "stop", str(folder)], check=False)


def _conf(tmp: Path, name: str, landing: Path) -> Path:
    data = yaml.safe_load(TEST_CONF.read_text())
    data["storage"] = {
        "lake_root": str(tmp / name / "lake"),
        "raw_root": str(landing / "raw"),
        "audience_root": str(tmp / name / "audiences"),
        "reports_root": str(tmp / name / "reports"),
    }
    data["lookalikes"] = []
    data["destinations"] = [d for d in data["destinations"] if d["platform"] == "generic"]
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def spark_submit(master: str, conf: Path, *args: str) -> subprocess.CompletedProcess:
    jars = ",".join(sorted(glob.glob(str(ROOT / ".cache" / "jars" / "*.jar"))))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMP_")}
    env.update(PYTHONPATH=str(ROOT), PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    cmd = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master", master,
        "--jars", jars,
        "--conf", "spark.driver.host=127.0.0.1",
        "--conf", "spark.driver.bindAddress=127.0.0.1",
        "--conf", "spark.executor.memory=1500m",
        "--driver-memory", "2g",
        str(ROOT / "jobs" / "cli.py"),
        *args,
        "--conf", str(conf),
    ]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)


def _snapshot(lake: Lake) -> dict:
    def rows(table, *cols):
        return sorted(tuple(r) for r in lake.read(table).select(*cols).collect())

    return {
        "silver": lake.read("silver.events").count(),
        "quarantine": lake.read("silver.quarantine").count(),
        "persons": rows("identity.person_map", "node", "person_id"),
        "segments": rows("gold.segment_membership", "segment", "person_id"),
        "exports": rows("gold.exports", "destination", "segment", "person_id"),
    }


def test_cluster_run_matches_local_run(spark, cluster, tmp_path):
    landing = tmp_path / "landing"
    generate(str(landing), 250, 5, 31, date(2026, 11, 1), progress=lambda m: None)
    local_conf = _conf(tmp_path, "local", landing)
    cluster_conf = _conf(tmp_path, "cluster", landing)

    local = Lake(spark, load_settings(local_conf, environ={}))
    t0 = time.time()
    run_pipeline(local, RUN_DATE)
    t1 = time.time()
    proc = spark_submit(cluster, cluster_conf, "pipeline", "--date", RUN_DATE)
    print(f"local {t1 - t0:.0f}s, cluster {time.time() - t1:.0f}s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dmp pipeline: done" in proc.stdout + proc.stderr  # spark-submit merges them
    remote = Lake(spark, load_settings(cluster_conf, environ={}))
    a, b = _snapshot(local), _snapshot(remote)
    assert a["silver"] > 0 and a["segments"]
    assert a == b
