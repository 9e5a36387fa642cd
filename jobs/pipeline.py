"""The jobs in pipeline order, and the run summary."""

from __future__ import annotations

import json
from collections.abc import Callable

from jobs.lake import Lake
from jobs.report import JobReport, job_report, say
from jobs.vocabulary import DAILY_JOBS, MAINTENANCE_JOBS


def _ingest(lake, report, run_date):
    from jobs.ingest import run

    run.run(lake, report)


def _stage(module: str) -> Callable:
    def call(lake, report, run_date, **options):
        import importlib

        name = module if "." in module else f"{module}.run"
        importlib.import_module(f"jobs.{name}").run(lake, report, run_date, **options)

    return call


# job -> the module that runs it, where the job's name is not the module's
_MODULES = {
    "export": "activation",
    "retention": "privacy.retention",
    "vacuum": "privacy.vacuum",
}
JOBS: dict[str, Callable] = {
    job: _ingest if job == "ingest" else _stage(_MODULES.get(job, job)) for job in DAILY_JOBS
}
# run on their own schedule, not part of the daily pipeline
MAINTENANCE: dict[str, Callable] = {job: _stage(_MODULES[job]) for job in MAINTENANCE_JOBS}


def resolve_date(lake: Lake, run_date: str) -> str:
    """'latest' -> the last run date of the segment membership (what export and reports read)."""
    if run_date != "latest":
        return run_date
    from pyspark.sql import functions as F

    last = lake.read("gold.segment_membership").agg(F.max("run_date")).first()[0]
    if last is None:
        raise ValueError("--date latest: no segment run in the lake yet")
    return str(last)


def run_job(lake: Lake, job: str, run_date: str, **options) -> JobReport:
    """One job for one date; ``options`` are the job's own (e.g. identity's ``full``)."""
    from jobs.locks import writer_lock

    run_date = resolve_date(lake, run_date)
    with writer_lock(lake, job, run_date, say):  # its run row too: an erasure vacuums that table
        with job_report(job, run_date) as report:
            {**JOBS, **MAINTENANCE}[job](lake, report, run_date, **options)
        record_run(lake, report)
    return report


def record_run(lake: Lake, report: JobReport) -> None:
    """Append the job's numbers to reports.runs (one JSON document per job run)."""
    row = lake.spark.createDataFrame(
        [(report.job, report.run_date, json.dumps(report.as_dict()))],
        "job string, run_date string, report string",
    )
    # one partition: a local frame has one per core, and each empty one still writes a Parquet
    # file the Delta log never references (left for the vacuum)
    lake.append(row.coalesce(1), "reports.runs")


def run_pipeline(lake: Lake, run_date: str) -> list[JobReport]:
    reports = [run_job(lake, job, run_date) for job in JOBS]
    from jobs.reporting.run_report import write_run_report

    docs = next((r.facts.get("data docs") for r in reports if r.job == "quality"), None)
    path = write_run_report(lake, run_date, docs)
    say(f"[pipeline] run report: {path}")
    reports[-1].facts["run report"] = path
    return reports
