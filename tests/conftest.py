"""One SparkSession for the whole test run (a JVM start costs seconds), tuned for speed."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

import pytest

# py4j logs at interpreter exit, after pytest has closed the captured streams
logging.getLogger("py4j").setLevel(logging.WARNING)

TEST_CONF = Path(__file__).parent / "conf" / "dmp-test.yaml"
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The S3 server's port and keys are fixed before any JVM starts: s3a reads its credentials from
# the environment of the JVM, which is the environment of this process at session start.
S3_PORT = _free_port()
os.environ["AWS_ACCESS_KEY_ID"] = "dmp-test-access"
os.environ["AWS_SECRET_ACCESS_KEY"] = "dmp-test-secret-key"
os.environ["AWS_REGION"] = "us-east-1"

# Airflow reads its configuration once, at first import: a private home for the test session.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="dmp-airflow-"))
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")


# modules that run the pipeline's jobs on generated worlds, in process or as processes of their own
END_TO_END = {
    "test_pipeline_e2e",
    "test_formats_generated",
    "test_crash_safety",
    "test_erase_concurrency",
    "test_ingest_recovery",
}
# fixtures that bring up a real part: Spark, the S3 server, Airflow's database, the cluster
REAL_PARTS = {"spark", "s3", "s3_server", "airflow_db", "spark_cluster"}


def pytest_collection_modifyitems(config, items):
    """Each test gets one tier marker, from what it needs: ``e2e`` (a module of END_TO_END),
    ``integration`` (a real part), or ``unit`` (plain Python), so `pytest -m unit` and the
    like select a tier without a hand-kept list."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module in END_TO_END:
            item.add_marker(pytest.mark.e2e)
        elif REAL_PARTS & set(item.fixturenames):
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dmp")


@pytest.fixture(scope="session")
def settings(workdir):
    from jobs.config import load_settings

    env = {
        "DMP_STORAGE__LAKE_ROOT": str(workdir / "lake"),
        "DMP_STORAGE__RAW_ROOT": str(workdir / "landing" / "raw"),
        "DMP_STORAGE__AUDIENCE_ROOT": str(workdir / "audiences"),
        "DMP_STORAGE__REPORTS_ROOT": str(workdir / "reports"),
        "DMP_S3__ENDPOINT": f"http://127.0.0.1:{S3_PORT}",
    }
    return load_settings(TEST_CONF, environ=env)


@pytest.fixture(scope="session")
def spark(settings):
    from jobs.session import get_spark
    from tests.cluster_dag import SHORT_JVM_OPTS

    session = get_spark(settings, app_name="dmp-tests")
    # JVMs the suite starts after this one (the killed and rerun jobs of the crash test, a
    # notebook's kernel) live for a minute on a few hundred rows: the C2 compiler only
    # competes for the two cores there. This session itself keeps the default JIT (C1 alone
    # made the end-to-end pipeline 27% slower here).
    os.environ["SPARK_SUBMIT_OPTS"] = SHORT_JVM_OPTS
    yield session
    session.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real MinIO on 127.0.0.1 (built by `make s3-server`), started for this test session and
    stopped by its own pid at the end."""
    script = ROOT / "infra" / "scripts" / "s3-server.sh"
    folder = tmp_path_factory.mktemp("s3")
    subprocess.run(["bash", str(script), "install"], check=True)
    subprocess.run(["bash", str(script), "start", str(folder), str(S3_PORT)], check=True)
    yield f"http://127.0.0.1:{S3_PORT}"
    subprocess.run(["bash", str(script), "stop", str(folder)], check=False)


@pytest.fixture(scope="session")
def s3(s3_server):
    import boto3

    return boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")


class Cluster(NamedTuple):
    master: str  # its URL
    work: Path  # the worker's folder: one per application


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """A Spark standalone master and worker on loopback (infra/scripts/spark-cluster.sh)."""
    folder = tmp_path_factory.mktemp("spark-cluster")
    port = _free_port()
    script = ROOT / "infra" / "scripts" / "spark-cluster.sh"
    subprocess.run(["bash", str(script), "start", str(folder), str(port)], check=True)
    yield Cluster(f"spark://127.0.0.1:{port}", folder / "work")
    subprocess.run(["bash", str(script), "stop", str(folder)], check=False)


@pytest.fixture(scope="session")
def airflow_db():
    """An initialised Airflow metadata database (SQLite in the session's AIRFLOW_HOME)."""
    import sys

    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    return AIRFLOW_HOME


@pytest.fixture(scope="session", autouse=True)
def cluster_dag(request, settings, tmp_path_factory):
    """The real daily DAG on the standalone cluster (tests/cluster_dag.py), started as the
    session begins when its test is selected, so that its minutes of cold JVMs overlap the whole
    suite; the test waits for it and compares. Stopped at the end if the test did not wait."""
    from tests.cluster_dag import cluster_test_selected, start_daily_dag

    if not cluster_test_selected(request.session):
        yield None
        return
    cluster = request.getfixturevalue("spark_cluster")
    request.getfixturevalue("airflow_db")
    run = start_daily_dag(settings, cluster.master, tmp_path_factory.mktemp("cluster-run"))
    run["worker_folder"] = cluster.work
    yield run
    if run["proc"].poll() is None:
        os.killpg(run["proc"].pid, signal.SIGKILL)
        run["proc"].wait()
