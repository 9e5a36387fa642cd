"""The end-to-end world's parameters, and the real daily DAG run on a standalone cluster.

The DAG run is started by a session fixture (tests/conftest.py: ``cluster_dag``) when the suite
begins, on landing files of its own generated with the same parameters as the end-to-end
module's world (the generator is deterministic): every task spark-submits its job to a cold
JVM, which takes minutes, and those minutes overlap the rest of the suite instead of making the
end-to-end module wait. The module's last test compares the lake it leaves with the one the
in-process run left (tests/test_pipeline_e2e.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import yaml
from pyspark.sql import functions as F

from jobs.config import Settings
from jobs.generate import generate
from jobs.generate.formats import parse_formats
from jobs.ingest.sources import with_sources
from jobs.lake import Lake

ROOT = Path(__file__).resolve().parent.parent
PEOPLE, DAYS, SEED, START = 500, 10, 11, date(2026, 11, 1)
RUN_DATE = "2026-11-10"
# the web through Segment's S3 logs, the app through Snowplow's enriched events, email native
FORMATS = parse_formats("mix")
CLUSTER_TEST = "test_daily_dag_on_the_cluster_matches_the_local_run"
# JVMs that live a minute on a few hundred rows (the DAG's tasks, the crash test's jobs): the C2
# compiler would only compete for the two cores
SHORT_JVM_OPTS = "-XX:TieredStopAtLevel=1"


def cluster_test_selected(session) -> bool:
    """Whether this pytest session runs the cluster comparison."""
    return any(item.name == CLUSTER_TEST for item in session.items)


def generate_world(landing: Path) -> dict:
    """The end-to-end world's landing files (raw, truth, sources.yaml) -> the summary."""
    return generate(str(landing), PEOPLE, DAYS, SEED, START, progress=lambda m: 0, formats=FORMATS)


def with_world_sources(settings: Settings, landing: Path) -> Settings:
    entries = yaml.safe_load((landing / "sources.yaml").read_text())["ingest"]["sources"]
    return with_sources(settings, entries)


def cluster_conf(settings: Settings, tmp: Path) -> Path:
    """The suite's settings on landing files and a lake of their own, no lookalike (one model
    trained on a cold cluster JVM would double the run's time), the generic destination only,
    and Spark's code generation as shipped (the in-process runs evaluate expressions
    interpreted, tests/conf/dmp-test.yaml: the comparison of the two lakes covers both)."""
    landing = tmp / "landing"
    generate_world(landing)
    data = with_world_sources(settings, landing).model_dump()
    data["storage"] = {
        **data["storage"],
        "lake_root": str(tmp / "lake"),
        "raw_root": str(landing / "raw"),
        "audience_root": str(tmp / "audiences"),
        "reports_root": str(tmp / "reports"),
    }
    data["spark"]["extra_conf"] = {"spark.executor.extraJavaOptions": SHORT_JVM_OPTS}
    data["lookalikes"] = []
    data["destinations"] = [d for d in data["destinations"] if d["platform"] == "generic"]
    path = tmp / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start_daily_dag(settings: Settings, cluster: str, tmp: Path) -> dict:
    """``dag.test()`` of ``dmp_daily`` in a process of its own (tests/dag_runner.py), every task
    spark-submitting its job to the cluster at ``cluster`` -> the process, its configuration,
    its result and its log."""
    conf = cluster_conf(settings, tmp)
    host, port = cluster.rsplit(":", 1)
    env = {
        **os.environ,
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(
            {"conn_type": "spark", "host": host, "port": int(port)}
        ),
        "DMP_CONF": str(conf),
        "DMP_SPARK__JARS_ON_WORKERS": "true",  # the worker shares this disk
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_SUBMIT_OPTS": SHORT_JVM_OPTS,  # minute-long JVMs: C2 would only compete
        "PYSPARK_PYTHON": sys.executable,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    out, log = tmp / "run.json", tmp / "run.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.dag_runner", "dmp_daily", RUN_DATE, str(out)],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its spark-submits go with it if it has to be stopped
        )
    return {"proc": proc, "conf": conf, "out": out, "log": log}


def lake_snapshot(lake: Lake, leave_out: list[str]) -> dict:
    """What the two runs must agree on: event and quarantine counts, the person map, the
    segment members (but ``leave_out``) and the generic destination's exports."""

    def rows(df, *cols):
        return sorted(tuple(r) for r in df.select(*cols).collect())

    members = lake.read("gold.segment_membership").where(~F.col("segment").isin(leave_out))
    exports = lake.read("gold.exports").where(F.col("destination") == "generic")
    return {
        "silver": lake.read("silver.events").count(),
        "quarantine": lake.read("silver.quarantine").count(),
        "persons": rows(lake.read("identity.person_map"), "node", "person_id"),
        "segments": rows(members, "segment", "person_id"),
        "exports": rows(exports, "destination", "segment", "person_id"),
    }
