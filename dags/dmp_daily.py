"""Daily DMP pipeline: one spark-submit per job, in order, for the logical date.

Thin on purpose: no project, Spark or pandas import here; all logic lives in ``jobs/``.
"""

from __future__ import annotations

import glob
import os
from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = ["ingest", "quality", "identity", "profiles", "segments", "lookalike", "export"]
JARS = ",".join(sorted(glob.glob(os.path.join(PROJECT, ".cache", "jars", "*.jar"))))

with DAG(
    dag_id="dmp_daily",
    description="ingest -> quality -> identity -> profiles -> segments -> lookalike -> export",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    tags=["dmp", "spark"],
    doc_md=__doc__,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(hours=2),
    },
) as dag:
    previous = None
    for job in JOBS:
        task = SparkSubmitOperator(
            task_id=job,
            conn_id="spark_default",
            application=os.path.join(PROJECT, "jobs", "cli.py"),
            application_args=[job, "--date", "{{ ds }}"],
            jars=JARS or None,
            py_files=None,
            name=f"dmp-{job}",
            env_vars={"PYTHONPATH": PROJECT},
        )
        if previous is not None:
            previous >> task
        previous = task
