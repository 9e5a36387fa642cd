"""The DMP's Airflow 3 DAGs: one spark-submit per job, thin on purpose.

- ``dmp_daily``: ingest -> quality -> identity -> profiles -> segments -> lookalike -> export for
  the logical date; ``catchup=True`` so a backfill replays past dates one by one.
- ``dmp_segments_refresh``: re-evaluate segments and lookalikes for a date (e.g. after a
  definition changed); it updates the ``segment_membership`` asset.
- ``dmp_export``: scheduled on that asset; exports the latest segment run to the ad platforms.
- ``dmp_privacy``: daily retention (raw files, bronze, silver past their configured days), a
  vacuum of every table (so deleted rows and overwritten versions leave the storage), then a PII
  scan of every table and audience file that fails the run on any finding. Erasure stays
  a command (``dmp erase``): a request passed as DAG parameters would store the identifiers in
  Airflow's metadata database.

No Spark or pandas import here: all logic lives in ``jobs/`` and runs under spark-submit. The
job order comes from ``jobs/vocabulary.py`` (plain Python), loaded by its path. The Spark
master comes from the Airflow connection ``spark_default``.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(PROJECT, "jobs", "cli.py")
# jars are shipped to every executor of every run (641 MB with the AWS SDK bundle) unless the
# workers hold the project at the same path (an image, a shared disk): the jobs' own setting
# spark.jars_on_workers (here from its environment override) puts them on the class paths,
# read in place (Spark copies even local: jars into each executor's folder)
_ON_WORKERS = os.environ.get("DMP_SPARK__JARS_ON_WORKERS", "").lower() in ("1", "true", "yes")
_JAR_FILES = sorted(glob.glob(os.path.join(PROJECT, ".cache", "jars", "*.jar")))
if _ON_WORKERS:
    JAR_ARGS = {
        "driver_class_path": os.pathsep.join(_JAR_FILES),
        "conf": {"spark.executor.extraClassPath": os.pathsep.join(_JAR_FILES)},
    }
else:
    JAR_ARGS = {"jars": ",".join(_JAR_FILES) or None}


def _vocabulary():
    """jobs/vocabulary.py by its path: the project need not be importable where DAGs are parsed."""
    path = os.path.join(PROJECT, "jobs", "vocabulary.py")
    spec = importlib.util.spec_from_file_location("dmp_vocabulary", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DAILY_JOBS = _vocabulary().DAILY_JOBS
SEGMENT_MEMBERSHIP = Asset("dmp://lake/gold/segment_membership")
AUDIENCES = Asset("dmp://audiences")
DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(hours=2),
}


def job(task_id: str, date: str = "{{ ds }}", args=None, **kwargs) -> SparkSubmitOperator:
    return SparkSubmitOperator(
        task_id=task_id,
        conn_id="spark_default",
        application=CLI,
        application_args=args or [task_id, "--date", date],
        **JAR_ARGS,
        name=f"dmp-{task_id}",
        env_vars={"PYTHONPATH": PROJECT},
        **kwargs,
    )


def chain(tasks: list) -> None:
    for upstream, downstream in zip(tasks, tasks[1:], strict=False):
        upstream >> downstream


def dmp_dag(dag_id: str, description: str, schedule, tags: list[str], catchup: bool = False):
    return DAG(
        dag_id=dag_id,
        description=description,
        schedule=schedule,
        start_date=datetime(2026, 11, 1),
        catchup=catchup,
        max_active_runs=1,
        tags=["dmp", "spark", *tags],
        doc_md=__doc__,
        default_args=DEFAULT_ARGS,
    )


with dmp_dag(
    "dmp_daily",
    "ingest -> quality -> identity -> profiles -> segments -> lookalike -> export",
    "@daily",
    ["daily"],
    catchup=True,
):
    chain([job(name, outlets=[AUDIENCES] if name == "export" else []) for name in DAILY_JOBS])

with dmp_dag(
    "dmp_segments_refresh", "re-evaluate segments and lookalikes for a date", None, ["segments"]
):
    chain([job("segments"), job("lookalike", outlets=[SEGMENT_MEMBERSHIP])])

with dmp_dag(
    "dmp_export",
    "export the latest segment membership to the ad platforms",
    [SEGMENT_MEMBERSHIP],
    ["activation"],
):
    job("export", date="latest", outlets=[AUDIENCES])

with dmp_dag(
    "dmp_privacy",
    "retention, vacuum, then a PII scan of every table and audience file",
    "@daily",
    ["privacy"],
):
    chain([job("retention"), job("vacuum"), job("scan-pii", args=["scan-pii"])])
