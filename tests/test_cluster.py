"""The daily DAG, run with dag.test(), submits every job with spark-submit to a real standalone
cluster on loopback, and the lake it leaves equals a local run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from jobs.config import load_settings
from jobs.generate import generate
from jobs.lake import Lake
from jobs.pipeline import JOBS, run_pipeline

from .conftest import ROOT, SHORT_JVM_OPTS, TEST_CONF, _free_port

RUN_DATE = "2026-11-04"


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
    data["spark"]["extra_conf"] = {"spark.executor.extraJavaOptions": SHORT_JVM_OPTS}
    data["lookalikes"] = []
    data["destinations"] = [d for d in data["destinations"] if d["platform"] == "generic"]
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


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


def test_daily_dag_on_the_cluster_matches_a_local_run(
    spark, cluster, airflow_db, tmp_path, monkeypatch
):
    """dag.test() runs the real daily DAG: every task spark-submits its job to the standalone
    cluster; the lake it leaves equals the one an in-process local run leaves."""
    landing = tmp_path / "landing"
    generate(str(landing), 150, 4, 31, date(2026, 11, 1), progress=lambda m: None)
    local_conf = _conf(tmp_path, "local", landing)
    cluster_conf = _conf(tmp_path, "cluster", landing)

    local = Lake(spark, load_settings(local_conf, environ={}))

    def local_run() -> float:
        t0 = time.time()
        run_pipeline(local, RUN_DATE)
        return time.time() - t0

    host, port = cluster.rsplit(":", 1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARK_DEFAULT",
        json.dumps({"conn_type": "spark", "host": host, "port": int(port)}),
    )
    monkeypatch.setenv("DMP_CONF", str(cluster_conf))
    monkeypatch.setenv("DMP_SPARK__JARS_ON_WORKERS", "true")  # the worker shares this disk
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["dmp_daily"]
    # the local reference run goes on in this process while the DAG's spark-submits wait on
    # JVM starts: they share the two cores instead of taking turns
    with ThreadPoolExecutor(1) as pool:
        local_seconds = pool.submit(local_run)
        t1 = time.time()
        run = dag.test(logical_date=datetime(2026, 11, 4, tzinfo=UTC))
        cluster_seconds = time.time() - t1
        print(f"local {local_seconds.result():.0f}s, DAG on the cluster {cluster_seconds:.0f}s")
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states
    assert set(states) == set(JOBS)
    remote = Lake(spark, load_settings(cluster_conf, environ={}))
    a, b = _snapshot(local), _snapshot(remote)
    assert a["silver"] > 0 and a["segments"]
    assert a == b
    runs = remote.read("reports.runs").select("job").collect()
    assert len(runs) == 7  # every job ran once, through spark-submit
